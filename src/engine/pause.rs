//! The `pause` step: print instructions and wait until the operator types the playbook's name
//! (`--yes` confirms at once, for CI). Who confirmed and when goes to the journal.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::{Value, json};

use super::{Context, EngineError};

/// Asks the operator to confirm `message`; returns who confirmed, how and when.
pub async fn confirm(ctx: &Context, message: &str) -> Result<Value, EngineError> {
    let who = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    if ctx.yes {
        return Ok(json!({"confirmed_by": who, "how": "--yes", "at": crate::journal::now()}));
    }
    let name = ctx.playbook.name.clone();
    let text = message.to_string();
    let answer = tokio::task::spawn_blocking(move || {
        let stdin = std::io::stdin();
        let mut stderr = std::io::stderr();
        let _ = writeln!(
            stderr,
            "\n== PAUSED ==\n{text}\nType the playbook name (`{name}`) to continue, or press Ctrl-C to stop."
        );
        for _ in 0..3 {
            let _ = write!(stderr, "> ");
            let _ = stderr.flush();
            let mut line = String::new();
            match stdin.lock().read_line(&mut line) {
                Ok(0) | Err(_) => return Err("no operator to confirm: standard input is closed"),
                Ok(_) if line.trim() == name => return Ok(()),
                Ok(_) => {
                    let _ = writeln!(stderr, "that is not `{name}`; try again");
                }
            }
        }
        Err("the playbook name was not typed after three tries")
    })
    .await
    .map_err(|e| EngineError::Internal(e.to_string()))?;
    match answer {
        Ok(()) => Ok(
            json!({"confirmed_by": who, "how": if std::io::stdin().is_terminal() { "typed at a terminal" } else { "typed on standard input" }, "at": crate::journal::now()}),
        ),
        Err(why) => Err(EngineError::Proof {
            message: format!("pause not confirmed: {why}"),
            hint: "run it at a terminal and type the playbook name, or pass `--yes` (CI)".into(),
        }),
    }
}

pub async fn run(ctx: &Context, args: &crate::playbook::model::PauseArgs) -> Result<super::StepOutcome, EngineError> {
    let message = args
        .message
        .clone()
        .unwrap_or_else(|| "The rollback is paused for an operator's check.".into());
    let receipt = confirm(ctx, &message).await?;
    Ok(super::StepOutcome {
        summary: format!(
            "confirmed by {} ({})",
            receipt["confirmed_by"].as_str().unwrap_or("?"),
            receipt["how"].as_str().unwrap_or("?")
        ),
        detail: json!({"message": message, "confirmation": receipt}),
    })
}
