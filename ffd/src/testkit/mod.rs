//! Test material shared by this crate's tests, benchmarks and fuzz targets and by the
//! gateway's socket-level tests (feature `testkit`; never enabled in production builds).
//!
//! * [`hostile_catalogue`] — named malformed inputs, each with the exact outcome the
//!   gateway must produce: close without an answer (and which [`FfdError::code`] it
//!   counts), wait for more bytes and close at end of stream, or store and answer with
//!   response code 11 or 14. The cases are built from valid builder-made messages and then
//!   broken; the check codes are recomputed wherever the case is about something the CRC
//!   would otherwise hide.
//! * [`valid_messages`] — messages that must be accepted (code 0): the captured sample S1
//!   and builder-made receipts, shift, state and registration reports for FFD 1.05/1.1/1.2.
//! * [`replay`] — the reference model of a connection's read loop (frame, verify the
//!   session check code, inspect, go on with the bytes that follow), against which the
//!   catalogue is checked; socket tests compare the real gateway with the same
//!   expectations.

mod hostile;

use std::ops::Range;

use bytes::Bytes;

use crate::build::{self, DriveReport, Identity, Item, Receipt, vat};
use crate::error::FfdError;
use crate::fn_number::FnNumber;
use crate::frame::{FrameStatus, Limits, Message, check_frame};
use crate::inspect::inspect;
use crate::tlv::{FfdVersion, Fvln};

/// The captured FFD 1.05 registration-change report (sample S1, 466 bytes).
pub const SAMPLE_S1: &[u8] = include_bytes!("../../tests/samples/S1.bin");

/// What the gateway must do with one frame (or with what is left of the stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expect {
    /// A close-class error: send nothing, close the connection, count `code`
    /// (an [`FfdError::code`]).
    Close {
        /// The error's stable code.
        code: &'static str,
    },
    /// The bytes are a prefix of a frame that never completes: nothing can be answered and
    /// the connection is closed only when the peer ends it (or the read timeout fires).
    /// `missing` is what [`check_frame`] still asks for.
    CloseOnEof {
        /// Bytes still missing when the stream ended.
        missing: usize,
    },
    /// Store the document and answer with an acknowledgment carrying `response_code`;
    /// `code` is `"accepted"` for 0, otherwise the [`FfdError::code`] of the verdict.
    Respond {
        /// Tag 1022 of the acknowledgment: 0, 11 or 14.
        response_code: u8,
        /// `"accepted"` or the verdict's error code.
        code: &'static str,
    },
    /// A header-only message (ping): answered with [`crate::ack::ping_reply`].
    Ping,
}

impl Expect {
    const ACCEPTED: Expect = Expect::Respond { response_code: 0, code: "accepted" };

    /// The code of a close-class error.
    fn close(code: &'static str) -> Self {
        Expect::Close { code }
    }

    /// Answer 11 ("not recognised").
    fn r11(code: &'static str) -> Self {
        Expect::Respond { response_code: 11, code }
    }

    /// Answer 14 (format-logic control failed).
    fn r14(code: &'static str) -> Self {
        Expect::Respond { response_code: 14, code }
    }

    /// True for an acknowledgment with code 0.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Expect::Respond { response_code: 0, .. })
    }
}

/// One malformed input and what the gateway must make of it.
#[derive(Debug, Clone)]
pub struct HostileCase {
    /// Stable, unique name (usable as a test name).
    pub name: &'static str,
    /// Everything the peer sends before ending the stream.
    pub bytes: Bytes,
    /// The outcome of the first frame.
    pub expect: Expect,
    /// The outcome of the bytes after the first frame, when the first frame is answered
    /// and the connection stays open (a valid message followed by garbage). `None` when
    /// the first outcome ends the connection or nothing follows.
    pub trailing: Option<Expect>,
    /// The limits the case is judged under. [`Limits::default`] for every case except
    /// `too_many_requisites`: at the default limits a document (at most 32 768 bytes, at
    /// least 4 bytes per requisite) cannot hold more than the default 8 192 requisites.
    pub limits: Limits,
}

impl HostileCase {
    /// Every expected outcome in stream order.
    pub fn expectations(&self) -> Vec<Expect> {
        std::iter::once(self.expect).chain(self.trailing).collect()
    }
}

/// One step of [`replay`]: the bytes it covered and what was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Byte range of the frame (or of the unframeable rest) within the stream.
    pub range: Range<usize>,
    /// The decision.
    pub outcome: Expect,
}

/// The reference model of a connection's read loop: frame with [`check_frame`], verify the
/// session check code, answer a header-only message as a ping, [`inspect`] anything else,
/// and go on with the following bytes until the stream ends or a close-class error stops
/// it. Pure; never panics on any input.
pub fn replay(stream: &[u8], limits: &Limits) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        let rest = stream.get(pos..).unwrap_or_default();
        let (len, outcome) = match check_frame(rest, limits) {
            Err(e) => (rest.len(), Expect::Close { code: e.code() }),
            Ok(FrameStatus::Incomplete(missing)) => (rest.len(), Expect::CloseOnEof { missing }),
            Ok(FrameStatus::Complete { header, len }) => {
                let frame = Bytes::copy_from_slice(rest.get(..len).unwrap_or_default());
                (len, judge_frame(Message::new(header, frame), limits))
            }
        };
        let stop = !matches!(outcome, Expect::Respond { .. } | Expect::Ping);
        steps.push(Step { range: pos..pos + len, outcome });
        if stop {
            break;
        }
        pos += len;
    }
    steps
}

/// The outcome of one framed message.
pub fn judge_frame(message: Message, limits: &Limits) -> Expect {
    if let Err(e) = message.verify_session_crc() {
        return Expect::Close { code: e.code() };
    }
    if message.header().is_ping() {
        return Expect::Ping;
    }
    match inspect(&message, limits) {
        Err(e) => Expect::Close { code: e.code() },
        Ok(insp) => Expect::Respond {
            response_code: insp.response_code().value(),
            code: insp.verdict.as_ref().err().map_or("accepted", FfdError::code),
        },
    }
}

// ---------------------------------------------------------------- builders

/// FN of the test identity (a test drive: prefix 9999).
pub const TEST_FN: &str = "9999078902013267";
/// FD number used by the catalogue's messages.
pub const TEST_FD: u32 = 42;
/// Document time used by the catalogue's messages (minute-aligned, as FNs produce).
pub const TEST_TIME: u32 = 1_726_400_760;

fn fn_number(s: &str) -> FnNumber {
    let mut raw = [b' '; 16];
    for (o, b) in raw.iter_mut().zip(s.bytes()) {
        *o = b;
    }
    FnNumber::from_ascii(&raw)
}

/// A register identity for builder-made documents.
pub fn identity(ffd: FfdVersion) -> Identity {
    Identity {
        fn_number: fn_number(TEST_FN),
        rnm: "0000000005008570".to_owned(),
        user_inn: "7702203276".to_owned(),
        kkt_serial: "000000000002".to_owned(),
        ofd_inn: "7704211201".to_owned(),
        user_name: "ООО \"Ромашка\"".to_owned(),
        address: "111141 г.Москва, ул. Кусковская д.20А".to_owned(),
        place: "Магазин №1".to_owned(),
        cashier: "Кассир Иванова А.".to_owned(),
        ffd,
    }
}

/// A receipt of `n_items` typical lines (goods at 20 % and 10 % VAT, part cash).
pub fn typical_receipt(n_items: usize) -> Receipt {
    const NAMES: [&str; 4] = ["Молоко 3,2% 1 л", "Хлеб Бородинский", "Сыр Российский, кг", "Пакет-майка"];
    let items = (0..n_items)
        .map(|i| Item {
            name: NAMES[i % NAMES.len()].to_owned(),
            price: 8_990 + 1_250 * i as u64,
            quantity: Fvln { scale: 3, mantissa: 1_000 + 250 * (i as u64 % 3) },
            vat: if i % 2 == 0 { vat::VAT20 } else { vat::VAT10 },
            subject: 1,
            method: 4,
        })
        .collect();
    Receipt { operation: build::operation::INCOME, items, cash: 10_000, shift: 17, number: 5, taxation: 1 }
}

/// A whole register message carrying [`typical_receipt`] of `n_items` lines.
pub fn receipt_message(ffd: FfdVersion, fd: u32, n_items: usize) -> Bytes {
    let id = identity(ffd);
    build::message(&id, fd, &build::receipt(&id, fd, TEST_TIME, &typical_receipt(n_items)))
}

/// Drive state as shift-close and state reports carry it.
pub fn drive_report() -> DriveReport {
    DriveReport {
        shift: 17,
        documents_in_shift: 120,
        receipts_in_shift: 111,
        unsent_documents: 3,
        first_unsent_time: TEST_TIME - 3_600,
        first_unsent_fd: TEST_FD - 3,
        warnings: 0,
        key_resource_days: 400,
    }
}

/// Messages that must be accepted with code 0: sample S1 and builder-made receipts
/// (1 and 6 lines), shift open/close, state and registration reports for FFD 1.05, 1.1
/// and 1.2.
pub fn valid_messages() -> Vec<(&'static str, Bytes)> {
    let mut out = vec![("S1", Bytes::from_static(SAMPLE_S1))];
    let versions: [(FfdVersion, [&'static str; 6]); 3] = [
        (
            FfdVersion::V1_05,
            [
                "receipt_1_05",
                "receipt_6_items_1_05",
                "open_shift_1_05",
                "close_shift_1_05",
                "state_report_1_05",
                "registration_1_05",
            ],
        ),
        (
            FfdVersion::V1_1,
            [
                "receipt_1_1",
                "receipt_6_items_1_1",
                "open_shift_1_1",
                "close_shift_1_1",
                "state_report_1_1",
                "registration_1_1",
            ],
        ),
        (
            FfdVersion::V1_2,
            [
                "receipt_1_2",
                "receipt_6_items_1_2",
                "open_shift_1_2",
                "close_shift_1_2",
                "state_report_1_2",
                "registration_1_2",
            ],
        ),
    ];
    for (ffd, names) in versions {
        let id = identity(ffd);
        let fd = TEST_FD;
        let t = TEST_TIME;
        let docs = [
            build::receipt(&id, fd, t, &typical_receipt(1)),
            build::receipt(&id, fd, t, &typical_receipt(6)),
            build::open_shift(&id, fd, t, 17),
            build::close_shift(&id, fd, t, &drive_report()),
            build::state_report(&id, fd, t, &drive_report()),
            build::registration(&id, fd, t),
        ];
        for (name, doc) in names.into_iter().zip(docs) {
            out.push((name, build::message(&id, fd, &doc)));
        }
    }
    out
}

/// A valid receipt message (FFD 1.2, 3 lines), the base most cases break.
pub use hostile::hostile_catalogue;
