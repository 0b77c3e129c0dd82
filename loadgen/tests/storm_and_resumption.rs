//! What the benchmark suite needs beyond plain runs: TLS session resumption that is
//! counted (so a "resumed" figure shows how many handshakes really were), the phases an
//! idle hold reports to a script (`--ready-file`, `--wait-file`), and the reconnect storm
//! (`--reconnect`): every register comes back after a server restart and delivers its next
//! document.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use loadgen::baseline::{Baseline, BaselineConfig, ServerTls};
use loadgen::idle::{IdleConfig, Reconnect, idle};
use loadgen::run::{Behaviour, LoadModel, RunConfig, run};
use loadgen::transport::TransportKind;
use loadgen::transport::quic::QuicOptions;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_util::sync::CancellationToken;

fn ca_of(m: &ServerTls) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(m.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>().expect("pem")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_resumption_is_used_and_counted() {
    loadgen::install_crypto_provider();
    let m = ServerTls::self_signed().expect("cert");
    let ca = ca_of(&m);
    let b = Baseline::start(BaselineConfig {
        tls: "127.0.0.1:0".parse().ok(),
        tls_material: Some(m),
        ..BaselineConfig::default()
    })
    .await
    .expect("baseline");
    for resume in [false, true] {
        let mut cfg = RunConfig::new(b.tls_addr.expect("tls"), TransportKind::Tls, common::population(10));
        cfg.ca = ca.clone();
        cfg.tls_resumption = resume;
        cfg.behaviour = Behaviour::PerDocument;
        cfg.load = LoadModel::Closed;
        cfg.docs_per_register = Some(6);
        cfg.duration = Duration::from_secs(20);
        let r = run(cfg, CancellationToken::new()).await.expect("run");
        let h = r.tls_handshakes.expect("TLS handshakes are counted");
        assert_eq!(r.counters.documents_ok, 60, "{}", r.summary());
        assert_eq!(h.full + h.resumed, r.counters.connects_ok, "{}", r.summary());
        if resume {
            // the first connection of each register at the latest finds a ticket
            assert!(h.resumed >= 40, "{}", r.summary());
            assert!(h.full <= 20, "{}", r.summary());
        } else {
            assert_eq!(h.resumed, 0, "{}", r.summary());
        }
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["tls_handshakes"]["resumed"], h.resumed);
    }
    b.stop().await;
}

fn idle_cfg(target: SocketAddr, n: u64) -> IdleConfig {
    IdleConfig {
        target,
        transport: TransportKind::Tcp,
        ca: Vec::new(),
        server_name: "localhost".into(),
        sources: Vec::new(),
        connections: n,
        population: common::population(n),
        fd_start: 1,
        ramp_rate: Some(5_000.0),
        hold: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(5),
        send_first: true,
        timeout: Duration::from_secs(5),
        quic: QuicOptions { keep_alive: Some(Duration::from_secs(1)), ..QuicOptions::default() },
        ready_file: None,
        wait_file: None,
        reconnect: None,
        storm_csv: None,
        progress: false,
    }
}

fn phase(p: &Path) -> Option<serde_json::Value> {
    std::fs::read_to_string(p).ok().and_then(|s| serde_json::from_str(&s).ok())
}

async fn wait_phase(p: &Path, want: &str) -> serde_json::Value {
    for _ in 0..500 {
        if let Some(v) = phase(p)
            && v["phase"] == want
        {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("phase {want} never written to {}", p.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_documents_wait_for_the_wait_file_and_phases_are_written() {
    let b = Baseline::start(BaselineConfig { tcp: "127.0.0.1:0".parse().ok(), ..BaselineConfig::default() })
        .await
        .expect("baseline");
    let dir = tempfile::tempdir().expect("tmp");
    let (ready, go) = (dir.path().join("ready.json"), dir.path().join("go"));
    let mut cfg = idle_cfg(b.tcp_addr.expect("tcp"), 50);
    cfg.hold = Duration::from_secs(1);
    cfg.ramp_rate = Some(200.0);
    cfg.ready_file = Some(ready.clone());
    cfg.wait_file = Some(go.clone());
    let h = tokio::spawn(idle(cfg, CancellationToken::new()));
    let v = wait_phase(&ready, "connected").await;
    assert_eq!(v["established"], 50);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(b.messages(), 0, "no document before the wait file exists");
    let go_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
    std::fs::write(&go, b"").expect("go");
    let r = h.await.expect("join").expect("idle");
    assert_eq!(r.first_documents_ok, 50, "{}", r.summary());
    assert_eq!(b.messages(), 50);
    assert!(r.plateau_at_unix_s >= r.connected_at_unix_s + 0.2, "{}", r.summary());
    // the first documents went out at the ramp rate (50 at 200/s: a quarter of a second)
    assert!(r.plateau_at_unix_s - go_at >= 0.2, "{} after go: {}", r.plateau_at_unix_s - go_at, r.summary());
    assert!(r.rss_connected.is_some() && r.storm.is_none());
    assert_eq!(phase(&ready).expect("done")["phase"], "done");

    // no wait file before the hold ends: no first documents at all
    let mut cfg = idle_cfg(b.tcp_addr.expect("tcp"), 10);
    cfg.hold = Duration::from_millis(300);
    cfg.wait_file = Some(dir.path().join("never"));
    let r = idle(cfg, CancellationToken::new()).await.expect("idle");
    assert_eq!((r.established, r.first_documents_ok, r.first_documents_failed), (10, 0, 0), "{}", r.summary());
    assert_eq!(b.messages(), 50);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_storm_every_register_delivers_its_next_document_after_a_restart() {
    let b = Baseline::start(BaselineConfig { tcp: "127.0.0.1:0".parse().ok(), ..BaselineConfig::default() })
        .await
        .expect("baseline");
    let addr = b.tcp_addr.expect("tcp");
    let dir = tempfile::tempdir().expect("tmp");
    let (ready, csv) = (dir.path().join("ready.json"), dir.path().join("storm.csv"));
    let n = 300;
    let mut cfg = idle_cfg(addr, n);
    cfg.ready_file = Some(ready.clone());
    cfg.storm_csv = Some(csv.clone());
    cfg.reconnect = Some(Reconnect { backoff_min: Duration::from_millis(20), backoff_max: Duration::from_millis(200) });
    let h = tokio::spawn(idle(cfg, CancellationToken::new()));
    wait_phase(&ready, "plateau").await;
    assert_eq!(b.messages(), n);
    // restart: every connection is closed, nothing listens for a while, then a new server
    b.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b2 = Baseline::start(BaselineConfig { tcp: Some(addr), ..BaselineConfig::default() }).await.expect("again");
    let r =
        tokio::time::timeout(Duration::from_secs(25), h).await.expect("ends by itself").expect("join").expect("idle");
    let st = r.storm.clone().expect("storm report");
    assert!(st.complete, "{}", r.summary());
    assert_eq!((st.dropped, st.recovered, st.not_recovered), (n, n, 0), "{}", r.summary());
    assert!(st.reconnect_attempts >= n, "{}", r.summary());
    assert!(st.reconnect_errors["refused"] > 0, "nothing listened for 300 ms: {}", r.summary());
    // recoveries waited for the new server (a register may slip back into the old one
    // while it stops, and is dropped a second time: hence the median)
    assert!(st.recovery_us.p50 >= 250_000, "{}", r.summary());
    let (first, last) = (st.first_drop_unix_s.expect("first"), st.last_recovery_unix_s.expect("last"));
    assert!((st.all_recovered_after_s.expect("all") - (last - first)).abs() < 1e-3);
    // the next document is FD 2, acknowledged by the new server
    assert!(b2.messages() >= n, "{}", b2.messages());
    assert_eq!(r.open_at_end, n, "{}", r.summary());
    let text = std::fs::read_to_string(&csv).expect("csv");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "register,dropped_at_unix_s,recovered_at_unix_s,attempts,recovery_us,connect_us");
    assert!(lines.len() as u64 > n, "one line per recovery");
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["storm"]["complete"], true);
    b2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_storm_is_reported_as_such() {
    // a server that goes away for good: nobody recovers, the hold bounds the wait
    let b = Baseline::start(BaselineConfig { tcp: "127.0.0.1:0".parse().ok(), ..BaselineConfig::default() })
        .await
        .expect("baseline");
    let dir = tempfile::tempdir().expect("tmp");
    let ready = dir.path().join("ready.json");
    let mut cfg = idle_cfg(b.tcp_addr.expect("tcp"), 20);
    cfg.hold = Duration::from_secs(2);
    cfg.ready_file = Some(ready.clone());
    cfg.reconnect = Some(Reconnect::default());
    let h = tokio::spawn(idle(cfg, CancellationToken::new()));
    wait_phase(&ready, "plateau").await;
    b.stop().await;
    let r = h.await.expect("join").expect("idle");
    let st = r.storm.expect("storm");
    assert!(!st.complete);
    assert_eq!((st.dropped, st.recovered, st.not_recovered), (20, 0, 20));
    assert!(st.all_recovered_after_s.is_none() && st.last_recovery_unix_s.is_none());
    assert_eq!(r.open_at_end, 0);
}
