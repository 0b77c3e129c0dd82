//! The response code (tag 1022) an acknowledgment carries. A leaf: the errors that decide
//! a code and the acknowledgment that carries it both look down at it.

/// Response code (tag 1022) of an acknowledgment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseCode {
    /// 0 — accepted.
    Accepted,
    /// 11 — incorrect document, content not recognised.
    NotRecognised,
    /// 14 — format-logic control failed.
    FlkError,
    /// Any other value seen in a decoded acknowledgment.
    Other(u8),
}

impl ResponseCode {
    /// The wire value.
    pub fn value(self) -> u8 {
        match self {
            Self::Accepted => 0,
            Self::NotRecognised => 11,
            Self::FlkError => 14,
            Self::Other(v) => v,
        }
    }

    /// From the wire value.
    pub fn from_value(v: u8) -> Self {
        match v {
            0 => Self::Accepted,
            11 => Self::NotRecognised,
            14 => Self::FlkError,
            v => Self::Other(v),
        }
    }
}
