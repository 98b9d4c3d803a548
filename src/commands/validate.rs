//! `rollback validate`: parse and check the playbook.

use std::path::Path;

pub async fn run(path: &Path) -> anyhow::Result<u8> {
    let playbook = super::load_playbook(path, None)?;
    let phases: Vec<String> = playbook
        .phases
        .iter()
        .map(|(name, steps)| format!("{name} ({} steps)", steps.len()))
        .collect();
    println!(
        "playbook `{}` is valid: {} connectors, phases: {}{}",
        playbook.name,
        playbook.connectors.len(),
        phases.join(", "),
        if playbook.environments.is_empty() {
            String::new()
        } else {
            format!(", environments: {}", playbook.environments.join(", "))
        }
    );
    Ok(super::OK)
}
