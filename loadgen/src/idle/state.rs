//! The shared state of one idle run: its counters, the storm log, the histograms.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use super::config::IdleConfig;
use crate::stats::Recorder;
use crate::transport::connect_stats::ConnectErrorKind;

/// Unix time now, seconds.
pub(super) fn unix_now() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

#[derive(Debug, Default)]
pub(super) struct IdleCounters {
    pub(super) established: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) errors: [AtomicU64; ConnectErrorKind::ALL.len()],
    pub(super) closed: AtomicU64,
    /// Connections open now (established or re-established, minus drops).
    pub(super) open: AtomicU64,
    pub(super) attempts_done: AtomicU64,
    pub(super) first_ok: AtomicU64,
    pub(super) first_failed: AtomicU64,
    // storm
    pub(super) dropped_registers: AtomicU64,
    pub(super) pending: AtomicU64,
    pub(super) recovered_registers: AtomicU64,
    pub(super) reconnect_attempts: AtomicU64,
    pub(super) reconnect_errors: [AtomicU64; ConnectErrorKind::ALL.len()],
    pub(super) next_failed: AtomicU64,
}

/// One recovery: a register dropped at `dropped` delivered its next document at
/// `recovered` (Unix seconds) after `attempts` connection attempts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Recovery {
    pub(super) register: u64,
    pub(super) dropped: f64,
    pub(super) recovered: f64,
    pub(super) attempts: u32,
    pub(super) took_us: u64,
    pub(super) connect_us: u64,
}

#[derive(Debug, Default)]
pub(super) struct StormLog {
    pub(super) drops: Vec<f64>,
    pub(super) recoveries: Vec<Recovery>,
}

/// Shared state of one idle run.
pub(super) struct Shared<C> {
    pub(super) connector: C,
    pub(super) cfg: IdleConfig,
    pub(super) counters: IdleCounters,
    pub(super) hist: Mutex<Recorder>,
    pub(super) storm: Mutex<StormLog>,
}
