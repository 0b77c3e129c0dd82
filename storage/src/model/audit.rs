//! The audit log of admin actions.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::Timestamp;

/// One admin action, recorded before the response is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Id (time-ordered).
    pub id: Uuid,
    /// When.
    pub at: Timestamp,
    /// Who (token name).
    pub actor: String,
    /// What, e.g. `register.suspend`.
    pub action: String,
    /// On what, e.g. an RNM.
    pub target: String,
    /// State before.
    pub before: Option<serde_json::Value>,
    /// State after.
    pub after: Option<serde_json::Value>,
    /// From where (peer address).
    pub source: Option<String>,
}
