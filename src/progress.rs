//! Progress reporting as a trait, so the library never depends on a terminal. The command line
//! implements it with indicatif; tests and `--no-progress` use [`NoProgress`].

use std::sync::Arc;

/// One progress bar for a long piece of work.
pub trait Bar: Send + Sync {
    fn inc(&self, n: u64);
    fn finish(&self);
}

/// Creates bars.
pub trait Progress: Send + Sync {
    fn bar(&self, label: &str, total: Option<u64>) -> Arc<dyn Bar>;
}

/// Reports nothing.
pub struct NoProgress;

struct NoBar;

impl Bar for NoBar {
    fn inc(&self, _: u64) {}
    fn finish(&self) {}
}

impl Progress for NoProgress {
    fn bar(&self, _: &str, _: Option<u64>) -> Arc<dyn Bar> {
        Arc::new(NoBar)
    }
}
