//! Record encodings.
//!
//! Documents and deliveries are written once per ingested document, so they use a compact,
//! versioned binary layout (no JSON on the hot path; the raw container and the ack are
//! stored once, length-prefixed). Admin entities (registers, rules, jobs…) are rare and
//! evolve, so they are JSON behind a one-byte version tag.
//!
//! Decoders never trust stored lengths: every length is checked against the bytes that
//! are actually there before anything is sliced or allocated, and any inconsistency is
//! `StoreError::Corrupt` — never a panic.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;
use crate::ids::Timestamp;
use crate::model::{
    DeliveryStatus, DocumentKey, DocumentRecord, RegisterActivity, TelemetryRecord, delivery_partition,
};

use super::keys;

/// Layout version of document records.
const DOC_V1: u8 = 1;
/// Layout version of delivery records.
const DELIVERY_V1: u8 = 1;
/// Version tag of JSON records.
const JSON_V1: u8 = b'{';

// Presence flags of optional document fields.
const F_OPAQUE: u16 = 1;
const F_FFD: u16 = 1 << 1;
const F_DOC_TIME: u16 = 1 << 2;
const F_TOTAL: u16 = 1 << 3;
const F_SIGN: u16 = 1 << 4;
const F_FLK: u16 = 1 << 5;
const F_TELEMETRY: u16 = 1 << 6;

const ACTIVITY_V2: u8 = 2;
// Presence flags of activity fields.
const A_LAST_SEEN: u8 = 1;
const A_LAST_FN: u8 = 1 << 1;
const A_LAST_FD: u8 = 1 << 2;
const A_DOC_TIME: u8 = 1 << 3;
const A_REGISTERED: u8 = 1 << 4;
const A_TELEMETRY: u8 = 1 << 5;

// Presence flags of telemetry fields.
const T_UNSENT: u8 = 1;
const T_FIRST_TIME: u8 = 1 << 1;
const T_FIRST_FD: u8 = 1 << 2;
const T_KEY_DAYS: u8 = 1 << 3;
const T_REPORTED: u8 = 1 << 4;

/// Encodes a document record (FN and FD live in the key).
///
/// ```text
/// v1: version u8 · flags u16 · rnm [16] · doc_type u8 · response_code u8 · received_at i64
///     [ffd u8] [doc_time i64] [total u64] [fiscal_sign u32] [flk: len u16 · utf8]
///     [telemetry: flags u8 · warnings u8 · fields…] · raw: len u32 · bytes · ack: len u32 · bytes
/// ```
pub fn encode_document(d: &DocumentRecord) -> Vec<u8> {
    let mut flags = 0u16;
    let mut set = |cond: bool, f: u16| {
        if cond {
            flags |= f;
        }
    };
    set(d.opaque, F_OPAQUE);
    set(d.ffd_version.is_some(), F_FFD);
    set(d.doc_time.is_some(), F_DOC_TIME);
    set(d.total.is_some(), F_TOTAL);
    set(d.fiscal_sign.is_some(), F_SIGN);
    set(d.flk_error.is_some(), F_FLK);
    set(d.telemetry.is_some(), F_TELEMETRY);

    let mut out = Vec::with_capacity(64 + d.raw.len() + d.ack.len());
    out.push(DOC_V1);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&keys::rnm(&d.rnm));
    out.push(d.doc_type);
    out.push(d.response_code);
    out.extend_from_slice(&d.received_at.0.to_be_bytes());
    if let Some(v) = d.ffd_version {
        out.push(v);
    }
    if let Some(t) = d.doc_time {
        out.extend_from_slice(&t.0.to_be_bytes());
    }
    if let Some(t) = d.total {
        out.extend_from_slice(&t.to_be_bytes());
    }
    if let Some(s) = d.fiscal_sign {
        out.extend_from_slice(&s.to_be_bytes());
    }
    if let Some(e) = &d.flk_error {
        // Error codes are short identifiers; anything longer is cut at a char boundary.
        let mut end = e.len().min(u16::MAX as usize);
        while !e.is_char_boundary(end) {
            end -= 1;
        }
        out.extend_from_slice(&(end as u16).to_be_bytes());
        out.extend_from_slice(&e.as_bytes()[..end]);
    }
    if let Some(t) = &d.telemetry {
        encode_telemetry(&mut out, t);
    }
    put_blob(&mut out, &d.raw);
    put_blob(&mut out, &d.ack);
    out
}

fn put_blob(out: &mut Vec<u8>, b: &[u8]) {
    // Documents are capped far below 4 GiB by the gateway's frame limit.
    let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&b[..len as usize]);
}

/// A bounds-checked reader over a stored value.
struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if n > self.buf.len() {
            return Err(StoreError::Corrupt(format!(
                "{} record truncated: need {n} bytes, {} left",
                self.what,
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, StoreError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, StoreError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    /// A u32-length-prefixed blob; the length is checked against the remaining bytes
    /// before anything is copied, so a corrupt length cannot drive an allocation.
    fn blob(&mut self) -> Result<&'a [u8], StoreError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn end(&self) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!("{} record has {} trailing bytes", self.what, self.buf.len())))
        }
    }
}

/// `flags u8 · warnings u8 · [unsent u32] [first_unsent_time i64] [first_unsent_fd u32]
/// [key_resource_days u32] [reported_at i64]`.
fn encode_telemetry(out: &mut Vec<u8>, t: &TelemetryRecord) {
    let mut tf = 0u8;
    if t.unsent_documents.is_some() {
        tf |= T_UNSENT;
    }
    if t.first_unsent_time.is_some() {
        tf |= T_FIRST_TIME;
    }
    if t.first_unsent_fd.is_some() {
        tf |= T_FIRST_FD;
    }
    if t.key_resource_days.is_some() {
        tf |= T_KEY_DAYS;
    }
    if t.reported_at.is_some() {
        tf |= T_REPORTED;
    }
    out.push(tf);
    out.push(t.warnings);
    if let Some(v) = t.unsent_documents {
        out.extend_from_slice(&v.to_be_bytes());
    }
    if let Some(v) = t.first_unsent_time {
        out.extend_from_slice(&v.0.to_be_bytes());
    }
    if let Some(v) = t.first_unsent_fd {
        out.extend_from_slice(&v.to_be_bytes());
    }
    if let Some(v) = t.key_resource_days {
        out.extend_from_slice(&v.to_be_bytes());
    }
    if let Some(v) = t.reported_at {
        out.extend_from_slice(&v.0.to_be_bytes());
    }
}

/// Decodes what [`encode_telemetry`] wrote.
fn decode_telemetry(r: &mut Reader<'_>) -> Result<TelemetryRecord, StoreError> {
    let tf = r.u8()?;
    let warnings = r.u8()?;
    let th = |f: u8| tf & f != 0;
    Ok(TelemetryRecord {
        warnings,
        unsent_documents: if th(T_UNSENT) { Some(r.u32()?) } else { None },
        first_unsent_time: if th(T_FIRST_TIME) { Some(Timestamp(r.i64()?)) } else { None },
        first_unsent_fd: if th(T_FIRST_FD) { Some(r.u32()?) } else { None },
        key_resource_days: if th(T_KEY_DAYS) { Some(r.u32()?) } else { None },
        reported_at: if th(T_REPORTED) { Some(Timestamp(r.i64()?)) } else { None },
    })
}

/// Decodes what [`encode_document`] wrote, for the document with key `key`.
pub fn decode_document(key: &DocumentKey, v: &[u8]) -> Result<DocumentRecord, StoreError> {
    let mut r = Reader { buf: v, what: "document" };
    let version = r.u8()?;
    if version != DOC_V1 {
        return Err(StoreError::Corrupt(format!(
            "document {}/{}: unknown record version {version}",
            key.fn_number, key.fd
        )));
    }
    let flags = r.u16()?;
    let rnm = keys::rnm_decode(r.take(keys::RNM_LEN)?)?;
    let doc_type = r.u8()?;
    let response_code = r.u8()?;
    let received_at = Timestamp(r.i64()?);
    let has = |f: u16| flags & f != 0;
    let ffd_version = if has(F_FFD) { Some(r.u8()?) } else { None };
    let doc_time = if has(F_DOC_TIME) { Some(Timestamp(r.i64()?)) } else { None };
    let total = if has(F_TOTAL) { Some(r.u64()?) } else { None };
    let fiscal_sign = if has(F_SIGN) { Some(r.u32()?) } else { None };
    let flk_error = if has(F_FLK) {
        let n = r.u16()? as usize;
        let s = std::str::from_utf8(r.take(n)?)
            .map_err(|_| StoreError::Corrupt("document FLK code is not UTF-8".into()))?;
        Some(s.to_owned())
    } else {
        None
    };
    let telemetry = if has(F_TELEMETRY) { Some(decode_telemetry(&mut r)?) } else { None };
    let raw = Bytes::copy_from_slice(r.blob()?);
    let ack = Bytes::copy_from_slice(r.blob()?);
    r.end()?;
    Ok(DocumentRecord {
        fn_number: key.fn_number,
        fd: key.fd,
        rnm,
        doc_type,
        ffd_version,
        doc_time,
        received_at,
        total,
        fiscal_sign,
        response_code,
        flk_error,
        opaque: has(F_OPAQUE),
        telemetry,
        raw,
        ack,
    })
}

/// Only the raw and ack bytes of a stored document (the duplicate check needs no more).
pub fn document_raw_ack(key: &DocumentKey, v: &[u8]) -> Result<(Bytes, Bytes), StoreError> {
    let d = decode_document(key, v)?;
    Ok((d.raw, d.ack))
}

/// Register activity, binary (it is rewritten for every register in every group commit,
/// so its size and encoding cost are paid per document):
///
/// ```text
/// v2: version u8 (2) · flags u8 · documents u64 · flk_errors u64 · [last_seen i64]
///     [last_fn [16] · last_fd u32] [last_document_time i64] [registered_at i64]
///     [telemetry] · recent_flk: count u8 · i64 each
/// ```
///
/// Records written before it are JSON (first byte `{`); [`decode_activity`] reads both.
pub fn encode_activity(a: &RegisterActivity) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + 8 * a.recent_flk.len());
    out.push(ACTIVITY_V2);
    let mut flags = 0u8;
    for (present, f) in [
        (a.last_seen.is_some(), A_LAST_SEEN),
        (a.last_fn.is_some(), A_LAST_FN),
        (a.last_fd.is_some(), A_LAST_FD),
        (a.last_document_time.is_some(), A_DOC_TIME),
        (a.registered_at.is_some(), A_REGISTERED),
        (a.telemetry.is_some(), A_TELEMETRY),
    ] {
        if present {
            flags |= f;
        }
    }
    out.push(flags);
    out.extend_from_slice(&a.documents.to_be_bytes());
    out.extend_from_slice(&a.flk_errors.to_be_bytes());
    if let Some(t) = a.last_seen {
        out.extend_from_slice(&t.0.to_be_bytes());
    }
    if let Some(f) = a.last_fn {
        out.extend_from_slice(f.as_bytes());
    }
    if let Some(fd) = a.last_fd {
        out.extend_from_slice(&fd.to_be_bytes());
    }
    if let Some(t) = a.last_document_time {
        out.extend_from_slice(&t.0.to_be_bytes());
    }
    if let Some(t) = a.registered_at {
        out.extend_from_slice(&t.0.to_be_bytes());
    }
    if let Some(t) = &a.telemetry {
        encode_telemetry(&mut out, t);
    }
    // at most RECENT_FLK (32) are kept; a longer list is cut to its newest entries
    let recent = &a.recent_flk[a.recent_flk.len().saturating_sub(usize::from(u8::MAX))..];
    out.push(recent.len() as u8);
    for t in recent {
        out.extend_from_slice(&t.0.to_be_bytes());
    }
    out
}

/// Decodes an activity record: binary v2, or the JSON of earlier versions.
pub fn decode_activity(v: &[u8]) -> Result<RegisterActivity, StoreError> {
    if v.first() == Some(&JSON_V1) {
        return from_json("activity", v);
    }
    let mut r = Reader { buf: v, what: "activity" };
    let version = r.u8()?;
    if version != ACTIVITY_V2 {
        return Err(StoreError::Corrupt(format!("activity: unknown record version {version}")));
    }
    let flags = r.u8()?;
    let has = |f: u8| flags & f != 0;
    let documents = r.u64()?;
    let flk_errors = r.u64()?;
    let last_seen = if has(A_LAST_SEEN) { Some(Timestamp(r.i64()?)) } else { None };
    let last_fn = if has(A_LAST_FN) { Some(ffd::FnNumber::from_ascii(&r.array::<16>()?)) } else { None };
    let last_fd = if has(A_LAST_FD) { Some(r.u32()?) } else { None };
    let last_document_time = if has(A_DOC_TIME) { Some(Timestamp(r.i64()?)) } else { None };
    let registered_at = if has(A_REGISTERED) { Some(Timestamp(r.i64()?)) } else { None };
    let telemetry = if has(A_TELEMETRY) { Some(decode_telemetry(&mut r)?) } else { None };
    let n = r.u8()?;
    let mut recent_flk = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        recent_flk.push(Timestamp(r.i64()?));
    }
    r.end()?;
    Ok(RegisterActivity {
        last_seen,
        last_fn,
        last_fd,
        last_document_time,
        documents,
        flk_errors,
        recent_flk,
        telemetry,
        registered_at,
    })
}

/// The receive time of an encoded document, read at its fixed offset without decoding
/// the rest (the delivery bookkeeping needs only this).
pub fn document_received_at(v: &[u8]) -> Result<Timestamp, StoreError> {
    const AT: usize = 1 + 2 + keys::RNM_LEN + 1 + 1;
    if v.first() != Some(&DOC_V1) {
        return Err(StoreError::Corrupt("document: unknown record version".into()));
    }
    let b: [u8; 8] = v
        .get(AT..AT + 8)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("document record of {} bytes", v.len())))?;
    Ok(Timestamp(i64::from_be_bytes(b)))
}

impl DeliveryRec {
    /// The state of a document that is queued and was never attempted: the embedded
    /// store writes no delivery record for it (its outbox entry says it all), so this is
    /// what a missing record of a stored document means.
    pub fn untried(received_at: Timestamp) -> Self {
        Self {
            status: DeliveryStatus::Pending,
            queued_at: received_at,
            attempts: 0,
            next_attempt_at: received_at,
            last_attempt_at: None,
            last_error: None,
            delivered_at: None,
        }
    }
}

/// Delivery state without the key (which is the record's key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRec {
    /// Pending or delivered.
    pub status: DeliveryStatus,
    /// When queued.
    pub queued_at: Timestamp,
    /// Attempts made.
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

impl DeliveryRec {
    /// The model form.
    pub fn into_delivery(self, key: DocumentKey) -> crate::model::Delivery {
        crate::model::Delivery {
            partition: delivery_partition(&key.fn_number),
            key,
            status: self.status,
            queued_at: self.queued_at,
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            last_attempt_at: self.last_attempt_at,
            last_error: self.last_error,
            delivered_at: self.delivered_at,
        }
    }
}

/// Longest stored delivery error (the rest is cut: errors are for humans).
const MAX_ERROR: usize = 1024;

/// `v1: version u8 · status u8 · queued_at i64 · attempts u32 · next_attempt_at i64 ·
/// flags u8 · [last_attempt_at i64] · [delivered_at i64] · [error: len u16 · utf8]`
pub fn encode_delivery(d: &DeliveryRec) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.push(DELIVERY_V1);
    out.push(match d.status {
        DeliveryStatus::Pending => 0,
        DeliveryStatus::Delivered => 1,
    });
    out.extend_from_slice(&d.queued_at.0.to_be_bytes());
    out.extend_from_slice(&d.attempts.to_be_bytes());
    out.extend_from_slice(&d.next_attempt_at.0.to_be_bytes());
    let flags = u8::from(d.last_attempt_at.is_some())
        | u8::from(d.delivered_at.is_some()) << 1
        | u8::from(d.last_error.is_some()) << 2;
    out.push(flags);
    if let Some(t) = d.last_attempt_at {
        out.extend_from_slice(&t.0.to_be_bytes());
    }
    if let Some(t) = d.delivered_at {
        out.extend_from_slice(&t.0.to_be_bytes());
    }
    if let Some(e) = &d.last_error {
        let mut end = e.len().min(MAX_ERROR);
        while !e.is_char_boundary(end) {
            end -= 1;
        }
        out.extend_from_slice(&(end as u16).to_be_bytes());
        out.extend_from_slice(&e.as_bytes()[..end]);
    }
    out
}

/// Decodes what [`encode_delivery`] wrote.
pub fn decode_delivery(v: &[u8]) -> Result<DeliveryRec, StoreError> {
    let mut r = Reader { buf: v, what: "delivery" };
    let version = r.u8()?;
    if version != DELIVERY_V1 {
        return Err(StoreError::Corrupt(format!("delivery: unknown record version {version}")));
    }
    let status = match r.u8()? {
        0 => DeliveryStatus::Pending,
        1 => DeliveryStatus::Delivered,
        s => return Err(StoreError::Corrupt(format!("delivery: status {s}"))),
    };
    let queued_at = Timestamp(r.i64()?);
    let attempts = r.u32()?;
    let next_attempt_at = Timestamp(r.i64()?);
    let flags = r.u8()?;
    let last_attempt_at = if flags & 1 != 0 { Some(Timestamp(r.i64()?)) } else { None };
    let delivered_at = if flags & 2 != 0 { Some(Timestamp(r.i64()?)) } else { None };
    let last_error = if flags & 4 != 0 {
        let n = r.u16()? as usize;
        Some(
            std::str::from_utf8(r.take(n)?)
                .map_err(|_| StoreError::Corrupt("delivery error is not UTF-8".into()))?
                .to_owned(),
        )
    } else {
        None
    };
    r.end()?;
    Ok(DeliveryRec { status, queued_at, attempts, next_attempt_at, last_attempt_at, last_error, delivered_at })
}

/// JSON with a version tag (the tag is the opening brace, so records stay readable with
/// standard tools).
pub fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Invalid(format!("cannot encode record: {e}")))
}

/// Decodes a JSON record.
pub fn from_json<T: DeserializeOwned>(what: &str, v: &[u8]) -> Result<T, StoreError> {
    if v.first() != Some(&JSON_V1) {
        return Err(StoreError::Corrupt(format!("{what}: not a v1 JSON record")));
    }
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Rnm;
    use ffd::FnNumber;

    fn sample(full: bool) -> DocumentRecord {
        DocumentRecord {
            fn_number: FnNumber::from_ascii(b"9999078900001234"),
            fd: 42,
            rnm: Rnm::parse("0000000005008570").expect("rnm"),
            doc_type: 3,
            ffd_version: full.then_some(4),
            doc_time: full.then_some(Timestamp(-1234)),
            received_at: Timestamp(1_700_000_000_123),
            total: full.then_some(12_345),
            fiscal_sign: full.then_some(0xDEAD_BEEF),
            response_code: if full { 14 } else { 0 },
            flk_error: full.then(|| "flk.total_mismatch".to_owned()),
            opaque: !full,
            telemetry: full.then_some(TelemetryRecord {
                unsent_documents: Some(3),
                first_unsent_time: Some(Timestamp(5)),
                first_unsent_fd: None,
                warnings: 0b1010,
                key_resource_days: Some(100),
                reported_at: Some(Timestamp(77)),
            }),
            raw: Bytes::from_static(b"\x01\x02raw container"),
            ack: Bytes::from_static(b"ack bytes"),
        }
    }

    #[test]
    fn documents_round_trip() {
        for full in [true, false] {
            let d = sample(full);
            let enc = encode_document(&d);
            assert_eq!(decode_document(&d.key(), &enc).expect("decodes"), d);
        }
    }

    #[test]
    fn truncated_or_padded_documents_are_corrupt_not_panics() {
        let d = sample(true);
        let enc = encode_document(&d);
        for n in 0..enc.len() {
            assert!(matches!(decode_document(&d.key(), &enc[..n]), Err(StoreError::Corrupt(_))), "prefix {n}");
        }
        let mut long = enc.clone();
        long.push(0);
        assert!(decode_document(&d.key(), &long).is_err());
        // A huge raw length must fail on the bounds check, not allocate.
        let mut bad = encode_document(&sample(false));
        let raw_len_at = 1 + 2 + 16 + 1 + 1 + 8;
        bad[raw_len_at..raw_len_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(decode_document(&d.key(), &bad), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn deliveries_round_trip() {
        let mut d = DeliveryRec {
            status: DeliveryStatus::Pending,
            queued_at: Timestamp(1),
            attempts: 0,
            next_attempt_at: Timestamp(1),
            last_attempt_at: None,
            last_error: None,
            delivered_at: None,
        };
        assert_eq!(decode_delivery(&encode_delivery(&d)).expect("ok"), d);
        d.status = DeliveryStatus::Delivered;
        d.attempts = 3;
        d.last_attempt_at = Some(Timestamp(9));
        d.delivered_at = Some(Timestamp(10));
        d.last_error = Some("503 от ФНС".into());
        assert_eq!(decode_delivery(&encode_delivery(&d)).expect("ok"), d);
        let enc = encode_delivery(&d);
        assert!(decode_delivery(&enc[..enc.len() - 1]).is_err());
    }

    fn opt<T: std::fmt::Debug + Clone>(
        s: impl proptest::strategy::Strategy<Value = T>,
    ) -> impl proptest::strategy::Strategy<Value = Option<T>> {
        proptest::option::of(s)
    }

    fn activity() -> impl proptest::strategy::Strategy<Value = RegisterActivity> {
        use proptest::prelude::*;
        // years 1970–2100 (what RFC 3339 in the JSON of earlier records can hold)
        let ts = || (0i64..4_102_444_800_000).prop_map(Timestamp);
        let telemetry = (opt(any::<u32>()), opt(ts()), opt(any::<u32>()), any::<u8>(), opt(any::<u32>()), opt(ts()))
            .prop_map(
                |(unsent_documents, first_unsent_time, first_unsent_fd, warnings, key_resource_days, reported_at)| {
                    TelemetryRecord {
                        unsent_documents,
                        first_unsent_time,
                        first_unsent_fd,
                        warnings,
                        key_resource_days,
                        reported_at,
                    }
                },
            );
        (
            (opt(ts()), opt("[0-9]{16}"), opt(any::<u32>()), opt(ts())),
            (any::<u64>(), any::<u64>(), prop::collection::vec(ts(), 0..40), opt(telemetry), opt(ts())),
        )
            .prop_map(
                |(
                    (last_seen, last_fn, last_fd, last_document_time),
                    (documents, flk_errors, recent_flk, telemetry, registered_at),
                )| {
                    RegisterActivity {
                        last_seen,
                        last_fn: last_fn.map(|f| FnNumber::from_ascii(f.as_bytes().try_into().expect("16 digits"))),
                        last_fd,
                        last_document_time,
                        documents,
                        flk_errors,
                        recent_flk,
                        telemetry,
                        registered_at,
                    }
                },
            )
    }

    proptest::proptest! {
        #[test]
        fn activity_round_trips_and_reads_the_json_of_earlier_versions(a in activity()) {
            let bin = encode_activity(&a);
            proptest::prop_assert_eq!(decode_activity(&bin).expect("binary"), a.clone());
            let json = to_json(&a).expect("json");
            proptest::prop_assert_eq!(decode_activity(&json).expect("json"), a.clone());
            // every truncation is an error, never a panic
            for n in 0..bin.len() {
                proptest::prop_assert!(decode_activity(&bin[..n]).is_err());
            }
        }
    }
}
