//! Atomic file writes: temp file → write → fsync → rename → fsync of the directory.
//!
//! Nothing in the store is rewritten in place; a crash leaves at worst a stray file under
//! `tmp/`, never a half-written chunk or manifest under its final name.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::ids::random_hex;

/// Writes `bytes` to `dest` atomically, staging the temp file in `tmp_dir` (same filesystem).
pub fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> io::Result<()> {
    fs::create_dir_all(tmp_dir)?;
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let tmp = tmp_dir.join(format!("{}.tmp", random_hex(8)));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, dest)?;
        let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        File::open(parent)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
