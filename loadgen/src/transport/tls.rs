//! TLS over TCP (rustls with the ring provider).
//!
//! Trust comes from one PEM file: `--ca FILE`, or the gateway's development certificate
//! `<data-dir>/tls/dev-cert.pem`. ALPN `ofd` is offered. Session resumption is off by
//! default, so that every connection is a full handshake — the figure the targets name.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector as RustlsConnector;
use tokio_rustls::client::TlsStream;

use super::{ConnectError, Connector, SourcePool, StreamConn, tcp_connect};
use crate::stats::{ConnectErrorKind, SourceStat};

/// ALPN protocol id of the fiscal-document exchange.
pub const ALPN: &[u8] = b"ofd";

/// Reads every certificate of a PEM file.
pub fn load_ca(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading CA certificates from {}", path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing PEM in {}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", path.display());
    Ok(certs)
}

/// A rustls client configuration trusting `ca` only, offering `alpn`.
pub fn client_config(
    ca: &[CertificateDer<'static>],
    alpn: &[&[u8]],
    resumption: bool,
    tls13_only: bool,
) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in ca {
        roots.add(c.clone()).context("adding a CA certificate")?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider);
    let builder = if tls13_only {
        builder.with_protocol_versions(&[&rustls::version::TLS13])
    } else {
        builder.with_safe_default_protocol_versions()
    }
    .context("TLS protocol versions")?;
    let mut cfg = builder.with_root_certificates(roots).with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    if !resumption {
        cfg.resumption = rustls::client::Resumption::disabled();
    }
    Ok(cfg)
}

/// Connects over TLS.
#[derive(Clone)]
pub struct TlsConnector {
    target: SocketAddr,
    sources: Arc<SourcePool>,
    tls: RustlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector")
            .field("target", &self.target)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// To `target`, trusting `ca`, verifying `server_name`.
    pub fn new(
        target: SocketAddr,
        sources: Arc<SourcePool>,
        ca: &[CertificateDer<'static>],
        server_name: &str,
        resumption: bool,
    ) -> anyhow::Result<Self> {
        let cfg = client_config(ca, &[ALPN], resumption, false)?;
        let server_name = ServerName::try_from(server_name.to_owned())
            .with_context(|| format!("invalid --server-name {server_name:?}"))?;
        Ok(Self { target, sources, tls: RustlsConnector::from(Arc::new(cfg)), server_name })
    }
}

impl Connector for TlsConnector {
    type Conn = StreamConn<TlsStream<TcpStream>>;

    async fn connect(&self, deadline: Instant) -> Result<Self::Conn, ConnectError> {
        let (slot, ip) = self.sources.pick();
        let r = async {
            let tcp = tcp_connect(self.target, ip, deadline).await?;
            let hs = self.tls.connect(self.server_name.clone(), tcp);
            match tokio::time::timeout_at(deadline, hs).await {
                Ok(Ok(s)) => Ok(StreamConn::new(s)),
                Ok(Err(e)) => Err(ConnectError { kind: ConnectErrorKind::Handshake, detail: e.to_string() }),
                Err(_) => Err(ConnectError::timeout()),
            }
        }
        .await;
        self.sources.count(slot, r.is_ok());
        r
    }

    fn sources(&self) -> Vec<SourceStat> {
        self.sources.stats()
    }
}
