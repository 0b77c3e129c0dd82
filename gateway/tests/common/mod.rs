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
use storage::model::Register;
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
        shared.store.put_registers(vec![reg.clone()], vec![None]).await.expect("put register");
        shared.data.apply_register(&reg);
    }
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.expect("clean shutdown");
        }
    }
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let any: Listen = Listen(Some("127.0.0.1:0".parse().unwrap()));
    let mut cfg = Config { data_dir: dir.to_path_buf(), ..Config::default() };
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
    TestGateway { running: Some(running), dir }
}

pub async fn start() -> TestGateway {
    start_with(|_| {}).await
}

/// The register that produced sample S1 (its RNM check code is valid for this INN and
/// serial).
pub fn s1_register() -> Register {
    register("0000000005008570", "7702203276", "000000000002", "9999078900005488")
}

pub fn register(rnm: &str, inn: &str, serial: &str, fn_number: &str) -> Register {
    let now = Timestamp::now();
    Register {
        name: "test till".into(),
        ..Register::new(
            Rnm::parse(rnm).unwrap(),
            serial.into(),
            Inn::parse(inn).unwrap(),
            FnNumber::parse_strict(fn_number).unwrap(),
            now,
        )
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
    tokio::time::timeout(Duration::from_secs(10), read_reply(&mut s)).await.expect("reply in time")
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

/// `n` registers with valid RNMs and FNs `9999000000000001...`, and their identities for
/// building documents.
pub fn registers(n: usize, first: u64) -> Vec<(Register, ffd::build::Identity)> {
    let inn = Inn::parse("7702203276").unwrap();
    (0..n as u64)
        .map(|i| {
            let seq = first + i;
            let serial = format!("{:012}", seq);
            let rnm = Rnm::compose(seq, &inn, &serial);
            let fn_number = format!("9999{:012}", seq);
            let reg = register(rnm.as_str(), inn.as_str(), &serial, &fn_number);
            let id = ffd::build::Identity {
                fn_number: reg.fn_number,
                rnm: rnm.to_string(),
                user_inn: inn.to_string(),
                kkt_serial: serial,
                ofd_inn: "7700000009".into(),
                user_name: "ООО Тест".into(),
                address: "Москва".into(),
                place: "Магазин".into(),
                cashier: "Кассир".into(),
                ffd: ffd::FfdVersion::V1_05,
            };
            (reg, id)
        })
        .collect()
}

/// A valid receipt message of `id` with FD `fd`.
pub fn receipt_message(id: &ffd::build::Identity, fd: u32) -> Bytes {
    use ffd::build::{Item, Receipt, operation, vat};
    let r = Receipt {
        operation: operation::INCOME,
        items: vec![Item {
            name: format!("Товар {fd}"),
            price: 10_000 + u64::from(fd),
            quantity: ffd::tlv::Fvln { scale: 0, mantissa: 1 },
            vat: vat::VAT20,
            subject: 1,
            method: 4,
        }],
        cash: 0,
        shift: 1,
        number: fd,
        taxation: 1,
    };
    let time = 1_700_000_000 + fd;
    ffd::build::message(id, fd, &ffd::build::receipt(id, fd, time, &r))
}

/// Resident memory of this process, bytes.
pub fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// The value of a counter/gauge in Prometheus text, summed over the series whose labels
/// contain every `label="value"` given.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

pub async fn metrics_text(gw: &TestGateway) -> String {
    let addr = gw.running().metrics.unwrap();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// The TCP address a gateway process started with `--data-dir dir` listens on, from the
/// address file it writes once it is ready (a fresh one: remove the old before spawning).
pub fn child_tcp_addr(dir: &std::path::Path, within: Duration) -> SocketAddr {
    let addrs = dir.join("gateway.addrs.json");
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Ok(text) = std::fs::read_to_string(&addrs)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        {
            return v["tcp"].as_str().unwrap().parse().unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gateway did not start; see {}",
            dir.join("gateway.log").display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
