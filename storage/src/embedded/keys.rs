//! Key encodings. Every key is a fixed-layout byte string whose lexicographic order is
//! the order the queries need, so that each query is one range scan:
//!
//! | keyspace        | key                                              | value            |
//! |-----------------|--------------------------------------------------|------------------|
//! | `docs`          | FN (16) · FD (u32 BE)                            | document record  |
//! | `docs_by_rnm`   | RNM (16) · received_at (8) · FN (16) · FD (4)    | empty            |
//! | `outbox`        | partition (u16 BE) · next_attempt_at (8) · FN · FD | empty          |
//! | `outbox_age`    | queued_at (8) · FN · FD                          | empty            |
//! | `deliveries`    | FN · FD                                          | delivery record  |
//! | `activity`      | RNM                                              | JSON             |
//! | `registers`     | RNM                                              | JSON             |
//! | `fn_index`      | FN                                               | RNM              |
//! | `reg_updated`   | updated_at (8) · RNM                             | empty            |
//! | `unknown_fns`   | FN                                               | JSON             |
//! | `tariffs`       | name                                             | JSON             |
//! | `audit`         | uuid v7 (16)                                     | JSON             |
//! | `rules`         | name                                             | JSON             |
//! | `alert_states`  | rule name · 0x00 · RNM                           | JSON             |
//! | `notifications` | uuid v7                                          | JSON             |
//! | `notif_due`     | next_attempt_at (8) · uuid                       | empty            |
//! | `jobs`          | uuid v7                                          | JSON             |
//! | `meta`          | ASCII name                                       | varies           |
//!
//! Timestamps are i64 milliseconds with the sign bit flipped, big-endian, so that byte
//! order is numeric order (negative times sort before positive ones). uuid v7 ids are
//! time-ordered, so "newest first" is a reverse scan.

use ffd::FnNumber;

use crate::error::StoreError;
use crate::ids::{Rnm, Timestamp};
use crate::model::DocumentKey;

/// Length of a document key.
pub const DOC_KEY_LEN: usize = 20;
/// Length of an RNM in keys.
pub const RNM_LEN: usize = 16;

/// Order-preserving encoding of a timestamp.
pub fn ts(t: Timestamp) -> [u8; 8] {
    ((t.0 as u64) ^ (1 << 63)).to_be_bytes()
}

/// Inverse of [`ts`].
pub fn ts_decode(b: [u8; 8]) -> Timestamp {
    Timestamp((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

/// FN · FD.
pub fn doc(key: &DocumentKey) -> [u8; DOC_KEY_LEN] {
    doc_parts(&key.fn_number, key.fd)
}

/// FN · FD from parts.
pub fn doc_parts(fn_number: &FnNumber, fd: u32) -> [u8; DOC_KEY_LEN] {
    let mut k = [0u8; DOC_KEY_LEN];
    k[..16].copy_from_slice(fn_number.as_bytes());
    k[16..].copy_from_slice(&fd.to_be_bytes());
    k
}

/// Decodes FN · FD from the last 20 bytes of `k`.
pub fn doc_decode_tail(k: &[u8]) -> Result<DocumentKey, StoreError> {
    let start = k
        .len()
        .checked_sub(DOC_KEY_LEN)
        .ok_or_else(|| StoreError::Corrupt(format!("document key of {} bytes", k.len())))?;
    let tail = &k[start..];
    let mut fn_bytes = [0u8; 16];
    fn_bytes.copy_from_slice(&tail[..16]);
    let mut fd = [0u8; 4];
    fd.copy_from_slice(&tail[16..]);
    Ok(DocumentKey { fn_number: FnNumber::from_ascii(&fn_bytes), fd: u32::from_be_bytes(fd) })
}

/// RNM bytes (always 16 ASCII digits: [`Rnm::parse`] guarantees it).
pub fn rnm(r: &Rnm) -> [u8; RNM_LEN] {
    let mut k = [b'0'; RNM_LEN];
    let b = r.as_str().as_bytes();
    let n = b.len().min(RNM_LEN);
    k[..n].copy_from_slice(&b[..n]);
    k
}

/// Parses an RNM stored in a key or value.
pub fn rnm_decode(b: &[u8]) -> Result<Rnm, StoreError> {
    let s = std::str::from_utf8(b).map_err(|_| StoreError::Corrupt("RNM is not ASCII".into()))?;
    Rnm::parse(s).map_err(|e| StoreError::Corrupt(format!("stored RNM: {e}")))
}

/// RNM · received_at · FN · FD.
pub fn by_rnm(r: &Rnm, received_at: Timestamp, key: &DocumentKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(RNM_LEN + 8 + DOC_KEY_LEN);
    k.extend_from_slice(&rnm(r));
    k.extend_from_slice(&ts(received_at));
    k.extend_from_slice(&doc(key));
    k
}

/// RNM · received_at (range bound).
pub fn by_rnm_bound(r: &Rnm, t: Timestamp) -> Vec<u8> {
    let mut k = Vec::with_capacity(RNM_LEN + 8);
    k.extend_from_slice(&rnm(r));
    k.extend_from_slice(&ts(t));
    k
}

/// partition · next_attempt_at · FN · FD.
pub fn outbox(partition: u16, next_attempt_at: Timestamp, key: &DocumentKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + 8 + DOC_KEY_LEN);
    k.extend_from_slice(&partition.to_be_bytes());
    k.extend_from_slice(&ts(next_attempt_at));
    k.extend_from_slice(&doc(key));
    k
}

/// partition · time (range bound).
pub fn outbox_bound(partition: u16, t: Timestamp) -> Vec<u8> {
    let mut k = Vec::with_capacity(10);
    k.extend_from_slice(&partition.to_be_bytes());
    k.extend_from_slice(&ts(t));
    k
}

/// The next-attempt time of an outbox key (partition · time · FN · FD).
pub fn outbox_time(k: &[u8]) -> Result<Timestamp, StoreError> {
    let t: [u8; 8] = k
        .get(2..10)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("outbox key of {} bytes", k.len())))?;
    Ok(ts_decode(t))
}

/// queued_at · FN · FD.
pub fn outbox_age(queued_at: Timestamp, key: &DocumentKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + DOC_KEY_LEN);
    k.extend_from_slice(&ts(queued_at));
    k.extend_from_slice(&doc(key));
    k
}

/// updated_at · RNM.
pub fn reg_updated(updated_at: Timestamp, r: &Rnm) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + RNM_LEN);
    k.extend_from_slice(&ts(updated_at));
    k.extend_from_slice(&rnm(r));
    k
}

/// rule · 0x00 (prefix of a rule's states).
pub fn alert_rule_prefix(rule: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(rule.len() + 1);
    k.extend_from_slice(rule.as_bytes());
    k.push(0);
    k
}

/// rule · 0x00 · RNM.
pub fn alert_state(rule: &str, r: &Rnm) -> Vec<u8> {
    let mut k = alert_rule_prefix(rule);
    k.extend_from_slice(&rnm(r));
    k
}

/// next_attempt_at · uuid.
pub fn notif_due(t: Timestamp, id: &uuid::Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(24);
    k.extend_from_slice(&ts(t));
    k.extend_from_slice(id.as_bytes());
    k
}

/// Encodes a page cursor (the last key returned).
pub fn cursor_encode(key: &[u8]) -> String {
    hex::encode(key)
}

/// Decodes a page cursor; `Invalid` if it is not one of ours.
pub fn cursor_decode(c: &str) -> Result<Vec<u8>, StoreError> {
    let k = hex::decode(c).map_err(|_| StoreError::Invalid(format!("malformed page cursor {c:?}")))?;
    if k.is_empty() || k.len() > 512 {
        return Err(StoreError::Invalid(format!("malformed page cursor {c:?}")));
    }
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_sort_numerically() {
        let vals = [i64::MIN, -5_000, -1, 0, 1, 1_700_000_000_000, i64::MAX];
        for w in vals.windows(2) {
            assert!(ts(Timestamp(w[0])) < ts(Timestamp(w[1])), "{w:?}");
        }
        for v in vals {
            assert_eq!(ts_decode(ts(Timestamp(v))), Timestamp(v));
        }
    }

    #[test]
    fn document_keys_sort_by_fd_within_fn() {
        let f = FnNumber::from_ascii(b"9999078900001234");
        assert!(doc_parts(&f, 255) < doc_parts(&f, 256));
        assert!(doc_parts(&f, 1) < doc_parts(&f, u32::MAX));
        let k = doc_parts(&f, 77);
        let d = doc_decode_tail(&k).expect("decodes");
        assert_eq!((d.fn_number, d.fd), (f, 77));
        assert!(doc_decode_tail(&k[..10]).is_err());
    }

    #[test]
    fn rule_prefix_keeps_name_order() {
        let r = Rnm::parse("0000000005008570").expect("rnm");
        assert!(alert_state("a", &r) < alert_state("ab", &r));
        assert!(!alert_state("ab", &r).starts_with(&alert_rule_prefix("a")));
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(cursor_decode(&cursor_encode(b"abc")).expect("ok"), b"abc");
        assert!(matches!(cursor_decode("zz"), Err(StoreError::Invalid(_))));
        assert!(matches!(cursor_decode(""), Err(StoreError::Invalid(_))));
    }
}
