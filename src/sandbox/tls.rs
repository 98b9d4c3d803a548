//! HTTPS for the Salesforce sandbox (whose official client only speaks HTTPS): a throwaway CA and
//! a server certificate for `IP:127.0.0.1` and `DNS:localhost` signed by it, made with rcgen at
//! every start; the CA's PEM is written where clients can be told to trust it. Connections are
//! served by hyper over tokio-rustls on the aws-lc-rs provider, with a graceful shutdown that
//! lets requests in flight finish.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use tokio_rustls::rustls;

/// The server's TLS configuration and the CA file written for clients.
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    pub ca_file: PathBuf,
    /// A folder made for the CA file, removed at shutdown.
    made_dir: Option<PathBuf>,
}

impl Tls {
    /// Makes the certificates and writes the CA as `rollback-sandbox-PORT-ca.pem` into `dir`, else
    /// into the data file's folder, else into a new temporary folder.
    pub fn make(dir: Option<&Path>, data: Option<&Path>, port: u16) -> anyhow::Result<Tls> {
        let (ca_pem, chain, key) = certificates().context("cannot make the sandbox's TLS certificates")?;
        let (dir, made_dir) = match (dir, data.and_then(Path::parent)) {
            (Some(dir), _) => (dir.to_path_buf(), None),
            (None, Some(parent)) => (parent.to_path_buf(), None),
            (None, None) => {
                let made = std::env::temp_dir().join(format!("rollback-sandbox-{}-{port}", std::process::id()));
                (made.clone(), Some(made))
            }
        };
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the TLS folder `{}`", dir.display()))?;
        let ca_file = dir.join(format!("rollback-sandbox-{port}-ca.pem"));
        let temp = dir.join(format!(".rollback-sandbox-{port}-ca.pem.tmp"));
        std::fs::write(&temp, ca_pem)
            .and_then(|()| std::fs::rename(&temp, &ca_file))
            .with_context(|| {
                format!(
                    "cannot write the CA certificate `{}`\nhint: choose a writable folder with --tls-dir",
                    ca_file.display()
                )
            })?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Ok(Tls {
            config: Arc::new(config),
            ca_file: std::path::absolute(&ca_file).unwrap_or(ca_file),
            made_dir,
        })
    }

    /// Removes the CA file, and the folder if it was made for it.
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.ca_file);
        if let Some(dir) = &self.made_dir {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

type Chain = Vec<rustls::pki_types::CertificateDer<'static>>;

/// The CA's PEM, the server's certificate chain and its private key.
fn certificates() -> Result<(String, Chain, rustls::pki_types::PrivateKeyDer<'static>), rcgen::Error> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.distinguished_name.push(DnType::CommonName, "rollback sandbox CA");
    let ca_key = KeyPair::generate()?;
    let ca = ca_params.self_signed(&ca_key)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
    params.distinguished_name.push(DnType::CommonName, "localhost");
    let key = KeyPair::generate()?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer)?;
    let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    Ok((ca.pem(), vec![cert.der().clone(), ca.der().clone()], private))
}

/// Serves `app` over TLS on `listener` until `stop` completes, then lets open connections finish
/// their requests (for at most five seconds).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    config: Arc<rustls::ServerConfig>,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::TokioIo;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = Arc::new(hyper::server::conn::http1::Builder::new());
    tokio::pin!(stop);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!("sandbox: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app, builder) = (acceptor.clone(), app.clone(), builder.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // A client that never finishes its handshake does not hold a task for ever.
            let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let connection = builder.serve_connection(TokioIo::new(tls), service);
            let _ = watcher.watch(connection).await;
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}
