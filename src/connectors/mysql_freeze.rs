//! Freezing a MySQL or MariaDB CRM, two ways (`freeze: { method: … }`):
//! - `revoke` (the default): takes INSERT, UPDATE and DELETE from each account in `accounts:`
//!   wherever it holds them over a mapped table (globally, on the database, on the table),
//!   recording exactly which it held at each level, and ends the accounts' open sessions (a
//!   session keeps database privileges it already checked). Unfreeze grants back exactly those.
//! - `read_only`: `SET GLOBAL read_only = ON`, recording the prior value: every account without
//!   the read-only bypass privilege (SUPER or READ_ONLY ADMIN), as an application's should be, is
//!   refused writes at once; the tool's own account keeps writing.
//!
//! The write probe writes nothing. With `probe_url:` (an application account) it tries an
//! `INSERT … SELECT … WHERE 1 = 0`, an `UPDATE … WHERE 1 = 0` and a `DELETE … WHERE 1 = 0` as
//! that account in a transaction rolled back: the server refuses each of them under either
//! freeze. Without one it reads the state: the accounts' write privileges over the mapped tables
//! (`revoke`) or the global `read_only` value.

use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection};

use super::ConnectorError;
use super::mysql::{MysqlConnector, error_number, literal, my_error, quote, strings};

const PRIVILEGES: [&str; 3] = ["INSERT", "UPDATE", "DELETE"];

fn method(c: &MysqlConnector) -> String {
    c.freeze_spec().and_then(|f| f.method.clone()).unwrap_or_else(|| "revoke".into())
}

/// An account as `freeze.accounts` names it (`app`, `app@%`, `'app'@'10.0.%'`): user and host.
pub fn parse_account(text: &str) -> Option<(String, String)> {
    let unquote = |s: &str| {
        let s = s.trim();
        s.strip_prefix('\'')
            .and_then(|s| s.strip_suffix('\''))
            .or_else(|| s.strip_prefix('`').and_then(|s| s.strip_suffix('`')))
            .unwrap_or(s)
            .to_string()
    };
    let (user, host) = match text.rsplit_once('@') {
        Some((user, host)) => (unquote(user), unquote(host)),
        None => (unquote(text), "%".to_string()),
    };
    (!user.is_empty() && !host.is_empty()).then_some((user, host))
}

fn account_sql(user: &str, host: &str) -> String {
    format!("{}@{}", literal(user), literal(host))
}

fn accounts(c: &MysqlConnector) -> Result<Vec<(String, String)>, ConnectorError> {
    let names = c.freeze_spec().and_then(|f| f.accounts.clone()).unwrap_or_default();
    if names.is_empty() {
        return Err(ConnectorError::new(c.name_str(), "`freeze: { method: revoke }` names no accounts")
            .hint("list the application's accounts: `freeze: { method: revoke, accounts: [\"crm_app@%\"] }`")
            .bad_input());
    }
    names
        .iter()
        .map(|n| {
            parse_account(n).ok_or_else(|| {
                ConnectorError::new(c.name_str(), format!("`{n}` in `freeze.accounts` is not an account"))
                    .hint("write accounts as USER or USER@HOST, e.g. crm_app@%")
                    .bad_input()
            })
        })
        .collect()
}

/// Freezes by the configured method; returns the receipt.
pub async fn freeze(c: &MysqlConnector, run_id: &str, message: &str) -> Result<Value, ConnectorError> {
    match method(c).as_str() {
        "read_only" => read_only(c, run_id, message).await,
        _ => revoke(c, run_id).await,
    }
}

async fn read_only(c: &MysqlConnector, run_id: &str, message: &str) -> Result<Value, ConnectorError> {
    let err = |e: sqlx::Error| my_error(c.name_str(), e).hint("a read-only freeze needs SUPER (MySQL) or an admin account (MariaDB)");
    let prior: i64 = sqlx::query_scalar("SELECT CAST(@@GLOBAL.read_only AS SIGNED)")
        .fetch_one(c.pool())
        .await
        .map_err(err)?;
    // Setting read_only waits for open transactions and table locks, and holds up new ones while
    // it waits: give up after 10 s rather than stall the CRM.
    let mut session = c.pool().acquire().await.map_err(err)?;
    sqlx::raw_sql("SET SESSION lock_wait_timeout = 10")
        .execute(&mut *session)
        .await
        .map_err(err)?;
    let set = sqlx::raw_sql("SET GLOBAL read_only = ON").execute(&mut *session).await;
    let _ = sqlx::raw_sql("SET SESSION lock_wait_timeout = DEFAULT")
        .execute(&mut *session)
        .await;
    set.map_err(|e| {
        my_error(c.name_str(), e)
            .hint("a long transaction or a table lock held read_only off for 10 s: find it in SHOW PROCESSLIST, then freeze again")
    })?;
    Ok(json!({"method": "read_only", "run": run_id, "prior": prior != 0, "message": message}))
}

/// Write privileges an account holds over the mapped tables: `(level, privileges)` with the
/// level as GRANT/REVOKE spell it (`*.*`, `` `db`.* ``, `` `db`.`table` ``).
async fn held(c: &MysqlConnector, user: &str, host: &str) -> Result<Vec<(String, Vec<String>)>, sqlx::Error> {
    let grantee = format!("'{user}'@'{host}'");
    let wanted = "PRIVILEGE_TYPE IN ('INSERT', 'UPDATE', 'DELETE')";
    let mut levels: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |level: String, privilege: String| match levels.iter_mut().find(|(l, _)| *l == level) {
        Some((_, list)) if !list.contains(&privilege) => list.push(privilege),
        Some(_) => {}
        None => levels.push((level, vec![privilege])),
    };
    let global = format!("SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ? AND {wanted}");
    for row in strings(c.pool(), &global, &[&grantee]).await? {
        add("*.*".into(), row[0].clone().unwrap_or_default());
    }
    let mut schemas: Vec<&str> = c.mapped().map(|m| m.schema.as_str()).collect();
    schemas.dedup();
    for schema in schemas {
        // A database grant may be a pattern (`crm\_%`): the stored name is what REVOKE takes.
        let sql = format!(
            "SELECT TABLE_SCHEMA, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND ? LIKE TABLE_SCHEMA ESCAPE CHAR(92) AND {wanted}"
        );
        for row in strings(c.pool(), &sql, &[&grantee, schema]).await? {
            add(
                format!("{}.*", quote(row[0].as_deref().unwrap_or_default())),
                row[1].clone().unwrap_or_default(),
            );
        }
    }
    for map in c.mapped() {
        let sql = format!(
            "SELECT PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = ? AND TABLE_SCHEMA = ? AND TABLE_NAME = ? AND {wanted}"
        );
        for row in strings(c.pool(), &sql, &[&grantee, &map.schema, &map.table]).await? {
            add(map.qualified.clone(), row[0].clone().unwrap_or_default());
        }
    }
    Ok(levels)
}

/// Whether `user@host` is an account of the server (from `mysql.user`).
async fn account_exists(c: &MysqlConnector, user: &str, host: &str) -> Result<bool, ConnectorError> {
    let rows = strings(c.pool(), "SELECT 1 FROM mysql.user WHERE User = ? AND Host = ?", &[user, host])
        .await
        .map_err(|e| my_error(c.name_str(), e).hint("the tool's account needs SELECT on mysql.user to check the accounts it freezes"))?;
    Ok(!rows.is_empty())
}

/// Ends the open sessions of `accounts`' users (not the tool's own); fails when one is left.
async fn end_sessions(c: &MysqlConnector, accounts: &[(String, String)]) -> Result<u64, ConnectorError> {
    let err = |e: sqlx::Error| {
        my_error(c.name_str(), e).hint("ending the accounts' sessions needs PROCESS and SUPER (MariaDB: CONNECTION ADMIN)")
    };
    let open = async |user: &str| -> Result<Vec<u64>, ConnectorError> {
        let rows = strings(
            c.pool(),
            "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()",
            &[user],
        )
        .await
        .map_err(err)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r[0].as_deref().and_then(|id| id.parse().ok()))
            .collect())
    };
    let mut ended = 0;
    for (user, _) in accounts {
        for id in open(user).await? {
            // A session that ended by itself meanwhile is not an error.
            if sqlx::raw_sql(AssertSqlSafe(format!("KILL CONNECTION {id}")))
                .execute(c.pool())
                .await
                .is_ok()
            {
                ended += 1;
            }
        }
        let left = open(user).await?;
        if !left.is_empty() {
            return Err(ConnectorError::new(
                c.name_str(),
                format!("{} open session(s) of `{user}` could not be ended (ids {left:?})", left.len()),
            )
            .hint("the tool's account needs SUPER (MariaDB: CONNECTION ADMIN) to end other accounts' sessions"));
        }
    }
    Ok(ended)
}

async fn revoke(c: &MysqlConnector, run_id: &str) -> Result<Value, ConnectorError> {
    let err = |e: sqlx::Error| my_error(c.name_str(), e).hint("revoking needs an account with the GRANT OPTION (or root)");
    let accounts = accounts(c)?;
    // Every account is checked before anything is revoked.
    let mut plan = Vec::new();
    for (user, host) in &accounts {
        let exists = account_exists(c, user, host).await?;
        if !exists {
            return Err(ConnectorError::new(c.name_str(), format!("account `{user}@{host}` does not exist"))
                .hint("fix `freeze.accounts` to name the application's accounts (USER@HOST, as in mysql.user)")
                .bad_input());
        }
        plan.push((user.clone(), host.clone(), held(c, user, host).await.map_err(err)?));
    }
    let mut done: Vec<Value> = Vec::new();
    for (user, host, levels) in &plan {
        for (level, privileges) in levels {
            let sql = format!("REVOKE {} ON {level} FROM {}", privileges.join(", "), account_sql(user, host));
            if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(c.pool()).await {
                // Grants are not transactional: put back what was revoked, then fail.
                let undo = json!({"method": "revoke", "grants": done});
                let restored = regrant(c, &undo).await;
                let error = err(e);
                return Err(match restored {
                    Ok(()) => error,
                    Err(again) => ConnectorError::new(
                        c.name_str(),
                        format!(
                            "{}; putting back the grants revoked so far failed too: {}",
                            error.message, again.message
                        ),
                    )
                    .hint(format!("grant back by hand: {undo}")),
                });
            }
            done.push(json!({"account": format!("{user}@{host}"), "user": user, "host": host, "level": level, "privileges": privileges}));
        }
    }
    // Open sessions keep database privileges they already checked: end them, or undo the
    // revokes and fail (a freeze is whole or not at all).
    let ended = match end_sessions(c, &accounts).await {
        Ok(ended) => ended,
        Err(e) => {
            let undo = json!({"method": "revoke", "grants": done});
            return Err(match regrant(c, &undo).await {
                Ok(()) => e,
                Err(again) => ConnectorError::new(
                    c.name_str(),
                    format!(
                        "{}; putting back the grants revoked so far failed too: {}",
                        e.message, again.message
                    ),
                )
                .hint(format!("grant back by hand: {undo}")),
            });
        }
    };
    let names: Vec<String> = accounts.iter().map(|(u, h)| format!("{u}@{h}")).collect();
    Ok(json!({"method": "revoke", "run": run_id, "accounts": names, "grants": done, "sessions_ended": ended}))
}

/// Grants back what a revoke receipt lists.
async fn regrant(c: &MysqlConnector, receipt: &Value) -> Result<(), ConnectorError> {
    for grant in receipt["grants"].as_array().into_iter().flatten() {
        let (Some(user), Some(host), Some(level)) = (grant["user"].as_str(), grant["host"].as_str(), grant["level"].as_str()) else {
            continue;
        };
        let privileges: Vec<&str> = grant["privileges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str())
            .filter(|p| PRIVILEGES.contains(p))
            .collect();
        if privileges.is_empty() {
            continue;
        }
        if !valid_level(level) {
            return Err(ConnectorError::new(
                c.name_str(),
                format!("the receipt names a grant level `{level}` this tool does not write"),
            )
            .hint("the journal's receipt was changed; grant back by hand from `rollback runs show`"));
        }
        // An account dropped since the freeze is not made again (GRANT could create it).
        if !account_exists(c, user, host).await? {
            tracing::warn!("account `{user}@{host}` no longer exists; its grants are not given back");
            continue;
        }
        // The level comes from our own receipt, quoted when it was written.
        let sql = format!("GRANT {} ON {level} TO {}", privileges.join(", "), account_sql(user, host));
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(c.pool())
            .await
            .map_err(|e| my_error(c.name_str(), e).hint("granting back needs an account with the GRANT OPTION (or root)"))?;
    }
    Ok(())
}

/// A grant level as [`held`] writes it: `*.*`, `` `db`.* `` or `` `db`.`table` `` (backquotes
/// inside names doubled).
fn valid_level(level: &str) -> bool {
    fn identifier(text: &str) -> Option<&str> {
        let mut rest = text.strip_prefix('`')?;
        loop {
            let end = rest.find('`')?;
            if rest[end + 1..].starts_with('`') {
                rest = &rest[end + 2..];
            } else {
                return Some(&rest[end + 1..]);
            }
        }
    }
    if level == "*.*" {
        return true;
    }
    match identifier(level).and_then(|r| r.strip_prefix('.')) {
        Some("*") => true,
        Some(table) => identifier(table) == Some(""),
        None => false,
    }
}

/// Undoes exactly what the receipt's freeze did.
pub async fn unfreeze(c: &MysqlConnector, receipt: &Value) -> Result<(), ConnectorError> {
    match receipt["method"].as_str() {
        Some("read_only") => {
            let value = if receipt["prior"].as_bool() == Some(true) { "ON" } else { "OFF" };
            sqlx::raw_sql(AssertSqlSafe(format!("SET GLOBAL read_only = {value}")))
                .execute(c.pool())
                .await
                .map_err(|e| my_error(c.name_str(), e))?;
            Ok(())
        }
        Some("revoke") => regrant(c, receipt).await,
        other => Err(ConnectorError::new(
            c.name_str(),
            format!("cannot undo a freeze of method `{}` on a mysql connector", other.unwrap_or("?")),
        )),
    }
}

/// Whether a user could write now (see the module docs). Nothing is changed either way.
pub async fn write_probe(c: &MysqlConnector) -> Result<bool, ConnectorError> {
    let err = |e: sqlx::Error| my_error(c.name_str(), e);
    let Some(map) = c.mapped().next() else {
        return Ok(true);
    };
    let revoke = method(c) != "read_only";
    let Some(url) = c.freeze_spec().and_then(|f| f.probe_url.clone()) else {
        if !revoke {
            let on: i64 = sqlx::query_scalar("SELECT CAST(@@GLOBAL.read_only AS SIGNED)")
                .fetch_one(c.pool())
                .await
                .map_err(err)?;
            return Ok(on == 0);
        }
        for (user, host) in accounts(c)? {
            if !held(c, &user, &host).await.map_err(err)?.is_empty() {
                return Ok(true);
            }
        }
        return Ok(false);
    };
    let options = super::mysql::connect_options(c.config(), &url)
        .map_err(|e| ConnectorError::new(c.name_str(), format!("`freeze.probe_url`: {}", e.message)).bad_input())?;
    let mut session = match sqlx::mysql::MySqlConnection::connect_with(&options).await {
        Ok(session) => session,
        // A revoke that leaves the account no privilege on the database refuses the login.
        Err(e) if revoke && error_number(&e) == Some(1044) => return Ok(false),
        Err(e) => return Err(err(e).hint("`freeze.probe_url` must be an application account that can log in")),
    };
    let columns: Vec<String> = map.written().map(|c| quote(&c.name)).collect();
    let probes = super::sql_text::write_probes(&map.qualified, &columns, &quote(&map.id));
    let mut writable = false;
    for probe in probes {
        let mut tx = session.begin().await.map_err(err)?;
        let outcome = sqlx::raw_sql(AssertSqlSafe(probe)).execute(&mut *tx).await;
        let _ = tx.rollback().await;
        match outcome {
            Ok(_) => writable = true,
            // 1290 read-only server (1836 MySQL's read-only mode), 1142 table privilege, 1044
            // database access denied.
            Err(e) if matches!(error_number(&e), Some(1290 | 1836 | 1142 | 1044)) => {}
            Err(e) => return Err(err(e)),
        }
    }
    let _ = session.close().await;
    Ok(writable)
}

/// Whether the tool's account holds what `need` (`read`, `write`, `freeze`) takes, from the
/// catalog (see [`super::Connector::privileges`]). Privileges held through roles are not seen.
pub async fn privileges(c: &MysqlConnector, need: &str) -> Result<String, String> {
    let failed = |e: sqlx::Error| format!("cannot read the account's privileges: {e}");
    let me: String = sqlx::query_scalar("SELECT CAST(CURRENT_USER() AS CHAR)")
        .fetch_one(c.pool())
        .await
        .map_err(failed)?;
    let (user, host) = me.rsplit_once('@').unwrap_or((me.as_str(), "%"));
    let grantee = format!("'{user}'@'{host}'");
    let holds = async |privilege: &str, schema: &str, table: Option<&str>| -> Result<bool, String> {
        let sql = "SELECT CAST((SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ? AND PRIVILEGE_TYPE = ?) \
             + (SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND PRIVILEGE_TYPE = ? AND ? LIKE TABLE_SCHEMA ESCAPE CHAR(92)) \
             + (SELECT COUNT(*) FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = ? AND PRIVILEGE_TYPE = ? AND TABLE_SCHEMA = ? AND TABLE_NAME = ?) AS CHAR)";
        let table = table.unwrap_or("");
        let binds = [
            grantee.as_str(),
            privilege,
            &grantee,
            privilege,
            schema,
            &grantee,
            privilege,
            schema,
            table,
        ];
        let rows = strings(c.pool(), sql, &binds).await.map_err(failed)?;
        Ok(rows.first().and_then(|r| r[0].as_deref()).is_some_and(|n| n != "0"))
    };
    let table_privileges = super::sql_text::table_privileges(need);
    let mut missing = Vec::new();
    for map in c.mapped() {
        for privilege in table_privileges {
            if !holds(privilege, &map.schema, Some(&map.table)).await? {
                missing.push(format!("{privilege} on {}", map.qualified));
            }
        }
    }
    let mut held = table_privileges.join(", ");
    if need == "freeze" {
        match method(c).as_str() {
            "read_only" => {
                // The tool must set read_only and keep writing under it: MariaDB 10.11 asks
                // READ_ONLY ADMIN for both, MySQL SUPER (or SYSTEM_VARIABLES_ADMIN to set it and
                // CONNECTION_ADMIN to write under it).
                let version: String = sqlx::query_scalar("SELECT VERSION()").fetch_one(c.pool()).await.map_err(failed)?;
                let able = if version.contains("MariaDB") {
                    holds("READ_ONLY ADMIN", "", None).await?
                } else {
                    holds("SUPER", "", None).await?
                        || (holds("SYSTEM_VARIABLES_ADMIN", "", None).await? && holds("CONNECTION_ADMIN", "", None).await?)
                };
                match able {
                    true => held = "the rights to set read_only and write under it".into(),
                    false => missing.push("SUPER (MariaDB: READ_ONLY ADMIN) to set read_only and write under it".into()),
                }
            }
            "revoke" => {
                let sql = "SELECT CAST((SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ? AND IS_GRANTABLE = 'YES') \
                     + (SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND IS_GRANTABLE = 'YES' AND ? LIKE TABLE_SCHEMA ESCAPE CHAR(92)) AS CHAR)";
                let rows = strings(c.pool(), sql, &[&grantee, &grantee, c.database()]).await.map_err(failed)?;
                match rows.first().and_then(|r| r[0].as_deref()).is_some_and(|n| n != "0") {
                    true => held = "the GRANT OPTION, PROCESS and the right to end sessions".into(),
                    false => missing.push("the GRANT OPTION (to revoke and grant back)".into()),
                }
                if !holds("PROCESS", "", None).await? {
                    missing.push("PROCESS (to see the accounts' open sessions)".into());
                }
                let mut end = false;
                for privilege in ["SUPER", "CONNECTION ADMIN", "CONNECTION_ADMIN"] {
                    end |= holds(privilege, "", None).await?;
                }
                if !end {
                    missing.push("SUPER (MariaDB: CONNECTION ADMIN) to end the accounts' open sessions".into());
                }
                if let Err(e) = accounts(c) {
                    missing.push(e.message.clone());
                }
            }
            _ => held = "nothing (a manual freeze)".into(),
        }
    }
    if missing.is_empty() {
        Ok(format!("account {me} holds {held}"))
    } else {
        Err(format!(
            "account `{me}` lacks {}: grant it, e.g. GRANT … TO {}",
            missing.join(", "),
            account_sql(user, host)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_parse() {
        assert_eq!(parse_account("crm_app"), Some(("crm_app".into(), "%".into())));
        assert_eq!(parse_account("crm_app@%"), Some(("crm_app".into(), "%".into())));
        assert_eq!(parse_account("'crm'@'10.0.%'"), Some(("crm".into(), "10.0.%".into())));
        assert_eq!(
            parse_account("me@example.com@localhost"),
            Some(("me@example.com".into(), "localhost".into()))
        );
        assert_eq!(parse_account("@%"), None);
    }

    #[test]
    fn levels_are_checked() {
        for good in ["*.*", "`crm`.*", "`crm`.`contacts`", "`we``ird`.`t``x`", "`crm\\_%`.*"] {
            assert!(valid_level(good), "{good}");
        }
        for bad in ["crm.*", "`crm`", "`crm`.`t`; DROP TABLE x", "`crm`.* TO x", "`crm`.`t` x", ""] {
            assert!(!valid_level(bad), "{bad}");
        }
    }
}
