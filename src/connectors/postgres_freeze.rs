//! Freezing a PostgreSQL CRM, two ways (`freeze: { method: … }`):
//! - `read_only` (the default): `ALTER DATABASE … SET default_transaction_read_only = on`, which
//!   every new session takes; sessions already open keep their setting, so the freeze ends every
//!   other client session of the database (their pools reconnect, read-only). The tool's own
//!   sessions set the setting off. Unfreeze restores the recorded prior database setting.
//! - `revoke`: `REVOKE INSERT, UPDATE, DELETE, TRUNCATE` on every mapped table from each role in
//!   `roles:`, recording exactly which of those privileges each role held directly; unfreeze
//!   grants back exactly those (with their grant options).
//!
//! The write probe writes nothing (and says writable when any one write would go through): a statement that changes no row is still refused by a
//! read-only transaction or a missing privilege, and it runs in a transaction rolled back.

use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, Row};

use super::ConnectorError;
use super::postgres::{APPLICATION, PostgresConnector, pg_error, quote};

const PRIVILEGES: [&str; 4] = ["INSERT", "UPDATE", "DELETE", "TRUNCATE"];

fn method(c: &PostgresConnector) -> String {
    c.freeze_spec().and_then(|f| f.method.clone()).unwrap_or_else(|| "read_only".into())
}

fn roles(c: &PostgresConnector) -> Result<Vec<String>, ConnectorError> {
    let roles = c.freeze_spec().and_then(|f| f.roles.clone()).unwrap_or_default();
    if roles.is_empty() {
        return Err(ConnectorError::new(c.name_str(), "`freeze: { method: revoke }` names no roles")
            .hint("list the application's roles: `freeze: { method: revoke, roles: [crm_app] }`")
            .bad_input());
    }
    Ok(roles)
}

/// Freezes by the configured method; returns the receipt.
pub async fn freeze(c: &PostgresConnector, run_id: &str, message: &str) -> Result<Value, ConnectorError> {
    match method(c).as_str() {
        "revoke" => revoke(c, run_id).await,
        _ => read_only(c, run_id, message).await,
    }
}

async fn read_only(c: &PostgresConnector, run_id: &str, message: &str) -> Result<Value, ConnectorError> {
    let err =
        |e: sqlx::Error| pg_error(c.name_str(), e).hint("a read-only freeze needs the database's owner or a superuser (ALTER DATABASE)");
    let database = c.database();
    let prior: Option<String> = sqlx::query_scalar(
        "SELECT split_part(s.setting, '=', 2) FROM pg_db_role_setting r JOIN pg_database d ON d.oid = r.setdatabase, \
         unnest(r.setconfig) AS s(setting) WHERE r.setrole = 0 AND d.datname = current_database() \
         AND s.setting LIKE 'default_transaction_read_only=%'",
    )
    .fetch_optional(c.pool())
    .await
    .map_err(err)?;
    sqlx::query(AssertSqlSafe(format!(
        "ALTER DATABASE {} SET default_transaction_read_only = on",
        quote(database)
    )))
    .execute(c.pool())
    .await
    .map_err(err)?;
    // Sessions already open keep writing until they reconnect.
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' \
         AND application_name <> $1) AS ended",
    )
    .bind(APPLICATION)
    .fetch_one(c.pool())
    .await
    .map_err(err)?;
    Ok(json!({
        "method": "read_only",
        "run": run_id,
        "database": database,
        "prior": prior,
        "sessions_ended": ended,
        "message": message,
    }))
}

async fn revoke(c: &PostgresConnector, run_id: &str) -> Result<Value, ConnectorError> {
    let err = |e: sqlx::Error| pg_error(c.name_str(), e).hint("revoking needs the tables' owner or a superuser");
    let roles = roles(c)?;
    let mut tx = c.pool().begin().await.map_err(err)?;
    let mut grants = Vec::new();
    for map in c.mapped() {
        for role in &roles {
            let held = sqlx::query(
                "SELECT a.privilege_type::text AS privilege, a.is_grantable AS grantable FROM pg_class c, aclexplode(c.relacl) a \
                 WHERE c.oid = to_regclass($1) AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $2) \
                 AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')",
            )
            .bind(&map.qualified)
            .bind(role)
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
            let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(role)
                .fetch_one(&mut *tx)
                .await
                .map_err(err)?;
            if !exists {
                return Err(ConnectorError::new(c.name_str(), format!("role `{role}` does not exist"))
                    .hint("fix `freeze.roles` to name the application's database roles")
                    .bad_input());
            }
            let privileges: Vec<Value> = held
                .iter()
                .map(|r| json!({"privilege": r.get::<String, _>("privilege"), "grantable": r.get::<bool, _>("grantable")}))
                .collect();
            sqlx::query(AssertSqlSafe(format!(
                "REVOKE {} ON {} FROM {}",
                PRIVILEGES.join(", "),
                map.qualified,
                quote(role)
            )))
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            grants.push(json!({"table": map.qualified, "role": role, "privileges": privileges}));
        }
    }
    tx.commit().await.map_err(err)?;
    Ok(json!({"method": "revoke", "run": run_id, "roles": roles, "grants": grants}))
}

/// Undoes exactly what the receipt's freeze did.
pub async fn unfreeze(c: &PostgresConnector, receipt: &Value) -> Result<(), ConnectorError> {
    let err = |e: sqlx::Error| pg_error(c.name_str(), e);
    match receipt["method"].as_str() {
        Some("read_only") => {
            let database = receipt["database"].as_str().unwrap_or(c.database());
            let sql = match receipt["prior"].as_str() {
                Some(prior) if ["on", "off", "true", "false"].contains(&prior) => {
                    format!("ALTER DATABASE {} SET default_transaction_read_only = {prior}", quote(database))
                }
                _ => format!("ALTER DATABASE {} RESET default_transaction_read_only", quote(database)),
            };
            sqlx::query(AssertSqlSafe(sql)).execute(c.pool()).await.map_err(err)?;
            Ok(())
        }
        Some("revoke") => {
            let mut tx = c.pool().begin().await.map_err(err)?;
            for grant in receipt["grants"].as_array().into_iter().flatten() {
                let (Some(table), Some(role)) = (grant["table"].as_str(), grant["role"].as_str()) else {
                    continue;
                };
                for privilege in grant["privileges"].as_array().into_iter().flatten() {
                    let Some(name) = privilege["privilege"].as_str().filter(|p| PRIVILEGES.contains(p)) else {
                        continue;
                    };
                    let option = if privilege["grantable"].as_bool() == Some(true) {
                        " WITH GRANT OPTION"
                    } else {
                        ""
                    };
                    // The table name comes from our own receipt, quoted when it was written.
                    sqlx::query(AssertSqlSafe(format!("GRANT {name} ON {table} TO {}{option}", quote(role))))
                        .execute(&mut *tx)
                        .await
                        .map_err(err)?;
                }
            }
            tx.commit().await.map_err(err)
        }
        other => Err(ConnectorError::new(
            c.name_str(),
            format!("cannot undo a freeze of method `{}` on a postgres connector", other.unwrap_or("?")),
        )),
    }
}

/// Whether a user could write now: for `revoke`, as each named role; for `read_only`, in a
/// fresh session without the tool's own settings. Nothing is changed either way.
pub async fn write_probe(c: &PostgresConnector) -> Result<bool, ConnectorError> {
    let err = |e: sqlx::Error| pg_error(c.name_str(), e);
    let Some(map) = c.mapped().next() else {
        return Ok(true);
    };
    let columns: Vec<String> = map.written().map(|c| quote(&c.name)).collect();
    let probes = super::sql_text::write_probes(&map.qualified, &columns, &quote(&map.id));
    let revoke = method(c) == "revoke";
    let roles = if revoke { roles(c)? } else { vec![String::new()] };
    let mut session = sqlx::postgres::PgConnection::connect_with(&c.plain_options().clone().application_name("rollback-probe"))
        .await
        .map_err(err)?;
    // Writable when any user write goes through.
    let mut writable = false;
    for role in roles {
        for probe in &probes {
            let mut tx = session.begin().await.map_err(err)?;
            if !role.is_empty() {
                sqlx::query(AssertSqlSafe(format!("SET LOCAL ROLE {}", quote(&role))))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err(e).hint(format!("the tool's role must be a member of `{role}` to probe as it")))?;
            }
            let outcome = sqlx::query(AssertSqlSafe(probe.clone())).execute(&mut *tx).await;
            let _ = tx.rollback().await;
            match outcome {
                Ok(_) => writable = true,
                // read_only_sql_transaction, insufficient_privilege
                Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("25006" | "42501")) => {}
                Err(e) => return Err(err(e)),
            }
        }
    }
    let _ = session.close().await;
    Ok(writable)
}

/// Whether the tool's role holds what `need` (`read`, `write`, `freeze`) takes, from the
/// catalog (see [`super::Connector::privileges`]).
pub async fn privileges(c: &PostgresConnector, need: &str) -> Result<String, String> {
    let failed = |e: sqlx::Error| format!("cannot read the role's privileges: {e}");
    let row = sqlx::query("SELECT current_user::text AS me, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser")
        .fetch_one(c.pool())
        .await
        .map_err(failed)?;
    let (me, superuser): (String, bool) = (row.get("me"), row.get("superuser"));
    let yes = async |sql: &str, binds: &[&str]| -> Result<bool, String> {
        let mut query = sqlx::query_scalar::<_, bool>(AssertSqlSafe(sql.to_string()));
        for b in binds {
            query = query.bind(b.to_string());
        }
        query.fetch_one(c.pool()).await.map_err(failed)
    };
    let table_privileges = super::sql_text::table_privileges(need);
    let mut missing = Vec::new();
    for map in c.mapped() {
        for privilege in table_privileges {
            if !yes("SELECT has_table_privilege($1::text::regclass, $2)", &[&map.qualified, privilege]).await? {
                missing.push(format!("{privilege} on {}", map.qualified));
            }
        }
    }
    if need == "write" && !yes("SELECT has_database_privilege(current_database(), 'TEMP')", &[]).await? {
        missing.push("TEMP on the database (upserts load through a temporary table)".into());
    }
    let mut held = table_privileges.join(", ");
    if need == "freeze" && !superuser {
        match method(c).as_str() {
            "read_only" => {
                let owner = "SELECT pg_has_role(current_user, datdba, 'MEMBER') FROM pg_database WHERE datname = current_database()";
                match yes(owner, &[]).await? {
                    true => held = "the database's ownership".into(),
                    false => missing.push("the database's ownership (ALTER DATABASE … SET default_transaction_read_only)".into()),
                }
            }
            "revoke" => {
                held = "the tables' ownership".into();
                for map in c.mapped() {
                    let owner = "SELECT pg_has_role(current_user, relowner, 'MEMBER') FROM pg_class WHERE oid = $1::text::regclass";
                    if !yes(owner, &[&map.qualified]).await? {
                        missing.push(format!("ownership of {} (to revoke and grant back)", map.qualified));
                    }
                }
                for role in roles(c).map_err(|e| e.message.clone())? {
                    let member = "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AND pg_has_role(current_user, $1, 'MEMBER')";
                    if !yes(member, &[&role]).await? {
                        missing.push(format!("membership in role `{role}` (the write probe writes as it)"));
                    }
                }
            }
            _ => held = "nothing (a manual freeze)".into(),
        }
    } else if need == "freeze" {
        held = "superuser".into();
    }
    if missing.is_empty() {
        Ok(format!("role {me} holds {held}"))
    } else {
        Err(format!(
            "role `{me}` lacks {}: grant it, or connect as the owner",
            missing.join(", ")
        ))
    }
}
