//! What the HTTP connectors served by the tool's own sandbox share for drills
//! ([`super::DrillWrites::Sandbox`]): the `/_sandbox/traffic` request that plays users in the
//! sandbox, and the counts per object its answer gives.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::ConnectorError;
use crate::store::manifest::DeltaCounts;

/// The error for a connector no sandbox serves, naming the `sandbox:` key that would.
pub fn not_sandboxed(connector: &str, flavor: &str) -> ConnectorError {
    ConnectorError::new(connector, "no sandbox serves this connector").hint(format!(
        "give it `sandbox: {{ flavor: {flavor} }}` in the environment the drill runs in"
    ))
}

/// The body of `POST /_sandbox/traffic`: in each object type of `types` (the sandbox's names),
/// `n` records created, changed and deleted after `cutover`, chosen by `seed`.
pub fn request(cutover: Option<DateTime<Utc>>, types: &[&str], n: u64, seed: u64) -> Value {
    json!({
        "cutover": cutover.map(|c| crate::record::format_time(&c)),
        "objects": types,
        "create": n,
        "update": n,
        "archive": n,
        "seed": seed,
    })
}

/// Plays users in the sandbox through `post` (which sends `POST /_sandbox/traffic` with the body
/// it is given and answers the response's JSON): in each of `objects` (each object's name with
/// its type as the sandbox names it), `n` records created, changed and deleted after `cutover`.
pub async fn play<F, Fut>(
    connector: &str,
    cutover: Option<DateTime<Utc>>,
    objects: &[(&str, &str)],
    n: u64,
    seed: u64,
    post: F,
) -> Result<BTreeMap<String, DeltaCounts>, ConnectorError>
where
    F: FnOnce(Value) -> Fut,
    Fut: std::future::Future<Output = Result<Value, ConnectorError>>,
{
    let types: Vec<&str> = objects.iter().map(|(_, kind)| *kind).collect();
    let answer = post(request(cutover, &types, n, seed)).await?;
    counts(connector, &answer, objects)
}

/// The counts by object in the sandbox's answer; `objects` pairs each object's name with its
/// type as the sandbox names it. An object the sandbox did not change is an error.
pub fn counts(connector: &str, answer: &Value, objects: &[(&str, &str)]) -> Result<BTreeMap<String, DeltaCounts>, ConnectorError> {
    let mut out = BTreeMap::new();
    for (name, kind) in objects {
        let done = &answer["objects"][*kind];
        if !done.is_object() {
            return Err(ConnectorError::new(connector, format!("the sandbox made no changes to `{kind}`"))
                .object(name)
                .hint("the sandbox lets users create only records of the object types it serves"));
        }
        let len = |k: &str| done[k].as_array().map_or(0, |a| a.len() as u64);
        out.insert(
            name.to_string(),
            DeltaCounts {
                created: len("created"),
                changed: len("updated"),
                deleted: len("archived"),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts are the lengths of the id lists the sandbox answers; a missing object is named.
    #[test]
    fn counts_from_the_answer() {
        let answer = json!({"objects": {"Contact": {"created": ["a", "b"], "updated": ["c"], "archived": []}}});
        let counts = counts("crm", &answer, &[("contacts", "Contact")]).unwrap();
        assert_eq!(
            counts["contacts"],
            DeltaCounts {
                created: 2,
                changed: 1,
                deleted: 0
            }
        );
        let e = super::counts("crm", &answer, &[("deals", "Opportunity")]).unwrap_err();
        assert!(e.message.contains("`Opportunity`") && e.object.as_deref() == Some("deals"), "{e}");
        assert_eq!(request(None, &["Contact"], 3, 7)["update"], 3);
    }
}
