//! `--threshold` conditions: the metrics they may name, parsing (`p99<5ms`,
//! `rate>=10000`, `timeouts==0`) and the evaluated result.

use serde::Serialize;

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
    pub(super) fn holds(self, a: f64, b: f64) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
