//! The report of a run: timing, rates, counters, histograms and the machine it ran on,
//! judged against the thresholds.

use std::sync::atomic::Ordering::Relaxed;

use tokio::time::Instant;

use super::config::LoadModel;
use super::ctx::{Ctx, Window};
use crate::docs::DocKind;
use crate::stats::{Latencies, Percentiles, Rates, Report, SCHEMA, Timing, Verdict};
use crate::transport::Connector;

/// The judged report of a run whose load phase was `window`, measured until `stopped`.
pub(super) fn build<C: Connector>(ctx: &Ctx<C>, started_at: String, window: Window, stopped: Instant) -> Report {
    let start = ctx.start;
    let measure_s = stopped.saturating_duration_since(window.measure_from).as_secs_f64();
    let last_done = *ctx.last_done.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let c = &ctx.stats.counters;
    let merged = ctx.stats.merged();
    let open = matches!(ctx.cfg.load, LoadModel::Open { .. });
    let counters = c.snapshot();
    let sending_s = stopped.saturating_duration_since(window.t0).as_secs_f64();
    let kinds = [
        DocKind::OpenShift,
        DocKind::Receipt,
        DocKind::Return,
        DocKind::StateReport,
        DocKind::CloseShift,
        DocKind::Malformed,
    ];
    let mut report = Report {
        schema: SCHEMA,
        loadgen_version: env!("CARGO_PKG_VERSION"),
        started_at,
        config: ctx.cfg.echo(),
        environment: environment(ctx.cfg.threads, ctx.last_connect_error_text()),
        timing: Timing {
            connect_phase_s: window.t0.saturating_duration_since(start).as_secs_f64(),
            warmup_s: ctx.cfg.warmup.as_secs_f64(),
            measure_s,
            elapsed_s: last_done.max(stopped).saturating_duration_since(start).as_secs_f64(),
        },
        rates: Rates {
            offered: match ctx.cfg.load {
                LoadModel::Open { rate } => Some(rate),
                LoadModel::Closed => None,
            },
            achieved: if measure_s > 0.0 { counters.documents_ok_in_window as f64 / measure_s } else { 0.0 },
            sent: if sending_s > 0.0 { counters.documents_sent as f64 / sending_s } else { 0.0 },
        },
        mismatches: c.mismatch_map(),
        mismatches_total: c.mismatches_total(),
        connect_errors: c.connect_error_map(),
        documents_by_kind: kinds.iter().enumerate().map(|(i, k)| (kind_name(*k), c.by_kind[i].load(Relaxed))).collect(),
        counters,
        sources: ctx.connector.sources(),
        tls_handshakes: ctx.connector.handshakes(),
        latency_us: Latencies {
            corrected: open.then(|| Percentiles::of(&merged.corrected)),
            uncorrected: Percentiles::of(&merged.uncorrected),
            connect: Percentiles::of(&merged.connect),
            send_lag: open.then(|| Percentiles::of(&merged.send_lag)),
        },
        thresholds: Vec::new(),
        verdict: Verdict { ok: true, exit_code: 0, reasons: Vec::new() },
    };
    report.judge(&ctx.cfg.thresholds, ctx.cfg.max_mismatches);
    report
}

fn kind_name(k: DocKind) -> &'static str {
    match k {
        DocKind::OpenShift => "open_shift",
        DocKind::Receipt => "receipt",
        DocKind::Return => "return",
        DocKind::StateReport => "state_report",
        DocKind::CloseShift => "close_shift",
        DocKind::Malformed => "malformed",
    }
}

/// Machine facts for the report.
pub fn environment(threads: usize, last_connect_error: Option<String>) -> serde_json::Value {
    let limit = crate::sys::FileLimit::current().ok();
    serde_json::json!({
        "file_limit": limit,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "threads": threads,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_owned()),
        "ip_local_port_range": std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join("-")),
        "rss_bytes_end": crate::sys::rss_bytes(),
        "last_connect_error": last_connect_error,
    })
}
