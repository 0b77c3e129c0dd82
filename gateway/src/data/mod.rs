//! **The data plane**: everything between a register's socket and its acknowledgment —
//! listeners (TCP, TLS, QUIC), the one connection handler, the ingest pipeline, the
//! register index, close reasons, the acknowledgment signer and the unknown-FN recorder.
//!
//! May import the shared pieces (`config`, `metrics`, `shutdown`, `process`, `tls`),
//! `ffd` and `storage`; never `crate::control`. The control plane sees it only through
//! [`LiveView`] (checked by `gateway/tests/architecture.rs`).

pub mod backlog;
pub mod close;
pub mod ingest;
pub mod listeners;
pub mod meters;
pub mod quic;
pub mod registry;
pub mod session;
pub mod signer;
pub mod tls_conn;

use std::sync::Arc;

use ffd::FnNumber;
use storage::model::Register;

use self::close::{CloseReason, Transport};
use self::registry::{Refusal, Registry};
use crate::metrics as m;

/// What the control plane may see and change of the live data plane: the one door
/// between the planes. Admin changes to registers reach the ingest index at once through
/// it (other nodes follow on their periodic refresh); nothing else of the data plane is
/// reachable from the control plane.
#[derive(Clone)]
pub struct LiveView {
    registry: Arc<Registry>,
}

impl std::fmt::Debug for LiveView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveView").field("indexed_fns", &self.registry.len()).finish()
    }
}

impl LiveView {
    /// The view of a register index.
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }

    /// Applies a created or changed register to the ingest index now: its current FN is
    /// accepted (or refused, if suspended) from the next document on.
    pub fn apply_register(&self, register: &Register) {
        self.registry.apply(register);
    }

    /// Whether ingest currently knows this FN (as a current or replaced FN of a register).
    pub fn knows_fn(&self, fn_number: &FnNumber) -> bool {
        self.registry.get(fn_number).is_some()
    }

    /// Number of FNs in the ingest index.
    pub fn indexed_fns(&self) -> usize {
        self.registry.len()
    }
}

/// Creates the series of the data plane's counters at zero for every value of their
/// bounded labels, so that the first event of a kind shows in `rate()` and `increase()`
/// (a series that appears with value 1 has no earlier sample to subtract from).
pub fn prime_metrics() {
    for t in Transport::ALL {
        let t = t.as_str();
        metrics::counter!(m::CONNECTIONS_ACCEPTED, "transport" => t).increment(0);
        metrics::gauge!(m::CONNECTIONS_OPEN, "transport" => t).increment(0.0);
        metrics::counter!(m::BYTES_RECEIVED, "transport" => t).increment(0);
        metrics::counter!(m::BYTES_SENT, "transport" => t).increment(0);
        metrics::counter!(m::PINGS, "transport" => t).increment(0);
        for r in CloseReason::ALL {
            metrics::counter!(m::CONNECTIONS_CLOSED, "transport" => t, "reason" => r.as_str()).increment(0);
        }
    }
    for t in [Transport::Tls, Transport::Quic] {
        for result in ["ok", "timeout", "failed"] {
            metrics::counter!(m::HANDSHAKES, "transport" => t.as_str(), "result" => result).increment(0);
        }
    }
    for (_, d, _) in m::DOC_TYPE_LABELS {
        metrics::counter!(m::DOCUMENTS_RECEIVED, "doc_type" => *d).increment(0);
        for code in ["0", "11", "14"] {
            metrics::counter!(m::DOCUMENTS_ACKED, "doc_type" => *d, "code" => code).increment(0);
        }
    }
    for r in Refusal::ALL {
        metrics::counter!(m::DOCUMENTS_REFUSED, "reason" => r.as_str()).increment(0);
    }
    for kind in ["identical", "conflict"] {
        metrics::counter!(m::DUPLICATES, "kind" => kind).increment(0);
    }
    for t in Transport::ALL {
        m::prime(m::ACK_LATENCY, &[("transport", t.as_str())]);
    }
    for t in [Transport::Tls, Transport::Quic] {
        m::prime(m::HANDSHAKE_SECONDS, &[("transport", t.as_str())]);
    }
    for code in PROTOCOL_ERROR_CODES {
        m::prime(m::PROTOCOL_ERRORS, &[("code", code)]);
    }
    for code in FLK_ERROR_CODES {
        m::prime(m::FLK_ERRORS, &[("code", code)]);
    }
    for tag in std::iter::once(0).chain((1000..3000).step_by(100)) {
        for action in ["accepted", "refused"] {
            m::prime(m::UNKNOWN_TAGS, &[("bucket", ffd::tags::tag_bucket(tag)), ("action", action)]);
        }
    }
    m::prime(m::DOCUMENTS_REFUSED, &[("reason", ingest::UNKNOWN_TAG_REFUSAL)]);
    for result in ["ok", "error"] {
        m::prime(m::REGISTRY_REFRESHES, &[("result", result)]);
    }
    for code in ["timeout", "not_durable", "no_outcome", "poisoned", "io", "unavailable", "closed"] {
        m::prime(m::STORAGE_ERRORS, &[("code", code)]);
    }
}

/// Codes of the messages that close the connection (`ffd::FfdError::code` of the
/// close-class errors), the label values of `ofd_gateway_protocol_errors_total`.
const PROTOCOL_ERROR_CODES: [&str; 15] = [
    "truncated_header",
    "bad_signature",
    "bad_session_version",
    "bad_flags",
    "body_too_large",
    "session_crc_mismatch",
    "unsupported_channel",
    "container_too_short",
    "container_length_mismatch",
    "container_crc_mismatch",
    "bad_message_type",
    "bad_container_version",
    "bad_fn_bcd",
    "session_fn_mismatch",
    "too_many_requisites",
];

/// Codes of the documents stored and answered 11 or 14 (`ffd` codes), the label values of
/// `ofd_gateway_flk_errors_total`.
const FLK_ERROR_CODES: [&str; 11] = [
    "unknown_document_type",
    "empty_document",
    "flk_truncated",
    "flk_depth_exceeded",
    "flk_document_too_large",
    "flk_value_too_long",
    "flk_bad_value_length",
    "flk_too_many_requisites",
    "flk_missing_requisite",
    "flk_fd_mismatch",
    "flk_fn_mismatch_document",
];
