//! 1,000 connections that trickle one byte per second (slowloris) are closed by the
//! deadlines — each after at most the frame timeout from its first byte — with memory
//! bounded, and legitimate traffic is still served meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SLOW: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_connections_are_closed_by_the_frame_deadline() {
    let gw = start_with(|c| {
        c.limits.frame_timeout = Duration::from_secs(3);
        c.limits.idle_timeout = Duration::from_secs(30);
    })
    .await;
    let regs = registers(1, 9000);
    gw.onboard(regs[0].0.clone()).await;
    let rss_before = rss();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..SLOW {
        let addr = gw.tcp();
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            // a valid header, one byte per second: never completes within 3 s
            let header = &S1[..30];
            let t0 = Instant::now();
            for b in header.iter() {
                if s.write_all(&[*b]).await.is_err() {
                    break;
                }
                let mut probe = [0u8; 1];
                match tokio::time::timeout(Duration::from_secs(1), s.read(&mut probe)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break, // closed by the gateway
                    Ok(Ok(_)) => panic!("a slow client must get no answer"),
                    Err(_) => {} // still open; next byte
                }
                assert!(t0.elapsed() < Duration::from_secs(15), "slow client never closed");
            }
            t0.elapsed()
        }));
    }
    // meanwhile a real register is served
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reply = tcp_exchange(gw.tcp(), &receipt_message(&regs[0].1, 1)).await;
    assert!(reply.is_some(), "legitimate traffic is served during the trickle");
    let peak = rss().saturating_sub(rss_before);

    let mut longest = Duration::ZERO;
    for t in tasks {
        longest = longest.max(t.await.unwrap());
    }
    assert!(longest <= Duration::from_secs(6), "closed within frame timeout plus slack: {longest:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(peak < 48 << 20, "memory for {SLOW} slow connections (both ends) bounded: {peak} bytes");
    let text = metrics_text(&gw).await;
    let timeouts = metric_value(&text, "ofd_gateway_connections_closed_total", &[("reason", "frame_timeout")]);
    assert!(timeouts >= SLOW as f64, "every slow connection counted as frame_timeout: {timeouts}");
    gw.stop().await;
}
