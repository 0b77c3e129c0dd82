//! What connection set-up produced, in the shapes the reports count: why a connect
//! failed, connects per source address, TLS handshakes by kind. A leaf: the transports
//! produce these and `stats` reports them, so neither has to import the other.

use serde::Serialize;

/// Why a connection could not be established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectErrorKind {
    /// ECONNREFUSED: nothing listens (or the backlog is full).
    Refused,
    /// EADDRNOTAVAIL / EADDRINUSE: out of source ports for this address.
    AddrNotAvailable,
    /// EMFILE / ENFILE: out of file descriptors.
    FdLimit,
    /// No answer within `--connect-timeout`.
    Timeout,
    /// TLS or QUIC handshake failed (certificate, ALPN, protocol).
    Handshake,
    /// Anything else.
    Other,
}

impl ConnectErrorKind {
    /// Every kind.
    pub const ALL: [ConnectErrorKind; 6] =
        [Self::Refused, Self::AddrNotAvailable, Self::FdLimit, Self::Timeout, Self::Handshake, Self::Other];

    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::AddrNotAvailable => "addr_not_available",
            Self::FdLimit => "fd_limit",
            Self::Timeout => "timeout",
            Self::Handshake => "handshake",
            Self::Other => "other",
        }
    }

    /// Index into counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// From an I/O error of `connect()`.
    pub fn from_io(e: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::ConnectionRefused => Self::Refused,
            K::AddrNotAvailable | K::AddrInUse => Self::AddrNotAvailable,
            K::TimedOut => Self::Timeout,
            _ => match e.raw_os_error() {
                Some(libc::EMFILE | libc::ENFILE) => Self::FdLimit,
                _ => Self::Other,
            },
        }
    }
}

/// Connects per source address.
#[derive(Debug, Clone, Serialize)]
pub struct SourceStat {
    /// Address (`"auto"` when the kernel chooses).
    pub ip: String,
    /// Connections established from it.
    pub connects: u64,
    /// Failed attempts from it.
    pub failures: u64,
}

/// Handshakes made by a TLS connector, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HandshakeStats {
    /// Full handshakes (certificate signed and verified, key exchange).
    pub full: u64,
    /// Resumed from a ticket (TLS 1.3 PSK with a fresh key exchange; no certificate).
    pub resumed: u64,
}
