//! A throwaway MariaDB server from Debian's `mariadb-server` package: `mariadb-install-db` into a
//! temp data directory, `mariadbd` on a free port of 127.0.0.1, killed when dropped. The server
//! runs as the current user (`--user=root` when that is root). `root@127.0.0.1` has no password.
//! A server that cannot start fails the test with the reason: nothing is skipped.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct MariaServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl MariaServer {
    /// Installs the system tables and starts the server without durability (the data is thrown
    /// away afterwards), utf8mb4 by default.
    pub fn start() -> MariaServer {
        MariaServer::start_with(&["--innodb-buffer-pool-size=128M"])
    }

    /// [`Self::start`] with more server options (a benchmark's larger buffer pool, say).
    pub fn start_with(options: &[&str]) -> MariaServer {
        let dir = tempfile::Builder::new().prefix("rollback-maria").tempdir().unwrap();
        let data = dir.path().join("data");
        let user = user();
        let out = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--user={user}"))
            // Its bootstrap server's temp files go in this server's folder: servers set up at
            // once in a shared /tmp trip over each other's temporary tables.
            .env("TMPDIR", dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run mariadb-install-db ({e}): is mariadb-server installed? (.ci/run installs it)"));
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_dir(&data)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|f| f.path().extension().is_some_and(|e| e == "err"))
                .map(|f| std::fs::read_to_string(f.path()).unwrap_or_default())
                .collect::<String>()
        );
        let port = free_port();
        let d = dir.path().display();
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--user={user}"))
            .arg(format!("--port={port}"))
            .arg(format!("--socket={d}/sock"))
            .arg(format!("--pid-file={d}/pid"))
            .arg(format!("--log-error={d}/server.log"))
            .arg(format!("--tmpdir={d}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--max-connections=200",
            ])
            .args(options)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run mariadbd ({e}): is mariadb-server installed? (.ci/run installs it)"));
        let mut server = MariaServer { dir, port, child };
        let started = Instant::now();
        loop {
            if server.try_sql("mysql", "SELECT 1").0 {
                break;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("mariadbd exited with {status}: {}", server.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "mariadbd did not accept connections within 60 s: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// The URL of `database` as `root`.
    pub fn url(&self, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port)
    }

    pub fn url_as(&self, user: &str, password: &str, database: &str) -> String {
        format!("mysql://{user}:{password}@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs SQL as root with the `mariadb` client (stops at the first error); the output is
    /// tab-separated without column names.
    pub fn sql(&self, database: &str, sql: &str) -> String {
        let out = self.try_sql(database, sql);
        assert!(out.0, "mariadb failed on {sql}: {}", out.1);
        out.1
    }

    pub fn try_sql(&self, database: &str, sql: &str) -> (bool, String) {
        self.try_sql_as("root", "", database, sql)
    }

    /// Runs SQL as `user`: (succeeded, stdout + stderr).
    pub fn try_sql_as(&self, user: &str, password: &str, database: &str, sql: &str) -> (bool, String) {
        let mut cmd = Command::new("mariadb");
        cmd.args(["--no-defaults", "-N", "-B", "--local-infile=1", "-h", "127.0.0.1", "-P"])
            .arg(self.port.to_string())
            .args(["-u", user]);
        if !password.is_empty() {
            cmd.arg(format!("-p{password}"));
        }
        // SQL goes in on stdin: a long script exceeds the argument list.
        let mut child = cmd
            .arg(database)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mariadb runs (package mariadb-client)");
        let mut stdin = child.stdin.take().unwrap();
        let script = sql.to_string();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(script.as_bytes());
        });
        let out = child.wait_with_output().expect("mariadb runs");
        let _ = writer.join();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for MariaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
