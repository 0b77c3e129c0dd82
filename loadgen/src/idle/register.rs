//! One held register: connect, send its first document, wait for the gateway to close
//! the connection; in a reconnect storm, come back with jittered backoff and deliver the
//! next document, verified.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use rand::SeedableRng as _;
use tokio::sync::watch;
use tokio::time::Instant;

use super::state::{Recovery, Shared, unix_now};
use crate::docs::{Doc, DocPlan, DocStream, Outcome};
use crate::registers::RegisterIdentity;
use crate::stats::us;
use crate::transport::{Conn, Connector, ExchangeError};
use crate::verify::{Expected, verify_reply};

/// One register: connect, (first document,) hold; with `reconnect`, come back after every
/// drop and deliver the next document.
pub(super) async fn register_task<C: Connector>(
    sh: Arc<Shared<C>>,
    seed: u64,
    ordinal: u64,
    index: u64,
    mix: crate::registers::FfdMix,
    mut go: watch::Receiver<Option<Instant>>,
    mut release: watch::Receiver<bool>,
) {
    let c = &sh.counters;
    let cfg = &sh.cfg;
    let t = Instant::now();
    let mut conn = match sh.connector.connect(t + cfg.connect_timeout).await {
        Ok(conn) => {
            c.established.fetch_add(1, Relaxed);
            c.open.fetch_add(1, Relaxed);
            let d = us(t.elapsed());
            sh.hist.lock().unwrap_or_else(std::sync::PoisonError::into_inner).connect.saturating_record(d);
            c.attempts_done.fetch_add(1, Relaxed);
            conn
        }
        Err(e) => {
            c.failed.fetch_add(1, Relaxed);
            c.errors[e.kind.index()].fetch_add(1, Relaxed);
            c.attempts_done.fetch_add(1, Relaxed);
            return;
        }
    };
    let needs_docs = cfg.send_first || cfg.reconnect.is_some();
    let reg = RegisterIdentity::derive(seed, index, &mix).ok();
    let plan = DocPlan { fd_start: cfg.fd_start, ..DocPlan::default() };
    let mut docs = match (&reg, needs_docs) {
        (Some(r), true) => Some(DocStream::new(seed, r, crate::registers::DEFAULT_OFD_INN, plan)),
        _ => None,
    };
    if cfg.send_first {
        let go_at = tokio::select! {
            g = go.wait_for(Option::is_some) => g.ok().and_then(|g| *g),
            _ = release.wait_for(|r| *r) => None,
        };
        let Some(go_at) = go_at else {
            conn.close().await;
            return;
        };
        if let Some(rate) = cfg.ramp_rate.filter(|r| *r > 0.0) {
            let at = go_at + Duration::from_secs_f64(ordinal as f64 / rate);
            let released = tokio::select! {
                () = tokio::time::sleep_until(at) => false,
                _ = release.wait_for(|r| *r) => true,
            };
            if released {
                conn.close().await;
                return;
            }
        }
        let ok = match (&reg, docs.as_mut()) {
            (Some(r), Some(d)) => match next_ackable(d) {
                Some(doc) => deliver(&mut conn, r, &doc, cfg.timeout).await.is_ok(),
                None => false,
            },
            _ => false,
        };
        let n = if ok { &c.first_ok } else { &c.first_failed };
        n.fetch_add(1, Relaxed);
    }
    let mut ever_dropped = false;
    loop {
        let released = tokio::select! {
            () = conn.closed() => false,
            _ = release.wait_for(|r| *r) => true,
        };
        if released {
            conn.close().await;
            return;
        }
        c.closed.fetch_add(1, Relaxed);
        c.open.fetch_sub(1, Relaxed);
        let (Some(rc), Some(reg), Some(docs)) = (cfg.reconnect, &reg, docs.as_mut()) else { return };
        let dropped_at = Instant::now();
        let dropped_unix = unix_now();
        if !ever_dropped {
            ever_dropped = true;
            c.dropped_registers.fetch_add(1, Relaxed);
        }
        c.pending.fetch_add(1, Relaxed);
        sh.storm.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drops.push(dropped_unix);
        let Some(doc) = next_ackable(docs) else { return };
        let mut attempt: u32 = 0;
        let mut rng = rand::rngs::SmallRng::from_rng(&mut rand::rng());
        conn = loop {
            let wait = rc.wait(attempt, &mut rng);
            attempt = attempt.saturating_add(1);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = release.wait_for(|r| *r) => return,
            }
            c.reconnect_attempts.fetch_add(1, Relaxed);
            let t = Instant::now();
            let connected = tokio::select! {
                r = sh.connector.connect(t + cfg.connect_timeout) => r,
                _ = release.wait_for(|r| *r) => return,
            };
            let mut fresh = match connected {
                Ok(x) => x,
                Err(e) => {
                    c.reconnect_errors[e.kind.index()].fetch_add(1, Relaxed);
                    continue;
                }
            };
            let connect_us = us(t.elapsed());
            let delivered = tokio::select! {
                r = deliver(&mut fresh, reg, &doc, cfg.timeout) => r,
                _ = release.wait_for(|r| *r) => return,
            };
            if delivered.is_err() {
                c.next_failed.fetch_add(1, Relaxed);
                fresh.close().await;
                continue;
            }
            let recovered = unix_now();
            c.open.fetch_add(1, Relaxed);
            c.pending.fetch_sub(1, Relaxed);
            c.recovered_registers.fetch_add(1, Relaxed);
            sh.storm.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recoveries.push(Recovery {
                register: index,
                dropped: dropped_unix,
                recovered,
                attempts: attempt,
                took_us: us(dropped_at.elapsed()),
                connect_us,
            });
            break fresh;
        };
    }
}

/// The next document that must be acknowledged (skips injected faults; there are none
/// with the default plan).
fn next_ackable(docs: &mut DocStream) -> Option<Doc> {
    loop {
        let d = docs.next_doc()?;
        if matches!(d.expect, Outcome::Ack(_)) {
            return Some(d);
        }
    }
}

/// Sends `doc` and verifies its acknowledgment.
async fn deliver<K: Conn>(conn: &mut K, reg: &RegisterIdentity, doc: &Doc, timeout: Duration) -> Result<(), ()> {
    let Outcome::Ack(code) = doc.expect else { return Err(()) };
    match conn.exchange(&doc.message, Instant::now() + timeout).await {
        Ok(reply) => {
            verify_reply(reply, &Expected { fn_number: reg.fn_number, fd: doc.fd, code }).map(|_| ()).map_err(|_| ())
        }
        Err(ExchangeError::Timeout | ExchangeError::Refused | ExchangeError::Truncated(_))
        | Err(ExchangeError::TooLarge | ExchangeError::Io(_)) => Err(()),
    }
}
