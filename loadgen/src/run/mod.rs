//! The load run: `run` here drives it; beside it its options (`config`), one task per
//! register (`schedule`), one document's exchange with resends (`exchange`), the report.
//! May import docs, registers, stats, transport, verify, pacer, net and sys; never idle.
//!
//! **Open loop** (`--rate R`): register `i` of `N` sends every `N/R` seconds, its first
//! send `i/R` after the common start, so the population offers `R` documents per second
//! whatever the gateway does. Registers never pipeline (a real FN waits for each
//! acknowledgment), so when a reply is slow the next send of that register starts late;
//! the corrected latency is measured from the *intended* send time and therefore includes
//! that wait — the queueing a register experiences is not hidden (coordinated omission).
//! The uncorrected latency is measured from the actual send. Sends that start more than
//! `--late-threshold` late are counted, and scheduled sends that never happened before
//! the end are counted as `unsent`.
//!
//! **Closed loop** (`--closed`): each register sends its next document as soon as the
//! previous one is acknowledged (plus `--think-time`); this finds the maximum throughput,
//! and its latency cannot be corrected (there is no intended time).
//!
//! **Persistent** sessions connect once (paced by `--ramp-rate`) before the load starts,
//! and reconnect only after the gateway closed the connection. **Per-document** sessions
//! connect, send, wait for the acknowledgment and close for every document, like most
//! registers in the field; their latencies include the connect and handshake.
//!
//! After a timeout the register sends the same message again (up to `--max-resends`), on
//! a new connection for TCP/TLS and a new stream for QUIC. The reply to the timed-out
//! attempt is still awaited in the background for `--late-window`; when both arrive they
//! must be byte-identical (`ack_changed` otherwise). `--duplicates P` re-sends a share of
//! acknowledged documents on purpose, with the same check.

mod config;
mod ctx;
mod exchange;
mod progress;
mod report;
mod schedule;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::stats::{Report, Stats};
use crate::transport::quic::QuicConnector;
use crate::transport::tcp::TcpConnector;
use crate::transport::tls::TlsConnector;
use crate::transport::{Connector, SourcePool, TransportKind};
pub use config::{Behaviour, LoadModel, MAX_RATE, MAX_RUN, MAX_WAIT, MIN_RATE, RunConfig};
use ctx::{Ctx, Ready, Window};
use progress::Progress;
pub use report::environment;
use schedule::register_task;

/// Runs the load and returns the judged report. `cancel` ends the load early (Ctrl-C);
/// what was measured until then is reported.
pub async fn run(cfg: RunConfig, cancel: CancellationToken) -> anyhow::Result<Report> {
    cfg.validate()?;
    let sources = Arc::new(SourcePool::new(cfg.sources.clone()));
    match cfg.transport {
        TransportKind::Tcp => {
            let c = TcpConnector::new(cfg.target, sources);
            run_with(c, cfg, cancel).await
        }
        TransportKind::Tls => {
            let c = TlsConnector::new(cfg.target, sources, &cfg.ca, &cfg.server_name, cfg.tls_resumption)?;
            run_with(c, cfg, cancel).await
        }
        TransportKind::Quic => {
            let c = QuicConnector::new(cfg.target, sources, &cfg.ca, &cfg.server_name, &cfg.quic)?;
            let endpoints = c.endpoints().to_vec();
            let r = run_with(c, cfg, cancel).await;
            for ep in endpoints {
                ep.close(0u32.into(), b"done");
                let _ = tokio::time::timeout(Duration::from_secs(1), ep.wait_idle()).await;
            }
            r
        }
    }
}

async fn run_with<C: Connector>(connector: C, cfg: RunConfig, cancel: CancellationToken) -> anyhow::Result<Report> {
    let started_at =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let start = Instant::now();
    let count = cfg.population.count;
    let pacer = match cfg.load {
        LoadModel::Open { .. } => Some(crate::pacer::Pacer::start().context("starting the pacer thread")?),
        LoadModel::Closed => None,
    };
    let ctx = Arc::new(Ctx {
        connector,
        pacer,
        stats: Stats::new(cfg.shards),
        tracker: TaskTracker::new(),
        cancel: cancel.clone(),
        start,
        last_done: Mutex::new(start),
        last_connect_error: Mutex::new(None),
        acked: match &cfg.acked_out {
            Some(p) => Some(Mutex::new(std::io::BufWriter::new(
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
            ))),
            None => None,
        },
        cfg,
    });
    let ready = Arc::new(Ready { n: AtomicU64::new(0), notify: Notify::new() });
    let (t0_tx, t0_rx) = watch::channel::<Option<Window>>(None);
    let progress = Progress::start(&ctx, cancel.clone());
    let stop_time: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let watcher = {
        let st = stop_time.clone();
        let c = cancel.clone();
        tokio::spawn(async move {
            c.cancelled().await;
            let _ = st.set(Instant::now());
        })
    };

    let mut tasks = tokio::task::JoinSet::new();
    for pos in 0..count {
        let ctx = ctx.clone();
        let ready = ready.clone();
        let rx = t0_rx.clone();
        tasks.spawn(async move { register_task(ctx, pos, ready, rx).await });
    }
    drop(t0_rx);

    // connect phase (persistent sessions): wait until every register tried once
    if ctx.cfg.behaviour == Behaviour::Persistent {
        while ready.n.load(Relaxed) < count && !cancel.is_cancelled() {
            tokio::select! {
                () = ready.notify.notified() => {}
                () = cancel.cancelled() => {}
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }
    let t0 = Instant::now() + Duration::from_millis(20);
    let window = Window { t0, measure_from: t0 + ctx.cfg.warmup, end: t0 + ctx.cfg.duration };
    let _ = t0_tx.send(Some(window));

    // hard stop: everything is bounded by timeouts, this is a second fence
    let grace = ctx.cfg.timeout * (ctx.cfg.max_resends + 2) + ctx.cfg.connect_timeout * 2 + Duration::from_secs(5);
    let hard_stop = tokio::time::sleep_until(window.end + grace);
    tokio::pin!(hard_stop);
    let mut finished = None;
    loop {
        tokio::select! {
            r = tasks.join_next() => if r.is_none() { finished = Some(Instant::now()); break },
            () = &mut hard_stop => {
                cancel.cancel();
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
    // late readers and comparisons: bounded by the late window
    ctx.tracker.close();
    ctx.flush_acked();
    let bound = ctx.cfg.late_window + Duration::from_secs(1);
    let _ = tokio::time::timeout(bound, ctx.tracker.wait()).await;
    watcher.abort();
    progress.finish();

    // the window ends at the scheduled end, at Ctrl-C, or when every register is done
    // (--docs-per-register), whichever comes first
    let mut stopped = stop_time.get().copied().map_or(window.end, |s| s.min(window.end));
    if let Some(f) = finished {
        stopped = stopped.min(f.max(window.measure_from));
    }
    Ok(report::build(&ctx, started_at, window, stopped))
}
