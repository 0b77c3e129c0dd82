//! Measurement: HdrHistograms (corrected, uncorrected, connect, send lag), counters by
//! kind, thresholds, and the report in two forms — a human summary and JSON with every
//! figure.
//!
//! Histograms are sharded (a register records into shard `index % shards`) so that
//! thousands of register tasks on several runtime threads do not contend on one lock;
//! shards are merged for the report. Values are microseconds, 1 µs to 1 hour, three
//! significant digits.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::transport::connect_stats::{ConnectErrorKind, HandshakeStats, SourceStat};
use crate::verify::MismatchKind;

/// Largest recordable value, µs.
pub const HIST_MAX_US: u64 = 3_600_000_000;

fn new_hist() -> Histogram<u64> {
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("constant histogram bounds are valid")
}

/// Microseconds of a duration, saturating.
pub fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The histograms of one shard.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Reply time − intended send time (open loop only).
    pub corrected: Histogram<u64>,
    /// Reply time − actual send time (start of the connect in per-document mode).
    pub uncorrected: Histogram<u64>,
    /// TCP connect + TLS/QUIC handshake.
    pub connect: Histogram<u64>,
    /// Actual − intended send time (open loop only): the generator's own lag plus waiting
    /// for the previous reply on the same connection.
    pub send_lag: Histogram<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self { corrected: new_hist(), uncorrected: new_hist(), connect: new_hist(), send_lag: new_hist() }
    }
}

impl Recorder {
    /// Adds another recorder's samples.
    pub fn merge(&mut self, o: &Recorder) {
        // same bounds everywhere, so `add` cannot fail
        let _ = self.corrected.add(&o.corrected);
        let _ = self.uncorrected.add(&o.uncorrected);
        let _ = self.connect.add(&o.connect);
        let _ = self.send_lag.add(&o.send_lag);
    }
}

macro_rules! counters {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {
        /// Event counters (relaxed atomics; read once at the end, and by the progress line).
        #[derive(Debug, Default)]
        pub struct Counters {
            $($(#[$m])* pub $name: AtomicU64,)*
            /// Mismatches by [`MismatchKind::index`].
            pub mismatch: [AtomicU64; MismatchKind::ALL.len()],
            /// Connect failures by [`ConnectErrorKind::index`].
            pub connect_errors: [AtomicU64; ConnectErrorKind::ALL.len()],
            /// Documents sent by kind ([`crate::docs::DocKind`] order).
            pub by_kind: [AtomicU64; 6],
        }

        /// A copy of the scalar counters.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
        pub struct CounterSnapshot {
            $($(#[$m])* pub $name: u64,)*
        }

        impl Counters {
            /// Reads every scalar counter.
            pub fn snapshot(&self) -> CounterSnapshot {
                CounterSnapshot { $($name: self.$name.load(Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Documents sent (first attempts; resends and duplicates are counted apart).
    documents_sent,
    /// Documents answered as required (code 0, or the code an injected fault calls for,
    /// or the close it calls for).
    documents_ok,
    /// `documents_ok` completed inside the measurement window (the achieved rate).
    documents_ok_in_window,
    /// Exchanges without a reply within `--timeout`.
    timeouts,
    /// Connections closed (or reset) by the gateway without a reply.
    refusals,
    /// Messages sent again after a timeout, as a register does.
    resends,
    /// Documents abandoned after `--max-resends` timeouts (or when no connection could be
    /// made for a resend).
    gave_up,
    /// Replies that arrived after their exchange timed out.
    late_acks,
    /// A reply to a retransmission (resend or duplicate) that differs from the first
    /// reply for the same document.
    ack_changed,
    /// Retransmissions whose reply was byte-identical to the first one.
    acks_identical,
    /// Deliberate duplicates sent (`--duplicates`).
    duplicates_sent,
    /// Injected faults sent (`--malformed`).
    malformed_sent,
    /// Injected faults answered exactly as required.
    malformed_ok,
    /// Open loop: sends that started more than `--late-threshold` after their intended time.
    late_sends,
    /// Open loop: scheduled sends that never happened (no connection could be made, or the
    /// run ended while the register was behind).
    unsent,
    /// Connections established.
    connects_ok,
    /// Connection attempts that failed.
    connects_failed,
    /// Connections the gateway closed while idle (idle mode, persistent sessions).
    closed_by_peer,
    /// Other I/O errors during exchanges.
    io_errors,
    /// Bytes written.
    bytes_sent,
    /// Bytes of replies received.
    bytes_received,
}

impl Counters {
    /// Counts a mismatch.
    pub fn mismatch(&self, k: MismatchKind) {
        self.mismatch[k.index()].fetch_add(1, Relaxed);
    }

    /// Counts a connect failure.
    pub fn connect_error(&self, k: ConnectErrorKind) {
        self.connects_failed.fetch_add(1, Relaxed);
        self.connect_errors[k.index()].fetch_add(1, Relaxed);
    }

    /// Sum of all mismatch kinds.
    pub fn mismatches_total(&self) -> u64 {
        self.mismatch.iter().map(|a| a.load(Relaxed)).sum()
    }

    /// Mismatches by name.
    pub fn mismatch_map(&self) -> BTreeMap<&'static str, u64> {
        MismatchKind::ALL.iter().map(|k| (k.name(), self.mismatch[k.index()].load(Relaxed))).collect()
    }

    /// Connect failures by name.
    pub fn connect_error_map(&self) -> BTreeMap<&'static str, u64> {
        ConnectErrorKind::ALL.iter().map(|k| (k.name(), self.connect_errors[k.index()].load(Relaxed))).collect()
    }
}

/// Sharded histograms plus counters.
#[derive(Debug)]
pub struct Stats {
    shards: Vec<Mutex<Recorder>>,
    /// Counters.
    pub counters: Counters,
}

impl Stats {
    /// `shards` histogram shards (at least one).
    pub fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1)).map(|_| Mutex::new(Recorder::default())).collect(),
            counters: Counters::default(),
        }
    }

    /// Runs `f` on shard `key % shards`.
    pub fn with<R>(&self, key: u64, f: impl FnOnce(&mut Recorder) -> R) -> R {
        let i = (key % self.shards.len() as u64) as usize;
        let mut g = self.shards[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g)
    }

    /// All shards merged.
    pub fn merged(&self) -> Recorder {
        let mut out = Recorder::default();
        for s in &self.shards {
            let g = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            out.merge(&g);
        }
        out
    }
}

/// Percentiles of one histogram, µs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th.
    pub p99: u64,
    /// 99.9th.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// From a histogram.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self { count: 0, min: 0, mean: 0.0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
        }
        Self {
            count: h.len(),
            min: h.min(),
            mean: (h.mean() * 10.0).round() / 10.0,
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }

    /// A named percentile.
    pub fn get(&self, name: &str) -> Option<f64> {
        Some(match name {
            "p50" => self.p50 as f64,
            "p90" => self.p90 as f64,
            "p99" => self.p99 as f64,
            "p999" => self.p999 as f64,
            "max" => self.max as f64,
            "min" => self.min as f64,
            "mean" => self.mean,
            _ => return None,
        })
    }
}

/// Formats µs for people: `870µs`, `4.21ms`, `1.50s`.
pub fn fmt_us(v: f64) -> String {
    if v < 1_000.0 {
        format!("{v:.0}µs")
    } else if v < 1_000_000.0 {
        format!("{:.2}ms", v / 1_000.0)
    } else {
        format!("{:.2}s", v / 1_000_000.0)
    }
}

// ---------------------------------------------------------------- thresholds

/// Comparison of a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `==`
    #[serde(rename = "==")]
    Eq,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Self::Lt => a < b,
            Self::Le => a <= b,
            Self::Gt => a > b,
            Self::Ge => a >= b,
            Self::Eq => (a - b).abs() < f64::EPSILON,
        }
    }
}

/// Metrics a threshold may name: latency percentiles in µs (`p99` = corrected in open
/// loop, uncorrected in closed loop; `u_p99` always uncorrected; `connect_p99`), and
/// counts or rates.
pub const THRESHOLD_METRICS: &[&str] = &[
    "p50",
    "p90",
    "p99",
    "p999",
    "max",
    "u_p50",
    "u_p90",
    "u_p99",
    "u_p999",
    "u_max",
    "connect_p50",
    "connect_p99",
    "connect_max",
    "rate",
    "mismatches",
    "timeouts",
    "refusals",
    "late_sends",
    "unsent",
    "gave_up",
    "ack_changed",
    "connect_errors",
];

/// A `--threshold` such as `p99<5ms`, `rate>=10000`, `timeouts==0`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    /// As written.
    pub expr: String,
    /// Metric name.
    pub metric: String,
    /// Comparison.
    pub op: Op,
    /// Limit (µs for latencies, documents/s for rate).
    pub limit: f64,
}

impl std::str::FromStr for Threshold {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let expr: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let (pos, op, oplen) = [("<=", Op::Le), (">=", Op::Ge), ("==", Op::Eq), ("<", Op::Lt), (">", Op::Gt)]
            .iter()
            .find_map(|(t, op)| expr.find(t).map(|p| (p, *op, t.len())))
            .ok_or_else(|| format!("threshold {s:?}: expected METRIC<VALUE (also <=, >, >=, ==)"))?;
        let metric = expr[..pos].to_owned();
        let value = expr[pos + oplen..].to_owned();
        let (metric, value) = (metric.as_str(), value.as_str());
        if !THRESHOLD_METRICS.contains(&metric) {
            return Err(format!(
                "threshold {s:?}: unknown metric {metric:?} (known: {})",
                THRESHOLD_METRICS.join(", ")
            ));
        }
        let is_latency =
            metric.starts_with('p') || metric.starts_with("u_") || metric.starts_with("connect_") || metric == "max";
        let (num, scale) = if is_latency {
            if let Some(v) = value.strip_suffix("ms") {
                (v, 1_000.0)
            } else if let Some(v) = value.strip_suffix("µs").or_else(|| value.strip_suffix("us")) {
                (v, 1.0)
            } else if let Some(v) = value.strip_suffix('s') {
                (v, 1_000_000.0)
            } else {
                (value, 1.0)
            }
        } else {
            (value.strip_suffix("/s").unwrap_or(value), 1.0)
        };
        let n: f64 = num.parse().map_err(|_| format!("threshold {s:?}: bad value {value:?}"))?;
        Ok(Self { expr, metric: metric.to_owned(), op, limit: n * scale })
    }
}

/// A threshold evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdResult {
    /// The threshold.
    #[serde(flatten)]
    pub threshold: Threshold,
    /// The measured value (null if the run did not measure it).
    pub value: Option<f64>,
    /// Whether it held.
    pub ok: bool,
}

// ---------------------------------------------------------------- report

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut r = Recorder::default();
        for v in 1..=1000u64 {
            r.uncorrected.record(v).expect("record");
        }
        let p = Percentiles::of(&r.uncorrected);
        assert_eq!(p.count, 1000);
        assert_eq!(p.p50, 500);
        assert!((989..=991).contains(&p.p99), "{}", p.p99);
        assert_eq!(p.max, 1000);
        let e = Percentiles::of(&Recorder::default().corrected);
        assert_eq!(e.count, 0);
    }

    #[test]
    fn sharded_merge() {
        let s = Stats::new(4);
        for i in 0..100u64 {
            s.with(i, |r| r.uncorrected.record(10).expect("record"));
        }
        assert_eq!(s.merged().uncorrected.len(), 100);
    }

    #[test]
    fn thresholds_parse() {
        let t: Threshold = "p99<5ms".parse().expect("p99");
        assert_eq!((t.metric.as_str(), t.op, t.limit), ("p99", Op::Lt, 5_000.0));
        let t: Threshold = "u_p999 <= 250us".parse().expect("u");
        assert_eq!((t.op, t.limit), (Op::Le, 250.0));
        let t: Threshold = "rate>=10000/s".parse().expect("rate");
        assert_eq!((t.op, t.limit), (Op::Ge, 10_000.0));
        let t: Threshold = "max<1.5s".parse().expect("s");
        assert_eq!(t.limit, 1_500_000.0);
        assert!("p98<1ms".parse::<Threshold>().is_err());
        assert!("timeouts=0".parse::<Threshold>().is_err());
        assert!("timeouts==x".parse::<Threshold>().is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_us(870.0), "870µs");
        assert_eq!(fmt_us(4_210.0), "4.21ms");
        assert_eq!(fmt_us(1_500_000.0), "1.50s");
    }
}
