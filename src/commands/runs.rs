//! `rollback runs list | show RUN`.

use serde_json::json;

use crate::cli::{Global, OutputFormat, RunsArgs, RunsCommand};

pub async fn run(global: &Global, args: &RunsArgs) -> anyhow::Result<u8> {
    let playbook = super::load_playbook(&global.playbook, None)?;
    let (_store, journal) = super::open_store(&playbook).await?;
    let json = args.format == OutputFormat::Json;
    match args.command.as_ref().unwrap_or(&RunsCommand::List) {
        RunsCommand::List => {
            let runs = journal.runs().await?;
            if json {
                super::print_json(&runs);
            } else if runs.is_empty() {
                eprintln!("no runs yet\nhint: `rollback execute --phase backup` starts one");
            } else {
                println!(
                    "{:<16}  {:<12}  {:<11}  {:<20}  {:<20}  env",
                    "run", "phase", "status", "started", "finished"
                );
                for r in &runs {
                    println!(
                        "{:<16}  {:<12}  {:<11}  {:<20}  {:<20}  {}",
                        r.id,
                        r.phase,
                        r.status,
                        r.started_at,
                        r.finished_at.as_deref().unwrap_or("-"),
                        r.environment.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        RunsCommand::Show { run } => {
            let r = journal.run(run).await?;
            let steps = journal.steps(&r.id).await?;
            if json {
                let steps: Vec<_> = steps
                    .iter()
                    .map(|s| {
                        let mut v = serde_json::to_value(s).unwrap_or_default();
                        v["detail"] = s
                            .detail
                            .as_deref()
                            .and_then(|d| serde_json::from_str(d).ok())
                            .unwrap_or(serde_json::Value::Null);
                        v
                    })
                    .collect();
                super::print_json(&json!({"run": r, "steps": steps}));
            } else {
                println!("run       {}", r.id);
                println!(
                    "phase     {}{}",
                    r.phase,
                    r.environment.as_deref().map(|e| format!(" (env {e})")).unwrap_or_default()
                );
                println!("status    {}", r.status);
                println!("playbook  {} ({})", r.playbook, r.playbook_hash);
                println!("started   {} on {} (pid {})", r.started_at, r.host, r.pid);
                println!("finished  {}", r.finished_at.as_deref().unwrap_or("-"));
                if let Some(peak) = r.peak_rss_bytes {
                    println!("peak mem  {}", super::human_bytes(peak as u64));
                }
                if let Some(e) = &r.error {
                    println!("error     {}", e.lines().next().unwrap_or(""));
                }
                println!("steps:");
                for s in &steps {
                    let extra = if s.on_failure { " (on_failure)" } else { "" };
                    println!(
                        "  {:>2}. {:<9} {:<28} {:>8} ms  {}{extra}",
                        s.idx + 1,
                        s.status,
                        s.name,
                        s.duration_ms.unwrap_or(0),
                        s.summary
                            .as_deref()
                            .or(s.error.as_deref().and_then(|e| e.lines().next()))
                            .unwrap_or("")
                    );
                }
            }
        }
    }
    Ok(super::OK)
}
