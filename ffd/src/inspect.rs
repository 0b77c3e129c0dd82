//! Step two of parsing, on the ingest hot path: verify a framed message and extract what
//! the operator needs — FN, FD, form, FFD version, time, total, fiscal sign, and the
//! register's own reports about its drive — in one pass over the bytes, allocating nothing.
//!
//! The outcome has three shapes:
//! * `Err(FfdError)` — a close-class error (session or container level, or a resource
//!   limit of this server): no answer, nothing stored.
//! * `Ok(Inspection)` with `verdict: Err(..)` — the container is intact but the document is
//!   wrong: store it and answer with 11 or 14.
//! * `Ok(Inspection)` with `verdict: Ok(())` — accept (code 0).
//!
//! **Attempt vs document.** What is stored and re-answered for (FN, FD) must be a pure
//! function of what the FN signed — the container — so the code is split in two:
//! [`inspect`] checks the *attempt* (session header: channel, check code, the session FN
//! against the container's) and refuses it with a close-class error, and [`judge`] computes
//! the *document verdict* from the container alone. A garbled envelope therefore gets its
//! own answer and can never shadow the genuine delivery of the same document. The table of
//! every input of the answer is in `docs/verdict.md`.
//!
//! **Plain vs opaque bodies.** A body is taken as a plaintext document when it begins with
//! a TLV whose tag is the container's form code; anything else is treated as ciphertext
//! (FN encryption on) — stored verbatim and acknowledged at container level, since
//! decrypting it is the certified crypto module's job. A plaintext document is validated
//! strictly: any structural fault is a format-logic error (14), never an "accepted".

use crate::code::ResponseCode;
use crate::container::{CONTAINER_HEADER_LEN, Container, ContainerHeader, MSG_FROM_FN};
use crate::document::check_value;
use crate::error::{FfdError, FlkError};
use crate::fn_number::FnNumber;
use crate::frame::{Limits, Message};
use crate::session::{Channel, SessionHeader};
use crate::tags::{self, ValueType};
use crate::tlv::{FfdVersion, TLV_HEADER_LEN, decode_uint, printed_fiscal_sign, read_tlv};

/// FN warning flags reported in shift and state reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct FnWarnings(pub u8);

impl FnWarnings {
    /// 1050: FN resource exhausted.
    pub const EXHAUSTED: u8 = 0x01;
    /// 1051: urgent FN replacement needed.
    pub const REPLACE_URGENTLY: u8 = 0x02;
    /// 1052: FN memory full.
    pub const MEMORY_FULL: u8 = 0x04;
    /// 1053: OFD response timeout exceeded.
    pub const OFD_TIMEOUT: u8 = 0x08;

    /// Any flag raised.
    pub fn any(self) -> bool {
        self.0 != 0
    }
}

/// What a register reports about its drive (shift, state and registration reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Telemetry {
    /// 1097: documents not yet transmitted to the operator.
    pub unsent_documents: Option<u32>,
    /// 1098: time of the first untransmitted document.
    pub first_unsent_time: Option<u32>,
    /// 1116: number of the first untransmitted document.
    pub first_unsent_fd: Option<u32>,
    /// 1050–1053.
    pub warnings: FnWarnings,
    /// 1213: key resource (days).
    pub key_resource_days: Option<u32>,
}

impl Telemetry {
    /// True when the document reported anything.
    pub fn is_reported(&self) -> bool {
        self.unsent_documents.is_some()
            || self.first_unsent_time.is_some()
            || self.first_unsent_fd.is_some()
            || self.warnings.any()
            || self.key_resource_days.is_some()
    }
}

/// What the inspector extracted from a plaintext document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// 1209 (document FFD version).
    pub ffd_version: Option<FfdVersion>,
    /// 1012.
    pub doc_time: Option<u32>,
    /// 1020: total in kopecks.
    pub total: Option<u64>,
    /// 1077, as printed.
    pub fiscal_sign: Option<u32>,
    /// 1054: operation type (receipts).
    pub operation: Option<u8>,
    /// 1038: shift number.
    pub shift: Option<u32>,
    /// 1056 = 1.
    pub encrypted_flag: bool,
    /// 1037, bytes as sent (space padded).
    pub rnm: Option<[u8; 20]>,
    /// Drive reports.
    pub telemetry: Telemetry,
    /// Number of requisites, nested ones included.
    pub requisites: u32,
    /// Requisites whose tag the dictionary does not know (kept and accepted: an operator
    /// must not refuse a signed document over a tag it does not know yet; the gateway
    /// counts and logs them, and may refuse the attempt by configuration).
    pub unknown_tags: UnknownTags,
    /// The document carries a requisite that its declared FFD version (1209, or 1.0 when
    /// absent) does not have yet. Accepted all the same — the drive signed it — and counted.
    pub newer_tags: bool,
}

/// Unknown tags seen in one document: how many, and the first few distinct ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnknownTags {
    count: u32,
    len: u8,
    first: [u16; UnknownTags::KEPT],
}

impl UnknownTags {
    /// Distinct tags kept (the count goes on).
    pub const KEPT: usize = 8;

    #[cold]
    #[inline(never)]
    fn record(&mut self, tag: u16) {
        self.count = self.count.saturating_add(1);
        let n = usize::from(self.len);
        if n < Self::KEPT && !self.first[..n].contains(&tag) {
            self.first[n] = tag;
            self.len += 1;
        }
    }

    /// Requisites with an unknown tag, repeats and nested ones included.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The first distinct unknown tags, in wire order (at most [`UnknownTags::KEPT`]).
    pub fn tags(&self) -> &[u16] {
        &self.first[..usize::from(self.len)]
    }

    /// True when there were none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// The body of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// A plaintext document was walked.
    Plain(Summary),
    /// Ciphertext (or bytes that are not a document of the container's form): kept
    /// verbatim.
    Opaque,
}

/// A verified message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// Session header.
    pub session: SessionHeader,
    /// The verified container.
    pub container: Container,
    /// What the body is.
    pub body: Body,
    /// `Ok` to accept, or the error that decides the response code.
    pub verdict: Result<(), FfdError>,
}

impl Inspection {
    /// FN of the document (from the container header).
    pub fn fn_number(&self) -> FnNumber {
        self.container.header().fn_number
    }

    /// FD of the document (from the container header).
    pub fn fd(&self) -> u32 {
        self.container.header().fd
    }

    /// Container header.
    pub fn header(&self) -> &ContainerHeader {
        self.container.header()
    }

    /// The response code the acknowledgment should carry.
    pub fn response_code(&self) -> ResponseCode {
        match &self.verdict {
            Ok(()) => ResponseCode::Accepted,
            Err(FfdError::UnknownDocumentType(_) | FfdError::EmptyDocument) => ResponseCode::NotRecognised,
            Err(_) => ResponseCode::FlkError,
        }
    }

    /// The summary, for plaintext documents.
    pub fn summary(&self) -> Option<&Summary> {
        match &self.body {
            Body::Plain(s) => Some(s),
            Body::Opaque => None,
        }
    }
}

/// Verifies a framed message with a body. See the module documentation for the outcomes.
pub fn inspect(message: &Message, limits: &Limits) -> Result<Inspection, FfdError> {
    // ---- the attempt: the envelope this copy arrived in
    let session = *message.header();
    if session.channel()? != Channel::Ofd {
        return Err(FfdError::UnsupportedChannel);
    }
    message.verify_session_crc()?;
    let body = message.body();
    if body.len() < CONTAINER_HEADER_LEN {
        return Err(FfdError::ContainerTooShort(body.len()));
    }
    let container = Container::parse(body, MSG_FROM_FN)?;
    if session.fn_number() != container.header().fn_number {
        return Err(FfdError::SessionFnMismatch {
            session: session.fn_number(),
            container: container.header().fn_number,
        });
    }
    // ---- the document: from the container alone
    let Judgement { body, verdict } = judge(&container, limits)?;
    Ok(Inspection { session, container, body, verdict })
}

/// The verdict on a document: what kind of body it is and whether it passes format-logic
/// control. A pure function of the container bytes (and the compiled format tables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// What the body is.
    pub body: Body,
    /// `Ok` to accept, or the error that decides the response code.
    pub verdict: Result<(), FfdError>,
}

/// Judges the document inside a verified container. Nothing outside the container takes
/// part, so every delivery of the same container is judged the same — which is what lets
/// the store keep one answer per (FN, FD). `Err` is a resource limit of this server
/// (`limits.max_requisites`): the attempt is refused and nothing is judged.
pub fn judge(container: &Container, limits: &Limits) -> Result<Judgement, FfdError> {
    let header = container.header();
    let doc_type = header.doc_type;
    let Some(form) = tags::doc_type(doc_type).filter(|_| tags::is_fn_document(doc_type)) else {
        return Ok(Judgement { body: Body::Opaque, verdict: Err(FfdError::UnknownDocumentType(doc_type)) });
    };
    let data = &container.bytes()[CONTAINER_HEADER_LEN..];
    if data.len() < TLV_HEADER_LEN {
        return Ok(Judgement { body: Body::Opaque, verdict: Err(FfdError::EmptyDocument) });
    }
    if u16::from_le_bytes([data[0], data[1]]) != u16::from(doc_type) {
        // ciphertext: nothing inside can be checked
        return Ok(Judgement { body: Body::Opaque, verdict: Ok(()) });
    }
    let mut walker = Walker::new(limits, form.mandatory);
    let verdict = match walker.document(data, form) {
        Ok(()) => walker.consistency(header),
        Err(Stop::Flk(e)) => Err(e),
        Err(Stop::Limit { max }) => return Err(FfdError::TooManyRequisites { max }),
    };
    Ok(Judgement { body: Body::Plain(walker.summary), verdict: verdict.map_err(FfdError::from) })
}

/// Why a walk stopped: the document is wrong, or it outgrew a limit of this server.
enum Stop {
    Flk(FlkError),
    Limit { max: u32 },
}

impl Stop {
    /// Names `tag` as the STLV a depth failure happened in, unless a deeper one already is.
    #[cold]
    fn within(self, tag: u16) -> Self {
        match self {
            Stop::Flk(FlkError::DepthExceeded { max, tag: 0 }) => Stop::Flk(FlkError::DepthExceeded { max, tag }),
            other => other,
        }
    }
}

impl From<FlkError> for Stop {
    fn from(e: FlkError) -> Self {
        Self::Flk(e)
    }
}

struct Walker<'l> {
    limits: &'l Limits,
    mandatory: &'static [u16],
    present: u32,
    summary: Summary,
    doc_fn: Option<[u8; 16]>,
    doc_fd: Option<u32>,
    /// The newest FFD version any requisite seen so far needs.
    needs: FfdVersion,
}

impl<'l> Walker<'l> {
    fn new(limits: &'l Limits, mandatory: &'static [u16]) -> Self {
        Self {
            limits,
            mandatory,
            present: 0,
            summary: Summary::default(),
            doc_fn: None,
            doc_fd: None,
            needs: FfdVersion::V1_0,
        }
    }

    fn document(&mut self, data: &[u8], form: &tags::DocTypeInfo) -> Result<(), Stop> {
        let (tlv, _trailer_start) = read_tlv(data, 0).ok_or(FlkError::truncated(data, 0, 0))?;
        if tlv.value.len() > form.max_len {
            return Err(
                FlkError::DocumentTooLarge { doc_type: form.code, len: tlv.value.len(), max: form.max_len }.into()
            );
        }
        self.walk(tlv.value, 1, TLV_HEADER_LEN).map_err(|stop| stop.within(form.code.into()))?;
        self.summary.newer_tags = self.needs > self.summary.ffd_version.unwrap_or(FfdVersion::V1_0);
        for (i, tag) in self.mandatory.iter().enumerate() {
            if self.present & (1 << i) == 0 {
                return Err(FlkError::MissingRequisite(*tag).into());
            }
        }
        Ok(())
    }

    fn walk(&mut self, buf: &[u8], level: u8, base: usize) -> Result<(), Stop> {
        if level > self.limits.max_depth {
            // the tag is filled in by the STLV whose content this is
            return Err(FlkError::DepthExceeded { max: self.limits.max_depth, tag: 0 }.into());
        }
        // kept in a register while walking, merged when the walk succeeds (a content that
        // fails and is taken in a withdrawn meaning leaves nothing behind)
        let mut needs = FfdVersion::V1_0;
        let mut pos = 0;
        while pos < buf.len() {
            let (tlv, next) = read_tlv(buf, pos).ok_or_else(|| FlkError::truncated(buf, pos, base))?;
            self.summary.requisites += 1;
            if self.summary.requisites > self.limits.max_requisites {
                return Err(Stop::Limit { max: self.limits.max_requisites });
            }
            if let Some(info) = tags::lookup(tlv.tag) {
                needs = needs.max(info.since);
                if let Err(e) = check_value(tlv.tag, info, tlv.value) {
                    self.legacy_or(tlv.tag, tlv.value, e.into())?;
                } else if info.ty == ValueType::Stlv {
                    let counted = self.summary.requisites;
                    if let Err(stop) = self.walk(tlv.value, level + 1, base + pos + TLV_HEADER_LEN) {
                        self.legacy_or(tlv.tag, tlv.value, stop.within(tlv.tag))?;
                        self.summary.requisites = counted;
                    }
                }
                if level == 1 {
                    self.capture(tlv.tag, tlv.value);
                }
            } else {
                self.summary.unknown_tags.record(tlv.tag);
            }
            pos = next;
        }
        self.needs = self.needs.max(needs);
        Ok(())
    }

    /// A value that does not fit its tag's current meaning: accepted when it fits the
    /// withdrawn one (a reassigned tag from an older register), otherwise `stop`.
    #[cold]
    fn legacy_or(&self, tag: u16, value: &[u8], stop: Stop) -> Result<(), Stop> {
        match (&stop, tags::legacy(tag)) {
            (Stop::Flk(_), Some(old)) if crate::document::fits_legacy(old, value) => Ok(()),
            _ => Err(stop),
        }
    }

    /// Top-level requisites the operator uses. Values were length-checked already.
    fn capture(&mut self, tag: u16, v: &[u8]) {
        if let Some(i) = self.mandatory.iter().position(|&m| m == tag) {
            self.present |= 1 << i;
        }
        let u32v = || decode_uint(v, 4).and_then(|x| u32::try_from(x).ok());
        let s = &mut self.summary;
        match tag {
            1040 => self.doc_fd = u32v(),
            1041 => self.doc_fn = <[u8; 16]>::try_from(v).ok(),
            1012 => s.doc_time = u32v(),
            1020 => s.total = decode_uint(v, 8),
            1077 => s.fiscal_sign = printed_fiscal_sign(v),
            1054 => s.operation = v.first().copied(),
            1038 => s.shift = u32v(),
            1209 => s.ffd_version = v.first().copied().and_then(FfdVersion::from_tag_value),
            1056 => s.encrypted_flag = v.first() == Some(&1),
            1037 => {
                let mut rnm = [b' '; 20];
                rnm[..v.len().min(20)].copy_from_slice(&v[..v.len().min(20)]);
                s.rnm = Some(rnm);
            }
            1097 => s.telemetry.unsent_documents = u32v(),
            1098 => s.telemetry.first_unsent_time = u32v(),
            1116 => s.telemetry.first_unsent_fd = u32v(),
            1213 => s.telemetry.key_resource_days = u32v(),
            1050..=1053 if v.first().is_some_and(|&b| b != 0) => {
                s.telemetry.warnings.0 |= 1 << (tag - 1050);
            }
            _ => {}
        }
    }

    fn consistency(&self, header: &ContainerHeader) -> Result<(), FlkError> {
        if let Some(fd) = self.doc_fd
            && fd != header.fd
        {
            return Err(FlkError::FdMismatch { container: header.fd, document: fd });
        }
        if let Some(raw) = self.doc_fn
            && FnNumber::from_ascii(&raw) != header.fn_number
        {
            return Err(FlkError::FnMismatch);
        }
        Ok(())
    }
}
