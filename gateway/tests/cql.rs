//! The gateway on a real CQL server (Apache Cassandra from `scripts/cql-cluster.sh` in the
//! default test run; ScyllaDB in production), end to end through its listeners:
//!
//! * a receipt over TCP, TLS and QUIC is acknowledged with code 0; a retransmission gets
//!   the byte-identical acknowledgment; the time index and activity follow (derived);
//! * two gateways on one keyspace, the same documents sent to both at once: every
//!   document is stored once and both gateways answer with the same acknowledgment bytes
//!   (first writer wins across gateways);
//! * a garbled envelope never shadows the genuine document (issue 20's rule, on this
//!   backend too);
//! * FNS forwarding from the journal: every document at the receiver exactly once;
//! * a gateway SIGKILLed between its acknowledgments and their derived writes: another
//!   gateway derives and forwards everything from the journal (issue 19's fault);
//! * refusals at start: a gateway signing with another key than a live node of the same
//!   keyspace; a keyspace with another schema version; an unreachable cluster, quickly
//!   and naming the contact points.
//!
//! Runs when `SCYLLA_URI` names the contact points (scripts/test.sh starts a node and
//! sets it); without it each test says `skipped: no CQL server at SCYLLA_URI` and returns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fns_support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use ffd::{AckView, ResponseCode};
use fns_support::{TestReceiver, fast_config, onboard, receipt, register, wait_for};
use gateway::Config;
use gateway::control::fns::receiver::ReceiverOptions;
use storage::model::DocumentKey;
use storage::scylla::{MigrationConfig, ScyllaConfig, connect_session, migrate};
use storage::{PageRequest, Timestamp};
use tokio::io::AsyncWriteExt;

const KEY: &str = "6f66642d636c75737465722d7465737473206b6579";

fn nodes() -> Option<Vec<String>> {
    let uri = std::env::var("SCYLLA_URI").ok()?;
    let v: Vec<String> = uri.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    (!v.is_empty()).then_some(v)
}

fn skipped() {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: no CQL server at SCYLLA_URI");
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A freshly migrated keyspace (RF = nodes known, at most 3).
async fn keyspace(nodes: &[String]) -> (String, u32) {
    let millis = Timestamp::now().millis();
    let ks = format!("gwt_{millis}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let session = connect_session(&ScyllaConfig { nodes: nodes.to_vec(), ..ScyllaConfig::default() }).await.unwrap();
    let rf = u32::try_from(session.get_cluster_state().get_nodes_info().len().clamp(1, 3)).unwrap();
    migrate(&session, &MigrationConfig::single_dc(ks.as_str(), "dc1", rf)).await.expect("migrate");
    (ks, rf)
}

async fn drop_keyspace(nodes: &[String], ks: &str) {
    let session = connect_session(&ScyllaConfig { nodes: nodes.to_vec(), ..ScyllaConfig::default() }).await.unwrap();
    let _ = session.query_unpaged(format!("DROP KEYSPACE IF EXISTS {ks}"), ()).await;
}

/// A gateway configuration on the CQL store.
fn cql_config(base: Config, nodes: &[String], ks: &str, rf: u32, node: &str) -> Config {
    let mut cfg = base;
    cfg.storage.backend = "scylla".into();
    cfg.storage.nodes = nodes.to_vec();
    cfg.storage.keyspace = ks.into();
    cfg.storage.local_dc = "dc1".into();
    cfg.storage.min_replication_factor = rf;
    cfg.storage.journal_settle = Duration::from_secs(8);
    cfg.signer.key_hex = Some(KEY.into());
    cfg.node_id = node.into();
    cfg
}

async fn start_cql(nodes: &[String], ks: &str, rf: u32, node: &str) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cql_config(test_config(dir.path()), nodes, ks, rf, node);
    let running = gateway::start(cfg).await.expect("gateway on CQL starts");
    TestGateway { running: Some(running), dir }
}

fn ack_of(reply: &Bytes) -> AckView {
    AckView::parse_reply(reply.clone()).expect("an acknowledgment").1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_over_every_transport_are_acknowledged_and_derived() {
    let Some(nodes) = nodes() else { return skipped() };
    let (ks, rf) = keyspace(&nodes).await;
    let gw = start_cql(&nodes, &ks, rf, "gw-a").await;
    gw.onboard(s1_register()).await;
    // plain TCP, and the retransmission byte for byte
    let first = tcp_exchange(gw.tcp(), S1).await.expect("acknowledged");
    assert_eq!(ack_of(&first).code, Some(ResponseCode::Accepted));
    let again = tcp_exchange(gw.tcp(), S1).await.expect("acknowledged again");
    assert_eq!(first, again, "a retransmission gets the byte-identical acknowledgment");
    // TLS and QUIC, other documents of other registers
    let regs = registers(2, 700);
    for (r, _) in &regs {
        gw.onboard(r.clone()).await;
    }
    let cert = gw.running().dev_cert.clone().expect("development certificate");
    let tls = common::tls_client_config(&cert, false);
    let connector = tokio_rustls::TlsConnector::from(tls);
    let tcp = tokio::net::TcpStream::connect(gw.tls()).await.unwrap();
    let server = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut s = connector.connect(server, tcp).await.expect("TLS handshake");
    s.write_all(&receipt_message(&regs[0].1, 1)).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), read_reply(&mut s)).await.unwrap().expect("reply");
    assert_eq!(ack_of(&reply).code, Some(ResponseCode::Accepted), "over TLS");

    let qc =
        quinn::crypto::rustls::QuicClientConfig::try_from((*common::tls_client_config(&cert, true)).clone()).unwrap();
    let qcfg = quinn::ClientConfig::new(std::sync::Arc::new(qc));
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(qcfg);
    let conn = ep.connect(gw.quic(), "localhost").unwrap().await.expect("QUIC handshake");
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&receipt_message(&regs[1].1, 1)).await.unwrap();
    send.finish().unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), read_reply(&mut recv)).await.unwrap().expect("reply");
    assert_eq!(ack_of(&reply).code, Some(ResponseCode::Accepted), "over QUIC");
    conn.close(0u32.into(), b"done");

    // the derived views follow the journal
    let store = gw.store();
    store.settle().await.expect("derived views catch up");
    let r = &regs[0].0;
    let page = store
        .documents_by_register(
            &r.rnm,
            Timestamp(0),
            Timestamp::now().plus(Duration::from_secs(60)),
            PageRequest::first(10),
        )
        .await
        .unwrap();
    if page.items.len() != 1 {
        let by_fn = store.documents_by_fn(&r.fn_number, 0..=u32::MAX, PageRequest::first(10)).await.unwrap();
        let act = store.get_activity(&r.rnm).await.unwrap();
        panic!(
            "the time index has {} documents after settle(); by FN: {:?}; activity: {act:?}",
            page.items.len(),
            by_fn.items.iter().map(|d| (d.fd, d.received_at)).collect::<Vec<_>>()
        );
    }
    let act = store.get_activity(&r.rnm).await.unwrap().expect("activity");
    assert_eq!((act.documents, act.last_fd), (1, Some(1)));
    let s1 = s1_register();
    assert_eq!(
        store.get_activity(&s1.rnm).await.unwrap().expect("activity").documents,
        1,
        "retransmission not counted"
    );
    gw.stop().await;
    drop_keyspace(&nodes, &ks).await;
}

/// Sends `msg` and returns the reply bytes.
async fn exchange(addr: SocketAddr, msg: Bytes) -> Bytes {
    tcp_exchange(addr, &msg).await.expect("acknowledged")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_keyspace_answer_with_the_first_writers_ack() {
    let Some(nodes) = nodes() else { return skipped() };
    let (ks, rf) = keyspace(&nodes).await;
    let a = start_cql(&nodes, &ks, rf, "gw-a").await;
    let b = start_cql(&nodes, &ks, rf, "gw-b").await;
    let regs = registers(4, 720);
    for (r, _) in &regs {
        a.onboard(r.clone()).await;
        b.running().shared.data.apply_register(r);
    }
    // the same document to both gateways at the same moment, 60 times
    let mut races = Vec::new();
    for fd in 1..=15u32 {
        for (_, id) in &regs {
            let msg = receipt_message(id, fd);
            let (ta, tb) = (a.tcp(), b.tcp());
            races.push(tokio::spawn(async move {
                let (x, y) = tokio::join!(exchange(ta, msg.clone()), exchange(tb, msg));
                (x, y)
            }));
        }
    }
    let mut identical = 0;
    for r in races {
        let (x, y) = r.await.unwrap();
        assert_eq!(ack_of(&x).code, Some(ResponseCode::Accepted));
        assert_eq!(&x[30..], &y[30..], "both gateways answer with the same acknowledgment container");
        identical += 1;
    }
    assert_eq!(identical, 60);
    // stored once each, with that acknowledgment; a third retransmission agrees
    let store = a.store();
    for (r, id) in &regs {
        for fd in [1u32, 8, 15] {
            let d = store.get_document(&DocumentKey { fn_number: r.fn_number, fd }).await.unwrap().expect("stored");
            let reply = exchange(b.tcp(), receipt_message(id, fd)).await;
            assert_eq!(&reply[30..], &d.ack[..], "the stored ack is the one sent");
        }
    }
    store.settle().await.unwrap();
    let act = store.get_activity(&regs[0].0.rnm).await.unwrap().expect("activity");
    assert_eq!(act.documents, 15, "each document counted once, whichever gateway stored it");
    a.stop().await;
    b.stop().await;
    drop_keyspace(&nodes, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbled_envelope_never_shadows_the_document() {
    let Some(nodes) = nodes() else { return skipped() };
    let (ks, rf) = keyspace(&nodes).await;
    let gw = start_cql(&nodes, &ks, rf, "gw-a").await;
    let regs = registers(2, 740);
    for (r, _) in &regs {
        gw.onboard(r.clone()).await;
    }
    for (fd, how) in [(1u32, 0usize), (2, 1), (3, 2)] {
        let genuine = receipt_message(&regs[0].1, fd);
        let mut copy = genuine.to_vec();
        match how {
            0 => copy[23] = if copy[23] == b'9' { b'0' } else { copy[23] + 1 }, // session FN digit
            1 => copy[8..24].copy_from_slice(regs[1].0.fn_number.as_bytes()),   // another register's FN
            _ => copy[6] ^= 0x01,                                               // P-version
        }
        let mut s = tokio::net::TcpStream::connect(gw.tcp()).await.unwrap();
        s.write_all(&copy).await.unwrap();
        let _ = s.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), read_reply(&mut s)).await;
        let second = exchange(gw.tcp(), genuine.clone()).await;
        assert_eq!(ack_of(&second).code, Some(ResponseCode::Accepted), "garbling {how}: genuine accepted");
        let third = exchange(gw.tcp(), genuine).await;
        assert_eq!(third, second, "garbling {how}: retransmission identical");
    }
    gw.stop().await;
    drop_keyspace(&nodes, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_reach_the_fns_receiver_once_from_the_journal() {
    let Some(nodes) = nodes() else { return skipped() };
    let (ks, rf) = keyspace(&nodes).await;
    let rx = TestReceiver::start(ReceiverOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = cql_config(fast_config(dir.path(), Some(rx.url())), &nodes, &ks, rf, "gw-a");
    let gw = gateway::start(cfg).await.expect("starts");
    let regs: Vec<_> = (1..=3).map(|i| register(900 + i, fns_support::INN_A)).collect();
    onboard(&gw, &regs).await;
    let msgs: Vec<Bytes> = regs.iter().flat_map(|r| (1..=10).map(move |fd| receipt(r, fd))).collect();
    fns_support::send_many(gw.tcp.unwrap(), msgs, 3).await;
    // retransmissions are not forwarded again
    fns_support::send(gw.tcp.unwrap(), &receipt(&regs[0], 4)).await;
    wait_for(Duration::from_secs(30), "30 documents at the receiver", || async { rx.rx.stats().unique == 30 }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = rx.rx.stats();
    assert_eq!((s.unique, s.duplicates), (30, 0), "{s:?}");
    let store = gw.shared.store.clone();
    wait_for(Duration::from_secs(10), "an empty backlog", || async { store.backlog().await.unwrap().pending == 0 })
        .await;
    gw.shutdown().await.unwrap();
    drop_keyspace(&nodes, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_at_start_are_clear() {
    let Some(nodes) = nodes() else { return skipped() };
    let (ks, rf) = keyspace(&nodes).await;
    let a = start_cql(&nodes, &ks, rf, "gw-a").await;
    // another key beside a live node of the same keyspace
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = cql_config(test_config(dir.path()), &nodes, &ks, rf, "gw-other-key");
    cfg.signer.key_hex = Some("00112233445566778899aabbccddeeff".into());
    let started = Instant::now();
    let err = loop {
        match gateway::start(cfg.clone()).await {
            Err(e) => break format!("{e:#}"),
            // gw-a announces its key within a heartbeat: a start in between may pass
            Ok(r) => {
                r.shutdown().await.unwrap();
                assert!(started.elapsed() < Duration::from_secs(20), "never refused");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    assert!(err.contains("another key") && err.contains("gw-a"), "{err}");
    a.stop().await;

    // a keyspace whose schema is not this build's
    let session = connect_session(&ScyllaConfig { nodes: nodes.clone(), ..ScyllaConfig::default() }).await.unwrap();
    session
        .query_unpaged(format!("UPDATE {ks}.schema_version SET checksum = 'x' WHERE shard = 0 AND version = 99"), ())
        .await
        .unwrap();
    session
        .query_unpaged(format!("DELETE FROM {ks}.schema_version WHERE shard = 0 AND version = 1"), ())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = gateway::start(cql_config(test_config(dir.path()), &nodes, &ks, rf, "gw-b")).await.expect_err("refused");
    let err = format!("{err:#}");
    assert!(err.contains("99") && err.contains("missing [1]"), "names both versions: {err}");
    drop_keyspace(&nodes, &ks).await;

    // nobody listening: a quick, clear error
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = cql_config(test_config(dir.path()), &["127.0.0.1:1".to_owned()], "nowhere", 1, "gw-c");
    cfg.storage.request_timeout = Duration::from_secs(1);
    cfg.storage.journal_settle = Duration::from_secs(2);
    let started = Instant::now();
    let err = format!("{:#}", gateway::start(cfg).await.expect_err("no cluster"));
    assert!(err.contains("127.0.0.1:1"), "names the contact points: {err}");
    assert!(started.elapsed() < Duration::from_secs(30), "bounded: {:?}", started.elapsed());
}

/// Rows of a table of the test keyspace (a raw count, behind the store's back).
async fn count_rows(nodes: &[String], ks: &str, table: &str) -> i64 {
    let session = connect_session(&ScyllaConfig { nodes: nodes.to_vec(), ..ScyllaConfig::default() }).await.unwrap();
    let rows = session.query_unpaged(format!("SELECT count(*) FROM {ks}.{table}"), ()).await.unwrap();
    rows.into_rows_result().unwrap().first_row::<(i64,)>().unwrap().0
}

/// A gateway process that acknowledges documents but never derives them (a journal settle
/// time of ten minutes keeps its deriver and forwarder behind every entry), for SIGKILL.
#[allow(clippy::zombie_processes)] // killed by the test; on a panic, with the test's process group
fn spawn_acking_gateway(
    dir: &std::path::Path,
    nodes: &[String],
    ks: &str,
    rf: u32,
) -> (std::process::Child, SocketAddr) {
    let config = dir.join("gateway.toml");
    let nodes_toml = nodes.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
    std::fs::write(
        &config,
        format!(
            "node_id = \"gw-killed\"\n[storage]\nbackend = \"scylla\"\nnodes = [{nodes_toml}]\nkeyspace = \"{ks}\"\n\
             local_dc = \"dc1\"\nmin_replication_factor = {rf}\njournal_settle = \"10 min\"\nmax_derived_lag = \"1 h\"\n\
             [signer]\nkey_hex = \"{KEY}\"\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("gateway.log")).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir)
        .args(["--tcp-listen", "127.0.0.1:0", "--tls-listen", "off", "--quic-listen", "off"])
        .args(["--admin-listen", "off", "--metrics-listen", "off"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    (child, child_tcp_addr(dir, Duration::from_secs(60)))
}

/// Issue 19's fault: a gateway SIGKILLed after acknowledging documents and before any of
/// their derived writes. Another gateway takes its leases over and derives everything
/// from the journal: every document in the time index and the register activity, the
/// report aggregates equal to a recomputation, each document at the FNS receiver once,
/// an empty backlog — nothing acknowledged is lost to storage or to forwarding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_between_acks_and_derived_writes_loses_nothing() {
    let Some(nodes) = nodes() else { return skipped() };
    let (ks, rf) = keyspace(&nodes).await;
    let regs: Vec<_> = (1..=3).map(|i| register(960 + i, fns_support::INN_A)).collect();
    {
        // registers first, through a gateway that then stops cleanly
        let onboarding = start_cql(&nodes, &ks, rf, "gw-onboard").await;
        onboard(onboarding.running(), &regs).await;
        onboarding.stop().await;
    }
    let dir_a = tempfile::tempdir().unwrap();
    let (mut a, addr) = spawn_acking_gateway(dir_a.path(), &nodes, &ks, rf);
    let msgs: Vec<Bytes> = regs.iter().flat_map(|r| (1..=8).map(move |fd| receipt(r, fd))).collect();
    fns_support::send_many(addr, msgs, 3).await;
    // acknowledged and stored, nothing derived yet
    assert_eq!(count_rows(&nodes, &ks, "documents").await, 24);
    assert_eq!(count_rows(&nodes, &ks, "documents_by_register").await, 0, "derived before the kill");
    a.kill().unwrap(); // SIGKILL
    a.wait().unwrap();

    let rx = TestReceiver::start(ReceiverOptions::default()).await;
    let dir_b = tempfile::tempdir().unwrap();
    let cfg = cql_config(fast_config(dir_b.path(), Some(rx.url())), &nodes, &ks, rf, "gw-b");
    let b = gateway::start(cfg).await.expect("the other gateway starts");
    // the dead node's leases expire (15 s), then the other one derives and forwards
    wait_for(Duration::from_secs(90), "24 documents at the FNS receiver", || async { rx.rx.stats().unique == 24 })
        .await;
    let store = b.shared.store.clone();
    store.settle().await.expect("derived views catch up");
    for r in &regs {
        let page = store
            .documents_by_register(
                &r.rnm,
                Timestamp(0),
                Timestamp::now().plus(Duration::from_secs(60)),
                PageRequest::first(50),
            )
            .await
            .unwrap();
        // in receive order, which three connections interleave
        let mut fds: Vec<u32> = page.items.iter().map(|d| d.fd).collect();
        fds.sort_unstable();
        assert_eq!(fds, (1..=8).collect::<Vec<_>>(), "time index of {}", r.rnm);
        let act = store.get_activity(&r.rnm).await.unwrap().expect("activity");
        assert_eq!((act.documents, act.last_fd), (8, Some(8)), "activity of {}", r.rnm);
    }
    let fns: Vec<_> = regs.iter().map(|r| r.fn_number).collect();
    storage::conformance::check_reports(store.as_ref(), &fns, "after the takeover").await;
    wait_for(Duration::from_secs(20), "an empty backlog", || async { store.backlog().await.unwrap().pending == 0 })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = rx.rx.stats();
    assert_eq!((s.unique, s.duplicates), (24, 0), "{s:?}");
    b.shutdown().await.unwrap();
    drop_keyspace(&nodes, &ks).await;
}
