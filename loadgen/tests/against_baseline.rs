//! loadgen against its own baseline responder over TCP, TLS and QUIC: every
//! acknowledgment verifies, nothing times out or is refused.

mod common;

use std::time::Duration;

use loadgen::baseline::{Baseline, BaselineConfig};
use loadgen::run::{Behaviour, LoadModel, RunConfig, run};
use loadgen::stats::Report;
use loadgen::transport::TransportKind;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_util::sync::CancellationToken;

async fn baseline() -> Baseline {
    let any = "127.0.0.1:0".parse().ok();
    Baseline::start(BaselineConfig { tcp: any, tls: any, quic: any, ..BaselineConfig::default() })
        .await
        .expect("baseline")
}

fn ca(b: &Baseline) -> Vec<CertificateDer<'static>> {
    let pem = b.cert_pem.as_deref().expect("cert");
    CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>().expect("pem")
}

fn assert_clean(r: &Report, what: &str) {
    let c = &r.counters;
    assert!(c.documents_ok > 50, "{what}: too few documents: {}", r.summary());
    assert_eq!(r.mismatches_total, 0, "{what}: {}", r.summary());
    assert_eq!(c.documents_ok, c.documents_sent, "{what}: {}", r.summary());
    assert_eq!(c.timeouts + c.refusals + c.connects_failed + c.io_errors, 0, "{what}: {}", r.summary());
    assert!(r.verdict.ok && r.verdict.exit_code == 0, "{what}: {}", r.summary());
    assert!(r.latency_us.uncorrected.count > 0 && r.latency_us.uncorrected.p50 > 0);
    // FFD versions and document kinds all appear
    assert!(r.documents_by_kind["receipt"] > 0 && r.documents_by_kind["open_shift"] > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_open_loop_persistent() {
    let b = baseline().await;
    let mut cfg = RunConfig::new(b.tcp_addr.expect("tcp"), TransportKind::Tcp, common::population(20));
    cfg.load = LoadModel::Open { rate: 2_000.0 };
    cfg.duration = Duration::from_millis(1500);
    cfg.warmup = Duration::from_millis(200);
    cfg.duplicates = 0.05;
    let r = run(cfg, CancellationToken::new()).await.expect("run");
    assert_clean(&r, "tcp");
    let c = &r.counters;
    assert!(c.duplicates_sent > 0 && c.acks_identical == c.duplicates_sent, "{}", r.summary());
    assert_eq!(c.ack_changed, 0);
    assert!(r.latency_us.corrected.is_some() && r.latency_us.send_lag.is_some());
    // 2,000/s offered over 1.3 s of measurement: the baseline keeps up
    assert!(r.rates.achieved > 1_500.0, "{}", r.summary());
    assert_eq!(c.connects_ok, 20);
    assert_eq!(b.messages(), c.documents_sent + c.duplicates_sent);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_per_document_connections() {
    let b = baseline().await;
    let mut cfg = RunConfig::new(b.tcp_addr.expect("tcp"), TransportKind::Tcp, common::population(10));
    cfg.behaviour = Behaviour::PerDocument;
    cfg.load = LoadModel::Open { rate: 500.0 };
    cfg.duration = Duration::from_secs(1);
    let r = run(cfg, CancellationToken::new()).await.expect("run");
    assert_clean(&r, "tcp per-document");
    // one connection per document
    assert_eq!(r.counters.connects_ok, r.counters.documents_sent, "{}", r.summary());
    assert!(r.latency_us.connect.count >= r.counters.documents_sent);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_closed_loop() {
    // a self-signed ECDSA certificate made here with rcgen, like the gateway's dev cert
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("rcgen");
    let material = loadgen::baseline::ServerTls {
        certs: vec![ck.cert.der().clone()],
        key: rustls::pki_types::PrivateKeyDer::from(rustls::pki_types::PrivatePkcs8KeyDer::from(
            ck.signing_key.serialize_der(),
        )),
        cert_pem: ck.cert.pem(),
    };
    let b = Baseline::start(BaselineConfig {
        tls: "127.0.0.1:0".parse().ok(),
        tls_material: Some(material),
        ..BaselineConfig::default()
    })
    .await
    .expect("baseline");
    let mut cfg = RunConfig::new(b.tls_addr.expect("tls"), TransportKind::Tls, common::population(8));
    cfg.ca = ca(&b);
    cfg.server_name = "127.0.0.1".into();
    cfg.load = LoadModel::Closed;
    cfg.duration = Duration::from_secs(1);
    let r = run(cfg, CancellationToken::new()).await.expect("run");
    assert_clean(&r, "tls");
    assert!(r.latency_us.corrected.is_none(), "closed loop has no corrected latency");
    assert_eq!(r.counters.connects_ok, 8);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_rejects_an_untrusted_certificate() {
    let b = baseline().await;
    let other = loadgen::baseline::ServerTls::self_signed().expect("cert");
    let mut cfg = RunConfig::new(b.tls_addr.expect("tls"), TransportKind::Tls, common::population(2));
    cfg.ca = CertificateDer::pem_slice_iter(other.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>().expect("pem");
    cfg.duration = Duration::from_millis(300);
    let r = run(cfg, CancellationToken::new()).await.expect("run");
    assert_eq!(r.counters.documents_sent, 0);
    assert!(r.connect_errors["handshake"] >= 2, "{}", r.summary());
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_open_and_per_document() {
    let b = baseline().await;
    let target = b.quic_addr.expect("quic");
    let mut cfg = RunConfig::new(target, TransportKind::Quic, common::population(10));
    cfg.ca = ca(&b);
    cfg.load = LoadModel::Open { rate: 1_000.0 };
    cfg.duration = Duration::from_secs(1);
    cfg.duplicates = 0.05;
    let r = run(cfg.clone(), CancellationToken::new()).await.expect("run");
    assert_clean(&r, "quic");
    assert_eq!(r.counters.connects_ok, 10, "many streams per connection");
    assert_eq!(r.counters.ack_changed, 0);

    cfg.behaviour = Behaviour::PerDocument;
    cfg.load = LoadModel::Open { rate: 200.0 };
    cfg.duplicates = 0.0;
    let r = run(cfg, CancellationToken::new()).await.expect("run");
    assert_clean(&r, "quic per-document");
    assert_eq!(r.counters.connects_ok, r.counters.documents_sent);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_source_addresses_are_used() {
    let b = baseline().await;
    let mut cfg = RunConfig::new(b.tcp_addr.expect("tcp"), TransportKind::Tcp, common::population(12));
    cfg.sources = loadgen::net::parse_sources("127.0.0.2-127.0.0.5").expect("sources");
    cfg.duration = Duration::from_millis(500);
    let r = run(cfg, CancellationToken::new()).await.expect("run");
    assert_clean(&r, "sources");
    assert_eq!(r.sources.len(), 4);
    for s in &r.sources {
        assert_eq!(s.connects, 3, "round-robin: {:?}", r.sources);
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_report_has_every_section() {
    let b = baseline().await;
    let mut cfg = RunConfig::new(b.tcp_addr.expect("tcp"), TransportKind::Tcp, common::population(4));
    cfg.load = LoadModel::Open { rate: 400.0 };
    cfg.duration = Duration::from_millis(500);
    cfg.thresholds = vec!["p99<10s".parse().expect("t"), "rate>=1000000".parse().expect("t")];
    let r = run(cfg, CancellationToken::new()).await.expect("run");
    let v = serde_json::to_value(&r).expect("json");
    for k in [
        "schema",
        "config",
        "environment",
        "timing",
        "rates",
        "counters",
        "mismatches",
        "connect_errors",
        "documents_by_kind",
        "sources",
        "latency_us",
        "thresholds",
        "verdict",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["schema"], "loadgen.run/1");
    assert_eq!(v["config"]["transport"], "tcp");
    assert!(v["latency_us"]["corrected"]["p999"].is_u64());
    assert!(v["environment"]["file_limit"]["soft"].is_u64());
    // the impossible rate threshold fails the run with the k6 exit code
    assert_eq!(v["verdict"]["exit_code"], 99);
    assert_eq!(v["thresholds"][0]["ok"], true);
    assert_eq!(v["thresholds"][1]["ok"], false);
    b.stop().await;
}
