//! `rollback notify --preview TEMPLATE [--run RUN]`: render without sending.

use crate::cli::{Global, NotifyArgs};

pub async fn run(global: &Global, args: &NotifyArgs) -> anyhow::Result<u8> {
    let playbook = super::load_playbook(&global.playbook, None)?;
    let (_store, journal) = super::open_store(&playbook).await?;
    let context = crate::engine::notify::context(&playbook, &journal, &args.run, None).await?;
    let text = crate::notify::render(&args.preview, &playbook.templates, &context)?;
    print!("{text}");
    Ok(super::OK)
}
