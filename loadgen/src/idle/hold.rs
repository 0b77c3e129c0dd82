//! The phases of an idle run: open every connection at the ramp rate, send the first
//! documents (after the wait file, if any), hold until the end or until a reconnect storm
//! is complete, release everything and report. Each phase can be written to a file.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::IdleConfig;
use super::register::register_task;
use super::report::{IdleReport, storm_report};
use super::state::{IdleCounters, Shared, StormLog, unix_now};
use crate::registers::Population;
use crate::stats::{Percentiles, Recorder};
use crate::transport::Connector;
use crate::transport::connect_stats::ConnectErrorKind;

/// Writes the phase file atomically (temporary file, then rename).
fn write_phase(path: &Path, phase: &str, counters: &IdleCounters) -> anyhow::Result<()> {
    let v = serde_json::json!({
        "phase": phase,
        "pid": std::process::id(),
        "at_unix_s": unix_now(),
        "established": counters.established.load(Relaxed),
        "failed": counters.failed.load(Relaxed),
        "first_documents_ok": counters.first_ok.load(Relaxed),
        "first_documents_failed": counters.first_failed.load(Relaxed),
        "closed_by_peer": counters.closed.load(Relaxed),
        "recovered": counters.recovered_registers.load(Relaxed),
    });
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{v}\n")).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Sleeps in small steps until `cond` holds, the deadline passes or `cancel` fires.
async fn wait_until(cancel: &CancellationToken, deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        if cancel.is_cancelled() || Instant::now() >= deadline {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
            () = cancel.cancelled() => {}
        }
    }
}

#[allow(clippy::too_many_lines)]
pub(super) async fn idle_with<C: Connector>(
    connector: C,
    cfg: IdleConfig,
    pop: Population,
    cancel: CancellationToken,
) -> anyhow::Result<IdleReport> {
    let sh = Arc::new(Shared {
        connector,
        cfg: cfg.clone(),
        counters: IdleCounters::default(),
        hist: Mutex::new(Recorder::default()),
        storm: Mutex::new(StormLog::default()),
    });
    let counters = || &sh.counters;
    let (release_tx, release_rx) = watch::channel(false);
    let rss_before = crate::sys::rss_bytes();
    let start = Instant::now();
    // when the first documents may go: at once (paced like the connects), or once the
    // wait file exists (then paced at the ramp rate from that moment, so that a hundred
    // thousand registers do not all send in the same millisecond)
    let (go_tx, go_rx) = watch::channel(cfg.wait_file.is_none().then_some(start));
    let mut tasks = tokio::task::JoinSet::new();
    let progress = progress_bar(cfg.progress);
    let status = |what: &str| {
        let c = counters();
        format!(
            "{what}: {} established, {} failed, {} first documents, {} closed by gateway, {} recovered",
            c.established.load(Relaxed),
            c.failed.load(Relaxed),
            c.first_ok.load(Relaxed) + c.first_failed.load(Relaxed),
            c.closed.load(Relaxed),
            c.recovered_registers.load(Relaxed),
        )
    };
    for i in 0..cfg.connections {
        if cancel.is_cancelled() {
            break;
        }
        if let Some(rate) = cfg.ramp_rate.filter(|r| *r > 0.0) {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = cancel.cancelled() => break,
            }
        }
        if let Some(b) = &progress
            && i % 256 == 0
        {
            b.set_message(status("connecting"));
        }
        let (sh, release, go) = (sh.clone(), release_rx.clone(), go_rx.clone());
        let index = pop.first + i;
        let seed = pop.seed;
        let mix = pop.mix.clone();
        tasks.spawn(async move { register_task(sh, seed, i, index, mix, go, release).await });
    }
    // phase 1: every attempt finished
    let far = Instant::now() + cfg.hold + Duration::from_secs(86_400);
    wait_until(&cancel, far, || {
        if let Some(b) = &progress {
            b.set_message(status("connecting"));
        }
        counters().attempts_done.load(Relaxed) >= cfg.connections
    })
    .await;
    let connected = start.elapsed();
    let connected_at_unix_s = unix_now();
    let rss_connected = crate::sys::rss_bytes();
    if let Some(p) = &cfg.ready_file {
        write_phase(p, "connected", counters())?;
    }
    // phase 2: first documents (after the wait file, if any)
    let hold_deadline = Instant::now() + cfg.hold;
    // without the wait file before the hold ends, no first documents are sent
    let mut go = cfg.wait_file.is_none();
    if let Some(w) = &cfg.wait_file
        && wait_until(&cancel, hold_deadline, || w.exists()).await
    {
        let _ = go_tx.send(Some(Instant::now()));
        go = true;
    }
    if cfg.send_first && go {
        wait_until(&cancel, far, || {
            if let Some(b) = &progress {
                b.set_message(status("first documents"));
            }
            let c = counters();
            c.first_ok.load(Relaxed) + c.first_failed.load(Relaxed) >= c.established.load(Relaxed)
        })
        .await;
    }
    let plateau_at_unix_s = if cfg.send_first { unix_now() } else { connected_at_unix_s };
    let rss_at_plateau = crate::sys::rss_bytes();
    let fds_at_plateau = crate::sys::open_fds();
    if let Some(p) = &cfg.ready_file {
        write_phase(p, "plateau", counters())?;
    }
    // hold (ends early when a reconnect storm is complete)
    let storm_complete = || {
        let c = counters();
        let est = c.established.load(Relaxed);
        est > 0 && c.dropped_registers.load(Relaxed) >= est && c.pending.load(Relaxed) == 0
    };
    let hold_end = Instant::now().max(hold_deadline);
    loop {
        if cfg.reconnect.is_some() && storm_complete() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep_until(hold_end) => break,
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if let Some(b) = &progress {
            b.set_message(format!(
                "{}, {:.0}s left",
                status("holding"),
                hold_end.saturating_duration_since(Instant::now()).as_secs_f64()
            ));
        }
    }
    let established = counters().established.load(Relaxed);
    let closed = counters().closed.load(Relaxed);
    let pending_at_end = counters().pending.load(Relaxed);
    let open_at_end = counters().open.load(Relaxed);
    let _ = release_tx.send(true);
    let drain =
        tokio::time::timeout(Duration::from_secs(10), async { while tasks.join_next().await.is_some() {} }).await;
    if drain.is_err() {
        tasks.abort_all();
    }
    if let Some(b) = progress {
        b.finish_and_clear();
    }
    if let Some(p) = &cfg.ready_file {
        write_phase(p, "done", counters())?;
    }
    let connect = {
        let g = sh.hist.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Percentiles::of(&g.connect)
    };
    let per_conn = match (rss_before, rss_at_plateau) {
        (Some(b), Some(p)) if established > 0 => Some(p.saturating_sub(b) as f64 / established as f64),
        _ => None,
    };
    let storm = match &cfg.reconnect {
        Some(r) => Some(storm_report(&sh, r, established, pending_at_end)?),
        None => None,
    };
    let c = counters();
    Ok(IdleReport {
        schema: "loadgen.idle/1",
        config: serde_json::json!({
            "target": cfg.target.to_string(),
            "transport": cfg.transport.name(),
            "connections": cfg.connections,
            "first_register": cfg.population.first,
            "seed": cfg.population.seed,
            "fd_start": cfg.fd_start,
            "ramp_rate": cfg.ramp_rate,
            "hold_s": cfg.hold.as_secs_f64(),
            "send_first": cfg.send_first,
            "connect_timeout_ms": cfg.connect_timeout.as_millis() as u64,
            "timeout_ms": cfg.timeout.as_millis() as u64,
            "quic_keep_alive_ms": cfg.quic.keep_alive.map(|d| d.as_millis() as u64),
            "reconnect": cfg.reconnect.map(|r| serde_json::json!({
                "backoff_min_ms": r.backoff_min.as_millis() as u64,
                "backoff_max_ms": r.backoff_max.as_millis() as u64,
            })),
            "source_ips": if cfg.sources.is_empty() {
                serde_json::json!("auto")
            } else {
                serde_json::json!(cfg.sources.iter().map(ToString::to_string).collect::<Vec<_>>())
            },
        }),
        environment: crate::run::environment(0, None),
        established,
        failed: c.failed.load(Relaxed),
        connect_errors: ConnectErrorKind::ALL.iter().map(|k| (k.name(), c.errors[k.index()].load(Relaxed))).collect(),
        closed_by_peer: closed,
        open_at_end,
        time_to_plateau_s: connected.as_secs_f64(),
        connect_rate: if connected.as_secs_f64() > 0.0 {
            (established + c.failed.load(Relaxed)) as f64 / connected.as_secs_f64()
        } else {
            0.0
        },
        connect_latency_us: connect,
        first_documents_ok: c.first_ok.load(Relaxed),
        first_documents_failed: c.first_failed.load(Relaxed),
        connected_at_unix_s,
        plateau_at_unix_s,
        rss_before,
        rss_connected,
        rss_at_plateau,
        client_rss_per_connection: per_conn,
        fds_at_plateau,
        sources: sh.connector.sources(),
        storm,
    })
}

fn progress_bar(enabled: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal as _;
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let b = indicatif::ProgressBar::new_spinner();
    b.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
    b.enable_steady_tick(Duration::from_millis(250));
    Some(b)
}
