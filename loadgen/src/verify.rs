//! Acknowledgment checks. Every reply is parsed with `ffd::AckView::parse_reply` (session
//! header, its check code, container length and check code, message type 5A, form 7),
//! then compared with the request: FN in the session header, the container and tag 1041;
//! FD in the container and tag 1040; the response code in 1068/1022. A failure is counted
//! by its first failing [`MismatchKind`].

use bytes::Bytes;
use ffd::{AckView, FfdError, FnNumber};
use serde::Serialize;

/// Why a reply was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchKind {
    /// Unparsable: signature, versions, lengths, missing requisites, trailing garbage.
    Structure,
    /// Session or container check code.
    Crc,
    /// Container message type other than 5A, or a form other than 7.
    MsgType,
    /// FN differs from the request's (session header, container or 1041).
    Fn,
    /// FD differs from the request's (container or 1040).
    Fd,
    /// Response code other than the one required (0 for a valid document).
    Code,
    /// The connection ended in the middle of a reply.
    Truncated,
    /// A reply to a message that must not be answered (the gateway had to close).
    UnexpectedReply,
}

impl MismatchKind {
    /// Every kind, in report order.
    pub const ALL: [MismatchKind; 8] = [
        Self::Structure,
        Self::Crc,
        Self::MsgType,
        Self::Fn,
        Self::Fd,
        Self::Code,
        Self::Truncated,
        Self::UnexpectedReply,
    ];

    /// Stable name (JSON key, threshold name suffix).
    pub fn name(self) -> &'static str {
        match self {
            Self::Structure => "structure",
            Self::Crc => "crc",
            Self::MsgType => "msg_type",
            Self::Fn => "fn",
            Self::Fd => "fd",
            Self::Code => "code",
            Self::Truncated => "truncated",
            Self::UnexpectedReply => "unexpected_reply",
        }
    }

    /// Index into counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a reply must say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// FN of the request.
    pub fn_number: FnNumber,
    /// FD of the request.
    pub fd: u32,
    /// Required response code.
    pub code: u8,
}

/// Maps a parse failure to its kind.
pub fn classify(e: &FfdError) -> MismatchKind {
    match e {
        FfdError::SessionCrcMismatch { .. } | FfdError::ContainerCrcMismatch { .. } => MismatchKind::Crc,
        FfdError::BadMessageType(_) | FfdError::UnknownDocumentType(_) => MismatchKind::MsgType,
        _ => MismatchKind::Structure,
    }
}

/// Verifies one reply (header + container, exactly).
pub fn verify_reply(reply: Bytes, want: &Expected) -> Result<AckView, MismatchKind> {
    let (header, view) = AckView::parse_reply(reply).map_err(|e| classify(&e))?;
    if header.fn_number() != want.fn_number || view.fn_number != want.fn_number || view.doc_fn != Some(want.fn_number) {
        return Err(MismatchKind::Fn);
    }
    if view.fd != want.fd || view.doc_fd != Some(want.fd) {
        return Err(MismatchKind::Fd);
    }
    match view.code {
        Some(c) if c.value() == want.code => Ok(view),
        Some(_) => Err(MismatchKind::Code),
        None => Err(MismatchKind::Structure),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffd::ack::{AckFields, build_ack_container, wrap_reply};
    use ffd::session::SessionHeader;
    use ffd::{ResponseCode, SoftwareSigner};

    fn fnn(s: &str) -> FnNumber {
        FnNumber::parse_strict(s).expect("fn")
    }

    fn reply(fn_number: FnNumber, fd: u32, code: u8) -> Bytes {
        let fields = AckFields {
            fn_number,
            fd,
            code: ResponseCode::from_value(code),
            time: 1_750_000_000,
            ofd_inn: AckFields::pad_inn("7704358518"),
            service1: [0x10, 0x09],
        };
        let c = build_ack_container(&fields, &SoftwareSigner::new(b"k"));
        let h = SessionHeader::for_register(&fn_number, [1, 0x20], 0);
        wrap_reply(&h, &c)
    }

    #[test]
    fn kinds() {
        let f = fnn("9999000000000001");
        let want = Expected { fn_number: f, fd: 7, code: 0 };
        assert!(verify_reply(reply(f, 7, 0), &want).is_ok());
        assert_eq!(verify_reply(reply(f, 8, 0), &want).err(), Some(MismatchKind::Fd));
        assert_eq!(verify_reply(reply(fnn("9999000000000002"), 7, 0), &want).err(), Some(MismatchKind::Fn));
        assert_eq!(verify_reply(reply(f, 7, 14), &want).err(), Some(MismatchKind::Code));
        let mut bad = reply(f, 7, 0).to_vec();
        bad[33] ^= 0xFF;
        assert_eq!(verify_reply(Bytes::from(bad), &want).err(), Some(MismatchKind::Crc));
        let mut short = reply(f, 7, 0).to_vec();
        short.truncate(40);
        assert_eq!(verify_reply(Bytes::from(short), &want).err(), Some(MismatchKind::Structure));
        assert_eq!(
            verify_reply(Bytes::from_static(b"garbage garbage garbage garbage"), &want).err(),
            Some(MismatchKind::Structure)
        );
    }
}
