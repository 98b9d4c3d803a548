//! `plan`: what a phase would do, with read-only preflight checks, estimates, and a fingerprint
//! of what it saw so that `execute --plan` can refuse a plan that reality has moved past.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Context, EngineError};
use crate::playbook::{Action, Step};
use crate::store::verify::verify_snapshot;

/// One check of a planned step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlannedStep {
    pub name: String,
    pub action: String,
    pub connector: Option<String>,
    /// Object → records now.
    pub objects: BTreeMap<String, u64>,
    pub estimated_seconds: f64,
    pub checks: Vec<Check>,
}

/// What a connector's object looked like when planned.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ObjectState {
    pub count: u64,
    pub newest_modified: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Fingerprint {
    pub digest: String,
    pub playbook_hash: String,
    /// Connector → its latest full snapshot id.
    pub snapshots: BTreeMap<String, Option<String>>,
    /// `connector.object` → state.
    pub objects: BTreeMap<String, ObjectState>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub playbook: String,
    pub phase: String,
    pub environment: Option<String>,
    pub steps: Vec<PlannedStep>,
    pub estimated_seconds: f64,
    pub ready: bool,
    pub problems: Vec<String>,
    pub fingerprint: Fingerprint,
}

/// Records per second assumed for estimates, by action (measured on the development machine).
fn rate(action: &str) -> f64 {
    match action {
        "backup" | "export_delta" => 300_000.0,
        "restore" => 150_000.0,
        "verify" => 500_000.0,
        _ => f64::INFINITY,
    }
}

fn step_connector(step: &Step) -> Option<&str> {
    match &step.action {
        Action::Backup(a) => Some(&a.from),
        Action::Verify(a) => a.connector.as_deref(),
        Action::Freeze(a) | Action::Unfreeze(a) => Some(&a.connector),
        Action::ExportDelta(a) => Some(&a.from),
        Action::Restore(a) => Some(&a.to),
        _ => None,
    }
}

fn check(checks: &mut Vec<Check>, name: &str, result: Result<String, String>) {
    let (ok, detail) = match result {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    checks.push(Check {
        name: name.into(),
        ok,
        detail,
    });
}

/// Plans `phase` with read-only preflight checks.
pub async fn plan(ctx: &Context, phase: &str) -> Result<Plan, EngineError> {
    let steps = ctx.playbook.phases.get(phase).cloned().unwrap_or_default();
    let mut planned = Vec::new();
    let mut states: BTreeMap<String, ObjectState> = BTreeMap::new();
    let mut snapshots: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for step in &steps {
        let mut checks = Vec::new();
        let mut objects = BTreeMap::new();
        let connector_name = step_connector(step).map(str::to_string);
        if let Some(name) = &connector_name {
            let missing = ctx.playbook.missing_secrets(&[name.as_str()]);
            check(
                &mut checks,
                "credentials",
                if missing.is_empty() {
                    Ok("present".into())
                } else {
                    Err(missing.join("; "))
                },
            );
            match ctx.connector(name).await {
                Err(e) => check(&mut checks, "reachable", Err(e.to_string())),
                Ok(connector) => {
                    check(
                        &mut checks,
                        "reachable",
                        connector.health().await.map(|_| "yes".to_string()).map_err(|e| e.to_string()),
                    );
                    let caps = connector.capabilities();
                    let needed = match &step.action {
                        Action::Freeze(_) | Action::Unfreeze(_) => Some(("freeze", caps.freeze)),
                        Action::Restore(_) => Some(("write", caps.write)),
                        _ => Some(("read", caps.read)),
                    };
                    if let Some((cap, has)) = needed {
                        check(
                            &mut checks,
                            "capabilities",
                            if has {
                                Ok(format!("can {cap}"))
                            } else {
                                Err(format!("connector `{name}` cannot {cap}"))
                            },
                        );
                        if has && let Some(held) = connector.privileges(cap).await {
                            check(&mut checks, "privileges", held);
                        }
                    }
                    // Counts are full scans: each connector is inspected once, not once per step.
                    if !snapshots.contains_key(name) {
                        for object in connector.objects() {
                            let count = connector.count(&object).await.unwrap_or(0);
                            let newest = connector.newest_modified(&object).await.map(|t| crate::record::format_time(&t));
                            states.insert(
                                format!("{name}.{object}"),
                                ObjectState {
                                    count,
                                    newest_modified: newest,
                                },
                            );
                        }
                    }
                    for object in connector.objects() {
                        if let Some(state) = states.get(&format!("{name}.{object}")) {
                            objects.insert(object, state.count);
                        }
                    }
                    let latest = ctx.store.resolve("latest", Some(name)).ok().map(|m| m.id);
                    snapshots.insert(name.clone(), latest);
                }
            }
        }
        match &step.action {
            Action::Restore(_) | Action::Verify(_) => {
                let (reference, scope) = match &step.action {
                    Action::Restore(a) => (a.snapshot.clone().unwrap_or_else(|| "latest".into()), Some(a.to.clone())),
                    Action::Verify(a) => (
                        a.against.clone().or(a.snapshot.clone()).unwrap_or_else(|| "latest".into()),
                        a.connector.clone(),
                    ),
                    _ => unreachable!(),
                };
                let scope = if reference.starts_with("latest") { scope } else { None };
                match ctx.store.resolve(&reference, scope.as_deref()) {
                    Err(e) => check(&mut checks, "snapshot", Err(e.to_string().lines().next().unwrap_or("").to_string())),
                    Ok(m) => {
                        let report = verify_snapshot(&ctx.store, &m, ctx.threads, false);
                        check(
                            &mut checks,
                            "snapshot",
                            if report.findings.is_empty() {
                                Ok(format!("{} present and verified ({} records)", m.id, report.records))
                            } else {
                                Err(format!("{} is damaged: {}", m.id, report.findings[0]))
                            },
                        );
                    }
                }
            }
            Action::Freeze(a) | Action::Unfreeze(a) => {
                let open = ctx.journal.open_freezes(Some(&a.connector)).await?;
                let state = match open.last() {
                    // A freeze step would refuse it; an unfreeze step asks the operator about it.
                    Some(f) if super::freeze::is_pending(&f.receipt) && matches!(step.action, Action::Freeze(_)) => Err(format!(
                        "run {} stopped while freezing it (since {}), before it recorded what it changed: check it by hand, then run an `unfreeze` step",
                        f.run_id, f.frozen_at
                    )),
                    Some(f) if super::freeze::is_pending(&f.receipt) => Ok(format!(
                        "partly frozen, maybe: run {} stopped while freezing it (since {}); the unfreeze asks you to re-open it by hand",
                        f.run_id, f.frozen_at
                    )),
                    Some(f) => Ok(format!("frozen by run {} since {}", f.run_id, f.frozen_at)),
                    None => Ok("not frozen".into()),
                };
                check(&mut checks, "freeze state", state);
            }
            Action::Notify(a) => {
                for channel in &a.channels {
                    let url = ctx.playbook.channels.get(channel).and_then(|c| c.url.clone());
                    let resolved = url.map(|u| crate::playbook::secret::Secret(u).resolve(&ctx.playbook.dir));
                    check(
                        &mut checks,
                        &format!("channel {channel}"),
                        match resolved {
                            Some(Err(e)) => Err(e.to_string().lines().next().unwrap_or("").to_string()),
                            _ => Ok("configured".into()),
                        },
                    );
                }
            }
            Action::Check(_) => check(
                &mut checks,
                "available",
                Err("`check` steps are not available in this build yet".into()),
            ),
            _ => {}
        }
        for c in checks.iter().filter(|c| !c.ok) {
            problems.push(format!("step `{}`: {}: {}", step.name, c.name, c.detail));
        }
        let records: u64 = objects.values().sum();
        let estimated_seconds = if matches!(step.action, Action::Notify(_)) {
            1.0
        } else {
            0.1 + records as f64 / rate(step.action.keyword())
        };
        planned.push(PlannedStep {
            name: step.name.clone(),
            action: step.action.keyword().into(),
            connector: connector_name,
            objects,
            estimated_seconds,
            checks,
        });
    }
    let fingerprint = fingerprint(&ctx.playbook.hash.to_string(), snapshots, states);
    Ok(Plan {
        playbook: ctx.playbook.name.clone(),
        phase: phase.into(),
        environment: ctx.playbook.environment.clone(),
        estimated_seconds: planned.iter().map(|s| s.estimated_seconds).sum(),
        ready: problems.is_empty(),
        problems,
        steps: planned,
        fingerprint,
    })
}

fn fingerprint(playbook_hash: &str, snapshots: BTreeMap<String, Option<String>>, objects: BTreeMap<String, ObjectState>) -> Fingerprint {
    let body = serde_json::json!({"playbook_hash": playbook_hash, "snapshots": snapshots, "objects": objects});
    let digest = crate::digest::sha256(body.to_string().as_bytes()).to_string();
    Fingerprint {
        digest,
        playbook_hash: playbook_hash.into(),
        snapshots,
        objects,
    }
}

/// What changed between a saved plan's fingerprint and now; empty when it still holds.
pub fn changes(saved: &Fingerprint, now: &Fingerprint) -> Vec<String> {
    let mut out = Vec::new();
    if saved.playbook_hash != now.playbook_hash {
        out.push("the playbook changed".to_string());
    }
    for (connector, id) in &now.snapshots {
        let before = saved.snapshots.get(connector).cloned().flatten();
        if &before != id {
            out.push(format!(
                "latest snapshot of `{connector}`: {} → {}",
                before.as_deref().unwrap_or("none"),
                id.as_deref().unwrap_or("none")
            ));
        }
    }
    for (key, state) in &now.objects {
        match saved.objects.get(key) {
            None => out.push(format!("`{key}` was not in the plan")),
            Some(before) if before.count != state.count => out.push(format!("`{key}` records: {} → {}", before.count, state.count)),
            Some(before) if before.newest_modified != state.newest_modified => out.push(format!(
                "`{key}` newest change: {} → {}",
                before.newest_modified.as_deref().unwrap_or("none"),
                state.newest_modified.as_deref().unwrap_or("none")
            )),
            _ => {}
        }
    }
    out
}
