//! Measurement: histograms (`hist`), counters (`counters`), thresholds (`threshold`) and
//! the report (`report`), re-exported here as one vocabulary for run, idle and the binary.
//! May import verify and transport::connect_stats only.
//!
//! HdrHistograms (corrected, uncorrected, connect, send lag), counters by kind,
//! thresholds, and the report in two forms — a human summary and JSON with every figure.
//!
//! Histograms are sharded (a register records into shard `index % shards`) so that
//! thousands of register tasks on several runtime threads do not contend on one lock;
//! shards are merged for the report. Values are microseconds, 1 µs to 1 hour, three
//! significant digits.

mod counters;
mod hist;
mod report;
mod threshold;

pub use counters::{CounterSnapshot, Counters};
pub use hist::{HIST_MAX_US, Percentiles, Recorder, Stats, fmt_us, us};
pub use report::{EXIT_THRESHOLD, EXIT_VERIFY, Latencies, Rates, Report, SCHEMA, Timing, Verdict};
pub use threshold::{Op, THRESHOLD_METRICS, Threshold, ThresholdResult};
