//! `rollback status`: what is frozen now, by which run, since when; and the store lock.

use serde_json::json;

use crate::cli::{Global, OutputFormat, StatusArgs};
use crate::journal::is_stale;

pub async fn run(global: &Global, args: &StatusArgs) -> anyhow::Result<u8> {
    let playbook = super::load_playbook(&global.playbook, None)?;
    let (_store, journal) = super::open_store(&playbook).await?;
    let freezes = journal.open_freezes(None).await?;
    let lock = journal.lock_holder().await?;
    if args.format == OutputFormat::Json {
        let frozen: Vec<_> = freezes
            .iter()
            .map(|f| json!({"connector": f.connector, "run": f.run_id, "since": f.frozen_at, "receipt": serde_json::from_str::<serde_json::Value>(&f.receipt).ok()}))
            .collect();
        let lock = lock.as_ref().map(|l| json!({"holder": l, "stale": is_stale(l)}));
        super::print_json(&json!({"frozen": frozen, "lock": lock}));
        return Ok(super::OK);
    }
    if freezes.is_empty() {
        println!("nothing is frozen by this tool");
    }
    for f in &freezes {
        let receipt = serde_json::from_str::<serde_json::Value>(&f.receipt).unwrap_or_default();
        let method = receipt["method"].as_str().unwrap_or_default();
        if receipt["pending"] == true {
            println!(
                "FROZEN? connector `{}`: run {} stopped while freezing it (since {}, {method}) before it recorded what it changed; check it by hand, then run an `unfreeze` step",
                f.connector, f.run_id, f.frozen_at
            );
        } else {
            println!(
                "FROZEN  connector `{}` by run {} since {} ({method})",
                f.connector, f.run_id, f.frozen_at
            );
        }
    }
    match lock {
        Some(l) if is_stale(&l) => println!("store lock: stale, left by {l}\nhint: `rollback execute ... --force-unlock` clears it"),
        Some(l) => println!("store lock: held by {l}"),
        None => println!("store lock: free"),
    }
    Ok(super::OK)
}
