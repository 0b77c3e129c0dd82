//! Graceful shutdown under load loses nothing that was acknowledged and acknowledges
//! nothing that was not stored; connections are drained (reason `shutdown`) rather than
//! cut, and in-flight documents are answered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use ffd::{AckView, ResponseCode};
use storage::model::DocumentKey;
use tokio::io::AsyncWriteExt;

const REGISTERS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_loses_nothing() {
    let gw = start_with(|c| c.shutdown.drain_period = Duration::from_secs(1)).await;
    let regs = registers(REGISTERS, 20_000);
    for (r, _) in &regs {
        gw.onboard(r.clone()).await;
    }
    let addr = gw.tcp();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for (_, id) in regs.iter().cloned() {
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            // a register: persistent connection, next FD only after an ack, resend on failure
            let mut acks: HashMap<u32, Bytes> = HashMap::new();
            let mut fd = 1;
            'outer: while !stop.load(Ordering::SeqCst) {
                let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                loop {
                    if stop.load(Ordering::SeqCst) {
                        break 'outer;
                    }
                    if s.write_all(&receipt_message(&id, fd)).await.is_err() {
                        break;
                    }
                    match tokio::time::timeout(Duration::from_secs(10), read_reply(&mut s)).await {
                        Ok(Some(reply)) => {
                            let (_, ack) = AckView::parse_reply(reply.clone()).unwrap();
                            assert_eq!((ack.fd, ack.code), (fd, Some(ResponseCode::Accepted)));
                            acks.insert(fd, reply.slice(30..));
                            fd += 1;
                        }
                        _ => break, // closed (drain) or timed out: reconnect and resend
                    }
                }
            }
            (id.fn_number, acks)
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let running = gw.running.as_ref().unwrap();
    running.shutdown_signal().trigger();
    let dir = gw.dir.path().to_path_buf();
    let TestGateway { running, dir: _keep, .. } = gw;
    running.unwrap().wait().await.expect("clean shutdown");
    stop.store(true, Ordering::SeqCst);

    let mut results = Vec::new();
    for c in clients {
        results.push(c.await.unwrap());
    }
    let total: usize = results.iter().map(|(_, a)| a.len()).sum();
    assert!(total > REGISTERS, "load was running: {total} acknowledgments");

    // reopen the store: every acknowledged document is there, with the ack that was sent
    let store = storage::embedded::EmbeddedStore::open(dir.join("store"), Default::default()).unwrap();
    use storage::DocumentStore;
    for (fn_number, acks) in &results {
        for (fd, ack) in acks {
            let rec = store
                .get_document(&DocumentKey { fn_number: *fn_number, fd: *fd })
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("acknowledged {fn_number}/{fd} lost"));
            assert_eq!(&rec.ack, ack, "stored ack differs from the one sent for {fn_number}/{fd}");
        }
    }
    // connections were drained by the shutdown, not cut by errors
    let text = gateway::metrics::install().render();
    let drained = metric_value(&text, "ofd_gateway_connections_closed_total", &[("reason", "shutdown")]);
    assert!(drained >= 1.0, "idle connections closed with reason shutdown: {drained}");
}
