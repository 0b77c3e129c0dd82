//! `[signer]` — the acknowledgment signer.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which acknowledgment signer to use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SignerConfig {
    /// `software` (keyed MAC; the HSM integration is another implementation of the same
    /// trait).
    pub kind: String,
    /// Hex key of the software signer. Empty: a random key is created in
    /// `<data_dir>/signer.key` at first start (development).
    pub key_hex: Option<String>,
}

impl Default for SignerConfig {
    fn default() -> Self {
        Self { kind: "software".into(), key_hex: None }
    }
}
