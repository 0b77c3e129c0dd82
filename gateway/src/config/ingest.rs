//! `[ingest]` — acceptance rules.

use std::time::Duration;

use super::values::duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Acceptance rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// After `paid_until`, documents are still accepted for this long.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub tariff_grace: Duration,
    /// A replaced FN's documents are accepted if their own time (1012) is before the
    /// replacement plus this tolerance (clock skew of registers).
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub replaced_fn_tolerance: Duration,
    /// How often register changes made by other nodes are picked up.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub registry_refresh: Duration,
    /// Accept bodies that are not plaintext documents (FN encryption on): stored verbatim
    /// and acknowledged at container level.
    pub accept_opaque: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            tariff_grace: Duration::from_secs(3 * 86_400),
            replaced_fn_tolerance: Duration::from_secs(86_400),
            registry_refresh: Duration::from_secs(30),
            accept_opaque: true,
        }
    }
}
