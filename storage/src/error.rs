//! Storage errors. Every variant has a stable code. For writes, any error means the
//! outcome is unknown to the caller: it must not acknowledge, and may retry (writes are
//! idempotent).

/// A storage failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A durability failure happened earlier; the store refuses all writes until restart.
    #[error("storage is poisoned after a durability failure: {0}")]
    Poisoned(String),
    /// An I/O error.
    #[error("storage I/O error: {0}")]
    Io(String),
    /// The backend did not answer in time; the write may or may not have happened.
    #[error("storage timed out (outcome unknown): {0}")]
    Timeout(String),
    /// The backend is unreachable or refuses work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A precondition failed (version mismatch, name taken, FN owned by another register).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The thing to change does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is invalid for this backend (e.g. a malformed page cursor).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A stored record could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The store was closed.
    #[error("storage is closed")]
    Closed,
}

impl StoreError {
    /// A stable, bounded identifier (metric label, API error code).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Poisoned(_) => "poisoned",
            Self::Io(_) => "io",
            Self::Timeout(_) => "timeout",
            Self::Unavailable(_) => "unavailable",
            Self::Conflict(_) => "conflict",
            Self::NotFound(_) => "not_found",
            Self::Invalid(_) => "invalid",
            Self::Corrupt(_) => "corrupt",
            Self::Closed => "closed",
        }
    }
}
