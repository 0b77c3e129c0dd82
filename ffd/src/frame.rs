//! Framing: step one of two. Decide whether a whole message is in the buffer and whether
//! its declared size is acceptable, *before* any allocation for it; the parsing proper is
//! done by [`crate::inspect`] on the framed bytes.
//!
//! Messages are framed strictly by the session header's body length: real registers send
//! one message and wait for one answer, so there is no pipelining to resynchronise.

use bytes::Bytes;

use crate::error::FfdError;
use crate::session::{SESSION_HEADER_LEN, SessionHeader};

/// Hard limits applied before and during parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted session body (= container). The wire field is a u16, so 65 535 is
    /// the natural ceiling; the default allows the largest form (a 32 KiB receipt) plus
    /// container header, TLV header and a generous trailer.
    pub max_body_len: usize,
    /// Deepest STLV nesting below the document (a receipt nests items, which nest agent
    /// and supplier data: three levels).
    pub max_depth: u8,
    /// Most requisites in one document, counting nested ones.
    pub max_requisites: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_body_len: 32 * 1024 + 128, max_depth: 4, max_requisites: 8192 }
    }
}

/// Result of looking at the start of a read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus {
    /// Not enough bytes yet; at least this many more are needed.
    Incomplete(usize),
    /// A whole message of `len` bytes (header included) is at the start of the buffer.
    Complete {
        /// The decoded and validated header.
        header: SessionHeader,
        /// Header plus body.
        len: usize,
    },
}

/// Looks for one whole message at the start of `buf`. Garbage is refused as soon as the
/// signature bytes disagree, and an oversized body as soon as the header is complete.
pub fn check_frame(buf: &[u8], limits: &Limits) -> Result<FrameStatus, FfdError> {
    SessionHeader::check_signature_prefix(buf)?;
    if buf.len() < SESSION_HEADER_LEN {
        return Ok(FrameStatus::Incomplete(SESSION_HEADER_LEN - buf.len()));
    }
    let header = SessionHeader::parse(buf)?;
    let body = usize::from(header.body_len);
    if body > limits.max_body_len {
        return Err(FfdError::BodyTooLarge { len: body, max: limits.max_body_len });
    }
    let len = SESSION_HEADER_LEN + body;
    if buf.len() < len {
        return Ok(FrameStatus::Incomplete(len - buf.len()));
    }
    Ok(FrameStatus::Complete { header, len })
}

/// One framed message: its header and all its bytes, shared without copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    header: SessionHeader,
    frame: Bytes,
}

impl Message {
    /// Wraps a frame previously accepted by [`check_frame`].
    pub fn new(header: SessionHeader, frame: Bytes) -> Self {
        debug_assert_eq!(frame.len(), SESSION_HEADER_LEN + usize::from(header.body_len));
        Self { header, frame }
    }

    /// Frames a complete message held in `bytes` (tests, tools): `bytes` must be exactly
    /// one message.
    pub fn parse(bytes: Bytes, limits: &Limits) -> Result<Self, FfdError> {
        match check_frame(&bytes, limits)? {
            FrameStatus::Complete { header, len } if len == bytes.len() => Ok(Self { header, frame: bytes }),
            FrameStatus::Complete { len, .. } => Err(FfdError::ContainerLengthMismatch {
                declared: len - SESSION_HEADER_LEN,
                actual: bytes.len() - SESSION_HEADER_LEN,
            }),
            FrameStatus::Incomplete(_) => {
                Err(FfdError::ContainerTooShort(bytes.len().saturating_sub(SESSION_HEADER_LEN)))
            }
        }
    }

    /// The session header.
    pub fn header(&self) -> &SessionHeader {
        &self.header
    }

    /// Every byte of the message.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// The body (the container), without copying.
    pub fn body(&self) -> Bytes {
        self.frame.slice(SESSION_HEADER_LEN..)
    }

    /// Verifies the session check code, if the flags ask for one.
    pub fn verify_session_crc(&self) -> Result<(), FfdError> {
        self.header.verify_crc(&self.frame[SESSION_HEADER_LEN..])
    }
}
