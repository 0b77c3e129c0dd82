//! `[tls]` — tLS for the registers' TLS and QUIC listeners.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// TLS settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain. Empty: a self-signed development certificate is generated
    /// in `<data_dir>/tls/dev-cert.pem` (and its key next to it) and its path logged.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// PEM CA bundle for register client certificates; with it set, `client_auth` decides.
    pub client_ca: Option<PathBuf>,
    /// `none` (default), `optional` or `required` client-certificate authentication.
    pub client_auth: ClientAuth,
}

/// Client-certificate policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// No client certificates.
    #[default]
    None,
    /// Verified when presented.
    Optional,
    /// Required.
    Required,
}
