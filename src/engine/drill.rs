//! Drills: a full rehearsal. Run the backup phase; simulate the migration (copy the old CRM into
//! the new one, optionally damaging the old one as a bad migration tool would); take the new CRM's
//! baseline; simulate user traffic after cutover (created, changed and deleted records); run the
//! `immediate` phase; then prove the old CRM equals its snapshot, the delta holds exactly the
//! simulated traffic, the notifications were delivered, and the rollback beat the RTO.

use std::collections::{BTreeMap, HashSet};

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;

use super::{Context, EngineError, RunStatus, RunSummary, execute_phase};
use crate::connectors::{ApplyMode, Connector, DrillWrites};

use crate::generate::Rng;
use crate::playbook::{Action, Playbook};
use crate::record::{Record, format_time};
use crate::store::manifest::{DeltaCounts, SnapshotKind};

/// How a drill simulates the cutover.
#[derive(Clone, Debug)]
pub struct DrillOptions {
    /// Records created, changed and deleted per object in the new CRM.
    pub traffic: u64,
    /// Also change and delete records in the old CRM during the migration.
    pub damage: bool,
    pub seed: u64,
}

/// One proof and whether it held.
#[derive(Clone, Debug, Serialize)]
pub struct Proof {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct DrillReport {
    pub phases: Vec<RunSummary>,
    pub setup_ms: u128,
    pub rollback_ms: u128,
    pub total_ms: u128,
    pub rto_ms: Option<u128>,
    pub traffic: BTreeMap<String, DeltaCounts>,
    /// How the migration and the users were simulated, where it is not the usual way.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub proofs: Vec<Proof>,
}

impl DrillReport {
    pub fn passed(&self) -> bool {
        self.proofs.iter().all(|p| p.ok)
    }
}

/// The old CRM (restored to) and the new CRM (exported from) of the `immediate` phase.
pub fn roles(playbook: &Playbook) -> Option<(String, String)> {
    let steps = playbook.phases.get("immediate")?;
    let old = steps.iter().find_map(|s| {
        if let Action::Restore(a) = &s.action {
            Some(a.to.clone())
        } else {
            None
        }
    })?;
    let new = steps.iter().find_map(|s| {
        if let Action::ExportDelta(a) = &s.action {
            Some(a.from.clone())
        } else {
            None
        }
    })?;
    Some((old, new))
}

async fn all_records(connector: &dyn Connector, object: &str) -> Result<Vec<Record>, EngineError> {
    let mut pages = connector.export(object, None);
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        out.extend(page?);
    }
    Ok(out)
}

/// Objects with no other object pointing at them (safe to delete from), per the snapshot schema.
fn leaves(schema: &Value, objects: &[String]) -> Vec<String> {
    let referenced: HashSet<String> = objects
        .iter()
        .flat_map(|o| schema["objects"][o]["foreign_keys"].as_array().cloned().unwrap_or_default())
        .filter_map(|fk| fk["table"].as_str().map(str::to_string))
        .collect();
    objects
        .iter()
        .filter(|o| !referenced.contains(schema["objects"][o.as_str()]["table"].as_str().unwrap_or(o)))
        .cloned()
        .collect()
}

/// A text field worth editing: not the id, not the modified column, not a reference, and not a
/// decimal, date or time kept as a string (a typed database column would refuse free text).
fn editable_field(record: &Record, id: &str, modified: Option<&str>) -> Option<String> {
    let free_text = |v: &Value| {
        v.as_str().is_some_and(|s| {
            s.parse::<f64>().is_err() && crate::record::parse_time(s).is_none() && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_err()
        })
    };
    record
        .fields
        .iter()
        .find(|(k, v)| free_text(v) && k.as_str() != id && Some(k.as_str()) != modified && !k.ends_with("_id") && !k.ends_with("_at"))
        .map(|(k, _)| k.clone())
}

/// Copies every object of `from` into `to` (parents first), removing what `to` has extra.
async fn migrate(from: &dyn Connector, to: &dyn Connector, order: &[String]) -> Result<(), EngineError> {
    for object in order {
        let records = all_records(from, object).await?;
        for part in records.chunks(1000) {
            to.apply(object, part, ApplyMode::Upsert).await?;
        }
    }
    for object in order.iter().rev() {
        let keep: HashSet<String> = all_records(from, object).await?.into_iter().map(|r| r.id).collect();
        let extra: Vec<String> = all_records(to, object)
            .await?
            .into_iter()
            .map(|r| r.id)
            .filter(|id| !keep.contains(id))
            .collect();
        to.delete(object, &extra).await?;
    }
    Ok(())
}

/// Users at work in `crm` after cutover: per object, `n` records created and `n` changed; `n`
/// deleted from objects nothing refers to. Returns the counts by kind.
async fn traffic(
    playbook: &Playbook,
    name: &str,
    crm: &dyn Connector,
    order: &[String],
    leaves: &[String],
    n: u64,
    rng: &mut Rng,
) -> Result<BTreeMap<String, DeltaCounts>, EngineError> {
    let config = playbook
        .connector(name)
        .ok_or_else(|| EngineError::Internal(format!("no connector `{name}`")))?;
    let now = format_time(&chrono::Utc::now());
    let mut counts = BTreeMap::new();
    for object in order {
        let mapping = config
            .objects
            .iter()
            .find(|(o, _)| o == object)
            .map(|(_, m)| m.clone())
            .unwrap_or_default();
        let id_field = mapping.id.clone().unwrap_or_else(|| "id".into());
        let modified = mapping.modified.clone();
        let records = all_records(crm, object).await?;
        let mut c = DeltaCounts::default();
        if records.is_empty() {
            counts.insert(object.clone(), c);
            continue;
        }
        let max_id = records.iter().filter_map(|r| r.id.parse::<i64>().ok()).max().unwrap_or(0);
        let mut writes = Vec::new();
        for i in 0..n {
            let mut created = records[rng.below(records.len() as u64) as usize].clone();
            let id = (max_id + 1 + i as i64).to_string();
            let numeric = created.fields.get(&id_field).is_some_and(Value::is_number);
            created.fields.insert(
                id_field.clone(),
                if numeric {
                    Value::from(max_id + 1 + i as i64)
                } else {
                    Value::String(id.clone())
                },
            );
            created.id = id;
            if let Some(m) = &modified {
                created.fields.insert(m.clone(), Value::String(now.clone()));
            }
            writes.push(created);
            c.created += 1;
        }
        let mut picked = HashSet::new();
        for _ in 0..n.min(records.len() as u64 / 2) {
            let mut index = rng.below(records.len() as u64) as usize;
            while !picked.insert(index) {
                index = (index + 1) % records.len();
            }
            let mut changed = records[index].clone();
            if let Some(field) = editable_field(&changed, &id_field, modified.as_deref()) {
                let text = changed.fields[&field].as_str().unwrap_or("").to_string();
                changed
                    .fields
                    .insert(field, Value::String(format!("{text} (edited after cutover)")));
            }
            if let Some(m) = &modified {
                changed.fields.insert(m.clone(), Value::String(now.clone()));
            }
            writes.push(changed);
            c.changed += 1;
        }
        crm.apply(object, &writes, ApplyMode::Upsert).await?;
        if leaves.contains(object) {
            let doomed: Vec<String> = records
                .iter()
                .enumerate()
                .filter(|(i, _)| !picked.contains(i))
                .map(|(_, r)| r.id.clone())
                .take(n as usize)
                .collect();
            c.deleted = crm.delete(object, &doomed).await?;
        }
        counts.insert(object.clone(), c);
    }
    Ok(counts)
}

/// Changes and deletes a few records of the old CRM, as a migration tool gone wrong would.
async fn damage(crm: &dyn Connector, order: &[String], leaves: &[String], rng: &mut Rng) -> Result<(), EngineError> {
    for object in order {
        let records = all_records(crm, object).await?;
        if records.len() < 4 {
            continue;
        }
        let mut changed = records[rng.below(records.len() as u64) as usize].clone();
        if let Some(field) = editable_field(&changed, "id", None) {
            changed.fields.insert(field, Value::String("damaged by the migration".into()));
            crm.apply(object, &[changed], ApplyMode::Upsert).await?;
        }
        if leaves.contains(object) {
            crm.delete(object, &[records[0].id.clone(), records[1].id.clone()]).await?;
        }
    }
    Ok(())
}

/// Runs the whole drill; `make_context` gives each run its own context (and run id).
pub async fn run(playbook: &Playbook, options: &DrillOptions, make_context: &dyn Fn() -> Context) -> Result<DrillReport, EngineError> {
    let started = Instant::now();
    let (old_name, new_name) = roles(playbook).ok_or_else(|| EngineError::Proof {
        message: "a drill needs an `immediate` phase with an `export_delta` step (from the new CRM) and a `restore` step (to the old CRM)"
            .into(),
        hint: "`rollback init` writes a playbook with such a phase".into(),
    })?;
    let mut report = DrillReport {
        phases: vec![],
        setup_ms: 0,
        rollback_ms: 0,
        total_ms: 0,
        rto_ms: playbook.rto.map(|r| r.as_millis()),
        traffic: BTreeMap::new(),
        notes: vec![],
        proofs: vec![],
    };

    // Before anything is frozen: can the drill write to the new CRM at all?
    let drill_writes = {
        let preflight = make_context();
        let new = preflight.connector(&new_name).await?;
        match new.drill_writes() {
            DrillWrites::No => {
                let kind = new.kind().name();
                return Err(crate::connectors::ConnectorError::new(
                    &new_name,
                    format!("a drill copies the old CRM into the new CRM and plays its users there, and a `{kind}` CRM gives new records ids of its own"),
                )
                .hint(format!(
                    "rehearse on the tool's own sandbox: give `{new_name}` `sandbox: {{ flavor: {kind} }}` in the environment the drill runs in"
                ))
                .bad_input()
                .into());
            }
            other => other,
        }
    };

    let backup_ctx = make_context();
    let backup = execute_phase(&backup_ctx, "backup").await?;
    let backup_ok = backup.status == RunStatus::Succeeded;
    report.phases.push(backup);
    if !backup_ok {
        report.proofs.push(Proof {
            name: "backup phase".into(),
            ok: false,
            detail: "the backup phase failed; see its steps".into(),
        });
        report.total_ms = started.elapsed().as_millis();
        return Ok(report);
    }

    let setup_started = Instant::now();
    let setup = make_context();
    let old = setup.connector(&old_name).await?;
    let new = setup.connector(&new_name).await?;
    let snapshot = setup.store.resolve("latest", Some(&old_name))?;
    let objects: Vec<String> = snapshot.objects.keys().filter(|o| new.objects().contains(o)).cloned().collect();
    let order = super::restore::parent_first(&objects, &snapshot, None);
    let leaf_objects = leaves(&snapshot.schema, &objects);
    let mut rng = Rng::new(options.seed);
    if drill_writes == DrillWrites::ById {
        migrate(old.as_ref(), new.as_ref(), &order).await?;
    } else {
        report.notes.push(format!(
            "`{new_name}` is a sandbox that gives records ids of its own: its records stand in for the migrated ones, and its admin endpoint played the users"
        ));
    }
    if options.damage {
        damage(old.as_ref(), &order, &leaf_objects, &mut rng).await?;
    }
    setup
        .journal
        .start_run(&crate::journal::NewRun {
            id: &setup.run_id,
            phase: "drill:baseline",
            environment: playbook.environment.as_deref(),
            playbook: &playbook.path.display().to_string(),
            playbook_hash: &playbook.hash.to_string(),
            dry_run: false,
        })
        .await?;
    super::backup::snapshot(&setup, &new, &objects, SnapshotKind::Full, None).await?;
    setup.journal.finish_run(&setup.run_id, "succeeded", None, None).await?;
    report.traffic = if drill_writes == DrillWrites::ById {
        traffic(playbook, &new_name, new.as_ref(), &order, &leaf_objects, options.traffic, &mut rng).await?
    } else {
        new.sandbox_traffic(playbook.cutover, &order, options.traffic, options.seed).await?
    };
    report.setup_ms = setup_started.elapsed().as_millis();

    let rollback_ctx = make_context();
    let rollback_started = Instant::now();
    let immediate = execute_phase(&rollback_ctx, "immediate").await?;
    report.rollback_ms = rollback_started.elapsed().as_millis();
    let immediate_ok = immediate.status == RunStatus::Succeeded;
    report.phases.push(immediate.clone());
    report.proofs.push(Proof {
        name: "immediate phase".into(),
        ok: immediate_ok,
        detail: immediate
            .error
            .clone()
            .unwrap_or_else(|| format!("{} steps succeeded", immediate.steps.len())),
    });

    // The old CRM equals its snapshot.
    let live = super::verify::compare_live(&rollback_ctx, old.as_ref(), &snapshot, &objects).await?;
    let differences = super::verify::describe_diffs(&live);
    report.proofs.push(Proof {
        name: format!("`{old_name}` equals its snapshot"),
        ok: differences.is_empty(),
        detail: if differences.is_empty() {
            format!("snapshot {} {}", snapshot.id, snapshot.root_digest)
        } else {
            differences.join("; ")
        },
    });

    // The delta holds exactly the simulated traffic.
    let delta = rollback_ctx.store.resolve("latest-delta", Some(&new_name));
    let (ok, detail) = match &delta {
        Ok(d) if d.run_id.as_deref() == Some(rollback_ctx.run_id.as_str()) => {
            let mut mismatches = Vec::new();
            for (object, expected) in &report.traffic {
                let got = d.objects.get(object).and_then(|e| e.delta.clone()).unwrap_or_default();
                if &got != expected {
                    mismatches.push(format!(
                        "{object}: delta has +{} ~{} -{}, traffic was +{} ~{} -{}",
                        got.created, got.changed, got.deleted, expected.created, expected.changed, expected.deleted
                    ));
                }
            }
            (
                mismatches.is_empty(),
                if mismatches.is_empty() {
                    format!("delta {} matches the traffic", d.id)
                } else {
                    mismatches.join("; ")
                },
            )
        }
        _ => (false, "the immediate phase wrote no delta".to_string()),
    };
    report.proofs.push(Proof {
        name: "delta holds the simulated traffic".into(),
        ok,
        detail,
    });

    // Notifications were delivered.
    let notify_steps: Vec<_> = immediate.steps.iter().filter(|s| s.action == "notify" && !s.on_failure).collect();
    let delivered = notify_steps.iter().all(|s| s.status == "succeeded");
    report.proofs.push(Proof {
        name: "notifications delivered".into(),
        ok: delivered,
        detail: if notify_steps.is_empty() {
            "the immediate phase sends none".into()
        } else {
            notify_steps
                .iter()
                .filter_map(|s| s.summary.clone().or(s.error.clone()))
                .collect::<Vec<_>>()
                .join("; ")
        },
    });

    if let Some(rto) = playbook.rto {
        let within = Duration::from_millis(report.rollback_ms as u64) <= rto;
        report.proofs.push(Proof {
            name: "rollback within the RTO".into(),
            ok: within,
            detail: format!(
                "{} against {}",
                crate::playbook::duration::format_duration(Duration::from_millis(report.rollback_ms as u64)),
                crate::playbook::duration::format_duration(rto)
            ),
        });
    }
    report.total_ms = started.elapsed().as_millis();
    Ok(report)
}
