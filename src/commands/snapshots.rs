//! `rollback snapshots list | show ID | diff A B`.

use serde_json::json;

use crate::cli::{Global, OutputFormat, SnapshotsArgs, SnapshotsCommand};
use crate::diff::diff;
use crate::store::verify::preview;

pub async fn run(global: &Global, args: &SnapshotsArgs) -> anyhow::Result<u8> {
    let playbook = super::load_playbook(&global.playbook, None)?;
    let (store, _journal) = super::open_store(&playbook).await?;
    let json = args.format == OutputFormat::Json;
    match args.command.as_ref().unwrap_or(&SnapshotsCommand::List) {
        SnapshotsCommand::List => {
            let manifests = store.list()?;
            if json {
                let rows: Vec<_> = manifests
                    .iter()
                    .map(|m| json!({"id": m.id, "kind": m.kind, "connector": m.connector, "created_at": m.created_at, "records": m.total_records(), "stored_bytes": m.stored_bytes(), "root_digest": m.root_digest}))
                    .collect();
                super::print_json(&rows);
            } else if manifests.is_empty() {
                eprintln!("no snapshots yet\nhint: run a phase with a `backup` step (`rollback execute --phase backup`)");
            } else {
                println!(
                    "{:<16}  {:<5}  {:<12}  {:<20}  {:>9}  {:>9}  root digest",
                    "id", "kind", "connector", "created", "records", "stored"
                );
                for m in &manifests {
                    let kind = serde_json::to_value(m.kind)?.as_str().unwrap_or("").to_string();
                    println!(
                        "{:<16}  {:<5}  {:<12}  {:<20}  {:>9}  {:>9}  {}",
                        m.id,
                        kind,
                        m.connector,
                        m.created_at.format("%Y-%m-%d %H:%M:%S"),
                        m.total_records(),
                        super::human_bytes(m.stored_bytes()),
                        m.root_digest
                    );
                }
            }
        }
        SnapshotsCommand::Show { id } => {
            let m = store.resolve(id, None)?;
            if json {
                let mut value = serde_json::to_value(&m)?;
                if let Some(objects) = value.get_mut("objects").and_then(|o| o.as_object_mut()) {
                    for o in objects.values_mut() {
                        let n = o.get("chunks").and_then(|c| c.as_array()).map(Vec::len).unwrap_or(0);
                        o["chunks"] = json!(n);
                    }
                }
                super::print_json(&value);
            } else {
                let kind = serde_json::to_value(m.kind)?.as_str().unwrap_or("").to_string();
                println!("snapshot    {}", m.id);
                println!("kind        {kind}");
                println!("connector   {} ({})", m.connector, m.connector_type);
                println!("created     {}", crate::record::format_time(&m.created_at));
                if let Some(since) = &m.since {
                    println!("since       {}", crate::record::format_time(since));
                }
                if let Some(run) = &m.run_id {
                    println!("run         {run}");
                }
                println!("root digest {}", m.root_digest);
                if let Some(bookmark) = &m.bookmark {
                    println!("bookmark    {}", crate::record::format_time(bookmark));
                }
                println!("objects:");
                for (name, o) in &m.objects {
                    println!(
                        "  {name:<14} {:>9} records ({} deleted)  {:>9} stored  {} chunks  {}",
                        o.count,
                        o.deleted,
                        super::human_bytes(o.stored_bytes),
                        o.chunks.len(),
                        o.digest
                    );
                    if let Some(d) = &o.delta {
                        println!("  {:<14} created {}, changed {}, deleted {}", "", d.created, d.changed, d.deleted);
                    }
                }
            }
        }
        SnapshotsCommand::Diff { a, b } => {
            let (ma, mb) = (store.resolve(a, None)?, store.resolve(b, None)?);
            let mut names: Vec<&String> = ma.objects.keys().chain(mb.objects.keys()).collect();
            names.sort();
            names.dedup();
            let mut out = serde_json::Map::new();
            let mut differs = false;
            if !json {
                println!("{} → {}", ma.id, mb.id);
            }
            for name in names {
                let pa = store.object_pairs(&ma, name)?;
                let pb = store.object_pairs(&mb, name)?;
                let d = diff(&pa, &pb);
                differs |= !d.is_empty();
                if !json {
                    println!(
                        "  {name}: {} added, {} changed, {} deleted",
                        d.added.len(),
                        d.changed.len(),
                        d.deleted.len()
                    );
                    for (kind, ids) in [("added", &d.added), ("changed", &d.changed), ("deleted", &d.deleted)] {
                        if !ids.is_empty() {
                            println!("    {kind}: {}", preview(ids));
                        }
                    }
                }
                out.insert(name.clone(), serde_json::to_value(&d)?);
            }
            if json {
                super::print_json(&json!({"from": ma.id, "to": mb.id, "objects": out}));
            } else if !differs {
                println!("  no differences");
            }
        }
    }
    Ok(super::OK)
}
