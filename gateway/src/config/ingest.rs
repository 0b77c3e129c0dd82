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
    /// A document carrying a requisite whose tag (1000–1999) the dictionary does not know:
    /// `tolerant` accepts and stores it, counts it (`ofd_gateway_unknown_tags_total`) and
    /// logs each such tag once; `strict` refuses the attempt — no acknowledgment, nothing
    /// stored, the connection closed and counted (`reason="unknown_tag"`), so the stored
    /// answer never depends on this setting (docs/verdict.md). Keep `tolerant` unless a
    /// register is known to send garbage: an operator must not block a register over a tag
    /// it does not know yet.
    pub unknown_requisite_tags: TagPolicy,
    /// The same for unknown tags of the FFD 1.2 marking range (2000–2999).
    pub unknown_marking_tags: TagPolicy,
    /// The same for unknown tags outside both ranges (below 1000, 3000 and above).
    pub unknown_other_tags: TagPolicy,
}

/// What to do with a document that carries a tag the dictionary does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TagPolicy {
    /// Accept and store the document; count and log the tag.
    #[default]
    Tolerant,
    /// Refuse this attempt (close without an answer, store nothing).
    Strict,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            tariff_grace: Duration::from_secs(3 * 86_400),
            replaced_fn_tolerance: Duration::from_secs(86_400),
            registry_refresh: Duration::from_secs(30),
            accept_opaque: true,
            unknown_requisite_tags: TagPolicy::Tolerant,
            unknown_marking_tags: TagPolicy::Tolerant,
            unknown_other_tags: TagPolicy::Tolerant,
        }
    }
}
