//! Binary forms of the report rows the aggregator rewrites at every flush (JSON of a
//! shift summary with its totals is about 1.5 KB; these are a few dozen bytes). Version
//! byte first; every length and count is checked against the bytes present, so a corrupt
//! row is `None` (reported as corrupt), never a panic or a large allocation.

use ffd::figures::{KINDS, KindCounter, ShiftCounters};

use crate::ids::{Rnm, Timestamp};
use crate::model::{Continuity, Hole, ShiftSummary, Totals, read_varint, varint};

const V1: u8 = 1;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn opt(out: &mut Vec<u8>, flags: &mut u8, bit: u8, v: Option<u64>) {
    if let Some(v) = v {
        *flags |= 1 << bit;
        varint(out, v);
    }
}

fn read_opt(b: &mut &[u8], flags: u8, bit: u8) -> Option<Option<u64>> {
    if flags & (1 << bit) == 0 { Some(None) } else { read_varint(b).map(Some) }
}

fn u32_of(v: u64) -> Option<u32> {
    u32::try_from(v).ok()
}

/// A shift summary.
pub(crate) fn encode_shift(s: &ShiftSummary) -> Vec<u8> {
    let mut body = Vec::with_capacity(48);
    let mut flags = 0u8;
    opt(&mut body, &mut flags, 0, s.opened_fd.map(u64::from));
    opt(&mut body, &mut flags, 1, s.opened_at.map(zigzag));
    opt(&mut body, &mut flags, 2, s.closed_fd.map(u64::from));
    opt(&mut body, &mut flags, 3, s.closed_at.map(zigzag));
    opt(&mut body, &mut flags, 4, s.first_fd.map(u64::from));
    opt(&mut body, &mut flags, 5, s.last_fd.map(u64::from));
    if let Some(r) = &s.reported {
        flags |= 1 << 6;
        let mut rf = 0u8;
        let mut rb = Vec::new();
        opt(&mut rb, &mut rf, 0, r.documents.map(u64::from));
        opt(&mut rb, &mut rf, 1, r.receipts.map(u64::from));
        for (i, k) in r.kinds.iter().chain(std::iter::once(&r.corrections)).enumerate() {
            if let Some(k) = k {
                rf |= 1 << (2 + i);
                varint(&mut rb, k.count);
                varint(&mut rb, k.total);
            }
        }
        body.push(rf);
        body.extend(rb);
    }
    let mut out = vec![V1];
    varint(&mut out, u64::from(s.shift));
    out.push(flags);
    out.extend(body);
    s.received.encode(&mut out);
    out
}

/// The inverse of [`encode_shift`].
pub(crate) fn decode_shift(mut b: &[u8]) -> Option<ShiftSummary> {
    let (&v, rest) = b.split_first()?;
    (v == V1).then_some(())?;
    b = rest;
    let shift = u32_of(read_varint(&mut b)?)?;
    let (&flags, rest) = b.split_first()?;
    b = rest;
    let mut s = ShiftSummary { shift, ..Default::default() };
    s.opened_fd = read_opt(&mut b, flags, 0)?.map(u32_of).map(|x| x.ok_or(())).transpose().ok()?;
    s.opened_at = read_opt(&mut b, flags, 1)?.map(unzigzag);
    s.closed_fd = read_opt(&mut b, flags, 2)?.map(u32_of).map(|x| x.ok_or(())).transpose().ok()?;
    s.closed_at = read_opt(&mut b, flags, 3)?.map(unzigzag);
    s.first_fd = read_opt(&mut b, flags, 4)?.map(u32_of).map(|x| x.ok_or(())).transpose().ok()?;
    s.last_fd = read_opt(&mut b, flags, 5)?.map(u32_of).map(|x| x.ok_or(())).transpose().ok()?;
    if flags & (1 << 6) != 0 {
        let (&rf, rest) = b.split_first()?;
        b = rest;
        let mut r = ShiftCounters {
            documents: read_opt(&mut b, rf, 0)?.map(u32_of).map(|x| x.ok_or(())).transpose().ok()?,
            receipts: read_opt(&mut b, rf, 1)?.map(u32_of).map(|x| x.ok_or(())).transpose().ok()?,
            ..Default::default()
        };
        for i in 0..=KINDS {
            if rf & (1 << (2 + i)) != 0 {
                let k = KindCounter { count: read_varint(&mut b)?, total: read_varint(&mut b)? };
                if i < KINDS {
                    r.kinds[i] = Some(k);
                } else {
                    r.corrections = Some(k);
                }
            }
        }
        s.reported = Some(r);
    }
    let (received, rest) = Totals::decode(b)?;
    rest.is_empty().then_some(())?;
    s.received = received;
    Some(s)
}

/// An FN's continuity and register.
pub(crate) fn encode_continuity(rnm: &Rnm, c: &Continuity) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + c.holes.len() * 12);
    out.push(V1);
    let r = rnm.as_str().as_bytes();
    out.push(r.len() as u8);
    out.extend_from_slice(r);
    let mut flags = 0u8;
    let mut body = Vec::new();
    opt(&mut body, &mut flags, 0, c.low.map(u64::from));
    opt(&mut body, &mut flags, 1, c.high.map(u64::from));
    opt(&mut body, &mut flags, 2, c.earliest.map(|t| zigzag(t.0)));
    out.push(flags);
    out.extend(body);
    varint(&mut out, c.received);
    varint(&mut out, c.forgotten);
    varint(&mut out, c.holes.len() as u64);
    for h in &c.holes {
        varint(&mut out, u64::from(h.from));
        varint(&mut out, u64::from(h.to));
        varint(&mut out, zigzag(h.since.0));
    }
    out
}

/// The inverse of [`encode_continuity`].
pub(crate) fn decode_continuity(mut b: &[u8]) -> Option<(Rnm, Continuity)> {
    let (&v, rest) = b.split_first()?;
    (v == V1).then_some(())?;
    let (&n, rest) = rest.split_first()?;
    let text = std::str::from_utf8(rest.get(..usize::from(n))?).ok()?;
    let rnm = Rnm::parse(text).ok()?;
    b = &rest[usize::from(n)..];
    let (&flags, rest) = b.split_first()?;
    b = rest;
    let mut c = Continuity {
        low: read_opt(&mut b, flags, 0)?.map(u32_of).map(|x| x.ok_or(())).transpose().ok()?,
        high: read_opt(&mut b, flags, 1)?.map(u32_of).map(|x| x.ok_or(())).transpose().ok()?,
        earliest: read_opt(&mut b, flags, 2)?.map(|v| Timestamp(unzigzag(v))),
        received: read_varint(&mut b)?,
        forgotten: read_varint(&mut b)?,
        holes: Vec::new(),
    };
    let holes = read_varint(&mut b)?;
    // each hole takes at least 3 bytes: a count beyond that is corrupt, not an allocation
    if holes > (b.len() / 3) as u64 {
        return None;
    }
    // each hole takes at least 3 bytes: a count beyond that was refused above
    for _ in 0..holes {
        let from = u32_of(read_varint(&mut b)?)?;
        let to = u32_of(read_varint(&mut b)?)?;
        let since = Timestamp(unzigzag(read_varint(&mut b)?));
        c.holes.push(Hole { from, to, since });
    }
    c.is_consistent().then_some(())?;
    b.is_empty().then_some((rnm, c))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn opt_u32() -> impl Strategy<Value = Option<u32>> {
        proptest::option::of(any::<u32>())
    }

    proptest! {
        #[test]
        fn shifts_round_trip_and_truncations_fail(
            shift in any::<u32>(), o in opt_u32(), c in opt_u32(), first in opt_u32(), last in opt_u32(),
            oa in proptest::option::of(any::<i64>()), docs in opt_u32(), rec in opt_u32(),
            k0 in proptest::option::of((any::<u64>(), any::<u64>())), corr in proptest::option::of((0u64..9, 0u64..99)),
            documents in 0u64..1000, reported in any::<bool>(),
        ) {
            let counters = ShiftCounters {
                documents: docs,
                receipts: rec,
                kinds: [k0.map(|(count, total)| KindCounter { count, total }), None, None, None],
                corrections: corr.map(|(count, total)| KindCounter { count, total }),
            };
            let s = ShiftSummary {
                shift, opened_fd: o, opened_at: oa, closed_fd: c, closed_at: oa.map(|x| x / 2),
                reported: reported.then_some(counters), first_fd: first, last_fd: last,
                received: Totals { documents, ..Totals::default() },
            };
            let b = encode_shift(&s);
            prop_assert_eq!(decode_shift(&b), Some(s.clone()));
            for cut in 0..b.len() {
                prop_assert_ne!(decode_shift(&b[..cut]), Some(s.clone()));
            }
        }

        #[test]
        fn continuity_round_trips_and_truncations_fail(fds in proptest::collection::vec(1u32..200, 0..60)) {
            let mut c = Continuity::default();
            for (i, fd) in fds.iter().enumerate() {
                c.record(*fd, Timestamp(i as i64 * 1000 - 5000));
            }
            let rnm = Rnm::parse("0000000005008570").expect("rnm");
            let b = encode_continuity(&rnm, &c);
            prop_assert_eq!(decode_continuity(&b), Some((rnm.clone(), c.clone())));
            for cut in 0..b.len() {
                prop_assert!(decode_continuity(&b[..cut]).is_none());
            }
        }
    }
}
