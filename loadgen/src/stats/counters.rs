//! Event counters of a run: relaxed atomics, one per event, and arrays by mismatch kind,
//! connect failure kind and document kind.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use crate::transport::connect_stats::ConnectErrorKind;
use crate::verify::MismatchKind;

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
