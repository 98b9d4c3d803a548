//! Test harness: a temp folder with a playbook made by the real `rollback init`, and helpers that
//! run the real binary in it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    /// `rollback init` with `records` contacts.
    pub fn init(records: u64) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::cargo_bin("rollback")
            .unwrap()
            .arg("init")
            .arg(dir.path())
            .args(["--records", &records.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        Sandbox { dir }
    }

    /// An empty folder.
    pub fn empty() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("rollback").unwrap();
        cmd.current_dir(self.dir.path()).arg("--no-progress");
        cmd
    }

    /// Starts `rollback ARGS` in the folder without waiting, output captured.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.cmd()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs `rollback ARGS` in the folder.
    pub fn run(&self, args: &[&str]) -> Run {
        Run(self.cmd().args(args).output().unwrap())
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    /// Waits (up to a minute) until a running backup has written its first chunk.
    pub fn wait_for_first_chunk(&self) {
        let chunks = self.path(".rollback/chunks");
        let started = std::time::Instant::now();
        while std::fs::read_dir(&chunks).map(|d| d.count()).unwrap_or(0) == 0 && started.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Snapshot ids in the store, oldest first.
    pub fn snapshot_ids(&self) -> Vec<String> {
        let dir = self.path(".rollback/snapshots");
        let mut ids: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".json").map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// The root digest of the newest snapshot.
    pub fn latest_root_digest(&self) -> String {
        let ids = self.snapshot_ids();
        self.manifest(ids.last().expect("a snapshot"))["root_digest"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The proof the newest run's first step names in its detail (`""` when none).
    pub fn latest_proof(&self) -> String {
        let run = self.run(&["runs", "show", "latest", "--format", "json"]).ok();
        let run: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
        run["steps"][0]["detail"]["proof"].as_str().unwrap_or_default().to_string()
    }

    pub fn manifest(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(&self.read(&format!(".rollback/snapshots/{id}.json"))).unwrap()
    }

    pub fn chunk_path(&self, id: &str) -> PathBuf {
        self.path(&format!(".rollback/chunks/{}/{id}", &id[..2]))
    }

    /// Runs `statements` on a sandbox database in one transaction, the way the tool writes to a
    /// frozen CRM (through its bypass), so tests can stand in for a migration tool or an admin.
    pub async fn write_as_tool(&self, name: &str, statements: &[&'static str]) {
        let db = self.db(name).await;
        let mut conn = db.acquire().await.unwrap();
        sqlx::query("PRAGMA foreign_keys = OFF").execute(&mut *conn).await.unwrap();
        let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
        let frozen: Option<i64> = sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE name = '_rollback_bypass'")
            .fetch_optional(&mut *tx)
            .await
            .unwrap();
        if frozen.is_some() {
            sqlx::query("INSERT INTO _rollback_bypass (open) VALUES (1)")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        for statement in statements {
            sqlx::query(*statement).execute(&mut *tx).await.unwrap();
        }
        if frozen.is_some() {
            sqlx::query("DELETE FROM _rollback_bypass").execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
        drop(conn);
        db.close().await;
    }

    /// Kills `child` (a running phase) as soon as the journal holds a checkpoint named `key`;
    /// false when the child finished (or two minutes passed) first.
    pub async fn kill_at_checkpoint(&self, child: &mut std::process::Child, key: &str) -> bool {
        let journal = self.journal().await;
        let started = std::time::Instant::now();
        let mut killed = false;
        while started.elapsed().as_secs() < 120 {
            let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM checkpoints WHERE key = ?")
                .bind(key)
                .fetch_one(&journal)
                .await
                .unwrap();
            if n > 0 {
                child.kill().unwrap();
                killed = true;
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        child.wait().unwrap();
        journal.close().await;
        killed
    }

    /// A connection to the store's journal.
    pub async fn journal(&self) -> sqlx::SqlitePool {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(self.path(".rollback/journal.db"));
        sqlx::SqlitePool::connect_with(options).await.unwrap()
    }

    /// A connection to a SQLite file in the folder.
    pub async fn db_at(&self, rel: &str) -> sqlx::SqlitePool {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(self.path(rel));
        sqlx::SqlitePool::connect_with(options).await.unwrap()
    }

    /// A connection to one of the sandbox databases.
    pub async fn db(&self, name: &str) -> sqlx::SqlitePool {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(self.path(&format!("sandbox/{name}.db")));
        sqlx::SqlitePool::connect_with(options).await.unwrap()
    }
}

/// A finished command, with chained assertions.
pub struct Run(pub Output);

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    /// Asserts the exit code, showing both streams on failure.
    pub fn exits(self, code: i32) -> Self {
        assert_eq!(self.code(), code, "stdout:\n{}\nstderr:\n{}", self.stdout(), self.stderr());
        self
    }
    pub fn ok(self) -> Self {
        self.exits(0)
    }
    /// Asserts stdout + stderr contain `text`.
    pub fn says(self, text: &str) -> Self {
        let all = format!("{}{}", self.stdout(), self.stderr());
        assert!(all.contains(text), "expected {text:?} in output:\n{all}");
        self
    }
    pub fn never_says(self, text: &str) -> Self {
        let all = format!("{}{}", self.stdout(), self.stderr());
        assert!(!all.contains(text), "did not expect {text:?} in output:\n{all}");
        self
    }
}

pub fn sha256_file(path: &Path) -> String {
    rollback::digest::sha256(&std::fs::read(path).unwrap()).to_string()
}

/// The token every test sandbox asks for.
pub const SANDBOX_TOKEN: &str = "pat-test-token";

/// A running sandbox; stopped (SIGTERM) when dropped.
pub struct Served {
    pub child: std::process::Child,
    pub base: String,
    /// The CA certificate an HTTPS sandbox (Salesforce) wrote; `http` trusts it alone.
    pub ca_file: Option<String>,
    pub http: reqwest::Client,
}

impl Served {
    /// `rollback sandbox serve --token SANDBOX_TOKEN ARGS`, once it has printed its address.
    pub fn start(args: &[&str]) -> Served {
        let mut child = Command::cargo_bin("rollback")
            .unwrap()
            .args(["sandbox", "serve", "--token", SANDBOX_TOKEN])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let started: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("first line `{line}`: {e}"));
        let ca_file = started["ca_file"].as_str().map(str::to_string);
        let mut http = reqwest::Client::builder();
        if let Some(ca) = &ca_file {
            let pem = std::fs::read(ca).unwrap_or_else(|e| panic!("the CA file `{ca}`: {e}"));
            http = http.tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()]);
        }
        Served {
            child,
            base: started["base_url"].as_str().unwrap().to_string(),
            ca_file,
            http: http.build().unwrap(),
        }
    }

    /// Any method, with the token and an optional JSON body: the status, the headers and the
    /// body as JSON (null when empty).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, reqwest::header::HeaderMap, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, self.url(path)).bearer_auth(SANDBOX_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        (status, headers, r.json().await.unwrap_or(Value::Null))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).bearer_auth(SANDBOX_TOKEN).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(SANDBOX_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
pub mod mysql;
pub mod postgres;
