//! In-process gateway harness for integration tests: a gateway on port 0 with its own
//! data directory, and register clients for each transport.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ffd::FnNumber;
use gateway::Config;
use gateway::config::Listen;
use storage::model::{Register, RegisterStatus};
use storage::{Inn, Rnm, Timestamp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const S1: &[u8] = include_bytes!("../../../ffd/tests/samples/S1.bin");

pub struct TestGateway {
    pub running: Option<gateway::Running>,
    pub dir: tempfile::TempDir,
}

impl TestGateway {
    pub fn tcp(&self) -> SocketAddr {
        self.running.as_ref().unwrap().tcp.unwrap()
    }
    pub fn tls(&self) -> SocketAddr {
        self.running.as_ref().unwrap().tls.unwrap()
    }
    pub fn quic(&self) -> SocketAddr {
        self.running.as_ref().unwrap().quic.unwrap()
    }
    pub fn store(&self) -> Arc<dyn storage::Store> {
        self.running.as_ref().unwrap().shared.store.clone()
    }
    pub fn running(&self) -> &gateway::Running {
        self.running.as_ref().unwrap()
    }
    pub async fn onboard(&self, reg: Register) {
        let shared = &self.running().shared;
        shared
            .store
            .put_registers(vec![reg.clone()], vec![None])
            .await
            .expect("put register");
        shared.registry.apply(&reg);
    }
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.expect("clean shutdown");
        }
    }
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let any: Listen = Listen(Some("127.0.0.1:0".parse().unwrap()));
    let mut cfg = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    cfg.listen.tcp = any;
    cfg.listen.tls = any;
    cfg.listen.quic = any;
    cfg.listen.admin = any;
    cfg.listen.metrics = any;
    cfg.shutdown.drain_period = Duration::from_millis(200);
    cfg
}

pub async fn start_with(f: impl FnOnce(&mut Config)) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    f(&mut cfg);
    let running = gateway::start(cfg).await.expect("gateway starts");
    TestGateway {
        running: Some(running),
        dir,
    }
}

pub async fn start() -> TestGateway {
    start_with(|_| {}).await
}

/// The register that produced sample S1 (its RNM check code is valid for this INN and
/// serial).
pub fn s1_register() -> Register {
    register(
        "0000000005008570",
        "7702203276",
        "000000000002",
        "9999078900005488",
    )
}

pub fn register(rnm: &str, inn: &str, serial: &str, fn_number: &str) -> Register {
    let now = Timestamp::now();
    Register {
        rnm: Rnm::parse(rnm).unwrap(),
        kkt_serial: serial.into(),
        owner_inn: Inn::parse(inn).unwrap(),
        name: "test till".into(),
        address: String::new(),
        group: None,
        fn_number: FnNumber::parse_strict(fn_number).unwrap(),
        fn_since: None,
        fn_history: Vec::new(),
        tariff: None,
        next_tariff: None,
        paid_until: None,
        status: RegisterStatus::Active,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

/// Reads one reply (header + declared body) or `None` if the peer closed first.
pub async fn read_reply<R: AsyncReadExt + Unpin>(r: &mut R) -> Option<Bytes> {
    let mut head = [0u8; 30];
    if r.read_exact(&mut head).await.is_err() {
        return None;
    }
    let len = u16::from_le_bytes([head[24], head[25]]) as usize;
    let mut out = head.to_vec();
    out.resize(30 + len, 0);
    r.read_exact(&mut out[30..]).await.ok()?;
    Some(Bytes::from(out))
}

/// One exchange on a fresh TCP connection.
pub async fn tcp_exchange(addr: SocketAddr, msg: &[u8]) -> Option<Bytes> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(msg).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), read_reply(&mut s))
        .await
        .expect("reply in time")
}

pub fn tls_client_config(cert_pem: &std::path::Path, alpn: bool) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert_pem).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    if alpn {
        cfg.alpn_protocols = vec![b"ofd".to_vec()];
    }
    Arc::new(cfg)
}
