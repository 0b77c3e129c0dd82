//! TLS over TCP (rustls with the ring provider).
//!
//! Trust comes from one PEM file: `--ca FILE`, or the gateway's development certificate
//! `<data-dir>/tls/dev-cert.pem`. ALPN `ofd` is offered. Session resumption is off by
//! default, so that every connection is a full handshake — the figure the targets name.
//! With resumption on, tickets go to a [`TicketPool`] large enough for every register in
//! flight, and each handshake is counted as full or resumed ([`HandshakeStats`]), so a
//! "resumed" figure shows how many handshakes really were.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector as RustlsConnector;
use tokio_rustls::client::TlsStream;

use super::connect_stats::{ConnectErrorKind, HandshakeStats, SourceStat};
use super::{ConnectError, Connector, SourcePool, StreamConn, tcp_connect};

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
    cfg.resumption = if resumption {
        rustls::client::Resumption::store(Arc::new(TicketPool::new(TicketPool::DEFAULT_CAPACITY)))
    } else {
        rustls::client::Resumption::disabled()
    };
    Ok(cfg)
}

/// Client session store for resumption: up to `capacity` TLS 1.3 tickets per server name,
/// oldest dropped first. rustls' own cache keeps 8 tickets per server, so a hundred
/// registers connecting to one gateway at once would mostly find none and make full
/// handshakes; a real register keeps its own ticket, and a shared pool costs the server the
/// same. Each ticket is handed out once (TLS 1.3 tickets are single-use on the client).
#[derive(Debug)]
pub struct TicketPool {
    capacity: usize,
    servers: Mutex<HashMap<ServerName<'static>, Tickets>>,
}

#[derive(Debug, Default)]
struct Tickets {
    kx_hint: Option<rustls::NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    tls13: VecDeque<Tls13ClientSessionValue>,
}

impl TicketPool {
    /// Tickets kept per server name by default (more than the registers loadgen runs
    /// per-document at once).
    pub const DEFAULT_CAPACITY: usize = 65_536;

    /// A pool of at most `capacity` tickets per server name.
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), servers: Mutex::new(HashMap::new()) }
    }

    fn with<R>(&self, name: &ServerName<'_>, f: impl FnOnce(&mut Tickets) -> R) -> R {
        let mut g = self.servers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(g.entry(name.to_owned()).or_default())
    }
}

impl ClientSessionStore for TicketPool {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: rustls::NamedGroup) {
        self.with(&server_name, |t| t.kx_hint = Some(group));
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        self.with(server_name, |t| t.kx_hint)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.with(&server_name, |t| t.tls12 = Some(value));
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.with(server_name, |t| t.tls12.clone())
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.with(server_name, |t| t.tls12 = None);
    }

    fn insert_tls13_ticket(&self, server_name: ServerName<'static>, value: Tls13ClientSessionValue) {
        let cap = self.capacity;
        self.with(&server_name, |t| {
            if t.tls13.len() >= cap {
                t.tls13.pop_front();
            }
            t.tls13.push_back(value);
        });
    }

    fn take_tls13_ticket(&self, server_name: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        // newest first: the freshest ticket is the least likely to have expired
        self.with(server_name, |t| t.tls13.pop_back())
    }
}

#[derive(Debug, Default)]
struct HandshakeCounters {
    full: AtomicU64,
    resumed: AtomicU64,
}

/// Connects over TLS.
#[derive(Clone)]
pub struct TlsConnector {
    target: SocketAddr,
    sources: Arc<SourcePool>,
    tls: RustlsConnector,
    server_name: ServerName<'static>,
    handshakes: Arc<HandshakeCounters>,
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
        Ok(Self { target, sources, tls: RustlsConnector::from(Arc::new(cfg)), server_name, handshakes: Arc::default() })
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
                Ok(Ok(s)) => {
                    let c = if s.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                        &self.handshakes.resumed
                    } else {
                        &self.handshakes.full
                    };
                    c.fetch_add(1, Relaxed);
                    Ok(StreamConn::new(s))
                }
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

    fn handshakes(&self) -> Option<HandshakeStats> {
        Some(HandshakeStats {
            full: self.handshakes.full.load(Relaxed),
            resumed: self.handshakes.resumed.load(Relaxed),
        })
    }
}
