//! Errors of the wire format, each with a stable code and the answer it calls for.
//!
//! The split follows what the register can do with the answer:
//! * **Close** — the bytes cannot be trusted or framed (bad signature, CRC mismatch,
//!   lengths beyond limits), or this attempt is refused for something outside the signed
//!   document (the session header's FN, a resource limit of this server). No
//!   acknowledgment, nothing stored; the connection is closed and the close is counted
//!   with [`FfdError::code`] as the reason. The register retries.
//! * **Respond** — the container is intact and names an FN and an FD, but the document is
//!   wrong. The operator stores it and answers with a response code (11 "not recognised",
//!   14 "format-logic control failed"), as real operators do (sample S4 carries 14). Only
//!   the container decides these (see `docs/verdict.md`).

use crate::code::ResponseCode;
use crate::fn_number::FnNumber;

/// What the receiver should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Store the document and answer with an acknowledgment carrying this code.
    Respond(ResponseCode),
    /// Send nothing and close the connection.
    Close,
}

/// Every way an incoming message can be wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FfdError {
    // ---- session level: close
    /// Fewer than 30 bytes where a whole session header was expected.
    #[error("session header truncated to {0} bytes")]
    TruncatedHeader(usize),
    /// The first four bytes are not a known session signature.
    #[error("bad session signature {0:02x?}")]
    BadSignature([u8; 4]),
    /// Known signature, unknown S-protocol version.
    #[error("unsupported session protocol version {0:02x?}")]
    UnsupportedSessionVersion([u8; 2]),
    /// CRC mode 3 in the flags is undefined.
    #[error("undefined check-code mode in session flags {0:#06x}")]
    BadFlags(u16),
    /// The declared body is larger than the configured maximum (checked before reading it).
    #[error("declared body length {len} exceeds the limit of {max} bytes")]
    BodyTooLarge {
        /// Declared length.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The session check code (flags mode 1 or 2) does not match.
    #[error("session check code mismatch: declared {declared:#06x}, computed {computed:#06x}")]
    SessionCrcMismatch {
        /// Value in the header.
        declared: u16,
        /// Value computed over the received bytes.
        computed: u16,
    },
    /// A body was sent on the marking (OISM/OKP) channel, which this operator does not serve.
    #[error("messages with a body on the marking/key-update channel are not served here")]
    UnsupportedChannel,

    // ---- container level: close
    /// The body is shorter than a container header.
    #[error("container of {0} bytes is shorter than its 32-byte header")]
    ContainerTooShort(usize),
    /// The container's own length field disagrees with the session body length.
    #[error("container length field {declared} differs from the session body length {actual}")]
    ContainerLengthMismatch {
        /// Container length field.
        declared: usize,
        /// Session body length.
        actual: usize,
    },
    /// The container check code does not match.
    #[error("container check code mismatch: declared {declared:#06x}, computed {computed:#06x}")]
    ContainerCrcMismatch {
        /// Value in the container header.
        declared: u16,
        /// Value computed over the container.
        computed: u16,
    },
    /// Not `A5` (from an FN) where one was expected, or not `5A` in an acknowledgment.
    #[error("unexpected container message type {0:#04x}")]
    BadMessageType(u8),
    /// Container version other than 1.
    #[error("unsupported container version {0}")]
    UnsupportedContainerVersion(u8),
    /// The FN number in the container is not packed BCD.
    #[error("FN number in the container is not packed BCD: {0:02x?}")]
    BadFnBcd([u8; 8]),

    // ---- this attempt, not the document: close, store nothing
    /// The session header names another FN than the container. The envelope is transport:
    /// this attempt is refused, but nothing is stored, so it can never shadow the
    /// document's genuine delivery (see docs/verdict.md).
    #[error("session header FN {session} differs from the container's FN {container}")]
    SessionFnMismatch {
        /// FN in the session header.
        session: FnNumber,
        /// FN in the container header.
        container: FnNumber,
    },
    /// More requisites than the configured `limits.max_requisites`: a resource limit of
    /// this server, not a property of the document, so the attempt is refused and nothing
    /// is stored (raising the limit lets the register's next attempt through).
    #[error("more than {max} requisites (limits.max_requisites)")]
    TooManyRequisites {
        /// Configured maximum.
        max: u32,
    },

    // ---- document level: respond 11
    /// A form code this operator does not know (or one an FN never sends, like 7).
    #[error("unknown document type {0}")]
    UnknownDocumentType(u8),
    /// The container has no room for a document.
    #[error("the container carries no document")]
    EmptyDocument,

    // ---- document level: respond 14
    /// The document failed format-logic control.
    #[error("format-logic control: {0}")]
    Flk(#[from] FlkError),
}

/// A format-logic control (ФЛК) failure: the document is stored and answered with code 14.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlkError {
    /// A TLV header or value runs past the end of its enclosing value.
    #[error("truncated requisite{} at offset {offset}", tag.map(|t| format!(" {t}")).unwrap_or_default())]
    Truncated {
        /// Offset within the document value.
        offset: usize,
        /// The requisite that is cut short, when its tag could still be read.
        tag: Option<u16>,
    },
    /// STLV nesting deeper than the limit.
    #[error("requisites nested deeper than {max} levels (inside {tag})")]
    DepthExceeded {
        /// Configured maximum depth.
        max: u8,
        /// The STLV whose content is too deep.
        tag: u16,
    },
    /// More requisites than the limit. Only the tree decoder ([`crate::Document::decode`])
    /// reports this one; on the ingest path the limit refuses the attempt instead
    /// ([`FfdError::TooManyRequisites`]), since it is a setting of this server.
    #[error("more than {max} requisites")]
    TooManyRequisites {
        /// Configured maximum.
        max: u32,
    },
    /// The document TLV is larger than its form allows.
    #[error("document of type {doc_type} is {len} bytes, the limit is {max}")]
    DocumentTooLarge {
        /// Form code.
        doc_type: u8,
        /// Length of the document value.
        len: usize,
        /// Maximum for the form.
        max: usize,
    },
    /// A value is longer than the dictionary allows for its tag.
    #[error("requisite {tag} is {len} bytes, the maximum is {max}")]
    ValueTooLong {
        /// Tag.
        tag: u16,
        /// Length seen.
        len: usize,
        /// Dictionary maximum.
        max: usize,
    },
    /// A value whose length is wrong for its type (e.g. an FN number that is not 16 bytes,
    /// an FVLN without its scale byte).
    #[error("requisite {tag} has an invalid length {len}")]
    BadValueLength {
        /// Tag.
        tag: u16,
        /// Length seen.
        len: usize,
    },
    /// A requisite the form requires is absent.
    #[error("mandatory requisite {0} is missing")]
    MissingRequisite(u16),
    /// Tag 1040 disagrees with the FD number of the container header.
    #[error("FD number {document} in tag 1040 differs from {container} in the container header")]
    FdMismatch {
        /// Container header FD.
        container: u32,
        /// Tag 1040.
        document: u32,
    },
    /// Tag 1041 names another FN than the container header (both are inside what the FN
    /// signed, so this is a property of the document).
    #[error("FN number in tag 1041 differs from the container's")]
    FnMismatch,
}

impl FfdError {
    /// A stable, bounded identifier (usable as a metric label and in logs and APIs).
    pub fn code(&self) -> &'static str {
        match self {
            Self::TruncatedHeader(_) => "truncated_header",
            Self::BadSignature(_) => "bad_signature",
            Self::UnsupportedSessionVersion(_) => "bad_session_version",
            Self::BadFlags(_) => "bad_flags",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::SessionCrcMismatch { .. } => "session_crc_mismatch",
            Self::UnsupportedChannel => "unsupported_channel",
            Self::ContainerTooShort(_) => "container_too_short",
            Self::ContainerLengthMismatch { .. } => "container_length_mismatch",
            Self::ContainerCrcMismatch { .. } => "container_crc_mismatch",
            Self::BadMessageType(_) => "bad_message_type",
            Self::UnsupportedContainerVersion(_) => "bad_container_version",
            Self::BadFnBcd(_) => "bad_fn_bcd",
            Self::SessionFnMismatch { .. } => "session_fn_mismatch",
            Self::TooManyRequisites { .. } => "too_many_requisites",
            Self::UnknownDocumentType(_) => "unknown_document_type",
            Self::EmptyDocument => "empty_document",
            Self::Flk(e) => e.code(),
        }
    }

    /// What to do about it.
    pub fn disposition(&self) -> Disposition {
        match self {
            Self::UnknownDocumentType(_) | Self::EmptyDocument => Disposition::Respond(ResponseCode::NotRecognised),
            Self::Flk(_) => Disposition::Respond(ResponseCode::FlkError),
            _ => Disposition::Close,
        }
    }
}

impl FlkError {
    /// The requisite at `pos` of `buf` runs past the end of `buf`; `base` is the offset of
    /// `buf` within the document value.
    pub(crate) fn truncated(buf: &[u8], pos: usize, base: usize) -> Self {
        let tag = buf.get(pos..pos + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        Self::Truncated { offset: base + pos, tag }
    }

    /// The tag the failure names, if any.
    pub fn tag(&self) -> Option<u16> {
        match self {
            Self::Truncated { tag, .. } => *tag,
            Self::DepthExceeded { tag, .. } => Some(*tag),
            Self::ValueTooLong { tag, .. } | Self::BadValueLength { tag, .. } => Some(*tag),
            Self::MissingRequisite(tag) => Some(*tag),
            Self::FdMismatch { .. } => Some(1040),
            Self::FnMismatch => Some(1041),
            Self::TooManyRequisites { .. } | Self::DocumentTooLarge { .. } => None,
        }
    }

    /// A stable, bounded identifier.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Truncated { .. } => "flk_truncated",
            Self::DepthExceeded { .. } => "flk_depth_exceeded",
            Self::DocumentTooLarge { .. } => "flk_document_too_large",
            Self::ValueTooLong { .. } => "flk_value_too_long",
            Self::BadValueLength { .. } => "flk_bad_value_length",
            Self::TooManyRequisites { .. } => "flk_too_many_requisites",
            Self::MissingRequisite(_) => "flk_missing_requisite",
            Self::FdMismatch { .. } => "flk_fd_mismatch",
            Self::FnMismatch => "flk_fn_mismatch_document",
        }
    }
}
