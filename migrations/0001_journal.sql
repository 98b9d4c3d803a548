-- The journal: runs, steps, events, checkpoints, freeze receipts and the store lock.
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    phase TEXT NOT NULL,
    environment TEXT,
    playbook TEXT NOT NULL,
    playbook_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    dry_run INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    error TEXT,
    peak_rss_bytes INTEGER
);
CREATE TABLE steps (
    run_id TEXT NOT NULL REFERENCES runs(id),
    on_failure INTEGER NOT NULL DEFAULT 0,
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_ms INTEGER,
    summary TEXT,
    detail TEXT,
    error TEXT,
    PRIMARY KEY (run_id, on_failure, idx)
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT,
    at TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE checkpoints (
    run_id TEXT NOT NULL,
    step_idx INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (run_id, step_idx, key)
);
CREATE TABLE freeze_receipts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connector TEXT NOT NULL,
    run_id TEXT NOT NULL,
    frozen_at TEXT NOT NULL,
    receipt TEXT NOT NULL,
    unfrozen_at TEXT,
    unfrozen_by TEXT
);
CREATE TABLE lock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    run_id TEXT,
    command TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_start TEXT,
    started_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);
