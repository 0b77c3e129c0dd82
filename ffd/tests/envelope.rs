//! The answer stored for (FN, FD) is a pure function of the container: whatever happens to
//! a copy's 30-byte session header (the envelope), the copy is either refused for that
//! attempt (a close-class error, nothing stored) or judged exactly as the genuine message
//! is — same container bytes, same response code. So no garbled envelope can shadow the
//! genuine delivery of a document (docs/verdict.md).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use ffd::session::SESSION_HEADER_LEN;
use ffd::testkit::{self, TEST_FN};
use ffd::{FfdError, FfdVersion, FrameStatus, Limits, Message, check_frame, inspect};
use proptest::prelude::*;

/// What the gateway would do with these bytes as the first frame of a connection:
/// `None` if no whole frame can be cut (the attempt ends in a timeout or EOF close),
/// otherwise the result of inspecting that frame.
fn attempt(bytes: &Bytes, limits: &Limits) -> Option<Result<ffd::Inspection, FfdError>> {
    match check_frame(bytes, limits) {
        Ok(FrameStatus::Complete { header, len }) => Some(inspect(&Message::new(header, bytes.slice(..len)), limits)),
        Ok(FrameStatus::Incomplete(_)) => None,
        Err(e) => Some(Err(e)),
    }
}

fn genuine_messages() -> Vec<Bytes> {
    let mut out: Vec<Bytes> = testkit::valid_messages().into_iter().map(|(_, m)| m).collect();
    for v in [FfdVersion::V1_05, FfdVersion::V1_1, FfdVersion::V1_2] {
        for n in [1, 3, 12] {
            out.push(testkit::receipt_message(v, 1_000 + n as u32, n));
        }
    }
    out
}

fn mutate(msg: &Bytes, edits: &[(usize, u8)]) -> Bytes {
    let mut m = msg.to_vec();
    for &(at, xor) in edits {
        m[at % SESSION_HEADER_LEN] ^= xor;
    }
    Bytes::from(m)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    /// Random envelope mutations of valid documents: refused for the attempt, or judged
    /// exactly as the genuine message.
    #[test]
    fn an_envelope_never_changes_the_verdict(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec((0usize..SESSION_HEADER_LEN, 1u8..=255), 1..4),
    ) {
        let limits = Limits::default();
        let all = genuine_messages();
        let genuine = which.get(&all).clone();
        let g = attempt(&genuine, &limits).expect("whole").expect("genuine message inspects");
        prop_assert!(g.verdict.is_ok(), "the genuine message is accepted");
        let copy = mutate(&genuine, &edits);
        match attempt(&copy, &limits) {
            None | Some(Err(_)) => {} // refused for this attempt: nothing is stored
            Some(Ok(c)) => {
                prop_assert_eq!(c.container.bytes(), g.container.bytes(), "the same container");
                prop_assert_eq!(&c.verdict, &g.verdict, "the same verdict");
                prop_assert_eq!(c.response_code(), g.response_code());
                prop_assert_eq!(c.body, g.body);
            }
        }
    }
}

/// The case that used to shadow documents: a session FN one digit off. Refused for the
/// attempt (close, `session_fn_mismatch`), never a stored code 14.
#[test]
fn a_session_fn_off_by_one_digit_refuses_the_attempt_only() {
    let genuine = testkit::receipt_message(FfdVersion::V1_2, 7, 2);
    let mut m = genuine.to_vec();
    assert_eq!(&m[8..24], TEST_FN.as_bytes());
    m[23] = if m[23] == b'9' { b'0' } else { m[23] + 1 };
    let err = attempt(&Bytes::from(m), &Limits::default()).expect("whole frame").expect_err("refused");
    assert_eq!(err.code(), "session_fn_mismatch");
    assert_eq!(err.disposition(), ffd::Disposition::Close);
    let g = attempt(&genuine, &Limits::default()).unwrap().unwrap();
    assert_eq!(g.response_code(), ffd::ResponseCode::Accepted);
}

/// A document judged from its container alone: `judge` gives the same verdict as
/// `inspect` for every valid message and every hostile case that reaches a verdict.
#[test]
fn judge_is_the_verdict_of_inspect() {
    let mut checked = 0;
    let hostile = testkit::hostile_catalogue().into_iter().map(|c| (c.bytes, c.limits));
    for (bytes, limits) in genuine_messages().into_iter().map(|m| (m, Limits::default())).chain(hostile) {
        if let Some(Ok(i)) = attempt(&bytes, &limits) {
            let j = ffd::judge(&i.container, &limits).expect("judged");
            assert_eq!((j.body, j.verdict), (i.body, i.verdict));
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} messages reached a verdict");
}
