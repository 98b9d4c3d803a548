//! Progress bars with indicatif, shown only on a terminal and without `--no-progress`.

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Bar, NoProgress, Progress};

struct TermProgress(MultiProgress);

struct TermBar(ProgressBar);

impl Bar for TermBar {
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish();
    }
}

impl Progress for TermProgress {
    fn bar(&self, label: &str, total: Option<u64>) -> Arc<dyn Bar> {
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template("{prefix:>20} [{bar:30}] {human_pos}/{human_len} {per_sec} ETA {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner()
                .with_style(ProgressStyle::with_template("{prefix:>20} {spinner} {human_pos} {per_sec}").expect("valid template")),
        };
        let bar = self.0.add(bar.with_prefix(label.to_string()));
        Arc::new(TermBar(bar))
    }
}

/// The progress reporter for this terminal and flags.
pub fn progress(no_progress: bool) -> Arc<dyn Progress> {
    if no_progress || !std::io::stderr().is_terminal() {
        Arc::new(NoProgress)
    } else {
        Arc::new(TermProgress(MultiProgress::with_draw_target(ProgressDrawTarget::stderr())))
    }
}
