//! How domain values become partition keys, clustering keys, write timestamps and page
//! cursors. Pure functions, unit-tested without a server.

use ffd::FnNumber;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::StoreError;
use crate::ids::{Rnm, Timestamp};

/// Documents of one FN are bucketed by `fd / FD_BUCKET`: at most this many per partition.
pub const FD_BUCKET: u32 = 16_384;
/// Registers (and alert states) are bucketed by this many leading RNM digits.
pub const RNM_PREFIX: usize = 6;
/// Unknown FNs are bucketed by this many leading FN characters.
pub const FN_PREFIX: usize = 8;
/// Shards of the register change log and of notifications.
pub const SHARDS: u16 = 16;
/// Retention of fiscal data (documents, time index, deliveries, audit): 1827 days.
pub const RETENTION_SECS: i64 = 1827 * 86_400;

const MS_PER_DAY: i64 = 86_400_000;
const US_PER_HOUR: i64 = 3_600_000_000;

/// The FD bucket of an FD number.
pub fn fd_bucket(fd: u32) -> i32 {
    // u32::MAX / 16384 = 262143: always fits.
    (fd / FD_BUCKET) as i32
}

/// The stored form of an FN number: its 16 ASCII characters, padding included, so that
/// it round-trips exactly. Refuses bytes that are not printable ASCII (the gateway only
/// stores FNs that are digits plus space padding).
pub fn fn_text(f: &FnNumber) -> Result<String, StoreError> {
    let b = f.as_bytes();
    if b.iter().all(|c| (0x20..0x7f).contains(c)) {
        // printable ASCII is valid UTF-8
        Ok(b.iter().map(|&c| char::from(c)).collect())
    } else {
        Err(StoreError::Invalid(format!("FN number {f:?} has non-printable bytes and cannot be stored")))
    }
}

/// Parses a stored FN number.
pub fn fn_from_text(s: &str) -> Result<FnNumber, StoreError> {
    let b: &[u8; 16] =
        s.as_bytes().try_into().map_err(|_| StoreError::Corrupt(format!("stored FN {s:?} is not 16 characters")))?;
    Ok(FnNumber::from_ascii(b))
}

/// The stored form of an FD number (CQL integers are signed; bigint holds every u32).
pub fn fd_value(fd: u32) -> i64 {
    i64::from(fd)
}

/// Parses a stored FD number.
pub fn fd_from_value(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("stored FD {v} out of range")))
}

/// Registers partition: the first [`RNM_PREFIX`] digits (the sequence number's high
/// digits, so a bucket holds at most 10^4 consecutive sequence numbers).
pub fn rnm_bucket(rnm: &Rnm) -> String {
    rnm.as_str().chars().take(RNM_PREFIX).collect()
}

/// Unknown-FN partition: the first [`FN_PREFIX`] characters of the stored form.
pub fn fn_prefix(fn_text: &str) -> String {
    fn_text.chars().take(FN_PREFIX).collect()
}

/// A small stable hash (CRC-16/CCITT-FALSE) reduced to `n` shards.
pub fn shard_of(bytes: &[u8], n: u16) -> i32 {
    i32::from(ffd::crc::crc16(bytes) % n)
}

/// Days since 1970-01-01 (UTC) of a time.
pub fn day_of(t: Timestamp) -> i32 {
    clamp_i32(t.millis().div_euclid(MS_PER_DAY))
}

/// The first millisecond of a day.
#[cfg(test)]
pub fn day_start(day: i32) -> Timestamp {
    Timestamp(i64::from(day).saturating_mul(MS_PER_DAY))
}

/// Hour bucket of an outbox position (microseconds).
pub fn hour_of_pos(pos_us: i64) -> i32 {
    clamp_i32(pos_us.div_euclid(US_PER_HOUR))
}

fn clamp_i32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX })
}

/// Wall clock in microseconds.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The last value of [`monotonic_now`] in this process.
static LAST_NOW: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// The wall clock in microseconds, strictly increasing within this process (two updates
/// in one microsecond, or across a small backwards clock step, stay ordered).
pub fn monotonic_now() -> i64 {
    use std::sync::atomic::Ordering;
    let now = now_micros();
    let mut last = LAST_NOW.load(Ordering::Relaxed);
    loop {
        let next = now.max(last.saturating_add(1));
        match LAST_NOW.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// FNV-1a (64 bit).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// TTL in seconds for `ttl` (at least 1 s: CQL TTLs are whole seconds, and 0 would mean
/// "for ever").
pub fn ttl_secs(ttl: std::time::Duration) -> i32 {
    let ms = ttl.as_millis();
    let secs = ms.div_ceil(1000).max(1);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// Opaque page cursors. Each listing has its own variant, so a cursor of one listing is
/// refused by another instead of being misread. Encoded as `v1.` + hex(JSON): opaque to
/// clients, stable across versions of this crate that keep the variant, and robust (key
/// based, not the driver's paging state, which is tied to one query and one server
/// version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Cursor {
    /// `documents_by_fn`: after this FD.
    FnDocs {
        /// Last FD returned.
        fd: u32,
    },
    /// `documents_by_register`: after this index position.
    RegDocs {
        /// received_at (ms) of the last row.
        at: i64,
        /// Its FN (stored form).
        #[serde(rename = "f")]
        fn_text: String,
        /// Its FD.
        fd: u32,
    },
    /// `list_registers`: after this RNM.
    Registers {
        /// Last RNM examined.
        rnm: String,
    },
    /// `registers_updated_since`: after this change-log position.
    RegUpdates {
        /// Day.
        day: i32,
        /// Shard.
        shard: i32,
        /// updated_at (ms).
        at: i64,
        /// RNM.
        rnm: String,
    },
    /// `list_unknown_fns`: after this FN (stored form).
    UnknownFns {
        /// Last FN returned.
        #[serde(rename = "f")]
        fn_text: String,
    },
    /// `shifts`: after this shift number.
    Shifts {
        /// Last shift returned.
        shift: u32,
    },
    /// `gapped_fns`: after this FN (stored form).
    GappedFns {
        /// Last FN examined.
        #[serde(rename = "f")]
        fn_text: String,
    },
    /// `list_audit`: older than this entry.
    Audit {
        /// Day.
        day: i32,
        /// at (ms).
        at: i64,
        /// id.
        id: Uuid,
    },
    /// `list_alert_states`: after (rule, rnm).
    AlertStates {
        /// Rule.
        rule: String,
        /// RNM.
        rnm: String,
    },
    /// `list_notifications`: older than (created_at, id).
    Notes {
        /// created_at (ms).
        at: i64,
        /// id.
        id: Uuid,
    },
    /// `list_jobs`: older than (created_at, id).
    Jobs {
        /// created_at (ms).
        at: i64,
        /// id.
        id: Uuid,
    },
}

impl Cursor {
    const PREFIX: &'static str = "v1.";

    /// The opaque token.
    pub fn encode(&self) -> String {
        // Serialising a plain enum of strings and integers cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{}{}", Self::PREFIX, hex::encode(json))
    }

    /// Parses a token; `StoreError::Invalid` if it is not one of ours.
    pub fn decode(token: &str) -> Result<Self, StoreError> {
        let bad = || StoreError::Invalid(format!("malformed page cursor {token:?}"));
        let hex_part = token.strip_prefix(Self::PREFIX).ok_or_else(bad)?;
        let bytes = hex::decode(hex_part).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map_err(|_| bad())
    }

    /// Decodes an optional token and applies `pick`, which returns `None` when the cursor
    /// is of another listing (→ `Invalid`).
    pub fn decode_as<T>(token: Option<&str>, pick: impl FnOnce(Cursor) -> Option<T>) -> Result<Option<T>, StoreError> {
        match token {
            None => Ok(None),
            Some(t) => pick(Self::decode(t)?)
                .map(Some)
                .ok_or_else(|| StoreError::Invalid(format!("page cursor {t:?} belongs to another listing"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_buckets_bound_partitions() {
        assert_eq!(fd_bucket(0), 0);
        assert_eq!(fd_bucket(16_383), 0);
        assert_eq!(fd_bucket(16_384), 1);
        assert_eq!(fd_bucket(u32::MAX), 262_143);
        // a busy FN (100k documents a year for 3 years) spans ~19 partitions
        assert_eq!(fd_bucket(300_000), 18);
        for fd in [0u32, 1, 2_147_483_647, 2_147_483_648, u32::MAX] {
            assert_eq!(fd_from_value(fd_value(fd)).expect("fd"), fd);
        }
        assert!(fd_from_value(-1).is_err());
        assert!(fd_from_value(i64::from(u32::MAX) + 1).is_err());
    }

    #[test]
    fn fn_numbers_round_trip_with_padding() {
        let f = FnNumber::parse_strict("9999078900005488").expect("fn");
        let t = fn_text(&f).expect("text");
        assert_eq!(t, "9999078900005488");
        assert_eq!(fn_from_text(&t).expect("parse"), f);
        let padded = FnNumber::from_ascii(b"9999078950      ");
        let t = fn_text(&padded).expect("text");
        assert_eq!(t.len(), 16);
        assert_eq!(fn_from_text(&t).expect("parse"), padded);
        assert_eq!(fn_prefix(&t), "99990789");
        let mut raw = *b"9999078950000000";
        raw[3] = 0xFF;
        assert_eq!(fn_text(&FnNumber::from_ascii(&raw)).expect_err("binary").code(), "invalid");
        assert_eq!(fn_from_text("123").expect_err("short").code(), "corrupt");
    }

    #[test]
    fn rnm_buckets_are_ordered_prefixes() {
        let a = Rnm::parse("0000000005008570").expect("rnm");
        let b = Rnm::parse("0003612795019853").expect("rnm");
        assert_eq!(rnm_bucket(&a), "000000");
        assert_eq!(rnm_bucket(&b), "000361");
        // bucket order is RNM order
        assert!(rnm_bucket(&a) < rnm_bucket(&b) && a < b);
    }

    #[test]
    fn days_and_hours() {
        let t = Timestamp::parse_rfc3339("2017-03-03T11:38:00Z").expect("t");
        assert_eq!(day_of(t), 17228);
        assert_eq!(day_start(17228), Timestamp::parse_rfc3339("2017-03-03T00:00:00Z").expect("t"));
        assert_eq!(day_of(Timestamp(-1)), -1);
        assert_eq!(day_of(Timestamp(0)), 0);
        assert_eq!(hour_of_pos(3_600_000_000), 1);
        assert_eq!(hour_of_pos(3_599_999_999), 0);
        assert_eq!(hour_of_pos(-1), -1);
    }

    #[test]
    fn ttl_rounds_up_to_whole_seconds() {
        use std::time::Duration;
        assert_eq!(ttl_secs(Duration::from_millis(1)), 1);
        assert_eq!(ttl_secs(Duration::ZERO), 1);
        assert_eq!(ttl_secs(Duration::from_millis(1500)), 2);
        assert_eq!(ttl_secs(Duration::from_secs(30)), 30);
    }

    #[test]
    fn cursors_round_trip_and_are_checked() {
        let all = [
            Cursor::FnDocs { fd: u32::MAX },
            Cursor::RegDocs { at: -5, fn_text: "9999078950      ".into(), fd: 7 },
            Cursor::Registers { rnm: "0000000005008570".into() },
            Cursor::RegUpdates { day: 17228, shard: 15, at: 1, rnm: "0000000005008570".into() },
            Cursor::UnknownFns { fn_text: "9999078900005488".into() },
            Cursor::Shifts { shift: u32::MAX },
            Cursor::GappedFns { fn_text: "9999078900005488".into() },
            Cursor::Audit { day: 1, at: 2, id: Uuid::from_u128(3) },
            Cursor::AlertStates { rule: "silent \"24h\"".into(), rnm: "0000000005008570".into() },
            Cursor::Notes { at: 9, id: Uuid::max() },
            Cursor::Jobs { at: i64::MIN, id: Uuid::nil() },
        ];
        for c in all {
            let token = c.encode();
            assert!(token.starts_with("v1."), "{token}");
            assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'), "URL-safe: {token}");
            assert_eq!(Cursor::decode(&token).expect("decode"), c);
        }
        for bad in ["", "v1.", "v1.zz", "v2.7b7d", "v1.7b7d", "{\"k\":\"fn_docs\",\"fd\":1}"] {
            assert_eq!(Cursor::decode(bad).expect_err(bad).code(), "invalid", "{bad:?}");
        }
        let token = Cursor::FnDocs { fd: 3 }.encode();
        let wrong = Cursor::decode_as(Some(&token), |c| match c {
            Cursor::Registers { rnm } => Some(rnm),
            _ => None,
        });
        assert_eq!(wrong.expect_err("other listing").code(), "invalid");
        let right = Cursor::decode_as(Some(&token), |c| match c {
            Cursor::FnDocs { fd } => Some(fd),
            _ => None,
        });
        assert_eq!(right.expect("ok"), Some(3));
        assert_eq!(Cursor::decode_as(None, |_| Some(())).expect("none"), None);
    }
}
