//! The fold's pieces: continuity against a set, the compact totals form.

use proptest::prelude::*;

use super::*;

#[test]
fn holes_open_fill_and_split() {
    let t = Timestamp::from_unix_secs;
    let mut c = Continuity::default();
    assert!(c.record(5, t(1)));
    assert!(c.record(9, t(2)));
    assert_eq!(c.holes, vec![Hole { from: 6, to: 8, since: t(2) }]);
    assert!(c.record(7, t(3)));
    assert_eq!(c.holes, vec![Hole { from: 6, to: 6, since: t(2) }, Hole { from: 8, to: 8, since: t(2) }]);
    assert!(!c.record(7, t(4)));
    assert!(!c.record(9, t(4)));
    assert!(c.record(2, t(5)));
    assert_eq!(c.missing(), 4);
    assert_eq!(c.oldest_hole_since(), Some(t(2)));
    assert!(c.contains(5) && c.contains(2) && !c.contains(3) && !c.contains(6) && !c.contains(10));
    assert_eq!(c.received, 4);
}

/// A backend may fold documents in another order than they arrived in (concurrent writes
/// in one append, seen over several rounds): FDs 1, 2, 4, 5, 6 received in that order
/// leave FD 3 missing since FD 4 arrived, in each of the 120 fold orders.
#[test]
fn a_hole_is_known_since_the_first_arrival_beyond_it_in_any_fold_order() {
    fn permutations(items: &[u32]) -> Vec<Vec<u32>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut all = Vec::new();
        for (i, &first) in items.iter().enumerate() {
            let mut rest = items.to_vec();
            rest.remove(i);
            for mut p in permutations(&rest) {
                p.insert(0, first);
                all.push(p);
            }
        }
        all
    }
    let t = |fd: u32| Timestamp::from_unix_secs(i64::from(fd));
    let orders = permutations(&[1, 2, 4, 5, 6]);
    assert_eq!(orders.len(), 120);
    for order in orders {
        let mut c = Continuity::default();
        for &fd in &order {
            assert!(c.record(fd, t(fd)));
        }
        assert_eq!(c.holes, vec![Hole { from: 3, to: 3, since: t(4) }], "fold order {order:?}");
        assert_eq!(c.earliest, Some(t(1)));
    }
}

fn totals() -> impl Strategy<Value = Totals> {
    let line =
        (0u64..1000, proptest::collection::vec(prop_oneof![Just(0u64), any::<u64>()], 18)).prop_map(|(count, f)| {
            let mut a = [0u64; 18];
            a.copy_from_slice(&f);
            Line { count, amounts: Amounts::from_fields(&a) }
        });
    let line = prop_oneof![Just(Line::default()), line];
    (any::<u64>(), any::<u64>(), proptest::collection::vec(line, 8)).prop_map(|(documents, unreadable, lines)| {
        let mut t = Totals { documents, unreadable, ..Totals::default() };
        t.kinds.copy_from_slice(&lines[..4]);
        t.corrections.copy_from_slice(&lines[4..]);
        t
    })
}

proptest! {
    #[test]
    fn totals_round_trip_and_truncations_fail(t in totals()) {
        let mut b = Vec::new();
        t.encode(&mut b);
        let (back, rest) = Totals::decode(&b).expect("decodes");
        prop_assert_eq!(back, t);
        prop_assert!(rest.is_empty());
        for cut in 0..b.len() {
            prop_assert!(Totals::decode(&b[..cut]).is_none_or(|(x, _)| x != t));
        }
    }

    #[test]
    fn continuity_matches_a_set(fds in proptest::collection::vec(1u32..60, 0..80)) {
        let mut c = Continuity::default();
        let mut set = std::collections::BTreeSet::new();
        for (i, fd) in fds.iter().enumerate() {
            prop_assert_eq!(c.record(*fd, Timestamp::from_unix_secs(i as i64)), set.insert(*fd));
        }
        for fd in 0..62 {
            prop_assert_eq!(c.contains(fd), set.contains(&fd));
        }
        if let (Some(lo), Some(hi)) = (set.first(), set.last()) {
            prop_assert_eq!(c.missing(), u64::from(hi - lo + 1) - set.len() as u64);
        }
        prop_assert!(c.is_consistent());
        prop_assert_eq!(c.received, set.len() as u64);
    }
}

#[test]
fn inconsistent_continuities_are_recognised() {
    let t = Timestamp::from_unix_secs(1);
    let hole = |from, to| Hole { from, to, since: t };
    let c = |low, high, holes| Continuity { low, high, received: 1, holes, forgotten: 0, earliest: None };
    assert!(c(Some(1), Some(9), vec![hole(3, 4), hole(6, 6)]).is_consistent());
    assert!(c(None, None, vec![]).is_consistent());
    assert!(!c(Some(1), None, vec![]).is_consistent(), "low without high");
    assert!(!c(Some(9), Some(1), vec![]).is_consistent(), "low above high");
    assert!(!c(Some(1), Some(9), vec![hole(4, 3)]).is_consistent(), "empty hole");
    assert!(!c(Some(1), Some(9), vec![hole(6, 6), hole(3, 4)]).is_consistent(), "out of order");
    assert!(!c(Some(1), Some(9), vec![hole(3, 4), hole(5, 6)]).is_consistent(), "touching holes");
    assert!(!c(Some(1), Some(9), vec![hole(1, 2)]).is_consistent(), "a hole at the lowest FD");
    assert!(!c(Some(1), Some(9), vec![hole(8, 9)]).is_consistent(), "a hole at the highest FD");
}
