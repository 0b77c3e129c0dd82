//! `[quic]` — qUIC transport parameters.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// QUIC transport parameters, sized for small documents rather than bulk transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct QuicConfig {
    /// Concurrent bidirectional streams per connection (one per exchange).
    pub max_streams_per_connection: u32,
    /// Receive window per stream, bytes (a document is at most ~33 KiB).
    pub stream_window: u32,
    /// Receive window per connection, bytes.
    pub connection_window: u32,
    /// Use address validation (Retry) for every new connection.
    pub retry: bool,
}

impl Default for QuicConfig {
    fn default() -> Self {
        Self { max_streams_per_connection: 4, stream_window: 64 << 10, connection_window: 256 << 10, retry: false }
    }
}
