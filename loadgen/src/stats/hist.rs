//! Latency histograms (HdrHistogram, µs from 1 µs to 1 hour, three significant digits),
//! sharded so that thousands of register tasks do not contend on one lock, and their
//! percentiles.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::counters::Counters;

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
    fn formats() {
        assert_eq!(fmt_us(870.0), "870µs");
        assert_eq!(fmt_us(4_210.0), "4.21ms");
        assert_eq!(fmt_us(1_500_000.0), "1.50s");
    }
}
