//! Fiscal documents as stored, and FNS delivery state.

use bytes::Bytes;
use ffd::FnNumber;
use serde::{Deserialize, Serialize};

use super::hex_bytes;
use crate::ids::{Rnm, Timestamp};

/// Identity of a fiscal document: (FN number, FD number). Unique forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DocumentKey {
    /// FN number.
    pub fn_number: FnNumber,
    /// FD number.
    pub fd: u32,
}

/// A stored fiscal document with everything needed to answer, show and forward it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRecord {
    /// FN number.
    pub fn_number: FnNumber,
    /// FD number.
    pub fd: u32,
    /// The register it was accepted for.
    pub rnm: Rnm,
    /// Form code.
    pub doc_type: u8,
    /// Document FFD version (tag 1209 value), if plaintext.
    pub ffd_version: Option<u8>,
    /// Document time (tag 1012).
    pub doc_time: Option<Timestamp>,
    /// When the operator received it.
    pub received_at: Timestamp,
    /// Total (tag 1020), kopecks.
    pub total: Option<u64>,
    /// Printed fiscal sign (tag 1077).
    pub fiscal_sign: Option<u32>,
    /// The response code of the acknowledgment (0, 11 or 14).
    pub response_code: u8,
    /// The stable code of the format-logic error, when the code is not 0.
    pub flk_error: Option<String>,
    /// The body could not be read (encrypted): stored verbatim, acknowledged at container
    /// level.
    pub opaque: bool,
    /// Drive report carried by the document.
    pub telemetry: Option<TelemetryRecord>,
    /// The whole container as received.
    #[serde(with = "hex_bytes")]
    pub raw: Bytes,
    /// The acknowledgment container sent for it (re-sent byte for byte on retransmission).
    #[serde(with = "hex_bytes")]
    pub ack: Bytes,
}

impl DocumentRecord {
    /// A document acknowledged with code 0 whose body nothing was read from (no time, total,
    /// fiscal sign or telemetry; FFD version unknown): the base that tools and tests
    /// complete with struct update syntax.
    pub fn accepted(
        fn_number: FnNumber,
        fd: u32,
        rnm: Rnm,
        doc_type: u8,
        received_at: Timestamp,
        raw: Bytes,
        ack: Bytes,
    ) -> Self {
        Self {
            fn_number,
            fd,
            rnm,
            doc_type,
            ffd_version: None,
            doc_time: None,
            received_at,
            total: None,
            fiscal_sign: None,
            response_code: 0,
            flk_error: None,
            opaque: false,
            telemetry: None,
            raw,
            ack,
        }
    }

    /// Its key.
    pub fn key(&self) -> DocumentKey {
        DocumentKey { fn_number: self.fn_number, fd: self.fd }
    }
}

/// What happened to one document of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Newly stored (and queued for FNS delivery).
    Stored,
    /// Already stored: nothing was written. `ack` is the acknowledgment sent the first
    /// time; `identical` tells whether the container bytes were the same (a register
    /// retransmitting) or not (a conflicting document with a reused number: the original
    /// is kept, never overwritten).
    Duplicate {
        /// The stored acknowledgment.
        ack: Bytes,
        /// Same container bytes as stored.
        identical: bool,
    },
}

/// Documents are spread over this many delivery partitions (by FN), so that a cluster can
/// lease partitions to nodes and a dead node's partitions are taken over.
pub const DELIVERY_PARTITIONS: u16 = 64;

/// The delivery partition of an FN.
pub fn delivery_partition(fn_number: &FnNumber) -> u16 {
    ffd::crc::crc16(fn_number.as_bytes()) % DELIVERY_PARTITIONS
}

/// Delivery state of one document to the tax service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Queued, not yet delivered.
    Pending,
    /// Delivered (the receiver answered 2xx).
    Delivered,
}

/// One entry of the outbox / delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The document.
    pub key: DocumentKey,
    /// Partition.
    pub partition: u16,
    /// Status.
    pub status: DeliveryStatus,
    /// When it was queued (document received).
    pub queued_at: Timestamp,
    /// Attempts made.
    pub attempts: u32,
    /// Not before this time (exponential backoff).
    pub next_attempt_at: Timestamp,
    /// Last attempt.
    pub last_attempt_at: Option<Timestamp>,
    /// Last error.
    pub last_error: Option<String>,
    /// Delivered at.
    pub delivered_at: Option<Timestamp>,
}

/// Size of the undelivered backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BacklogStats {
    /// Pending deliveries.
    pub pending: u64,
    /// Queue time of the oldest pending delivery.
    pub oldest_queued_at: Option<Timestamp>,
}

/// A register's report about its drive (from tags 1097/1098/1116/1050–1053/1213).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TelemetryRecord {
    /// 1097.
    pub unsent_documents: Option<u32>,
    /// 1098.
    pub first_unsent_time: Option<Timestamp>,
    /// 1116.
    pub first_unsent_fd: Option<u32>,
    /// 1050–1053 as bits 0–3.
    pub warnings: u8,
    /// 1213.
    pub key_resource_days: Option<u32>,
    /// Document time of the report.
    pub reported_at: Option<Timestamp>,
}

impl From<ffd::Telemetry> for TelemetryRecord {
    fn from(t: ffd::Telemetry) -> Self {
        Self {
            unsent_documents: t.unsent_documents,
            first_unsent_time: t.first_unsent_time.map(|s| Timestamp::from_unix_secs(i64::from(s))),
            first_unsent_fd: t.first_unsent_fd,
            warnings: t.warnings.0,
            key_resource_days: t.key_resource_days,
            reported_at: None,
        }
    }
}
