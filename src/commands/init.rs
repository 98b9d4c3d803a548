//! `rollback init [DIR]`: a starter playbook plus sandbox SQLite CRMs, so the next command works.

use anyhow::{Context as _, bail};
use chrono::Utc;

use crate::cli::InitArgs;
use crate::generate::{Sizes, create_crm};

/// The quickstart playbook (also `playbooks/quickstart.yaml`).
pub const QUICKSTART: &str = include_str!("../../playbooks/quickstart.yaml");

pub async fn run(args: &InitArgs) -> anyhow::Result<u8> {
    let dir = &args.dir;
    let playbook = dir.join("rollback.yaml");
    let sandbox = dir.join("sandbox");
    let legacy = sandbox.join("legacy.db");
    let newcrm = sandbox.join("newcrm.db");
    if !args.force {
        for path in [&playbook, &legacy, &newcrm] {
            if path.exists() {
                bail!(
                    "`{}` already exists\nhint: pass `--force` to overwrite it, or choose another folder",
                    path.display()
                );
            }
        }
    }
    std::fs::create_dir_all(&sandbox).with_context(|| format!("cannot create `{}`", sandbox.display()))?;
    for path in [&legacy, &newcrm] {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    let cutover = crate::record::parse_time("2026-11-20T22:00:00Z").expect("valid constant");
    let before = cutover.min(Utc::now());
    create_crm(&legacy, Some(Sizes::for_contacts(args.records)), args.seed, before)
        .await
        .with_context(|| format!("cannot create sandbox CRM `{}`", legacy.display()))?;
    create_crm(&newcrm, None, args.seed, before)
        .await
        .with_context(|| format!("cannot create sandbox CRM `{}`", newcrm.display()))?;
    std::fs::write(&playbook, QUICKSTART).with_context(|| format!("cannot write `{}`", playbook.display()))?;
    let sizes = Sizes::for_contacts(args.records);
    eprintln!(
        "wrote {} and sandbox CRMs: {} ({} companies, {} contacts, {} deals) and {} (empty)",
        playbook.display(),
        legacy.display(),
        sizes.companies,
        sizes.contacts,
        sizes.deals,
        newcrm.display()
    );
    let cd = if dir.as_os_str() == "." {
        String::new()
    } else {
        format!("cd {} && ", dir.display())
    };
    eprintln!("next: {cd}rollback drill    (rehearse a whole rollback; `rollback plan` shows what a real one would do)");
    Ok(super::OK)
}
