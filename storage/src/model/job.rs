//! Resend jobs.

use ffd::FnNumber;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{Inn, Rnm, Timestamp};

/// Which documents a resend job selects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResendSelector {
    /// One register.
    pub rnm: Option<Rnm>,
    /// One FN.
    pub fn_number: Option<FnNumber>,
    /// Every register of an owner.
    pub owner_inn: Option<Inn>,
    /// Received at or after.
    pub from: Timestamp,
    /// Received before.
    pub to: Timestamp,
    /// Form codes (empty = all).
    #[serde(default)]
    pub types: Vec<u8>,
}

/// Lifecycle of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Created, not started.
    Pending,
    /// Being worked on.
    Running,
    /// Every selected document was handled.
    Completed,
    /// Stopped by an admin.
    Cancelled,
    /// Stopped by an error it could not get past.
    Failed,
}

impl JobState {
    /// Completed, cancelled or failed.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Failed)
    }
}

/// A persisted, resumable job that delivers selected documents to the FNS again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResendJob {
    /// Id (time-ordered).
    pub id: Uuid,
    /// Selection.
    pub selector: ResendSelector,
    /// State.
    pub state: JobState,
    /// Who created it.
    pub created_by: String,
    /// Created.
    pub created_at: Timestamp,
    /// Last progress.
    pub updated_at: Timestamp,
    /// Finished.
    pub finished_at: Option<Timestamp>,
    /// Documents selected so far (final once selection is complete).
    pub selected: u64,
    /// Selection finished (so `selected` is the total).
    pub selection_complete: bool,
    /// Delivered again.
    pub delivered: u64,
    /// Failed for good.
    pub failed: u64,
    /// Where to resume (opaque to everyone but the job runner).
    pub cursor: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}
