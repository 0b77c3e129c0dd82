//! The report of a run in two forms — JSON with every figure, and a human summary — and
//! its verdict: verification failures and breached thresholds, with their exit codes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::counters::CounterSnapshot;
use super::hist::{Percentiles, fmt_us};
use super::threshold::{Threshold, ThresholdResult};
use crate::transport::connect_stats::{HandshakeStats, SourceStat};

/// Latency histograms of a run, µs.
#[derive(Debug, Clone, Serialize)]
pub struct Latencies {
    /// From the intended send time; `null` in closed loop, where no intended time exists.
    pub corrected: Option<Percentiles>,
    /// From the actual send time.
    pub uncorrected: Percentiles,
    /// Connection set-up (TCP connect, TLS or QUIC handshake).
    pub connect: Percentiles,
    /// Actual − intended send time; `null` in closed loop.
    pub send_lag: Option<Percentiles>,
}

/// Rates, per second.
#[derive(Debug, Clone, Serialize)]
pub struct Rates {
    /// Target rate (open loop), `null` in closed loop.
    pub offered: Option<f64>,
    /// Documents answered as required per second of the measurement window.
    pub achieved: f64,
    /// Documents sent per second over the whole run.
    pub sent: f64,
}

/// Timing of a run, seconds.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// Connection set-up before the load started (persistent sessions).
    pub connect_phase_s: f64,
    /// Warm-up excluded from histograms and the achieved rate.
    pub warmup_s: f64,
    /// The measurement window.
    pub measure_s: f64,
    /// From the first connect to the last reply.
    pub elapsed_s: f64,
}

/// Verdict and exit code.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Nothing failed.
    pub ok: bool,
    /// 0 ok, 3 verification failures, 99 thresholds breached.
    pub exit_code: i32,
    /// Why not ok.
    pub reasons: Vec<String>,
}

/// Exit code for verification failures (mismatches beyond `--max-mismatches`, or
/// changed acknowledgments).
pub const EXIT_VERIFY: i32 = 3;
/// Exit code for a breached `--threshold` (the k6 convention).
pub const EXIT_THRESHOLD: i32 = 99;

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Schema id of this JSON.
    pub schema: &'static str,
    /// loadgen version.
    pub loadgen_version: &'static str,
    /// Start, RFC 3339.
    pub started_at: String,
    /// The configuration, echoed.
    pub config: serde_json::Value,
    /// Machine facts.
    pub environment: serde_json::Value,
    /// Timing.
    pub timing: Timing,
    /// Rates.
    pub rates: Rates,
    /// Counters.
    pub counters: CounterSnapshot,
    /// Mismatches by kind.
    pub mismatches: BTreeMap<&'static str, u64>,
    /// Sum of `mismatches`.
    pub mismatches_total: u64,
    /// Connect failures by kind.
    pub connect_errors: BTreeMap<&'static str, u64>,
    /// Documents sent by kind.
    pub documents_by_kind: BTreeMap<&'static str, u64>,
    /// Per source address.
    pub sources: Vec<SourceStat>,
    /// TLS handshakes by kind (`null` unless the transport is TLS): with `--tls-resume`,
    /// how many really were resumed.
    pub tls_handshakes: Option<HandshakeStats>,
    /// Latency.
    pub latency_us: Latencies,
    /// Thresholds.
    pub thresholds: Vec<ThresholdResult>,
    /// Verdict.
    pub verdict: Verdict,
}

/// The JSON schema id.
pub const SCHEMA: &str = "loadgen.run/1";

impl Report {
    /// The value of a threshold metric.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let c = &self.counters;
        match name {
            "rate" => Some(self.rates.achieved),
            "mismatches" => Some(self.mismatches_total as f64),
            "timeouts" => Some(c.timeouts as f64),
            "refusals" => Some(c.refusals as f64),
            "late_sends" => Some(c.late_sends as f64),
            "unsent" => Some(c.unsent as f64),
            "gave_up" => Some(c.gave_up as f64),
            "ack_changed" => Some(c.ack_changed as f64),
            "connect_errors" => Some(c.connects_failed as f64),
            _ => {
                if let Some(p) = name.strip_prefix("u_") {
                    self.latency_us.uncorrected.get(p)
                } else if let Some(p) = name.strip_prefix("connect_") {
                    self.latency_us.connect.get(p)
                } else {
                    self.latency_us.corrected.as_ref().unwrap_or(&self.latency_us.uncorrected).get(name)
                }
            }
        }
    }

    /// Evaluates thresholds and the verification verdict, filling `thresholds` and
    /// `verdict`.
    pub fn judge(&mut self, thresholds: &[Threshold], max_mismatches: u64) {
        let mut reasons = Vec::new();
        let mut code = 0;
        if self.mismatches_total > max_mismatches {
            reasons.push(format!("{} mismatched acknowledgments (allowed: {max_mismatches})", self.mismatches_total));
            code = EXIT_VERIFY;
        }
        if self.counters.ack_changed > 0 {
            reasons.push(format!(
                "{} retransmissions got a different acknowledgment than the first",
                self.counters.ack_changed
            ));
            code = EXIT_VERIFY;
        }
        self.thresholds = thresholds
            .iter()
            .map(|t| {
                let value = self.metric(&t.metric);
                let ok = value.is_some_and(|v| t.op.holds(v, t.limit));
                ThresholdResult { threshold: t.clone(), value, ok }
            })
            .collect();
        for t in self.thresholds.iter().filter(|t| !t.ok) {
            reasons.push(format!(
                "threshold {} breached (measured {})",
                t.threshold.expr,
                t.value.map_or("nothing".to_owned(), |v| format!("{v}"))
            ));
            if code == 0 {
                code = EXIT_THRESHOLD;
            }
        }
        self.verdict = Verdict { ok: reasons.is_empty(), exit_code: code, reasons };
    }

    /// The human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let c = &self.counters;
        let cfg = &self.config;
        let get = |k: &str| cfg.get(k).map_or(String::new(), |v| v.to_string().replace('"', ""));
        let _ = writeln!(
            s,
            "loadgen {} — {} {} to {}, {} registers, {} sessions, {} loop",
            self.loadgen_version,
            get("transport"),
            get("ffd_mix"),
            get("target"),
            get("registers"),
            get("behaviour"),
            get("load_model"),
        );
        let _ = writeln!(
            s,
            "time     connect phase {:.2}s, warm-up {:.2}s, measured {:.2}s, elapsed {:.2}s",
            self.timing.connect_phase_s, self.timing.warmup_s, self.timing.measure_s, self.timing.elapsed_s
        );
        let _ = writeln!(
            s,
            "rate     achieved {:.0}/s{}   (sent {:.0}/s over the whole run)",
            self.rates.achieved,
            self.rates.offered.map_or(String::new(), |o| format!(" of {o:.0}/s offered")),
            self.rates.sent
        );
        let _ = writeln!(
            s,
            "docs     sent {}  ok {}  mismatches {}  timeouts {}  refusals {}  resends {}  gave up {}",
            c.documents_sent, c.documents_ok, self.mismatches_total, c.timeouts, c.refusals, c.resends, c.gave_up
        );
        if self.mismatches_total > 0 {
            let kinds: Vec<String> =
                self.mismatches.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(s, "mismatch {}", kinds.join("  "));
        }
        if c.duplicates_sent + c.malformed_sent + c.late_acks + c.ack_changed > 0 {
            let _ = writeln!(
                s,
                "inject   duplicates {}  malformed {} (answered as required {})  late acks {}  identical re-acks {}  changed acks {}",
                c.duplicates_sent, c.malformed_sent, c.malformed_ok, c.late_acks, c.acks_identical, c.ack_changed
            );
        }
        if self.rates.offered.is_some() {
            let _ = writeln!(s, "schedule late sends {}  unsent {}", c.late_sends, c.unsent);
        }
        let _ = writeln!(
            s,
            "conns    ok {}  failed {}{}  closed by gateway {}  io errors {}",
            c.connects_ok,
            c.connects_failed,
            if c.connects_failed > 0 {
                let kinds: Vec<String> =
                    self.connect_errors.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
                format!(" ({})", kinds.join(", "))
            } else {
                String::new()
            },
            c.closed_by_peer,
            c.io_errors
        );
        if let Some(h) = &self.tls_handshakes {
            let _ = writeln!(s, "tls      handshakes full {}  resumed {}", h.full, h.resumed);
        }
        let _ = writeln!(
            s,
            "latency  {:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "", "p50", "p90", "p99", "p99.9", "max", "count"
        );
        let mut row = |name: &str, p: &Percentiles| {
            let _ = writeln!(
                s,
                "         {:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                name,
                fmt_us(p.p50 as f64),
                fmt_us(p.p90 as f64),
                fmt_us(p.p99 as f64),
                fmt_us(p.p999 as f64),
                fmt_us(p.max as f64),
                p.count
            );
        };
        if let Some(p) = &self.latency_us.corrected {
            row("corrected", p);
        }
        row("uncorrected", &self.latency_us.uncorrected);
        if self.latency_us.connect.count > 0 {
            row("connect", &self.latency_us.connect);
        }
        if let Some(p) = &self.latency_us.send_lag {
            row("send lag", p);
        }
        if self.latency_us.corrected.is_none() {
            let _ = writeln!(
                s,
                "         (closed loop: no intended send times, so latency cannot be corrected for coordinated omission)"
            );
        }
        for t in &self.thresholds {
            let _ = writeln!(
                s,
                "threshold {:<20} {}  (measured {})",
                t.threshold.expr,
                if t.ok { "ok" } else { "BREACHED" },
                t.value.map_or("nothing".to_owned(), |v| format!("{v:.1}"))
            );
        }
        let _ = writeln!(
            s,
            "verdict  {}",
            if self.verdict.ok {
                "ok".to_owned()
            } else {
                format!("FAILED (exit {}): {}", self.verdict.exit_code, self.verdict.reasons.join("; "))
            }
        );
        s
    }
}
