//! The shared state of one run (the connector, the statistics, the clock) and the window
//! of its load phase; connecting, counted, is the one operation on it every part uses.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::RunConfig;
use crate::docs::Doc;
use crate::stats::{Stats, us};
use crate::transport::Connector;

/// Shared state of a run.
pub(super) struct Ctx<C: Connector> {
    pub(super) connector: C,
    pub(super) pacer: Option<crate::pacer::Pacer>,
    pub(super) cfg: RunConfig,
    pub(super) stats: Stats,
    pub(super) tracker: TaskTracker,
    pub(super) cancel: CancellationToken,
    pub(super) start: Instant,
    pub(super) last_done: Mutex<Instant>,
    pub(super) last_connect_error: Mutex<Option<String>>,
    /// `--acked-out`: one line per acknowledged document.
    pub(super) acked: Option<Mutex<std::io::BufWriter<std::fs::File>>>,
}

/// Window of one load phase.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    pub(super) t0: Instant,
    pub(super) measure_from: Instant,
    pub(super) end: Instant,
}

impl Window {
    pub(super) fn contains(&self, t: Instant) -> bool {
        t >= self.measure_from && t < self.end
    }
}

/// What happened to a document.
pub(super) enum Sent {
    /// It went out (whatever the answer).
    Yes,
    /// No connection: the register keeps it for its next slot.
    NoConnection(Doc),
}

pub(super) struct Ready {
    pub(super) n: AtomicU64,
    pub(super) notify: Notify,
}

impl<C: Connector> Ctx<C> {
    /// Records an acknowledged document (FN, FD, digests of the container and the ack).
    pub(super) fn record_acked(&self, fn_number: &ffd::FnNumber, fd: u32, message: &[u8], reply: &[u8]) {
        use sha2::Digest;
        use std::io::Write;
        let Some(w) = &self.acked else { return };
        let digest =
            |b: &[u8]| hex::encode(sha2::Sha256::digest(b.get(ffd::session::SESSION_HEADER_LEN..).unwrap_or(&[])));
        let line = format!("{}\t{fd}\t{}\t{}\n", fn_number.to_string().trim_end(), digest(message), digest(reply));
        let mut g = w.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = g.write_all(line.as_bytes());
    }

    /// Flushes the `--acked-out` file.
    pub(super) fn flush_acked(&self) {
        use std::io::Write;
        if let Some(w) = &self.acked {
            let _ = w.lock().unwrap_or_else(std::sync::PoisonError::into_inner).flush();
        }
    }

    pub(super) fn last_connect_error_text(&self) -> Option<String> {
        self.last_connect_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub(super) fn mark_done(&self, t: Instant) {
        let mut g = self.last_done.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if t > *g {
            *g = t;
        }
    }

    pub(super) async fn connect(&self, key: u64) -> Option<C::Conn> {
        let t = Instant::now();
        match self.connector.connect(t + self.cfg.connect_timeout).await {
            Ok(c) => {
                self.stats.counters.connects_ok.fetch_add(1, Relaxed);
                let d = us(t.elapsed());
                self.stats.with(key, |r| r.connect.saturating_record(d));
                Some(c)
            }
            Err(e) => {
                self.stats.counters.connect_error(e.kind);
                *self.last_connect_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(format!("{}: {}", e.kind.name(), e.detail));
                None
            }
        }
    }
}
