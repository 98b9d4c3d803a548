//! A connector's `sandbox: { flavor, seed, port }` key: the tool starts this module's own sandbox
//! server in its process, on 127.0.0.1 (a free port unless `port` is given), with a token of its
//! own, and points the connector at it: flavor `hubspot` for a `hubspot` connector (plain HTTP),
//! flavor `salesforce` for a `salesforce` connector (HTTPS with a CA the server makes at each
//! start, which the connector trusts alone: [`Launched::ca_pem`]; certificates are still
//! verified). The records are kept in the store's folder (`<store>/sandbox/<connector>.db`, the
//! server's `--data` file), so every later run sees what the earlier ones left: the seed only
//! fills a new file; the Salesforce CA file sits beside it while the server runs. A read-only
//! run (a plan, a dry run) never creates that file: without one it serves the seeded records from
//! memory.
//!
//! One server per file runs at a time in a process: connectors built for the same connector (by
//! each run of a drill, say) share it, and it stops when the last of them is dropped, so it ends
//! with the run at the latest.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Weak};

use crate::connectors::ConnectorError;
use crate::playbook::ConnectorConfig;
use crate::playbook::model::SandboxSpec;

/// Contacts a sandbox is seeded with unless `seed` says otherwise (as `sandbox serve`).
pub const DEFAULT_SEED: u64 = 1000;

/// A sandbox server started for a connector.
pub struct Launched {
    pub base_url: String,
    /// The token the server asks for: random, never written anywhere.
    pub token: String,
    /// Where its records are kept (`None`: in memory).
    pub data: Option<PathBuf>,
    pub port: u16,
    /// Salesforce: the PEM of the CA that signed the server's certificate, for the connector
    /// to trust (read once at start: the file goes away with the server).
    pub ca_pem: Option<Vec<u8>>,
    /// Stops the server when dropped.
    _running: super::Running,
}

/// Running servers by data file (and whether it is kept there).
type Registry = HashMap<(PathBuf, bool), Weak<Launched>>;

static LAUNCHED: LazyLock<tokio::sync::Mutex<Registry>> = LazyLock::new(|| tokio::sync::Mutex::new(HashMap::new()));

/// The sandbox server of `config` (whose `sandbox:` key is `spec`): the one already running for
/// its data file in this process, or a new one.
pub async fn for_connector(config: &ConnectorConfig, spec: &SandboxSpec) -> Result<Arc<Launched>, ConnectorError> {
    let name = config.name.as_str();
    // Validation pairs the flavor with the connector type; a config built another way is
    // checked here too, so a connector never talks to another CRM's API.
    if spec.flavor != config.kind.name() || !["hubspot", "salesforce"].contains(&spec.flavor.as_str()) {
        return Err(ConnectorError::new(
            name,
            format!(
                "sandbox flavor `{}` does not serve the API of connector type `{}`",
                spec.flavor,
                config.kind.name()
            ),
        )
        .hint("write `sandbox: { flavor: hubspot }` for a `hubspot` connector, `sandbox: { flavor: salesforce }` for a `salesforce` one")
        .bad_input());
    }
    let file = config.store_dir.join("sandbox").join(format!("{name}.db"));
    let keep = !config.read_only || file.exists();
    let mut launched = LAUNCHED.lock().await;
    launched.retain(|_, server| server.strong_count() > 0);
    if let Some(server) = launched.get(&(file.clone(), keep)).and_then(Weak::upgrade) {
        if spec.port.is_some_and(|p| p != server.port) {
            return Err(ConnectorError::new(
                name,
                format!("its sandbox already runs on port {}, not {}", server.port, spec.port.unwrap_or(0)),
            )
            .hint("give every connector that shares a store folder and name the same `port`")
            .bad_input());
        }
        return Ok(server);
    }
    if keep && let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            ConnectorError::new(name, format!("cannot create the sandbox folder `{}`: {e}", dir.display()))
                .hint("check the store folder's permissions")
        })?;
    }
    let token = format!("sandbox-{}", crate::ids::random_hex(16));
    let options = super::Options {
        flavor: spec.flavor.clone(),
        port: spec.port.unwrap_or(0),
        token: Some(token.clone()),
        seed: spec.seed.unwrap_or(DEFAULT_SEED),
        data: keep.then(|| file.clone()),
        tls_dir: None,
        faults: None,
        rate_limit: 100,
        daily_limit: 250_000,
    };
    let running = super::start(options).await.map_err(|e| {
        let hint = match spec.port {
            Some(port) => format!("is port {port} free? leave out `port` to take a free one"),
            None => format!("delete `{}` to start from the seed again", file.display()),
        };
        ConnectorError::new(name, format!("cannot start its sandbox: {e:#}")).hint(hint)
    })?;
    tracing::info!(connector = name, base_url = %running.base_url, data = %file.display(), "sandbox started");
    let ca_pem = match &running.ca_file {
        Some(ca) => Some(std::fs::read(ca).map_err(|e| {
            ConnectorError::new(name, format!("cannot read its sandbox's CA certificate `{}`: {e}", ca.display()))
                .hint("check the store folder's permissions")
        })?),
        None => None,
    };
    let server = Arc::new(Launched {
        base_url: running.base_url.clone(),
        token,
        data: keep.then_some(file.clone()),
        port: running.address.port(),
        ca_pem,
        _running: running,
    });
    launched.insert((file, keep), Arc::downgrade(&server));
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::ConnectorKind;
    use crate::playbook::model::ConnectorSpec;

    fn config(dir: &std::path::Path, read_only: bool) -> ConnectorConfig {
        flavored(dir, read_only, ConnectorKind::Hubspot)
    }

    fn flavored(dir: &std::path::Path, read_only: bool, kind: ConnectorKind) -> ConnectorConfig {
        ConnectorConfig {
            name: "crm".into(),
            kind,
            objects: vec![],
            spec: ConnectorSpec {
                sandbox: Some(SandboxSpec {
                    flavor: kind.name().into(),
                    seed: Some(20),
                    port: None,
                }),
                ..Default::default()
            },
            base_dir: dir.into(),
            store_dir: dir.join(".rollback"),
            read_only,
        }
    }

    /// Connectors built for one connector share its server, which answers its own token only,
    /// keeps its records in the store folder and stops when the last connector is dropped; a
    /// read-only run without that file serves from memory and creates none.
    #[tokio::test]
    async fn one_server_per_file_stopped_with_its_last_user() {
        let dir = tempfile::tempdir().unwrap();
        let spec = config(dir.path(), false).spec.sandbox.unwrap();
        let looked = for_connector(&config(dir.path(), true), &spec).await.unwrap();
        assert!(looked.data.is_none() && !dir.path().join(".rollback").exists());
        drop(looked);

        let a = for_connector(&config(dir.path(), false), &spec).await.unwrap();
        let b = for_connector(&config(dir.path(), false), &spec).await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.data.as_deref(), Some(dir.path().join(".rollback/sandbox/crm.db").as_path()));
        assert!(a.data.as_ref().unwrap().is_file());
        let url = format!("{}/crm/v3/objects/contacts?limit=1", a.base_url);
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        assert_eq!(http.get(&url).bearer_auth(&a.token).send().await.unwrap().status(), 200);
        assert_eq!(http.get(&url).bearer_auth("guess").send().await.unwrap().status(), 401);
        let address = a.base_url.trim_start_matches("http://").to_string();
        drop(a);
        assert!(tokio::net::TcpStream::connect(&address).await.is_ok(), "still in use");
        drop(b);
        let started = std::time::Instant::now();
        while tokio::net::TcpStream::connect(&address).await.is_ok() {
            assert!(started.elapsed().as_secs() < 10, "the server did not stop");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// A salesforce connector gets an HTTPS sandbox and the PEM of its CA, which a client
    /// trusting nothing else verifies; a flavor that is not the connector's type is refused.
    #[tokio::test]
    async fn salesforce_sandbox_is_https_with_its_ca() {
        let dir = tempfile::tempdir().unwrap();
        let config = flavored(dir.path(), false, ConnectorKind::Salesforce);
        let server = for_connector(&config, config.spec.sandbox.as_ref().unwrap()).await.unwrap();
        assert!(server.base_url.starts_with("https://127.0.0.1:"), "{}", server.base_url);
        let pem = server.ca_pem.clone().expect("the CA");
        let certs = reqwest::Certificate::from_pem_bundle(&pem).unwrap();
        let http = reqwest::Client::builder().tls_certs_only(certs).build().unwrap();
        let url = format!("{}/services/oauth2/userinfo", server.base_url);
        let me: serde_json::Value = http
            .get(&url)
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["preferred_username"], "integration@example.com.sandbox");
        let untrusting = reqwest::Client::builder().tls_certs_only([]).build().unwrap();
        assert!(untrusting.get(&url).send().await.is_err(), "the certificate is verified");

        let mut wrong = flavored(dir.path(), false, ConnectorKind::Salesforce);
        wrong.name = "other".into();
        let spec = SandboxSpec {
            flavor: "hubspot".into(),
            seed: None,
            port: None,
        };
        let e = for_connector(&wrong, &spec).await.err().unwrap();
        assert!(e.bad_input && e.message.contains("does not serve the API"), "{e}");
    }
}
