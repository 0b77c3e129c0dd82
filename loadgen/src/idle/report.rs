//! What an idle run measured, the reconnect storm as this process saw it (with its
//! per-recovery CSV), and the human summary of both.

use std::io::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use anyhow::Context as _;
use serde::Serialize;

use super::config::Reconnect;
use super::state::Shared;
use crate::stats::{Percentiles, Recorder};
use crate::transport::connect_stats::{ConnectErrorKind, SourceStat};

/// The reconnect storm as one process saw it.
#[derive(Debug, Clone, Serialize)]
pub struct StormReport {
    /// Backoff bounds, ms.
    pub backoff_ms: [u64; 2],
    /// Registers whose connection the server closed at least once.
    pub dropped: u64,
    /// Drops in all (a register may be dropped again after it recovered).
    pub drops: u64,
    /// Registers that delivered their next document after their last drop.
    pub recovered: u64,
    /// Established registers that did not (still waiting, or never dropped).
    pub not_recovered: u64,
    /// Whether every established register was dropped and recovered.
    pub complete: bool,
    /// Wall-clock time of the first drop, Unix seconds.
    pub first_drop_unix_s: Option<f64>,
    /// Of the last drop.
    pub last_drop_unix_s: Option<f64>,
    /// Of the last recovery.
    pub last_recovery_unix_s: Option<f64>,
    /// From the first drop to the last recovery, seconds (`null` unless complete).
    pub all_recovered_after_s: Option<f64>,
    /// Connection attempts after drops.
    pub reconnect_attempts: u64,
    /// Failed attempts by kind.
    pub reconnect_errors: std::collections::BTreeMap<&'static str, u64>,
    /// Next documents that got no valid acknowledgment on a new connection (refused,
    /// timeout, mismatch); the register tried again.
    pub next_documents_failed: u64,
    /// Per recovery: drop → acknowledgment of the next document, µs.
    pub recovery_us: Percentiles,
    /// Connect (and handshake) time of the successful reconnects, µs.
    pub reconnect_connect_us: Percentiles,
}

/// What an idle run measured.
#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    /// Schema id.
    pub schema: &'static str,
    /// The configuration.
    pub config: serde_json::Value,
    /// Machine facts.
    pub environment: serde_json::Value,
    /// Connections established.
    pub established: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Failures by kind.
    pub connect_errors: std::collections::BTreeMap<&'static str, u64>,
    /// Connections the gateway closed during the run.
    pub closed_by_peer: u64,
    /// Connections still open when the hold ended.
    pub open_at_end: u64,
    /// From the first attempt to the last one finishing, seconds.
    pub time_to_plateau_s: f64,
    /// Achieved connection rate during the ramp.
    pub connect_rate: f64,
    /// Connect (and handshake) latency, µs.
    pub connect_latency_us: Percentiles,
    /// First documents acknowledged as required (`send_first`).
    pub first_documents_ok: u64,
    /// First documents that failed (mismatch, timeout, refusal).
    pub first_documents_failed: u64,
    /// When every attempt had finished, Unix seconds.
    pub connected_at_unix_s: f64,
    /// When every first document had been answered (= connected without `send_first`).
    pub plateau_at_unix_s: f64,
    /// This process's RSS before connecting, bytes.
    pub rss_before: Option<u64>,
    /// This process's RSS when every attempt had finished, bytes.
    pub rss_connected: Option<u64>,
    /// This process's RSS at the plateau, bytes.
    pub rss_at_plateau: Option<u64>,
    /// Client-side RSS per established connection, bytes (not the gateway's!).
    pub client_rss_per_connection: Option<f64>,
    /// Descriptors open at the plateau.
    pub fds_at_plateau: Option<u64>,
    /// Source addresses.
    pub sources: Vec<SourceStat>,
    /// The reconnect storm (`null` without `reconnect`).
    pub storm: Option<StormReport>,
}

impl IdleReport {
    /// Human summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "idle     established {} of {}, failed {}{}\n",
            self.established,
            self.established + self.failed,
            self.failed,
            kinds(&self.connect_errors)
        );
        s += &format!(
            "ramp     plateau after {:.2}s ({:.0} connections/s); connect p50 {} p99 {} max {}\n",
            self.time_to_plateau_s,
            self.connect_rate,
            crate::stats::fmt_us(self.connect_latency_us.p50 as f64),
            crate::stats::fmt_us(self.connect_latency_us.p99 as f64),
            crate::stats::fmt_us(self.connect_latency_us.max as f64),
        );
        s += &format!("hold     closed by gateway {}, open at end {}\n", self.closed_by_peer, self.open_at_end);
        if self.first_documents_ok + self.first_documents_failed > 0 {
            s +=
                &format!("first    documents ok {}, failed {}\n", self.first_documents_ok, self.first_documents_failed);
        }
        if let Some(st) = &self.storm {
            s += &format!(
                "storm    dropped {} ({} drops), recovered {}, not recovered {}{}\n",
                st.dropped,
                st.drops,
                st.recovered,
                st.not_recovered,
                st.all_recovered_after_s.map_or(String::new(), |t| format!(
                    "; every register delivered its next document {t:.2}s after the first drop"
                )),
            );
            s += &format!(
                "         reconnect attempts {}, failed{}, next documents failed {}; drop → ack p50 {} p99 {} max {}\n",
                st.reconnect_attempts,
                {
                    let k = kinds(&st.reconnect_errors);
                    if k.is_empty() { " 0".to_owned() } else { k }
                },
                st.next_documents_failed,
                crate::stats::fmt_us(st.recovery_us.p50 as f64),
                crate::stats::fmt_us(st.recovery_us.p99 as f64),
                crate::stats::fmt_us(st.recovery_us.max as f64),
            );
        }
        if let (Some(b), Some(p)) = (self.rss_before, self.rss_at_plateau) {
            s += &format!(
                "loadgen  RSS {:.1} MiB -> {:.1} MiB ({} per connection, client side), {} fds open\n",
                b as f64 / 1_048_576.0,
                p as f64 / 1_048_576.0,
                self.client_rss_per_connection.map_or("n/a".into(), |v| format!("{v:.0} B")),
                self.fds_at_plateau.map_or("n/a".into(), |v| v.to_string()),
            );
        }
        s
    }
}

fn kinds(m: &std::collections::BTreeMap<&'static str, u64>) -> String {
    let v: Vec<String> = m.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
    if v.is_empty() { String::new() } else { format!(" ({})", v.join(", ")) }
}

pub(super) fn storm_report<C>(
    sh: &Shared<C>,
    r: &Reconnect,
    established: u64,
    pending_at_end: u64,
) -> anyhow::Result<StormReport> {
    let c = &sh.counters;
    let log = sh.storm.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut rec = Recorder::default();
    for e in &log.recoveries {
        rec.uncorrected.saturating_record(e.took_us.max(1));
        rec.connect.saturating_record(e.connect_us.max(1));
    }
    let dropped = c.dropped_registers.load(Relaxed);
    let recovered_now = dropped.saturating_sub(pending_at_end);
    let complete = established > 0 && dropped >= established && pending_at_end == 0;
    let first_drop = log.drops.iter().copied().reduce(f64::min);
    let last_recovery = log.recoveries.iter().map(|e| e.recovered).reduce(f64::max);
    if let Some(p) = &sh.cfg.storm_csv {
        let mut f =
            std::io::BufWriter::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?);
        writeln!(f, "register,dropped_at_unix_s,recovered_at_unix_s,attempts,recovery_us,connect_us")?;
        for e in &log.recoveries {
            writeln!(
                f,
                "{},{:.6},{:.6},{},{},{}",
                e.register, e.dropped, e.recovered, e.attempts, e.took_us, e.connect_us
            )?;
        }
        f.flush()?;
    }
    Ok(StormReport {
        backoff_ms: [r.backoff_min.as_millis() as u64, r.backoff_max.as_millis() as u64],
        dropped,
        drops: log.drops.len() as u64,
        recovered: recovered_now,
        not_recovered: established.saturating_sub(recovered_now),
        complete,
        first_drop_unix_s: first_drop,
        last_drop_unix_s: log.drops.iter().copied().reduce(f64::max),
        last_recovery_unix_s: last_recovery,
        all_recovered_after_s: match (complete, first_drop, last_recovery) {
            (true, Some(a), Some(b)) => Some(((b - a) * 1e6).round() / 1e6),
            _ => None,
        },
        reconnect_attempts: c.reconnect_attempts.load(Relaxed),
        reconnect_errors: ConnectErrorKind::ALL
            .iter()
            .map(|k| (k.name(), c.reconnect_errors[k.index()].load(Relaxed)))
            .collect(),
        next_documents_failed: c.next_failed.load(Relaxed),
        recovery_us: Percentiles::of(&rec.uncorrected),
        reconnect_connect_us: Percentiles::of(&rec.connect),
    })
}
