//! The SQLite journal in the store (`journal.db`): runs, their steps with outcomes, timings,
//! counts and digests, events, and the store lock.
//!
//! It uses SQLite's rollback journal, not WAL, so everything committed is in `journal.db` itself:
//! dry runs and plans read it immutably without touching the store.
//!
//! The lock is one row; taking it is an INSERT that fails when another process holds it, so two
//! runs cannot both win. A lock whose process is gone (same host: the pid no longer runs with the
//! recorded start time; other host: no heartbeat for two minutes) is reported as stale and is
//! only ever cleared on request.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{FromRow, Row};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal `{path}`: {message}")]
    Db { path: String, message: String },
    #[error("the store is locked by {0}\nhint: wait for that run to finish; if it is stuck, stop it first")]
    Held(Box<LockInfo>),
    #[error(
        "the store holds a stale lock from {0}, whose process is no longer running\nhint: check that no rollback is running, then rerun with `--force-unlock` (or `--resume` to continue that run)"
    )]
    Stale(Box<LockInfo>),
    #[error("no run matches `{0}`\nhint: `rollback runs list` shows the runs in this store")]
    NoRun(String),
    #[error("run reference `{0}` is ambiguous\nhint: type more characters of the run id")]
    AmbiguousRun(String),
}

/// Who holds the store lock.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct LockInfo {
    pub run_id: Option<String>,
    pub command: String,
    pub host: String,
    pub pid: i64,
    pub pid_start: Option<String>,
    pub started_at: String,
    pub heartbeat_at: String,
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` (pid {} on host `{}`, started {}",
            self.command, self.pid, self.host, self.started_at
        )?;
        if let Some(run) = &self.run_id {
            write!(f, ", run `{run}`")?;
        }
        write!(f, ")")
    }
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct RunRow {
    pub id: String,
    pub phase: String,
    pub environment: Option<String>,
    pub playbook: String,
    pub playbook_hash: String,
    pub status: String,
    pub dry_run: bool,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub host: String,
    pub pid: i64,
    pub error: Option<String>,
    pub peak_rss_bytes: Option<i64>,
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct StepRow {
    pub run_id: String,
    pub on_failure: bool,
    pub idx: i64,
    pub name: String,
    pub action: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub summary: Option<String>,
    pub detail: Option<String>,
    pub error: Option<String>,
}

/// A freeze that has not been undone.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct FreezeRow {
    pub id: i64,
    pub connector: String,
    pub run_id: String,
    pub frozen_at: String,
    pub receipt: String,
}

/// A new run's identity.
pub struct NewRun<'a> {
    pub id: &'a str,
    pub phase: &'a str,
    pub environment: Option<&'a str>,
    pub playbook: &'a str,
    pub playbook_hash: &'a str,
    pub dry_run: bool,
}

#[derive(Clone)]
pub struct Journal {
    pool: SqlitePool,
    path: String,
}

pub fn now() -> String {
    crate::record::format_time(&Utc::now())
}

/// This machine's name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The start time of a process (clock ticks since boot), to tell a live pid from a reused one.
pub fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19).map(str::to_string)
}

impl Journal {
    /// Opens (creating and migrating if needed) the journal at `path`.
    pub async fn open(path: &Path) -> Result<Journal, JournalError> {
        let shown = path.display().to_string();
        let err = |e: &dyn std::fmt::Display| JournalError::Db {
            path: shown.clone(),
            message: e.to_string(),
        };
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // A rollback journal (read-only opens use `immutable`, which ignores a WAL), emptied
            // rather than deleted after each commit: as durable, with no directory sync per
            // checkpoint.
            .journal_mode(SqliteJournalMode::Truncate)
            .busy_timeout(Duration::from_secs(15));
        // Two processes opening a new journal at once must not both create its tables: an OS
        // file lock beside it serialises opening and migrating.
        let guard_path = path.with_extension("db-open.lock");
        let guard = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&guard_path)
            .map_err(|e| err(&e))?;
        let guard = tokio::task::spawn_blocking(move || guard.lock().map(|_| guard))
            .await
            .map_err(|e| err(&e))?
            .map_err(|e| err(&e))?;
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(|e| err(&e))?;
        let migrated = sqlx::migrate!("./migrations").run(&pool).await;
        drop(guard);
        migrated.map_err(|e| err(&e))?;
        Ok(Journal { pool, path: shown })
    }

    /// Opens the journal without ever writing to it or beside it (dry runs, plans); an empty
    /// in-memory journal when there is none yet.
    pub async fn open_read_only(path: &Path) -> Result<Journal, JournalError> {
        let shown = path.display().to_string();
        let err = |e: &dyn std::fmt::Display| JournalError::Db {
            path: shown.clone(),
            message: e.to_string(),
        };
        if !path.exists() {
            let options = SqliteConnectOptions::new().in_memory(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .map_err(|e| err(&e))?;
            sqlx::migrate!("./migrations").run(&pool).await.map_err(|e| err(&e))?;
            return Ok(Journal { pool, path: shown });
        }
        let options = SqliteConnectOptions::new().filename(path).read_only(true).immutable(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| err(&e))?;
        Ok(Journal { pool, path: shown })
    }

    fn err(&self) -> impl Fn(sqlx::Error) -> JournalError + '_ {
        |e| JournalError::Db {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Takes the store lock for this process, or says who holds it.
    pub async fn acquire_lock(&self, command: &str, run_id: Option<&str>) -> Result<(), JournalError> {
        let pid = std::process::id();
        let now = now();
        let inserted = sqlx::query(
            "INSERT INTO lock (id, run_id, command, host, pid, pid_start, started_at, heartbeat_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
        )
        .bind(run_id)
        .bind(command)
        .bind(hostname())
        .bind(pid as i64)
        .bind(process_start(pid))
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await
        .map_err(self.err())?
        .rows_affected();
        if inserted == 1 {
            return Ok(());
        }
        let holder = self.lock_holder().await?.ok_or_else(|| JournalError::Db {
            path: self.path.clone(),
            message: "lock vanished while taking it; try again".into(),
        })?;
        if is_stale(&holder) {
            Err(JournalError::Stale(Box::new(holder)))
        } else {
            Err(JournalError::Held(Box::new(holder)))
        }
    }

    /// Names the run that holds the lock (once the run id is known).
    pub async fn set_lock_run(&self, run_id: &str) -> Result<(), JournalError> {
        sqlx::query("UPDATE lock SET run_id = ? WHERE pid = ?")
            .bind(run_id)
            .bind(std::process::id() as i64)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    pub async fn lock_holder(&self) -> Result<Option<LockInfo>, JournalError> {
        sqlx::query_as("SELECT run_id, command, host, pid, pid_start, started_at, heartbeat_at FROM lock WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err())
    }

    /// Refreshes this process's heartbeat.
    pub async fn heartbeat(&self) -> Result<(), JournalError> {
        sqlx::query("UPDATE lock SET heartbeat_at = ? WHERE pid = ? AND host = ?")
            .bind(now())
            .bind(std::process::id() as i64)
            .bind(hostname())
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Releases the lock if this process holds it.
    pub async fn release_lock(&self) -> Result<(), JournalError> {
        sqlx::query("DELETE FROM lock WHERE pid = ? AND host = ?")
            .bind(std::process::id() as i64)
            .bind(hostname())
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Clears whatever lock is held (the operator asked for it); returns what was cleared.
    pub async fn force_unlock(&self) -> Result<Option<LockInfo>, JournalError> {
        let holder = self.lock_holder().await?;
        sqlx::query("DELETE FROM lock").execute(&self.pool).await.map_err(self.err())?;
        Ok(holder)
    }

    pub async fn start_run(&self, run: &NewRun<'_>) -> Result<(), JournalError> {
        sqlx::query("INSERT INTO runs (id, phase, environment, playbook, playbook_hash, status, dry_run, started_at, host, pid) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)")
            .bind(run.id)
            .bind(run.phase)
            .bind(run.environment)
            .bind(run.playbook)
            .bind(run.playbook_hash)
            .bind(run.dry_run)
            .bind(now())
            .bind(hostname())
            .bind(std::process::id() as i64)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    pub async fn finish_run(&self, id: &str, status: &str, error: Option<&str>, peak_rss: Option<u64>) -> Result<(), JournalError> {
        sqlx::query("UPDATE runs SET status = ?, finished_at = ?, error = ?, peak_rss_bytes = ? WHERE id = ?")
            .bind(status)
            .bind(now())
            .bind(error)
            .bind(peak_rss.map(|b| b as i64))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    pub async fn start_step(&self, run: &str, on_failure: bool, idx: usize, name: &str, action: &str) -> Result<(), JournalError> {
        sqlx::query(
            "INSERT OR REPLACE INTO steps (run_id, on_failure, idx, name, action, status, started_at) VALUES (?, ?, ?, ?, ?, 'running', ?)",
        )
        .bind(run)
        .bind(on_failure)
        .bind(idx as i64)
        .bind(name)
        .bind(action)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn finish_step(
        &self,
        run: &str,
        on_failure: bool,
        idx: usize,
        status: &str,
        duration: Duration,
        summary: Option<&str>,
        detail: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> Result<(), JournalError> {
        sqlx::query("UPDATE steps SET status = ?, finished_at = ?, duration_ms = ?, summary = ?, detail = ?, error = ? WHERE run_id = ? AND on_failure = ? AND idx = ?")
            .bind(status)
            .bind(now())
            .bind(duration.as_millis() as i64)
            .bind(summary)
            .bind(detail.map(|d| d.to_string()))
            .bind(error)
            .bind(run)
            .bind(on_failure)
            .bind(idx as i64)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    pub async fn event(&self, run: Option<&str>, level: &str, message: &str) -> Result<(), JournalError> {
        sqlx::query("INSERT INTO events (run_id, at, level, message) VALUES (?, ?, ?, ?)")
            .bind(run)
            .bind(now())
            .bind(level)
            .bind(message)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Records progress inside a step (e.g. batches restored), replacing the previous value.
    pub async fn checkpoint(&self, run: &str, step: usize, key: &str, value: &str) -> Result<(), JournalError> {
        sqlx::query("INSERT OR REPLACE INTO checkpoints (run_id, step_idx, key, value, at) VALUES (?, ?, ?, ?, ?)")
            .bind(run)
            .bind(step as i64)
            .bind(key)
            .bind(value)
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// A step's checkpoints, key → value.
    pub async fn checkpoints(&self, run: &str, step: usize) -> Result<Vec<(String, String)>, JournalError> {
        let rows = sqlx::query("SELECT key, value FROM checkpoints WHERE run_id = ? AND step_idx = ? ORDER BY key")
            .bind(run)
            .bind(step as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Records a freeze receipt; returns its id.
    pub async fn record_freeze(&self, connector: &str, run: &str, receipt: &serde_json::Value) -> Result<i64, JournalError> {
        let done = sqlx::query("INSERT INTO freeze_receipts (connector, run_id, frozen_at, receipt) VALUES (?, ?, ?, ?)")
            .bind(connector)
            .bind(run)
            .bind(now())
            .bind(receipt.to_string())
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(done.last_insert_rowid())
    }

    /// Replaces the receipt of freeze `id` (a pending one, once the freeze is done).
    pub async fn complete_freeze(&self, id: i64, receipt: &serde_json::Value) -> Result<(), JournalError> {
        sqlx::query("UPDATE freeze_receipts SET receipt = ? WHERE id = ?")
            .bind(receipt.to_string())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Removes freeze `id`: a pending freeze that changed nothing (the connector undid its part).
    pub async fn forget_freeze(&self, id: i64) -> Result<(), JournalError> {
        sqlx::query("DELETE FROM freeze_receipts WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Freezes not yet undone, oldest first; for one connector or all.
    pub async fn open_freezes(&self, connector: Option<&str>) -> Result<Vec<FreezeRow>, JournalError> {
        let rows: Vec<FreezeRow> =
            sqlx::query_as("SELECT id, connector, run_id, frozen_at, receipt FROM freeze_receipts WHERE unfrozen_at IS NULL ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .map_err(self.err())?;
        Ok(rows.into_iter().filter(|r| connector.is_none_or(|c| r.connector == c)).collect())
    }

    /// Marks a freeze undone by `run`.
    pub async fn record_unfreeze(&self, id: i64, run: &str) -> Result<(), JournalError> {
        sqlx::query("UPDATE freeze_receipts SET unfrozen_at = ?, unfrozen_by = ? WHERE id = ?")
            .bind(now())
            .bind(run)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Marks an unfinished run as running again (resumed by this process).
    pub async fn resume_run(&self, id: &str) -> Result<(), JournalError> {
        sqlx::query("UPDATE runs SET status = 'running', finished_at = NULL, error = NULL, host = ?, pid = ? WHERE id = ?")
            .bind(hostname())
            .bind(std::process::id() as i64)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        self.event(
            Some(id),
            "info",
            &format!("resumed by pid {} on `{}`", std::process::id(), hostname()),
        )
        .await
    }

    /// Runs that started and never finished (crashed, killed or interrupted), oldest first.
    pub async fn dirty_runs(&self) -> Result<Vec<RunRow>, JournalError> {
        sqlx::query_as("SELECT * FROM runs WHERE status IN ('running', 'interrupted') ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())
    }

    pub async fn runs(&self) -> Result<Vec<RunRow>, JournalError> {
        sqlx::query_as("SELECT * FROM runs ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())
    }

    /// A run by id, unique prefix, or `latest`.
    pub async fn run(&self, reference: &str) -> Result<RunRow, JournalError> {
        let runs = self.runs().await?;
        if reference == "latest" {
            return runs.into_iter().last().ok_or_else(|| JournalError::NoRun(reference.into()));
        }
        let mut matches: Vec<RunRow> = runs
            .into_iter()
            .filter(|r| r.id.starts_with(reference) && !reference.is_empty())
            .collect();
        match matches.len() {
            0 => Err(JournalError::NoRun(reference.into())),
            1 => Ok(matches.remove(0)),
            _ => Err(JournalError::AmbiguousRun(reference.into())),
        }
    }

    pub async fn steps(&self, run: &str) -> Result<Vec<StepRow>, JournalError> {
        sqlx::query_as("SELECT * FROM steps WHERE run_id = ? ORDER BY on_failure, idx")
            .bind(run)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())
    }

    pub async fn events(&self, run: &str) -> Result<Vec<(String, String, String)>, JournalError> {
        let rows = sqlx::query("SELECT at, level, message FROM events WHERE run_id = ? ORDER BY id")
            .bind(run)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// True when the lock's process is gone.
pub fn is_stale(lock: &LockInfo) -> bool {
    if lock.host == hostname() {
        let start = process_start(lock.pid as u32);
        start.is_none() || (lock.pid_start.is_some() && start != lock.pid_start)
    } else {
        DateTime::parse_from_rfc3339(&lock.heartbeat_at)
            .map(|t| Utc::now().signed_duration_since(t).num_seconds() > 120)
            .unwrap_or(true)
    }
}

/// This process's peak resident memory, in bytes (Linux).
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
