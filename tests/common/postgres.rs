//! A throwaway PostgreSQL server from the installed binaries (`initdb`, `pg_ctl`): a temp data
//! directory, a free port on 127.0.0.1, stopped when dropped. PostgreSQL refuses to run as root,
//! so as root the server runs as the `postgres` user. A server that cannot start fails the test
//! with the reason: nothing is skipped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PgServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the server's user.
fn as_server_user(program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what} ({e}): are the PostgreSQL server binaries installed? (.ci/run installs them)"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PgServer {
    /// initdb (trust authentication, superuser `postgres`) and start, without fsync: the data is
    /// thrown away afterwards.
    pub fn start() -> PgServer {
        let dir = tempfile::Builder::new().prefix("rollback-pg").tempdir().unwrap();
        if is_root() {
            run(Command::new("chown").args(["postgres"]).arg(dir.path()), "chown");
        }
        let data = dir.path().join("data");
        run(
            as_server_user("initdb")
                .args(["-A", "trust", "-U", "postgres", "-N", "-E", "UTF8", "--locale=C", "-D"])
                .arg(&data),
            "initdb",
        );
        let port = free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            dir.path().display()
        );
        run(
            as_server_user("pg_ctl")
                .args(["-w", "-t", "60", "-D"])
                .arg(&data)
                .args(["-o", &options, "-l"])
                .arg(dir.path().join("server.log"))
                .arg("start"),
            "pg_ctl start",
        );
        PgServer { dir, port }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The URL of `database` as the superuser `postgres`.
    pub fn url(&self, database: &str) -> String {
        self.url_as("postgres", database)
    }

    pub fn url_as(&self, user: &str, database: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs SQL with `psql` (stops at the first error).
    pub fn psql(&self, database: &str, sql: &str) -> String {
        self.psql_as("postgres", database, sql)
    }

    pub fn psql_as(&self, user: &str, database: &str, sql: &str) -> String {
        let out = self.try_psql_as(user, database, sql);
        assert!(out.0, "psql failed on {sql}: {}", out.1);
        out.1
    }

    /// Runs SQL as `user`: (succeeded, stdout + stderr).
    pub fn try_psql_as(&self, user: &str, database: &str, sql: &str) -> (bool, String) {
        let out = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", user, "-d", database, "-c", sql])
            .output()
            .expect("psql runs (package postgresql-client)");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn stop(&self, data: &Path) {
        let _ = as_server_user("pg_ctl")
            .args(["-D"])
            .arg(data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop(&self.data_dir());
    }
}
