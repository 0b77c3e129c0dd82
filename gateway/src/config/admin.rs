//! `[admin]` — admin API authentication.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
        Self { tokens: Vec::new(), dev_token: true }
    }
}
