//! `[listen]` — listener addresses.

use super::values::Listen;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Listener addresses (`"off"` disables one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// Plain TCP, what registers in the field speak.
    pub tcp: Listen,
    /// TLS over TCP.
    pub tls: Listen,
    /// QUIC (UDP).
    pub quic: Listen,
    /// Admin HTTP API.
    pub admin: Listen,
    /// `/metrics`, `/livez`, `/readyz`.
    pub metrics: Listen,
}

fn addr(s: &str) -> Listen {
    Listen(s.parse().ok())
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            tcp: addr("127.0.0.1:7777"),
            tls: addr("127.0.0.1:7778"),
            quic: addr("127.0.0.1:7778"),
            admin: addr("127.0.0.1:8080"),
            metrics: addr("127.0.0.1:9477"),
        }
    }
}
