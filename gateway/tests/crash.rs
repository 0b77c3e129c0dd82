//! Durability through the real binary: registers send documents continuously while the
//! gateway process is killed with SIGKILL at random moments (≥ 10 times) and restarted on
//! the same data directory. Afterwards every acknowledged (FN, FD) is stored with the
//! acknowledgment that was sent, a retransmission after a crash got the byte-identical
//! acknowledgment, and no document is stored twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use ffd::AckView;
use rand::Rng;
use storage::{DocumentStore, PageRequest, RegisterStore};
use tokio::io::AsyncWriteExt;
use tokio::sync::RwLock;

const REGISTERS: usize = 24;
const KILLS: usize = 12;

// On the panic path the test fails anyway; the child is killed with the test process group.
#[allow(clippy::zombie_processes)]
fn spawn_gateway(dir: &Path) -> (Child, SocketAddr) {
    let addrs = dir.join("gateway.addrs.json");
    let _ = std::fs::remove_file(&addrs);
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("gateway.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("--data-dir")
        .arg(dir)
        .args(["--tcp-listen", "127.0.0.1:0", "--tls-listen", "off", "--quic-listen", "off"])
        .args(["--admin-listen", "off", "--metrics-listen", "off"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    (child, child_tcp_addr(dir, Duration::from_secs(20)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_documents_survive_repeated_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let regs = registers(REGISTERS, 30_000);
    {
        let store = storage::embedded::EmbeddedStore::open(dir.path().join("store"), Default::default()).unwrap();
        store.put_registers(regs.iter().map(|(r, _)| r.clone()).collect(), vec![None; REGISTERS]).await.unwrap();
        storage::Store::close(&store).await.unwrap();
    }

    let current: Arc<RwLock<Option<SocketAddr>>> = Arc::new(RwLock::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for (_, id) in regs.iter().cloned() {
        let (current, stop) = (current.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            // every ack received for each FD (a retransmission after a crash adds another)
            let mut acks: HashMap<u32, Vec<Bytes>> = HashMap::new();
            let mut fd = 1u32;
            while !stop.load(Ordering::SeqCst) {
                let Some(addr) = *current.read().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let Ok(Ok(mut s)) =
                    tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await
                else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                // one or a few documents per connection, like real registers
                for _ in 0..3 {
                    if s.write_all(&receipt_message(&id, fd)).await.is_err() {
                        break;
                    }
                    match tokio::time::timeout(Duration::from_secs(5), read_reply(&mut s)).await {
                        Ok(Some(reply)) => {
                            let (_, ack) = AckView::parse_reply(reply.clone()).expect("valid ack");
                            assert_eq!(ack.fd, fd);
                            acks.entry(fd).or_default().push(reply.slice(30..));
                            // half the time, pretend the ack was lost and retransmit once
                            if rand::rng().random_bool(0.1) {
                                continue;
                            }
                            fd += 1;
                        }
                        _ => break,
                    }
                }
            }
            (id.fn_number, acks)
        }));
    }

    for _ in 0..KILLS {
        let (mut child, addr) = spawn_gateway(dir.path());
        *current.write().await = Some(addr);
        let ms = rand::rng().random_range(300..1200);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        *current.write().await = None;
    }
    // a last, clean run lets the registers catch up
    let (mut child, addr) = spawn_gateway(dir.path());
    *current.write().await = Some(addr);
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::SeqCst);
    let mut results = Vec::new();
    for c in clients {
        results.push(c.await.unwrap());
    }
    // SIGTERM and wait for the orderly exit
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "gateway exits cleanly on SIGTERM: {status}");

    let store = storage::embedded::EmbeddedStore::open(dir.path().join("store"), Default::default()).unwrap();
    let mut acked = 0;
    for (fn_number, acks) in &results {
        let mut items = Vec::new();
        let mut req = PageRequest::first(1000);
        loop {
            let page = store.documents_by_fn(fn_number, 0..=u32::MAX, req.clone()).await.unwrap();
            items.extend(page.items);
            match page.next {
                Some(c) => req.cursor = Some(c),
                None => break,
            }
        }
        let fds: Vec<u32> = items.iter().map(|d| d.fd).collect();
        let mut unique = fds.clone();
        unique.dedup();
        assert_eq!(fds, unique, "no document stored twice for {fn_number}");
        for (fd, sent) in acks {
            let rec =
                items.iter().find(|d| d.fd == *fd).unwrap_or_else(|| panic!("acknowledged {fn_number}/{fd} lost"));
            for a in sent {
                assert_eq!(&rec.ack, a, "ack for {fn_number}/{fd} differs from the stored one");
            }
            acked += 1;
        }
    }
    assert!(acked > REGISTERS * 3, "enough traffic crossed the crashes: {acked} acknowledged documents");
    eprintln!("{KILLS} SIGKILLs, {acked} acknowledged documents verified");
}
