//! One document's exchange: send, verify the acknowledgment, resend after a timeout (and
//! await the late reply in the background), send a deliberate duplicate — and count it all.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::config::Behaviour;
use super::ctx::{Ctx, Sent, Window};
use crate::docs::{Doc, DocKind, DocStream, Outcome};
use crate::stats::us;
use crate::transport::{Conn, Connector, ExchangeError};
use crate::verify::{Expected, MismatchKind, verify_reply};

impl<C: Connector> Ctx<C> {
    /// Sends one document, with resends and an optional deliberate duplicate.
    #[allow(clippy::too_many_lines)]
    pub(super) async fn perform(
        self: &Arc<Self>,
        conn: &mut Option<C::Conn>,
        docs: &mut DocStream,
        doc: Doc,
        intended: Option<Instant>,
        key: u64,
        w: Window,
    ) -> Sent {
        let c = &self.stats.counters;
        let cfg = &self.cfg;
        let start = Instant::now();
        if conn.is_none() {
            *conn = self.connect(key).await;
            if conn.is_none() {
                return Sent::NoConnection(doc);
            }
        }
        c.documents_sent.fetch_add(1, Relaxed);
        c.by_kind[kind_index(doc.kind)].fetch_add(1, Relaxed);
        if doc.fault.is_some() {
            c.malformed_sent.fetch_add(1, Relaxed);
        }
        let measured = intended.unwrap_or(start) >= w.measure_from;
        if let Some(it) = intended {
            let lag = start.saturating_duration_since(it);
            if lag > cfg.late_threshold {
                c.late_sends.fetch_add(1, Relaxed);
            }
            if measured {
                self.stats.with(key, |r| r.send_lag.saturating_record(us(lag)));
            }
        }
        let want = match doc.expect {
            Outcome::Ack(code) => Some(code),
            Outcome::Close => None,
        };
        let expected = Expected { fn_number: docs.identity().fn_number, fd: doc.fd, code: want.unwrap_or(0) };
        let mut late: Vec<oneshot::Receiver<Option<Bytes>>> = Vec::new();
        let mut attempt = 0;
        let mut good: Option<Bytes> = None;
        let mut done = start;
        loop {
            if conn.is_none() {
                *conn = self.connect(key).await;
            }
            let Some(cn) = conn.as_mut() else {
                // a resend that found no connection: the register gives the document up
                c.gave_up.fetch_add(1, Relaxed);
                break;
            };
            c.bytes_sent.fetch_add(doc.message.len() as u64, Relaxed);
            let r = cn.exchange(&doc.message, Instant::now() + cfg.timeout).await;
            done = Instant::now();
            match r {
                Ok(reply) => {
                    c.bytes_received.fetch_add(reply.len() as u64, Relaxed);
                    if want.is_none() {
                        c.mismatch(MismatchKind::UnexpectedReply);
                    } else {
                        match verify_reply(reply.clone(), &expected) {
                            Ok(_) => good = Some(reply),
                            Err(kind) => {
                                c.mismatch(kind);
                                if kind == MismatchKind::Structure {
                                    // framing can no longer be trusted
                                    if let Some(cn) = conn.take() {
                                        cn.close().await;
                                    }
                                }
                            }
                        }
                    }
                    break;
                }
                Err(ExchangeError::Timeout) => {
                    c.timeouts.fetch_add(1, Relaxed);
                    if let Some(cn) = conn.take() {
                        let (back, fut) = cn.split_late(done + cfg.late_window);
                        *conn = back;
                        let (tx, rx) = oneshot::channel();
                        late.push(rx);
                        self.tracker.spawn(async move {
                            let _ = tx.send(fut.await);
                        });
                    }
                    if want.is_none() {
                        break;
                    }
                    if attempt >= cfg.max_resends {
                        c.gave_up.fetch_add(1, Relaxed);
                        break;
                    }
                    attempt += 1;
                    c.resends.fetch_add(1, Relaxed);
                }
                Err(ExchangeError::Refused) => {
                    *conn = None;
                    if want.is_none() {
                        good = Some(Bytes::new());
                    } else {
                        c.refusals.fetch_add(1, Relaxed);
                        if cfg.retry_refused && attempt < cfg.max_resends {
                            attempt += 1;
                            c.resends.fetch_add(1, Relaxed);
                            tokio::time::sleep(retry_pause(attempt)).await;
                            continue;
                        }
                        if cfg.retry_refused {
                            c.gave_up.fetch_add(1, Relaxed);
                        }
                    }
                    break;
                }
                Err(ExchangeError::Truncated(_)) => {
                    *conn = None;
                    c.mismatch(MismatchKind::Truncated);
                    break;
                }
                Err(ExchangeError::TooLarge) => {
                    *conn = None;
                    c.mismatch(MismatchKind::Structure);
                    break;
                }
                Err(ExchangeError::Io(_)) => {
                    *conn = None;
                    c.io_errors.fetch_add(1, Relaxed);
                    if cfg.retry_refused && want.is_some() && attempt < cfg.max_resends {
                        attempt += 1;
                        c.resends.fetch_add(1, Relaxed);
                        tokio::time::sleep(retry_pause(attempt)).await;
                        continue;
                    }
                    break;
                }
            }
        }
        self.mark_done(done);
        if good.is_some() {
            c.documents_ok.fetch_add(1, Relaxed);
            if doc.fault.is_some() {
                c.malformed_ok.fetch_add(1, Relaxed);
            }
            if w.contains(done) {
                c.documents_ok_in_window.fetch_add(1, Relaxed);
            }
            if measured && want.is_some() {
                let u = us(done.saturating_duration_since(start));
                let corrected = intended.map(|it| us(done.saturating_duration_since(it)));
                self.stats.with(key, |r| {
                    r.uncorrected.saturating_record(u);
                    if let Some(v) = corrected {
                        r.corrected.saturating_record(v);
                    }
                });
            }
        }
        let good = good.filter(|b| !b.is_empty());
        if let Some(reply) = &good {
            self.record_acked(&expected.fn_number, expected.fd, &doc.message, reply);
        }
        if !late.is_empty() {
            let me = self.clone();
            let reference = good.clone();
            self.tracker.spawn(async move {
                me.compare_late(late, reference, expected).await;
            });
        }
        if let Some(first) = good
            && docs.roll(cfg.duplicates)
        {
            self.duplicate(conn, &doc.message, &first, &expected, key).await;
        }
        if cfg.behaviour == Behaviour::PerDocument
            && let Some(cn) = conn.take()
        {
            cn.close().await;
        }
        Sent::Yes
    }

    /// Late replies of timed-out attempts: verified, and compared with the reply that was
    /// accepted (or with each other).
    async fn compare_late(
        &self,
        late: Vec<oneshot::Receiver<Option<Bytes>>>,
        mut reference: Option<Bytes>,
        expected: Expected,
    ) {
        let c = &self.stats.counters;
        for rx in late {
            let Ok(Some(reply)) = rx.await else { continue };
            c.late_acks.fetch_add(1, Relaxed);
            if let Err(kind) = verify_reply(reply.clone(), &expected) {
                c.mismatch(kind);
            }
            match &reference {
                Some(r) if *r == reply => {
                    c.acks_identical.fetch_add(1, Relaxed);
                }
                Some(_) => {
                    c.ack_changed.fetch_add(1, Relaxed);
                }
                None => reference = Some(reply),
            }
        }
    }

    /// Sends an acknowledged document again (a retransmission, as after a lost ack) and
    /// checks that the acknowledgment is byte-identical.
    async fn duplicate(
        self: &Arc<Self>,
        conn: &mut Option<C::Conn>,
        message: &Bytes,
        first: &Bytes,
        expected: &Expected,
        key: u64,
    ) {
        let c = &self.stats.counters;
        if self.cfg.behaviour == Behaviour::PerDocument
            && let Some(cn) = conn.take()
        {
            cn.close().await;
        }
        if conn.is_none() {
            *conn = self.connect(key).await;
        }
        let Some(cn) = conn.as_mut() else { return };
        c.duplicates_sent.fetch_add(1, Relaxed);
        c.bytes_sent.fetch_add(message.len() as u64, Relaxed);
        match cn.exchange(message, Instant::now() + self.cfg.timeout).await {
            Ok(reply) => {
                c.bytes_received.fetch_add(reply.len() as u64, Relaxed);
                if reply == *first {
                    c.acks_identical.fetch_add(1, Relaxed);
                } else {
                    c.ack_changed.fetch_add(1, Relaxed);
                    if let Err(kind) = verify_reply(reply, expected) {
                        c.mismatch(kind);
                    }
                }
            }
            Err(ExchangeError::Timeout) => {
                c.timeouts.fetch_add(1, Relaxed);
                if let Some(cn) = conn.take() {
                    let (back, fut) = cn.split_late(Instant::now() + self.cfg.late_window);
                    *conn = back;
                    let me = self.clone();
                    let first = first.clone();
                    let expected = *expected;
                    self.tracker.spawn(async move {
                        let (tx, rx) = oneshot::channel();
                        let _ = tx.send(fut.await);
                        me.compare_late(vec![rx], Some(first), expected).await;
                    });
                }
            }
            Err(ExchangeError::Refused) => {
                *conn = None;
                c.refusals.fetch_add(1, Relaxed);
            }
            Err(ExchangeError::Truncated(_)) => {
                *conn = None;
                c.mismatch(MismatchKind::Truncated);
            }
            Err(ExchangeError::TooLarge) => {
                *conn = None;
                c.mismatch(MismatchKind::Structure);
            }
            Err(ExchangeError::Io(_)) => {
                *conn = None;
                c.io_errors.fetch_add(1, Relaxed);
            }
        }
    }
}

/// The pause before resending after a refusal: 100 ms, doubling, at most 2 s.
fn retry_pause(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_millis(100u64.saturating_mul(1 << attempt.min(5)).min(2_000))
}

fn kind_index(k: DocKind) -> usize {
    match k {
        DocKind::OpenShift => 0,
        DocKind::Receipt => 1,
        DocKind::Return => 2,
        DocKind::StateReport => 3,
        DocKind::CloseShift => 4,
        DocKind::Malformed => 5,
    }
}
