//! The operator acknowledgment (подтверждение оператора, form 7) in the layout real
//! operators send (samples S4/S5):
//!
//! ```text
//! container: 5A 07 01 <service data 1 copied> <FN BCD> <FD of the acknowledged document>
//!            <service data 2: 8 signer bytes, 00 02, BE TLV length>
//! document:  7 { 1017 operator INN (12, space-padded)
//!                1078 operator fiscal sign (8)
//!                1041 FN (16) · 1040 FD (u32) · 1012 time (u32)
//!                1068 { 1022 response code (1) } }
//! trailer:   82 06 <6 signer bytes> 00 00
//! ```
//!
//! The signer-dependent bytes — service data 2 head, the 1078 value and the trailer — come
//! from an [`AckSigner`]. In production that is the operator's certified crypto module
//! (HSM); [`SoftwareSigner`] is a keyed MAC for development, tests and load tests, and it
//! is deterministic: the same fields and key give the same bytes.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::container::{CONTAINER_HEADER_LEN, Container, ContainerSpec, MSG_FROM_OFD};
use crate::document::Document;
use crate::error::FfdError;
use crate::fn_number::FnNumber;
use crate::frame::Limits;
use crate::session::{CrcMode, Flags, SESSION_HEADER_LEN, SessionHeader};
use crate::tlv::TlvWriter;

pub use crate::code::ResponseCode;

/// The fields an acknowledgment states (everything but the signer's bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckFields {
    /// FN of the acknowledged document.
    pub fn_number: FnNumber,
    /// FD of the acknowledged document.
    pub fd: u32,
    /// Response code.
    pub code: ResponseCode,
    /// Operator time (tag 1012), Unix seconds.
    pub time: u32,
    /// Operator INN, space-padded to 12 bytes.
    pub ofd_inn: [u8; 12],
    /// Service data 1, copied from the acknowledged container.
    pub service1: [u8; 2],
}

impl AckFields {
    /// Pads an INN given as digits to the 12-byte wire form.
    pub fn pad_inn(inn: &str) -> [u8; 12] {
        let mut out = [b' '; 12];
        for (o, b) in out.iter_mut().zip(inn.bytes()) {
            *o = b;
        }
        out
    }
}

/// The signer-produced parts of an acknowledgment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckSignature {
    /// First 8 bytes of service data 2.
    pub service2_head: [u8; 8],
    /// Value of tag 1078 (operator fiscal sign), 8 bytes as real operators send it.
    pub operator_sign: [u8; 8],
    /// The 10-byte trailer (message MAC by interpretation).
    pub trailer: [u8; 10],
}

/// Produces the cryptographic parts of acknowledgments. The HSM is one implementation,
/// [`SoftwareSigner`] another.
pub trait AckSigner: Send + Sync + std::fmt::Debug {
    /// Signs one acknowledgment.
    fn sign(&self, fields: &AckFields) -> AckSignature;
}

/// A software signer: HMAC-SHA256 over the acknowledgment fields with a secret key.
#[derive(Clone)]
pub struct SoftwareSigner {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SoftwareSigner { key: <redacted> }")
    }
}

impl SoftwareSigner {
    /// A signer keyed by `key` (any length; HMAC hashes long keys).
    pub fn new(key: &[u8]) -> Self {
        #[allow(clippy::expect_used)]
        let mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
        Self { mac }
    }
}

impl AckSigner for SoftwareSigner {
    fn sign(&self, f: &AckFields) -> AckSignature {
        let mut mac = self.mac.clone();
        mac.update(b"ofd-ack-v1");
        mac.update(f.fn_number.as_bytes());
        mac.update(&f.fd.to_le_bytes());
        mac.update(&[f.code.value()]);
        mac.update(&f.time.to_le_bytes());
        mac.update(&f.ofd_inn);
        mac.update(&f.service1);
        let d = mac.finalize().into_bytes();
        let mut s = AckSignature { service2_head: [0; 8], operator_sign: [0; 8], trailer: [0; 10] };
        s.service2_head.copy_from_slice(&d[0..8]);
        // same shape as the operator signs seen on the wire: 88 06 <4> 00 03, 82 06 <6> 00 00
        s.operator_sign = [0x88, 0x06, d[8], d[9], d[10], d[11], 0x00, 0x03];
        s.trailer = [0x82, 0x06, d[12], d[13], d[14], d[15], d[16], d[17], 0x00, 0x00];
        s
    }
}

/// Builds the acknowledgment container (without session header).
pub fn build_ack_container(fields: &AckFields, signer: &dyn AckSigner) -> Vec<u8> {
    let sig = signer.sign(fields);
    let mut w = TlvWriter::new();
    w.begin(7)
        .raw(1017, &fields.ofd_inn)
        .raw(1078, &sig.operator_sign)
        .raw(1041, fields.fn_number.as_bytes())
        .u32(1040, fields.fd)
        .u32(1012, fields.time)
        .begin(1068)
        .byte(1022, fields.code.value())
        .end()
        .end();
    let tlv = w.finish();
    let mut head = [0u8; 10];
    head[..8].copy_from_slice(&sig.service2_head);
    head[8..].copy_from_slice(&[0x00, 0x02]);
    ContainerSpec {
        msg_type: MSG_FROM_OFD,
        doc_type: 7,
        service1: fields.service1,
        fn_number: fields.fn_number,
        fd: fields.fd,
        service2_head: head,
    }
    .build(&tlv, &sig.trailer)
}

/// Wraps a reply container in a session header derived from the request's header: same
/// signature, S- and P-version and FN bytes; flags "container" plus the request's CRC mode
/// (a register that checks CRCs gets CRCs back); the check code computed accordingly.
/// Header and container go out as one buffer, because some registers read the reply with
/// a single `read()`.
pub fn wrap_reply(request: &SessionHeader, container: &[u8]) -> Bytes {
    let mode = request.flags.crc_mode().unwrap_or(CrcMode::None);
    let body_len = u16::try_from(container.len()).unwrap_or(u16::MAX);
    let header =
        SessionHeader { body_len, flags: Flags(Flags::REGISTER_DEFAULT.0).with_crc_mode(mode), crc: 0, ..*request }
            .with_crc(container);
    let mut out = Vec::with_capacity(SESSION_HEADER_LEN + container.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(container);
    Bytes::from(out)
}

/// The answer to a header-only message: the same header with the flags cleared except the
/// CRC mode (the key-server checker expects exactly this), check code recomputed.
pub fn ping_reply(request: &SessionHeader) -> Bytes {
    let mode = request.flags.crc_mode().unwrap_or(CrcMode::None);
    let header = SessionHeader { flags: Flags(0).with_crc_mode(mode), crc: 0, ..*request }.with_crc(&[]);
    Bytes::copy_from_slice(&header.to_bytes())
}

/// A decoded acknowledgment (what a register, or the load generator, reads back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckView {
    /// FN in the container header.
    pub fn_number: FnNumber,
    /// FD in the container header.
    pub fd: u32,
    /// 1041.
    pub doc_fn: Option<FnNumber>,
    /// 1040.
    pub doc_fd: Option<u32>,
    /// 1068/1022.
    pub code: Option<ResponseCode>,
    /// 1012.
    pub time: Option<u32>,
    /// 1017, trimmed.
    pub ofd_inn: Option<String>,
    /// 1078.
    pub operator_sign: Option<Bytes>,
    /// Bytes after the document.
    pub trailer: Bytes,
}

impl AckView {
    /// Parses and verifies an acknowledgment container (length, CRC, type 5A, form 7).
    pub fn parse_container(container: Bytes) -> Result<Self, FfdError> {
        let c = Container::parse(container, MSG_FROM_OFD)?;
        if c.header().doc_type != 7 {
            return Err(FfdError::UnknownDocumentType(c.header().doc_type));
        }
        let (doc, trailer) = Document::decode(&c.data(), &Limits::default())?;
        if doc.doc_type != 7 {
            return Err(FfdError::UnknownDocumentType(c.header().doc_type));
        }
        let doc_fn = doc
            .get(1041)
            .and_then(|v| v.bytes())
            .and_then(|b| <&[u8; 16]>::try_from(&b[..]).ok())
            .map(FnNumber::from_ascii);
        let code = doc
            .get(1068)
            .and_then(|v| v.fields())
            .and_then(|f| f.iter().find(|f| f.tag == 1022))
            .and_then(|f| f.value.as_u64())
            .map(|v| ResponseCode::from_value(u8::try_from(v).unwrap_or(u8::MAX)));
        Ok(Self {
            fn_number: c.header().fn_number,
            fd: c.header().fd,
            doc_fn,
            doc_fd: doc.get(1040).and_then(|v| v.as_u64()).and_then(|v| u32::try_from(v).ok()),
            code,
            time: doc.get(1012).and_then(|v| v.as_u64()).and_then(|v| u32::try_from(v).ok()),
            ofd_inn: doc.get(1017).and_then(|v| v.text()),
            operator_sign: doc.get(1078).and_then(|v| v.bytes()).cloned(),
            trailer,
        })
    }

    /// Parses a whole reply (session header + container), verifying the session header
    /// (signature, version, body length, check code).
    pub fn parse_reply(reply: Bytes) -> Result<(SessionHeader, Self), FfdError> {
        let header = SessionHeader::parse(&reply)?;
        let body = reply.slice(SESSION_HEADER_LEN.min(reply.len())..);
        if body.len() != usize::from(header.body_len) {
            return Err(FfdError::ContainerLengthMismatch {
                declared: usize::from(header.body_len),
                actual: body.len(),
            });
        }
        header.verify_crc(&body)?;
        if body.len() < CONTAINER_HEADER_LEN {
            return Err(FfdError::ContainerTooShort(body.len()));
        }
        Ok((header, Self::parse_container(body)?))
    }
}
