//! `[limits]` — bounds on every per-connection and global resource.

use std::time::Duration;

use super::values::duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Bounds. Every per-connection resource has one, and every close has a counted reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Open TCP/TLS connections at most (0: derived from the process file limit, keeping
    /// 256 descriptors for storage, listeners and the admin plane). Past it, new
    /// connections are accepted and closed at once with reason `shed_connections`.
    pub max_connections: usize,
    /// Open QUIC connections at most (they share one UDP socket, so they are not bound by
    /// the file limit).
    pub max_quic_connections: usize,
    /// Largest session body accepted (the container); the wire field is a u16.
    pub max_body_bytes: usize,
    /// Most requisites in one document, nested ones included: a bound on the work of one
    /// document. A larger one is refused for that attempt (closed, counted
    /// `too_many_requisites`), never stored: it is this server's limit, not the format's.
    pub max_requisites: u32,
    /// Documents being written to storage at once, over all connections. When exhausted,
    /// connections stop reading (backpressure).
    pub max_inflight_documents: usize,
    /// Bytes of message buffers held at once over all connections; when exhausted,
    /// connections wait before reading a message body.
    pub max_buffered_bytes: usize,
    /// TLS/QUIC handshake deadline.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub handshake_timeout: Duration,
    /// Longest wait for the first byte of the next message.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub idle_timeout: Duration,
    /// Longest time for a whole message to arrive once its first byte has (slow clients).
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub frame_timeout: Duration,
    /// Longest time to write a reply.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub write_timeout: Duration,
    /// Longest wait for the durable write of a document; past it the connection is closed
    /// without an acknowledgment (the register retries; the write is idempotent).
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub ack_timeout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 0,
            max_quic_connections: 250_000,
            max_body_bytes: ffd::Limits::default().max_body_len,
            max_requisites: ffd::Limits::default().max_requisites,
            max_inflight_documents: 8192,
            max_buffered_bytes: 256 << 20,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            frame_timeout: Duration::from_secs(20),
            write_timeout: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(30),
        }
    }
}
