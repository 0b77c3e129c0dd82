//! `[admin]` — admin API authentication, TLS and the limit on failed authentications.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ClientAuth;

/// Admin API authentication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Named tokens. Secrets are given as their SHA-256 (hex) so the file holds no
    /// secret: `printf %s "$TOKEN" | sha256sum`.
    pub tokens: Vec<TokenConfig>,
    /// With no token configured at all, create `<data_dir>/admin-token` (mode 0600) at
    /// first start so that `adminctl` works on a developer machine with no set-up.
    pub dev_token: bool,
    /// Serve the admin API over TLS (https), with the certificate of the registers' TLS
    /// listener (`[tls] cert`/`key`, or the development certificate in
    /// `<data_dir>/tls/dev-cert.pem`). Off: plain HTTP, for loopback only.
    pub tls: bool,
    /// PEM CA bundle for admin client certificates (with `tls = true`); with it set,
    /// `client_auth` decides. Tokens are still required.
    pub client_ca: Option<PathBuf>,
    /// `none` (default), `optional` or `required` client certificates on the admin API.
    pub client_auth: ClientAuth,
    /// Failed authentications allowed per source address within `auth_failure_window`;
    /// past it, requests from that address are refused with 429 until the window ends
    /// (counted in `ofd_gateway_admin_auth_failures_total{result="limited"}`). 0: no limit.
    pub max_auth_failures: u32,
    /// The window of `max_auth_failures`.
    #[serde(with = "super::values::duration")]
    #[schemars(with = "String")]
    pub auth_failure_window: Duration,
}

impl AdminConfig {
    /// Checks the fields that depend on each other.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.tls && (self.client_ca.is_some() || self.client_auth != ClientAuth::None) {
            return Err(("admin.client_auth", "client certificates need admin.tls = true".into()));
        }
        if self.client_auth != ClientAuth::None && self.client_ca.is_none() {
            return Err(("admin.client_ca", "is required when admin.client_auth is optional or required".into()));
        }
        if self.max_auth_failures > 0 && self.auth_failure_window.is_zero() {
            return Err(("admin.auth_failure_window", "must be greater than zero".into()));
        }
        Ok(())
    }
}

/// One admin token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it (recorded in the audit log).
    pub name: String,
    /// SHA-256 of the token, hex.
    pub sha256: String,
    /// `admin` or `viewer`.
    pub role: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            dev_token: true,
            tls: false,
            client_ca: None,
            client_auth: ClientAuth::None,
            max_auth_failures: 20,
            auth_failure_window: Duration::from_secs(60),
        }
    }
}
