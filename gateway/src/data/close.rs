//! Why a connection ended. Every close has exactly one reason, and every reason is a
//! bounded metric label.

use crate::data::registry::Refusal;

/// Transport of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Plain TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// A QUIC connection (its streams carry exchanges).
    Quic,
}

impl Transport {
    /// Every transport.
    pub const ALL: [Transport; 3] = [Transport::Tcp, Transport::Tls, Transport::Quic];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Quic => "quic",
        }
    }
}

/// The reason a connection (or QUIC stream) was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The register closed after at least one exchange.
    ClientClosed,
    /// The register connected and closed without sending anything (connectivity check).
    Probe,
    /// No message started within the idle timeout.
    IdleTimeout,
    /// A message did not arrive whole within the frame timeout (slow client).
    FrameTimeout,
    /// The connection ended in the middle of a message.
    Truncated,
    /// A reply could not be written in time.
    WriteTimeout,
    /// A socket error.
    IoError,
    /// A malformed message (see the protocol-error counter for the code).
    Protocol,
    /// The document was refused: unknown FN, suspended register, expired tariff, replaced
    /// FN.
    Refused(Refusal),
    /// Storage failed: nothing acknowledged, the register will retry.
    StorageError,
    /// Storage did not confirm the durable write in time: nothing acknowledged.
    StorageTimeout,
    /// Closed during graceful shutdown.
    Shutdown,
    /// The TLS/QUIC handshake did not finish in time.
    HandshakeTimeout,
    /// The TLS/QUIC handshake failed.
    HandshakeFailed,
    /// Refused at accept: too many connections.
    Shed,
}

impl CloseReason {
    /// Every reason (refusals included), for creating the metric series up front.
    pub const ALL: [CloseReason; 18] = [
        Self::ClientClosed,
        Self::Probe,
        Self::IdleTimeout,
        Self::FrameTimeout,
        Self::Truncated,
        Self::WriteTimeout,
        Self::IoError,
        Self::Protocol,
        Self::Refused(Refusal::UnknownFn),
        Self::Refused(Refusal::Suspended),
        Self::Refused(Refusal::TariffExpired),
        Self::Refused(Refusal::FnReplaced),
        Self::StorageError,
        Self::StorageTimeout,
        Self::Shutdown,
        Self::HandshakeTimeout,
        Self::HandshakeFailed,
        Self::Shed,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientClosed => "client_closed",
            Self::Probe => "probe",
            Self::IdleTimeout => "idle_timeout",
            Self::FrameTimeout => "frame_timeout",
            Self::Truncated => "truncated",
            Self::WriteTimeout => "write_timeout",
            Self::IoError => "io_error",
            Self::Protocol => "protocol_error",
            Self::Refused(r) => r.as_str(),
            Self::StorageError => "storage_error",
            Self::StorageTimeout => "storage_timeout",
            Self::Shutdown => "shutdown",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::HandshakeFailed => "handshake_failed",
            Self::Shed => "shed_connections",
        }
    }
}
