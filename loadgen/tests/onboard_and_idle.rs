//! Onboarding through a stand-in for the admin API (batches, bearer token, body shape,
//! errors), and idle connection holding against the baseline.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use loadgen::baseline::{Baseline, BaselineConfig};
use loadgen::idle::{IdleConfig, idle};
use loadgen::onboard::{OnboardConfig, onboard};
use loadgen::transport::TransportKind;
use loadgen::transport::quic::QuicOptions;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
struct Seen {
    auth: String,
    path: String,
    body: serde_json::Value,
}

/// A one-request-per-connection HTTP/1.1 server answering `status` with `answer`.
async fn admin_api(status: u16, answer: &'static str) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let s2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = l.accept().await else { return };
            let seen = s2.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(sock);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let (mut len, mut auth) = (0usize, String::new());
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).await.expect("header");
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').expect("header line");
                        match k.to_ascii_lowercase().as_str() {
                            "content-length" => len = v.trim().parse().expect("length"),
                            "authorization" => auth = v.trim().to_owned(),
                            _ => {}
                        }
                    }
                    let mut body = vec![0u8; len];
                    r.read_exact(&mut body).await.expect("body");
                    seen.lock().expect("lock").push(Seen {
                        auth,
                        path,
                        body: serde_json::from_slice(&body).expect("json body"),
                    });
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    r.get_mut().write_all(resp.as_bytes()).await.expect("write");
                }
            });
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_posts_batches_with_the_token() {
    loadgen::install_crypto_provider();
    let (url, seen) = admin_api(200, r#"{"created": 5000, "updated": 0, "unchanged": 0, "errors": []}"#).await;
    let cfg = OnboardConfig {
        admin: loadgen::net::check_admin_url(&url).expect("url"),
        token: "tok-123".into(),
        batch: 5_000,
        tariff: Some("OFD-15".into()),
        paid_until: Some("2030-01-01T00:00:00Z".into()),
        timeout: Duration::from_secs(10),
    };
    let out = onboard(&cfg, &common::population(12_001)).await.expect("onboard");
    assert_eq!(out.created, 15_000, "three answers summed");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 3, "12,001 registers in batches of at most 5,000");
    let sizes: Vec<usize> = seen.iter().map(|s| s.body["registers"].as_array().expect("array").len()).collect();
    assert_eq!(sizes, [5_000, 5_000, 2_001]);
    for s in &seen {
        assert_eq!(s.auth, "Bearer tok-123");
        assert_eq!(s.path, "/v1/registers/import");
        assert_eq!(s.body["partial"], false);
        assert_eq!(s.body["dry_run"], false);
    }
    let r = &seen[0].body["registers"][0];
    for k in ["rnm", "kkt_serial", "owner_inn", "name", "address", "group", "fn_number", "tariff", "paid_until"] {
        assert!(r.get(k).is_some(), "field {k}");
    }
    let inn = storage::Inn::parse(r["owner_inn"].as_str().expect("inn")).expect("valid INN");
    storage::Rnm::parse(r["rnm"].as_str().expect("rnm"))
        .expect("rnm")
        .verify(&inn, r["kkt_serial"].as_str().expect("serial"))
        .expect("RNM check code");
    assert_eq!(r["tariff"], "OFD-15");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboard_subcommand_imports_the_population() {
    let (url, seen) = admin_api(200, r#"{"created": 7, "updated": 0, "unchanged": 0, "errors": []}"#).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["onboard", "--count", "7", "--first-register", "40", "--seed", "3", "--admin", &url])
        .args(["--admin-token", "tok-cli", "--tariff", "OFD-15"])
        .output()
        .await
        .expect("run loadgen");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("onboarded 7 registers"));
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].auth, "Bearer tok-cli");
    let regs = seen[0].body["registers"].as_array().expect("array");
    assert_eq!(regs.len(), 7);
    assert_eq!(regs[0]["fn_number"], "9999003000000040", "register 40 of seed 3 first");
    // a non-loopback admin URL is refused before anything is sent
    let st = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["onboard", "--count", "1", "--admin", "http://10.0.0.1:8080", "--admin-token", "t"])
        .output()
        .await
        .expect("run loadgen");
    assert_eq!(st.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_reports_refusals() {
    loadgen::install_crypto_provider();
    let (url, _) = admin_api(401, r#"{"error": "unauthorized"}"#).await;
    let cfg = OnboardConfig {
        admin: loadgen::net::check_admin_url(&url).expect("url"),
        token: "wrong".into(),
        batch: 100,
        tariff: None,
        paid_until: None,
        timeout: Duration::from_secs(10),
    };
    let e = onboard(&cfg, &common::population(3)).await.expect_err("401");
    assert!(format!("{e:#}").contains("401"), "{e:#}");

    let (url, _) =
        admin_api(200, r#"{"created": 1, "updated": 0, "unchanged": 0, "errors": [{"rnm": "x", "error": "bad"}]}"#)
            .await;
    let cfg = OnboardConfig { admin: loadgen::net::check_admin_url(&url).expect("url"), ..cfg };
    let e = onboard(&cfg, &common::population(2)).await.expect_err("errors");
    assert!(format!("{e:#}").contains("refused 1"), "{e:#}");
}

fn idle_cfg(
    target: std::net::SocketAddr,
    transport: TransportKind,
    ca: Vec<CertificateDer<'static>>,
    n: u64,
) -> IdleConfig {
    IdleConfig {
        target,
        transport,
        ca,
        server_name: "localhost".into(),
        sources: Vec::new(),
        connections: n,
        population: common::population(n),
        fd_start: 1,
        ramp_rate: Some(2_000.0),
        hold: Duration::from_millis(300),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_holds_tcp_and_quic_connections() {
    let any = "127.0.0.1:0".parse().ok();
    let b =
        Baseline::start(BaselineConfig { tcp: any, quic: any, ..BaselineConfig::default() }).await.expect("baseline");
    let ca: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(b.cert_pem.as_deref().expect("pem").as_bytes())
            .collect::<Result<_, _>>()
            .expect("pem");
    for (t, addr) in [(TransportKind::Tcp, b.tcp_addr), (TransportKind::Quic, b.quic_addr)] {
        let r = idle(idle_cfg(addr.expect("addr"), t, ca.clone(), 300), CancellationToken::new()).await.expect("idle");
        assert_eq!(r.established, 300, "{t:?}: {}", r.summary());
        assert_eq!(r.failed, 0);
        assert_eq!(r.first_documents_ok, 300, "{t:?}: {}", r.summary());
        assert_eq!(r.open_at_end, 300);
        assert_eq!(r.connect_latency_us.count, 300);
        assert!(r.time_to_plateau_s >= 0.1, "ramp at 2,000/s: {}", r.summary());
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_counts_connections_the_gateway_closes() {
    // a responder that closes every connection after its first message
    let d = common::start(common::Mode::Close).await;
    let mut cfg = idle_cfg(d.addr, TransportKind::Tcp, Vec::new(), 20);
    cfg.send_first = true;
    let r = idle(cfg, CancellationToken::new()).await.expect("idle");
    assert_eq!(r.established, 20);
    assert_eq!(r.first_documents_failed, 20);
    assert_eq!(r.closed_by_peer, 20, "{}", r.summary());
    assert_eq!(r.open_at_end, 0);
}
