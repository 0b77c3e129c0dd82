//! Handles of the metrics the data plane updates for every message, registered once.
//!
//! `metrics::counter!(name, labels)` looks its series up in the recorder's registry on
//! every call (hashing the name and labels); on the ack path that is several lookups per
//! document. The handles here are resolved once, on first use — after the gateway
//! installed its recorder (`metrics::install`, before any listener starts) — and each
//! update is then one atomic operation on a shared cell. Every label set stays bounded:
//! transport × document type × response code, as in the catalogue.

use std::sync::OnceLock;

use metrics::{Counter, Gauge, Histogram};

use crate::data::close::Transport;
use crate::metrics::{self as m, DOC_TYPE_LABELS};

/// The response-code label values of `ofd_gateway_documents_acked_total`.
pub const CODE_LABELS: [&str; 4] = ["0", "11", "14", "other"];

/// Per-transport handles.
pub struct PerTransport {
    /// `ofd_gateway_bytes_received_total{transport}`.
    pub bytes_received: Counter,
    /// `ofd_gateway_bytes_sent_total{transport}`.
    pub bytes_sent: Counter,
    /// `ofd_gateway_ack_latency_seconds{transport}`.
    pub ack_latency: Histogram,
}

/// Per-document-type handles.
pub struct PerDocType {
    /// `ofd_gateway_documents_received_total{doc_type}`.
    pub received: Counter,
    /// `ofd_gateway_documents_acked_total{doc_type, code}`, by [`CODE_LABELS`] index.
    pub acked: [Counter; 4],
}

/// Every per-message handle of the data plane.
pub struct Meters {
    transports: [PerTransport; 3],
    doc_types: Vec<PerDocType>,
    /// `ofd_gateway_inflight_documents`.
    pub inflight: Gauge,
    /// `ofd_gateway_buffered_bytes`.
    pub buffered_bytes: Gauge,
}

static METERS: OnceLock<Meters> = OnceLock::new();

/// The handles (registered with the process's recorder on first use).
pub fn meters() -> &'static Meters {
    METERS.get_or_init(Meters::register)
}

impl Meters {
    fn register() -> Self {
        let transports = Transport::ALL.map(|t| PerTransport {
            bytes_received: metrics::counter!(m::BYTES_RECEIVED, "transport" => t.as_str()),
            bytes_sent: metrics::counter!(m::BYTES_SENT, "transport" => t.as_str()),
            ack_latency: metrics::histogram!(m::ACK_LATENCY, "transport" => t.as_str()),
        });
        let doc_types = DOC_TYPE_LABELS
            .iter()
            .map(|(_, name, _)| PerDocType {
                received: metrics::counter!(m::DOCUMENTS_RECEIVED, "doc_type" => *name),
                acked: CODE_LABELS
                    .map(|code| metrics::counter!(m::DOCUMENTS_ACKED, "doc_type" => *name, "code" => code)),
            })
            .collect();
        Self {
            transports,
            doc_types,
            inflight: metrics::gauge!(m::INFLIGHT_DOCUMENTS),
            buffered_bytes: metrics::gauge!(m::BUFFERED_BYTES),
        }
    }

    /// The handles of a transport.
    pub fn transport(&self, t: Transport) -> &PerTransport {
        &self.transports[t as usize]
    }

    /// The handles of a document type (its form code; unknown forms count as `other`).
    pub fn doc_type(&self, doc_type: u8) -> &PerDocType {
        let i = DOC_TYPE_LABELS
            .iter()
            .position(|(code, _, _)| *code == doc_type && *code != 0)
            .unwrap_or(DOC_TYPE_LABELS.len() - 1);
        &self.doc_types[i]
    }
}

/// The index of a response code in [`CODE_LABELS`].
pub fn code_index(code: u8) -> usize {
    match code {
        0 => 0,
        11 => 1,
        14 => 2,
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handles_cover_every_label_value_of_the_catalogue() {
        let mm = meters();
        assert_eq!(mm.doc_types.len(), DOC_TYPE_LABELS.len());
        assert_eq!(DOC_TYPE_LABELS.last().map(|l| l.1), Some("other"), "`other` is the fallback, last");
        // unknown form codes and the code 0 ("other" in the table) fall back to `other`
        assert!(std::ptr::eq(mm.doc_type(0), mm.doc_type(200)));
        assert!(!std::ptr::eq(mm.doc_type(3), mm.doc_type(200)));
        for (i, t) in Transport::ALL.into_iter().enumerate() {
            assert!(std::ptr::eq(mm.transport(t), &mm.transports[i]), "Transport::ALL is in discriminant order");
        }
        assert_eq!([0, 11, 14, 7].map(code_index), [0, 1, 2, 3]);
    }
}
