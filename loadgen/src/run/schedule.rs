//! One register's loop: connect (paced by the ramp in persistent mode), wait for the
//! common start, then send on the open-loop schedule (register `i` of `N` every `N/R`
//! seconds, offset `i/R`) or as fast as acknowledgments come back (closed loop).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::config::{Behaviour, LoadModel};
use super::ctx::{Ctx, Ready, Sent, Window};
use crate::docs::{Doc, DocStream};
use crate::registers::RegisterIdentity;
use crate::transport::{Conn, Connector};

pub(super) async fn register_task<C: Connector>(
    ctx: Arc<Ctx<C>>,
    pos: u64,
    ready: Arc<Ready>,
    mut t0_rx: watch::Receiver<Option<Window>>,
) {
    let cfg = &ctx.cfg;
    let index = cfg.population.first + pos;
    let reg = RegisterIdentity::derive(cfg.population.seed, index, &cfg.population.mix);
    let mut conn: Option<C::Conn> = None;
    let mut docs = reg.ok().map(|r| DocStream::new(cfg.population.seed, &r, &cfg.ofd_inn, cfg.plan.clone()));
    if cfg.behaviour == Behaviour::Persistent && docs.is_some() {
        if let Some(rate) = cfg.ramp_rate.filter(|r| *r > 0.0) {
            let at = ctx.start + Duration::from_secs_f64(pos as f64 / rate);
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = ctx.cancel.cancelled() => {}
            }
        }
        if !ctx.cancel.is_cancelled() {
            conn = ctx.connect(pos).await;
        }
    }
    ready.n.fetch_add(1, Relaxed);
    ready.notify.notify_one();
    let Some(docs) = docs.as_mut() else { return };
    let w = match t0_rx.wait_for(Option::is_some).await {
        Ok(v) => match *v {
            Some(w) => w,
            None => return,
        },
        Err(_) => return,
    };
    let n = cfg.population.count as f64;
    let period = match cfg.load {
        LoadModel::Open { rate } => Some(Duration::from_secs_f64(n / rate)),
        LoadModel::Closed => None,
    };
    let mut next = match cfg.load {
        LoadModel::Open { rate } => w.t0 + Duration::from_secs_f64(pos as f64 / rate),
        LoadModel::Closed => w.t0,
    };
    if period.is_none() {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = ctx.cancel.cancelled() => {}
        }
    }
    let mut sent: u64 = 0;
    // a document that found no connection, with the time it was first meant to go out:
    // its corrected latency keeps counting from there
    let mut held: Option<(Doc, Option<Instant>)> = None;
    loop {
        if ctx.cancel.is_cancelled() || cfg.docs_per_register.is_some_and(|l| sent >= l) {
            break;
        }
        let intended = if let Some(p) = period {
            if next >= w.end {
                break;
            }
            let now = Instant::now();
            if now >= w.end {
                let missed = (w.end - next).as_secs_f64() / p.as_secs_f64();
                ctx.stats.counters.unsent.fetch_add(missed.ceil() as u64, Relaxed);
                break;
            }
            if next > now {
                if let Some(pacer) = &ctx.pacer {
                    tokio::select! {
                        () = pacer.sleep_until(next) => {}
                        () = ctx.cancel.cancelled() => break,
                    }
                } else {
                    tokio::select! {
                        () = tokio::time::sleep_until(next) => {}
                        () = ctx.cancel.cancelled() => break,
                    }
                }
            }
            Some(next)
        } else {
            if Instant::now() >= w.end {
                break;
            }
            None
        };
        let (doc, intended) = match held.take() {
            Some((d, first)) => (d, first.or(intended)),
            None => match docs.next_doc() {
                Some(d) => (d, intended),
                None => break,
            },
        };
        match ctx.perform(&mut conn, docs, doc, intended, pos, w).await {
            Sent::Yes => sent += 1,
            Sent::NoConnection(d) => {
                held = Some((d, intended));
                if period.is_some() {
                    // the slot passed without a send
                    ctx.stats.counters.unsent.fetch_add(1, Relaxed);
                }
                if period.is_none() {
                    // closed loop: do not spin on a gateway that refuses connections
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        () = ctx.cancel.cancelled() => break,
                    }
                }
            }
        }
        if let Some(p) = period {
            next += p;
        } else if !cfg.think_time.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(cfg.think_time) => {}
                () = ctx.cancel.cancelled() => break,
            }
        }
    }
    if let Some(cn) = conn.take() {
        cn.close().await;
    }
}
