//! Freezing HubSpot (`freeze: { method: user_role, read_only_role: ROLE }`): HubSpot has no
//! read-only switch, so the freeze moves users to a role without write permissions through the
//! settings API (`/settings/v3/users`), recording each user's prior role in the receipt; unfreeze
//! puts back exactly those roles. The users are those named in `users` (emails or ids), else every
//! user, less `exclude_users` (the integration's owner, admins who must keep working). Users
//! already in the read-only role are left alone and not recorded, so an unfreeze leaves them too.
//! A role does not bind a super admin: one among the users to freeze stops the freeze before it
//! changes anything (exclude them, knowing they can still write, or take away their super admin
//! rights). HubSpot cannot try a write as another user, so the write probe reads the users back:
//! a user write would go through while any of them holds another role.

use serde_json::{Value, json};

use super::{Shared, bad};
use crate::connectors::ConnectorError;
use crate::playbook::model::FreezeSpec;

/// One account user as the settings API shows it.
struct User {
    id: String,
    email: String,
    role: Option<String>,
    super_admin: bool,
}

/// Checks at open time that the freeze settings make sense for HubSpot.
pub(super) fn check_spec(name: &str, spec: &FreezeSpec) -> Result<(), ConnectorError> {
    let unused = [
        ("roles", spec.roles.is_some()),
        ("accounts", spec.accounts.is_some()),
        ("probe_url", spec.probe_url.is_some()),
    ];
    if let Some((key, _)) = unused.iter().find(|(_, set)| *set) {
        return Err(bad(
            name,
            format!("freeze key `{key}` does not apply to a HubSpot freeze"),
            "a `user_role` freeze takes `read_only_role`, `users` and `exclude_users`",
        ));
    }
    Ok(())
}

async fn users(s: &Shared) -> Result<Vec<User>, ConnectorError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![("limit", "100")];
        if let Some(a) = &after {
            query.push(("after", a.as_str()));
        }
        let body = s.api.get("/settings/v3/users/", &query, None).await?;
        for u in body["results"].as_array().into_iter().flatten() {
            let text = |v: &Value| v.as_str().map(str::to_string).or(v.as_u64().map(|n| n.to_string()));
            let Some(id) = text(&u["id"]) else { continue };
            out.push(User {
                id,
                email: u["email"].as_str().unwrap_or_default().to_string(),
                role: text(&u["roleId"]),
                super_admin: u["superAdmin"] == true,
            });
        }
        match body["paging"]["next"]["after"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => return Ok(out),
        }
    }
}

/// The read-only role's id and name: `read_only_role` names it by name or id.
async fn read_only_role(s: &Shared, spec: Option<&FreezeSpec>) -> Result<(String, String), ConnectorError> {
    let body = s.api.get("/settings/v3/users/roles", &[], None).await?;
    let roles: Vec<(String, String)> = body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let id = r["id"].as_str().map(str::to_string).or(r["id"].as_u64().map(|n| n.to_string()))?;
            Some((id, r["name"].as_str().unwrap_or_default().to_string()))
        })
        .collect();
    let names: Vec<String> = roles.iter().map(|(id, name)| format!("`{name}` ({id})")).collect();
    let Some(wanted) = spec.and_then(|f| f.read_only_role.as_deref()) else {
        return Err(bad(
            &s.name,
            "a `user_role` freeze needs `read_only_role`".into(),
            &format!(
                "add `read_only_role: NAME` to `freeze:`, naming a role without write permissions; the account's roles: {}",
                names.join(", ")
            ),
        ));
    };
    roles
        .into_iter()
        .find(|(id, name)| id == wanted || name.eq_ignore_ascii_case(wanted))
        .ok_or_else(|| {
            bad(
                &s.name,
                format!("the account has no role `{wanted}` (`read_only_role`)"),
                &format!(
                    "create a role with view-only permissions in HubSpot (Settings → Users & Teams → Roles), or name one of: {}",
                    names.join(", ")
                ),
            )
        })
}

fn named(user: &User, names: &[String]) -> bool {
    names.iter().any(|n| n == &user.id || n.eq_ignore_ascii_case(&user.email))
}

/// The users a freeze covers: `users` (each must exist), else everyone, less `exclude_users`.
fn covered(s: &Shared, all: Vec<User>, spec: Option<&FreezeSpec>) -> Result<Vec<User>, ConnectorError> {
    let exclude = spec.and_then(|f| f.exclude_users.clone()).unwrap_or_default();
    let only = spec.and_then(|f| f.users.clone());
    if let Some(only) = &only {
        let unknown: Vec<&String> = only.iter().filter(|n| !all.iter().any(|u| named(u, &[(*n).clone()]))).collect();
        if !unknown.is_empty() {
            let unknown: Vec<String> = unknown.iter().map(|n| format!("`{n}`")).collect();
            return Err(bad(
                &s.name,
                format!("the account has no user {} (freeze `users`)", unknown.join(", ")),
                "name users by email or id as HubSpot lists them (Settings → Users & Teams)",
            ));
        }
    }
    Ok(all
        .into_iter()
        .filter(|u| only.as_ref().is_none_or(|o| named(u, o)) && !named(u, &exclude))
        .collect())
}

/// Moves the covered users to the read-only role; the receipt lists each moved user's prior role.
pub(super) async fn freeze(s: &Shared, spec: Option<&FreezeSpec>, run_id: &str) -> Result<Value, ConnectorError> {
    s.writable("freeze")?;
    let (role_id, role_name) = read_only_role(s, spec).await?;
    let users = covered(s, users(s).await?, spec)?;
    let admins: Vec<String> = users.iter().filter(|u| u.super_admin).map(|u| format!("`{}`", u.email)).collect();
    if !admins.is_empty() {
        return Err(bad(
            &s.name,
            format!(
                "{} {} super admin, whom no role binds, so the freeze could not stop them writing; nothing was changed",
                admins.join(", "),
                if admins.len() == 1 { "is a" } else { "are" }
            ),
            "list them in `exclude_users` (they stay able to write), or take away their super admin rights in HubSpot",
        ));
    }
    // A user without a role holds permissions of their own, which a role change would lose.
    let roleless: Vec<String> = users
        .iter()
        .filter(|u| u.role.is_none())
        .map(|u| format!("`{}`", u.email))
        .collect();
    if !roleless.is_empty() {
        return Err(bad(
            &s.name,
            format!(
                "{} {} no role (permissions of their own, which moving them to a role would lose); nothing was changed",
                roleless.join(", "),
                if roleless.len() == 1 { "has" } else { "have" }
            ),
            "give them a role in HubSpot first, or list them in `exclude_users`",
        ));
    }
    let mut moved: Vec<Value> = Vec::new();
    for user in users.iter().filter(|u| u.role.as_deref() != Some(role_id.as_str())) {
        // In the list before the call: a change HubSpot made whose answer was lost is undone too
        // (giving a user back the role they hold is harmless).
        moved.push(json!({"id": user.id, "email": user.email, "role_id": user.role}));
        if let Err(e) = s
            .api
            .put(&format!("/settings/v3/users/{}", user.id), &json!({"roleId": role_id}))
            .await
        {
            // Half a freeze helps nobody: put back the roles changed so far.
            let undo = json!({"method": "user_role", "users": moved});
            let e = e.record(&user.email);
            return Err(match unfreeze(s, &undo).await {
                Ok(()) => e,
                Err(undo_error) => ConnectorError::new(
                    &s.name,
                    format!(
                        "{}; giving back the roles changed so far failed too: {}",
                        e.message, undo_error.message
                    ),
                )
                .hint(format!("give these users their roles back in HubSpot (id, email, role_id): {undo}")),
            });
        }
    }
    tracing::info!(connector = %s.name, users = moved.len(), role = %role_name, "users moved to the read-only role");
    Ok(json!({
        "method": "user_role",
        "run": run_id,
        "read_only_role": {"id": role_id, "name": role_name},
        "users": moved,
    }))
}

/// Gives every user of the receipt back the role it held before the freeze. A user deleted since
/// is skipped with a warning.
pub(super) async fn unfreeze(s: &Shared, receipt: &Value) -> Result<(), ConnectorError> {
    s.writable("unfreeze")?;
    if receipt["method"] != "user_role" {
        return Err(ConnectorError::new(
            &s.name,
            format!("the freeze receipt is of method `{}`, not `user_role`", receipt["method"]),
        )
        .hint("this receipt was not written by a HubSpot freeze; `rollback status` shows the open freezes"));
    }
    // A user an admin moved out of the read-only role during the freeze keeps the role the
    // admin chose (giving the old one back could undo an offboarding).
    let read_only = receipt["read_only_role"]["id"].as_str();
    let now: std::collections::HashMap<String, Option<String>> = users(s).await?.into_iter().map(|u| (u.id, u.role)).collect();
    // Every user is tried: one that fails does not keep the others read-only.
    let mut failed: Vec<String> = Vec::new();
    for user in receipt["users"].as_array().into_iter().flatten() {
        let Some(id) = user["id"].as_str() else {
            failed.push(format!("a user without an id in the receipt: {user}"));
            continue;
        };
        if let (Some(read_only), Some(current)) = (read_only, now.get(id))
            && current.as_deref() != Some(read_only)
        {
            tracing::warn!(connector = %s.name, user = %user["email"], "user left the read-only role during the freeze; their current role is kept");
            continue;
        }
        let path = format!("/settings/v3/users/{id}");
        match s.api.put_if_found(&path, &json!({"roleId": user["role_id"]})).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                tracing::warn!(connector = %s.name, user = %user["email"], "user no longer exists; their role cannot be given back");
            }
            Err(e) => failed.push(format!("`{}`: {}", user["email"].as_str().unwrap_or(id), e.message)),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(ConnectorError::new(
            &s.name,
            format!("{} user(s) did not get their role back: {}", failed.len(), failed.join("; ")),
        )
        .retryable(true)
        .hint("run the unfreeze again (users already given back are given back again, harmlessly), or give these roles back in HubSpot"))
    }
}

/// Whether a user's write would go through: whether any covered user holds a role other than
/// the read-only one (or is a super admin).
pub(super) async fn write_probe(s: &Shared, spec: Option<&FreezeSpec>) -> Result<bool, ConnectorError> {
    let (role_id, _) = read_only_role(s, spec).await?;
    let users = covered(s, users(s).await?, spec)?;
    Ok(users.iter().any(|u| u.super_admin || u.role.as_deref() != Some(role_id.as_str())))
}
