//! Conversions between domain records and CQL rows. Every value read from the database
//! is checked on the way in: a missing or out-of-range column is `StoreError::Corrupt`,
//! never a panic.

use bytes::Bytes;
use scylla::value::{CqlTimestamp, MaybeUnset};
use scylla::{DeserializeRow, SerializeRow};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keys::{self, fd_bucket, fn_text};
use crate::error::StoreError;
use crate::ids::{Rnm, Timestamp};
use crate::model::{DocumentRecord, TelemetryRecord};

/// A CQL timestamp of a domain time.
pub fn ts(t: Timestamp) -> CqlTimestamp {
    CqlTimestamp(t.millis())
}

/// A domain time of a CQL timestamp.
pub fn from_ts(t: CqlTimestamp) -> Timestamp {
    Timestamp(t.0)
}

/// JSON body of an admin record.
pub fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid(format!("cannot encode record: {e}")))
}

/// A record from its JSON body.
pub fn from_json<T: DeserializeOwned>(what: &str, body: &str) -> Result<T, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// A required column.
pub fn required<T>(v: Option<T>, what: &str) -> Result<T, StoreError> {
    v.ok_or_else(|| StoreError::Corrupt(format!("{what} is missing")))
}

fn small(v: u8) -> i16 {
    i16::from(v)
}

fn from_small(v: i16, what: &str) -> Result<u8, StoreError> {
    u8::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} out of range")))
}

/// A whole `documents` row, as selected by `doc_get` / `doc_range`.
#[derive(Debug, DeserializeRow)]
pub struct DocRow {
    #[scylla(rename = "fn")]
    pub fn_text: String,
    pub fd: i64,
    pub rnm: Option<String>,
    pub doc_type: Option<i16>,
    pub ffd_version: Option<i16>,
    pub doc_time: Option<CqlTimestamp>,
    pub received_at: Option<CqlTimestamp>,
    pub total: Option<i64>,
    pub fiscal_sign: Option<i64>,
    pub response_code: Option<i16>,
    pub flk_error: Option<String>,
    pub opaque: Option<bool>,
    pub telemetry: Option<String>,
    pub raw: Option<Bytes>,
    pub ack: Option<Bytes>,
}

impl DocRow {
    /// The domain record.
    pub fn into_record(self) -> Result<DocumentRecord, StoreError> {
        let fn_number = keys::fn_from_text(&self.fn_text)?;
        let fd = keys::fd_from_value(self.fd)?;
        let at = |what: &str| format!("document {}/{fd}: {what}", self.fn_text.trim_end());
        let rnm = required(self.rnm, &at("rnm"))?;
        let rnm = Rnm::parse(&rnm).map_err(|e| StoreError::Corrupt(at(&e.to_string())))?;
        let telemetry = match self.telemetry {
            Some(t) => Some(from_json::<TelemetryRecord>(&at("telemetry"), &t)?),
            None => None,
        };
        Ok(DocumentRecord {
            fn_number,
            fd,
            rnm,
            doc_type: from_small(required(self.doc_type, &at("doc_type"))?, &at("doc_type"))?,
            ffd_version: self.ffd_version.map(|v| from_small(v, &at("ffd_version"))).transpose()?,
            doc_time: self.doc_time.map(from_ts),
            received_at: from_ts(required(self.received_at, &at("received_at"))?),
            total: self
                .total
                .map(|v| u64::try_from(v).map_err(|_| StoreError::Corrupt(at("negative total"))))
                .transpose()?,
            fiscal_sign: self
                .fiscal_sign
                .map(|v| u32::try_from(v).map_err(|_| StoreError::Corrupt(at("fiscal sign out of range"))))
                .transpose()?,
            response_code: from_small(required(self.response_code, &at("response_code"))?, &at("response_code"))?,
            flk_error: self.flk_error,
            opaque: self.opaque.unwrap_or(false),
            telemetry,
            raw: required(self.raw, &at("raw"))?,
            ack: required(self.ack, &at("ack"))?,
        })
    }
}

/// An absent value left unset (no tombstone), a present one set.
pub fn unset_none<T>(v: Option<T>) -> MaybeUnset<T> {
    v.map_or(MaybeUnset::Unset, MaybeUnset::Set)
}

/// Values of `doc_insert`, in statement order. Absent optional values are left unset, not
/// bound as NULL: a NULL would write a cell tombstone into every document row.
#[derive(Debug, SerializeRow)]
#[scylla(flavor = "enforce_order", skip_name_checks)]
pub struct DocInsert<'a> {
    pub fn_text: &'a str,
    pub fd_bucket: i32,
    pub fd: i64,
    pub rnm: &'a str,
    pub doc_type: i16,
    pub ffd_version: MaybeUnset<i16>,
    pub doc_time: MaybeUnset<CqlTimestamp>,
    pub received_at: CqlTimestamp,
    pub total: MaybeUnset<i64>,
    pub fiscal_sign: MaybeUnset<i64>,
    pub response_code: i16,
    pub flk_error: MaybeUnset<&'a str>,
    pub opaque: bool,
    pub telemetry: MaybeUnset<String>,
    pub raw: &'a Bytes,
    pub ack: &'a Bytes,
    pub attempt: uuid::Uuid,
}

/// A document prepared for writing: its keys in stored form and the values of its row.
#[derive(Debug)]
pub struct EncodedDoc<'a> {
    /// Stored FN.
    pub fn_text: String,
    /// FD bucket.
    pub bucket: i32,
    /// FD as stored.
    pub fd: i64,
    /// The record.
    pub doc: &'a DocumentRecord,
    /// Telemetry JSON.
    pub telemetry: Option<String>,
    /// Total as stored.
    pub total: Option<i64>,
}

impl<'a> EncodedDoc<'a> {
    /// Checks that the record can be stored and computes its keys. Fails with `Invalid`
    /// (before anything is written) if a value does not fit its column.
    pub fn new(doc: &'a DocumentRecord) -> Result<Self, StoreError> {
        let total = doc
            .total
            .map(|t| {
                i64::try_from(t)
                    .map_err(|_| StoreError::Invalid(format!("total {t} of document {} is too large", doc.fd)))
            })
            .transpose()?;
        let telemetry = doc.telemetry.as_ref().map(to_json).transpose()?;
        Ok(Self {
            fn_text: fn_text(&doc.fn_number)?,
            bucket: fd_bucket(doc.fd),
            fd: keys::fd_value(doc.fd),
            doc,
            telemetry,
            total,
        })
    }

    /// Values of `doc_insert`, for the append call `attempt`.
    pub fn insert_values(&self, attempt: uuid::Uuid) -> DocInsert<'_> {
        DocInsert {
            fn_text: &self.fn_text,
            fd_bucket: self.bucket,
            fd: self.fd,
            rnm: self.doc.rnm.as_str(),
            doc_type: small(self.doc.doc_type),
            ffd_version: unset_none(self.doc.ffd_version.map(small)),
            doc_time: unset_none(self.doc.doc_time.map(ts)),
            received_at: ts(self.doc.received_at),
            total: unset_none(self.total),
            fiscal_sign: unset_none(self.doc.fiscal_sign.map(i64::from)),
            response_code: small(self.doc.response_code),
            flk_error: unset_none(self.doc.flk_error.as_deref()),
            opaque: self.doc.opaque,
            telemetry: unset_none(self.telemetry.clone()),
            raw: &self.doc.raw,
            ack: &self.doc.ack,
            attempt,
        }
    }
}

/// The `deliveries` row as selected by `dlv_get` (positional).
pub type DeliveryRowTuple = (
    Option<String>,
    Option<CqlTimestamp>,
    Option<i32>,
    Option<CqlTimestamp>,
    Option<CqlTimestamp>,
    Option<String>,
    Option<CqlTimestamp>,
);

/// A delivery-state row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// Delivered?
    pub delivered: bool,
    /// Queue time.
    pub queued_at: Timestamp,
    /// Attempts so far.
    pub attempts: u32,
    /// Next attempt.
    pub next_attempt_at: Timestamp,
    /// Last attempt.
    pub last_attempt_at: Option<Timestamp>,
    /// Last error.
    pub last_error: Option<String>,
    /// Delivered at.
    pub delivered_at: Option<Timestamp>,
}

impl DeliveryRow {
    /// From the selected columns; `None` if the row has no status (does not exist).
    pub fn from_tuple(t: DeliveryRowTuple, what: &str) -> Result<Option<Self>, StoreError> {
        let (status, queued, attempts, next, last, err, delivered_at) = t;
        let Some(status) = status else {
            return Ok(None);
        };
        let delivered = match status.as_str() {
            "pending" => false,
            "delivered" => true,
            other => {
                return Err(StoreError::Corrupt(format!("delivery {what}: unknown status {other:?}")));
            }
        };
        let queued_at = from_ts(required(queued, &format!("delivery {what}: queued_at"))?);
        Ok(Some(Self {
            delivered,
            queued_at,
            attempts: u32::try_from(attempts.unwrap_or(0)).unwrap_or(0),
            next_attempt_at: next.map(from_ts).unwrap_or(queued_at),
            last_attempt_at: last.map(from_ts),
            last_error: err,
            delivered_at: delivered_at.map(from_ts),
        }))
    }
}

#[cfg(test)]
mod tests {
    use ffd::FnNumber;

    use super::*;

    fn record() -> DocumentRecord {
        DocumentRecord {
            fn_number: FnNumber::parse_strict("9999078900005488").expect("fn"),
            fd: 70_000,
            rnm: Rnm::parse("0000000005008570").expect("rnm"),
            doc_type: 3,
            ffd_version: Some(4),
            doc_time: Some(Timestamp(1_488_541_080_000)),
            received_at: Timestamp(1_488_541_081_234),
            total: Some(u64::from(u32::MAX) + 5),
            fiscal_sign: Some(u32::MAX),
            response_code: 14,
            flk_error: Some("flk.missing_tag".into()),
            opaque: false,
            telemetry: Some(TelemetryRecord {
                unsent_documents: Some(3),
                warnings: 0b0101,
                ..TelemetryRecord::default()
            }),
            raw: Bytes::from_static(b"\x01\x02raw"),
            ack: Bytes::from_static(b"ack-bytes"),
        }
    }

    /// An unset value reads back as absent.
    fn got<T: Clone>(v: &MaybeUnset<T>) -> Option<T> {
        match v {
            MaybeUnset::Set(x) => Some(x.clone()),
            MaybeUnset::Unset => None,
        }
    }

    /// What the database would hand back for the values we write.
    fn echo(v: &DocInsert<'_>) -> DocRow {
        DocRow {
            fn_text: v.fn_text.to_owned(),
            fd: v.fd,
            rnm: Some(v.rnm.to_owned()),
            doc_type: Some(v.doc_type),
            ffd_version: got(&v.ffd_version),
            doc_time: got(&v.doc_time),
            received_at: Some(v.received_at),
            total: got(&v.total),
            fiscal_sign: got(&v.fiscal_sign),
            response_code: Some(v.response_code),
            flk_error: got(&v.flk_error).map(str::to_owned),
            opaque: Some(v.opaque),
            telemetry: got(&v.telemetry),
            raw: Some(v.raw.clone()),
            ack: Some(v.ack.clone()),
        }
    }

    #[test]
    fn documents_round_trip_through_their_columns() {
        let doc = record();
        let enc = EncodedDoc::new(&doc).expect("encode");
        assert_eq!(enc.bucket, 4); // 70000 / 16384
        let back = echo(&enc.insert_values(uuid::Uuid::nil())).into_record().expect("decode");
        assert_eq!(back, doc);
        let plain = DocumentRecord {
            ffd_version: None,
            doc_time: None,
            total: None,
            fiscal_sign: None,
            flk_error: None,
            telemetry: None,
            opaque: true,
            ..record()
        };
        let enc = EncodedDoc::new(&plain).expect("encode");
        assert_eq!(echo(&enc.insert_values(uuid::Uuid::nil())).into_record().expect("decode"), plain);
    }

    #[test]
    fn values_that_do_not_fit_are_refused_before_writing() {
        let doc = DocumentRecord { total: Some(u64::MAX), ..record() };
        assert_eq!(EncodedDoc::new(&doc).expect_err("too large").code(), "invalid");
    }

    #[test]
    fn damaged_rows_are_corrupt_not_panics() {
        let doc = record();
        let enc = EncodedDoc::new(&doc).expect("encode");
        let v = enc.insert_values(uuid::Uuid::nil());
        let mut r = echo(&v);
        r.ack = None;
        assert_eq!(r.into_record().expect_err("no ack").code(), "corrupt");
        let mut r = echo(&v);
        r.doc_type = Some(300);
        assert_eq!(r.into_record().expect_err("range").code(), "corrupt");
        let mut r = echo(&v);
        r.fd = -1;
        assert_eq!(r.into_record().expect_err("fd").code(), "corrupt");
        let mut r = echo(&v);
        r.rnm = Some("not an rnm".into());
        assert_eq!(r.into_record().expect_err("rnm").code(), "corrupt");
        let mut r = echo(&v);
        r.telemetry = Some("{".into());
        assert_eq!(r.into_record().expect_err("json").code(), "corrupt");
        let mut r = echo(&v);
        r.total = Some(-1);
        assert_eq!(r.into_record().expect_err("total").code(), "corrupt");
    }

    #[test]
    fn delivery_rows_decode() {
        let t = CqlTimestamp(1000);
        let row = DeliveryRow::from_tuple(
            (Some("pending".into()), Some(t), Some(2), None, None, Some("503".into()), None),
            "x",
        )
        .expect("ok")
        .expect("some");
        assert!(!row.delivered);
        assert_eq!(row.attempts, 2);
        assert_eq!(row.next_attempt_at, Timestamp(1000), "defaults to queue time");
        let none = DeliveryRow::from_tuple((None, None, None, None, None, None, None), "x").expect("ok");
        assert_eq!(none, None);
        let bad = DeliveryRow::from_tuple((Some("lost".into()), Some(t), None, None, None, None, None), "x");
        assert_eq!(bad.expect_err("status").code(), "corrupt");
    }
}
