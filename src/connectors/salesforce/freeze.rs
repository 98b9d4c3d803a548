//! Freezing Salesforce (`freeze: { method: freeze_users }`): `UserLogin.IsFrozen = true` for
//! the covered users, so they can no longer log in (they stay active and keep their licences),
//! while the tool's own session goes on. The users are those named in `users` (usernames, emails
//! or user ids), else every active `Standard` user (not portal, community, guest or automated
//! users), less `exclude_users` (a name there that is no user of the org is an error, as in
//! `users`), and never the integration user (the user the token belongs to, from
//! `/services/oauth2/userinfo`): naming it in `users` is an error, and a freeze that cannot tell
//! who it is changes nothing. Administrators are not left out by themselves: the sandbox serves
//! no profiles or permission sets to tell them by, so the playbook lists them in `exclude_users`.
//!
//! The receipt lists exactly the users it froze (each with its `UserLogin` id), written down
//! before they are frozen; users already frozen are left alone and listed apart, so the unfreeze,
//! which sets `IsFrozen = false` for the receipt's users only, leaves them frozen. A freeze that
//! fails half-way unfreezes the users it froze. The write probe reads the `UserLogin` rows back: a
//! user write would go through while any covered user is not frozen.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::read::{id_list, is_id};
use super::{Shared, bad};
use crate::connectors::ConnectorError;
use crate::playbook::model::FreezeSpec;

/// Users (or logins) per query and per Collections call.
const PER_CALL: usize = 200;

/// One user as the `User` object shows it.
#[derive(Clone, Debug)]
struct User {
    id: String,
    username: String,
    email: String,
    /// `UserType`: `Standard` for a licensed internal user; portal, community, guest and
    /// automated users have others.
    kind: String,
    active: bool,
}

/// A user's `UserLogin` row.
#[derive(Clone, Debug)]
struct Login {
    id: String,
    user_id: String,
    frozen: bool,
}

/// Whether two ids name the same row: 18-character ids compare without case, a 15-character one
/// with case against the first 15 characters.
fn same_id(a: &str, b: &str) -> bool {
    match (a.len(), b.len()) {
        (18, 18) => a.eq_ignore_ascii_case(b),
        (15, 18) => b.starts_with(a),
        (18, 15) => a.starts_with(b),
        _ => a == b,
    }
}

fn named(user: &User, names: &[String]) -> bool {
    names
        .iter()
        .any(|n| same_id(n, &user.id) || n.eq_ignore_ascii_case(&user.username) || n.eq_ignore_ascii_case(&user.email))
}

/// Checks at open time that the freeze settings make sense for Salesforce.
pub(super) fn check_spec(name: &str, spec: &FreezeSpec) -> Result<(), ConnectorError> {
    let unused = [
        ("roles", spec.roles.is_some()),
        ("accounts", spec.accounts.is_some()),
        ("probe_url", spec.probe_url.is_some()),
        ("read_only_role", spec.read_only_role.is_some()),
    ];
    if let Some((key, _)) = unused.iter().find(|(_, set)| *set) {
        return Err(bad(
            name,
            format!("freeze key `{key}` does not apply to a Salesforce freeze"),
            "a `freeze_users` freeze takes `users` and `exclude_users` (usernames, emails or user ids)",
        ));
    }
    Ok(())
}

/// Whether the playbook freezes by hand (then the connector has nothing to do or probe).
fn manual(spec: Option<&FreezeSpec>) -> bool {
    spec.and_then(|f| f.method.as_deref()) == Some("manual")
}

/// The user the token belongs to: its id and username.
async fn integration_user(s: &Shared) -> Result<(String, String), ConnectorError> {
    let cannot = |why: String| {
        ConnectorError::new(
            &s.name,
            format!("cannot tell which user the token belongs to ({why}), so nothing was frozen: the tool must never freeze its own user"),
        )
        .hint("use an OAuth access token (whose `/services/oauth2/userinfo` answers), or freeze by hand with `freeze: { method: manual }`")
    };
    let answer = s
        .api
        .get("/services/oauth2/userinfo", &[], None)
        .await
        .map_err(|e| cannot(e.message.clone()))?;
    let id = answer["user_id"]
        .as_str()
        .filter(|id| is_id(id))
        .ok_or_else(|| cannot(format!("its user info names no `user_id`: {answer}")))?;
    let username = answer["preferred_username"].as_str().unwrap_or(id);
    Ok((id.to_string(), username.to_string()))
}

/// Every user, active or not.
async fn all_users(s: &Shared) -> Result<Vec<User>, ConnectorError> {
    let rows = s
        .rows(
            "SELECT Id, Username, Email, UserType, IsActive FROM User ORDER BY Id",
            false,
            "User",
        )
        .await?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    Ok(rows
        .iter()
        .filter(|r| r["Id"].is_string())
        .map(|r| User {
            id: text(&r["Id"]),
            username: text(&r["Username"]),
            email: text(&r["Email"]),
            kind: text(&r["UserType"]),
            active: r["IsActive"] == true,
        })
        .collect())
}

/// The `UserLogin` rows of the users (or, with `by_login`, the rows) with these ids.
async fn logins(s: &Shared, ids: &[&str], by_login: bool) -> Result<Vec<Login>, ConnectorError> {
    let column = if by_login { "Id" } else { "UserId" };
    let mut out = Vec::new();
    let valid: Vec<&str> = ids.iter().copied().filter(|id| is_id(id)).collect();
    for part in valid.chunks(PER_CALL) {
        let soql = format!("SELECT Id, UserId, IsFrozen FROM UserLogin WHERE {column} IN {}", id_list(part));
        for r in s.rows(&soql, false, "UserLogin").await? {
            if let (Some(id), Some(user_id)) = (r["Id"].as_str(), r["UserId"].as_str()) {
                out.push(Login {
                    id: id.into(),
                    user_id: user_id.into(),
                    frozen: r["IsFrozen"] == true,
                });
            }
        }
    }
    Ok(out)
}

/// Names in `names` that name none of `users`, in backticks.
fn unknown(users: &[&User], names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| !users.iter().any(|u| named(u, std::slice::from_ref(*n))))
        .map(|n| format!("`{n}`"))
        .collect()
}

/// The users a freeze covers: `users` (each must be an active user), else every active
/// `Standard` user (not portal, community, guest or automated ones), less `exclude_users` (each
/// must be a user of the org) and the integration user `me` (naming it in `users` is an error).
fn covered(s: &Shared, all: Vec<User>, spec: Option<&FreezeSpec>, me: &str) -> Result<Vec<User>, ConnectorError> {
    let exclude = spec.and_then(|f| f.exclude_users.clone()).unwrap_or_default();
    let only = spec.and_then(|f| f.users.clone());
    let everyone: Vec<&User> = all.iter().collect();
    let missing = unknown(&everyone, &exclude);
    if !missing.is_empty() {
        return Err(bad(
            &s.name,
            format!("the org has no user {} (freeze `exclude_users`)", missing.join(", ")),
            "name users by username, email or id as Salesforce lists them (Setup → Users); a misspelt exclusion would freeze the user it meant to spare",
        ));
    }
    let active: Vec<&User> = all.iter().filter(|u| u.active).collect();
    if let Some(only) = &only {
        let missing = unknown(&active, only);
        if !missing.is_empty() {
            return Err(bad(
                &s.name,
                format!("the org has no active user {} (freeze `users`)", missing.join(", ")),
                "name users by username, email or id as Salesforce lists them (Setup → Users); inactive users cannot log in anyway",
            ));
        }
        if let Some(user) = active.iter().find(|u| same_id(&u.id, me) && named(u, only)) {
            return Err(bad(
                &s.name,
                format!(
                    "freeze `users` names `{}`, the user the token belongs to (the integration user), which a freeze never freezes: the tool would lock itself out",
                    user.username
                ),
                "remove it from `users`",
            ));
        }
    }
    let wanted = |u: &User| match &only {
        Some(o) => named(u, o),
        None => u.kind == "Standard",
    };
    Ok(all
        .into_iter()
        .filter(|u| u.active && !same_id(&u.id, me) && wanted(u) && !named(u, &exclude))
        .collect())
}

/// Sets `IsFrozen` on these `UserLogin` rows with Collections updates; the ids Salesforce
/// refused, with why.
async fn set_frozen(s: &Shared, login_ids: &[String], frozen: bool) -> Result<Vec<(String, String)>, ConnectorError> {
    let path = s.api.data("/composite/sobjects");
    let mut refused = Vec::new();
    for part in login_ids.chunks(PER_CALL) {
        let records: Vec<Value> = part
            .iter()
            .map(|id| json!({"attributes": {"type": "UserLogin"}, "id": id, "IsFrozen": frozen}))
            .collect();
        let answer = s
            .api
            .patch(&path, &json!({"allOrNone": false, "records": records}), Some("UserLogin"))
            .await?;
        let results = answer.as_array().cloned().unwrap_or_default();
        for (i, id) in part.iter().enumerate() {
            match results.get(i) {
                Some(r) if r["success"] == true => {}
                Some(r) => {
                    let said: Vec<String> = super::http::error_list(&r["errors"])
                        .into_iter()
                        .map(|(code, message)| format!("{code} {message}"))
                        .collect();
                    refused.push((id.clone(), said.join("; ")));
                }
                None => refused.push((id.clone(), format!("no result for it in Salesforce's answer: {answer}"))),
            }
        }
    }
    Ok(refused)
}

/// Freezes the covered users that are not frozen yet; the receipt lists them (and, apart, the
/// covered users that were frozen already).
pub(super) async fn freeze(s: &Shared, spec: Option<&FreezeSpec>, run_id: &str) -> Result<Value, ConnectorError> {
    s.writable("freeze")?;
    let (me, my_name) = integration_user(s).await?;
    let users = covered(s, all_users(s).await?, spec, &me)?;
    if users.is_empty() {
        return Err(bad(
            &s.name,
            "the freeze covers no user: every active Standard user is excluded or is the integration user".into(),
            "check `users` and `exclude_users` under `freeze:`",
        ));
    }
    let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    let by_user: HashMap<String, Login> = logins(s, &ids, false)
        .await?
        .into_iter()
        .map(|l| (l.user_id.to_ascii_lowercase(), l))
        .collect();
    let login_of = |u: &User| by_user.get(&u.id.to_ascii_lowercase());
    let without: Vec<String> = users
        .iter()
        .filter(|u| login_of(u).is_none())
        .map(|u| format!("`{}`", u.username))
        .collect();
    if !without.is_empty() {
        return Err(bad(
            &s.name,
            format!(
                "{} {} no UserLogin row, so Salesforce cannot freeze them; nothing was changed",
                without.join(", "),
                if without.len() == 1 { "has" } else { "have" }
            ),
            "list them in `exclude_users` (and stop them some other way), or check the token's user has Manage Users",
        ));
    }
    let entry = |u: &User, login: &Login| json!({"id": u.id, "username": u.username, "login_id": login.id});
    let (mut to_freeze, mut already) = (Vec::new(), Vec::new());
    for u in &users {
        if let Some(login) = login_of(u) {
            if login.frozen {
                already.push(json!({"id": u.id, "username": u.username}));
            } else {
                to_freeze.push(entry(u, login));
            }
        }
    }
    let receipt = json!({
        "method": "freeze_users",
        "run": run_id,
        "integration_user": {"id": me, "username": my_name},
        "users": to_freeze,
        "already_frozen": already,
    });
    // The users are in the receipt before they are frozen: a freeze whose answer was lost is
    // undone too (unfreezing a user who is not frozen is harmless).
    let login_ids: Vec<String> = to_freeze
        .iter()
        .filter_map(|u| u["login_id"].as_str().map(str::to_string))
        .collect();
    let failed = match set_frozen(s, &login_ids, true).await {
        Ok(refused) if refused.is_empty() => None,
        Ok(refused) => Some(
            ConnectorError::new(
                &s.name,
                format!(
                    "Salesforce refused to freeze {} user(s): {}",
                    refused.len(),
                    refused
                        .iter()
                        .map(|(id, why)| format!("login `{id}`: {why}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            )
            .hint("the token's user needs the Manage Users permission to freeze users"),
        ),
        Err(e) => Some(e),
    };
    if let Some(e) = failed {
        // Half a freeze helps nobody: unfreeze the users frozen so far.
        return Err(match set_frozen(s, &login_ids, false).await {
            Ok(refused) if refused.is_empty() => e,
            Ok(_) | Err(_) => {
                ConnectorError::new(&s.name, format!("{}; unfreezing the users frozen so far failed too", e.message)).hint(format!(
                    "unfreeze these users in Salesforce (Setup → Users → Unfreeze): {}",
                    receipt["users"]
                ))
            }
        });
    }
    tracing::info!(connector = %s.name, users = login_ids.len(), already = receipt["already_frozen"].as_array().map_or(0, Vec::len), "users frozen");
    Ok(receipt)
}

/// Unfreezes every user of the receipt that is still frozen. A user whose login is gone is
/// skipped with a warning; one an admin unfroze meanwhile is left as it is.
pub(super) async fn unfreeze(s: &Shared, receipt: &Value) -> Result<(), ConnectorError> {
    s.writable("unfreeze")?;
    if receipt["method"] != "freeze_users" {
        return Err(ConnectorError::new(
            &s.name,
            format!("the freeze receipt is of method `{}`, not `freeze_users`", receipt["method"]),
        )
        .hint("this receipt was not written by a Salesforce freeze; `rollback status` shows the open freezes"));
    }
    let listed: Vec<&Value> = receipt["users"].as_array().into_iter().flatten().collect();
    let login_ids: Vec<&str> = listed.iter().filter_map(|u| u["login_id"].as_str()).collect();
    if login_ids.len() != listed.len() {
        return Err(
            ConnectorError::new(&s.name, "the freeze receipt lists a user without a `login_id`").hint(format!(
                "unfreeze these users in Salesforce (Setup → Users → Unfreeze): {}",
                receipt["users"]
            )),
        );
    }
    let now: HashMap<String, bool> = logins(s, &login_ids, true)
        .await?
        .into_iter()
        .map(|l| (l.id.to_ascii_lowercase(), l.frozen))
        .collect();
    let mut frozen = Vec::new();
    for user in &listed {
        let login = user["login_id"].as_str().unwrap_or_default();
        match now.get(&login.to_ascii_lowercase()) {
            Some(true) => frozen.push(login.to_string()),
            Some(false) => tracing::debug!(connector = %s.name, user = %user["username"], "already unfrozen"),
            None => tracing::warn!(connector = %s.name, user = %user["username"], "the user's login no longer exists; nothing to unfreeze"),
        }
    }
    let refused = set_frozen(s, &frozen, false).await?;
    if refused.is_empty() {
        tracing::info!(connector = %s.name, users = frozen.len(), "users unfrozen");
        return Ok(());
    }
    let name_of = |login: &str| {
        listed
            .iter()
            .find(|u| u["login_id"] == login)
            .and_then(|u| u["username"].as_str())
            .unwrap_or(login)
            .to_string()
    };
    Err(ConnectorError::new(
        &s.name,
        format!(
            "{} user(s) are still frozen: {}",
            refused.len(),
            refused
                .iter()
                .map(|(id, why)| format!("`{}`: {why}", name_of(id)))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    )
    .retryable(true)
    .hint("run the unfreeze again (users already unfrozen are skipped), or unfreeze them in Salesforce (Setup → Users → Unfreeze)"))
}

/// Whether a user's write would go through: whether any covered user is not frozen.
pub(super) async fn write_probe(s: &Shared, spec: Option<&FreezeSpec>) -> Result<bool, ConnectorError> {
    if manual(spec) {
        return Err(ConnectorError::new(&s.name, "a manual freeze has no write probe"));
    }
    let (me, _) = integration_user(s).await?;
    let users = covered(s, all_users(s).await?, spec, &me)?;
    let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    let frozen: HashMap<String, bool> = logins(s, &ids, false)
        .await?
        .into_iter()
        .map(|l| (l.user_id.to_ascii_lowercase(), l.frozen))
        .collect();
    // A user without a login row cannot be shown frozen.
    Ok(users.iter().any(|u| frozen.get(&u.id.to_ascii_lowercase()) != Some(&true)))
}

/// For `plan`: whether the token's user can freeze users (`UserLogin` updateable, its own
/// identity known) and whom the freeze covers (every name in `users` and `exclude_users` a user
/// of the org), read without changing anything.
pub(super) async fn privileges(s: &Shared, spec: Option<&FreezeSpec>) -> Option<Result<String, String>> {
    if manual(spec) {
        return None;
    }
    let (me, my_id) = match integration_user(s).await {
        Ok((id, username)) => (username, id),
        Err(e) => return Some(Err(e.message.clone())),
    };
    // Names in `users` or `exclude_users` that match no user show up in the plan already.
    let users = match all_users(s).await.and_then(|all| covered(s, all, spec, &my_id)) {
        Ok(users) => users,
        Err(e) => return Some(Err(e.message.clone())),
    };
    let objects = match s.sobjects().await {
        Ok(o) => o,
        Err(e) => return Some(Err(e.message.clone())),
    };
    Some(if objects.get("userlogin").is_some_and(|o| o["updateable"] == true) {
        Ok(format!(
            "can update UserLogin (freeze users); the freeze covers {} user(s); the integration user `{me}` is never frozen",
            users.len()
        ))
    } else {
        Err("the token's user cannot update `UserLogin`, so it cannot freeze users (grant it Manage Users)".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, username: &str) -> User {
        User {
            id: id.into(),
            username: username.into(),
            email: format!("{username}@example.com"),
            kind: "Standard".into(),
            active: true,
        }
    }

    /// Ids match in either length; names by username or email, in any case.
    #[test]
    fn users_are_named_by_id_username_or_email() {
        let u = user("0055S0000000002AAA", "ana.silva");
        assert!(named(&u, &["0055s0000000002aaa".into()]));
        assert!(named(&u, &["0055S0000000002".into()]));
        assert!(!named(&u, &["0055s0000000002".into()]), "15-character ids are case-sensitive");
        assert!(named(&u, &["ANA.SILVA".into()]) && named(&u, &["ana.silva@example.com".into()]));
        assert!(!named(&u, &["ana".into()]));
    }
}
