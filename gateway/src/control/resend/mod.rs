//! Resend jobs: an admin selects documents — one register, one FN, or every register of
//! an owner INN; a receive-time range; optionally form codes — and they are delivered to
//! the FNS again, marked with `X-Resend-Job: <id>` (same body, same idempotency key).
//!
//! A job is persisted ([`ResendJob`]) and run by one node at a time (lease
//! `resend-runner`, see [`runner`]) in two passes over the selection: a counting pass
//! (so `selected` is a true total and progress can be shown as a fraction) and a delivery
//! pass. After every page the runner persists the counters and a cursor, so a job resumes
//! after a restart where it stood (the page in progress at a crash is delivered again:
//! delivery is at least once). Cancellation is honoured between documents.
//!
//! The end of the range is clamped to the creation time: documents are received with
//! the current time, so the selection cannot grow once the job exists.

pub mod runner;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use storage::model::{JobState, ResendJob, ResendSelector};
use storage::{Store, StoreError, Timestamp};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

pub use runner::Runner;

use crate::state::Shared;

/// Why a job operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// No such job.
    #[error("resend job {0} not found")]
    NotFound(Uuid),
    /// The selector is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The job is already finished.
    #[error("resend job {0} is already {1}")]
    Finished(Uuid, &'static str),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Lowercase name of a job state.
pub fn state_name(s: JobState) -> &'static str {
    match s {
        JobState::Pending => "pending",
        JobState::Running => "running",
        JobState::Completed => "completed",
        JobState::Cancelled => "cancelled",
        JobState::Failed => "failed",
    }
}

/// Checks a selector: exactly one of register, FN and owner INN; `from < to`; form codes
/// among the known ones.
pub fn validate_selector(sel: &ResendSelector) -> Result<(), String> {
    let sources =
        usize::from(sel.rnm.is_some()) + usize::from(sel.fn_number.is_some()) + usize::from(sel.owner_inn.is_some());
    if sources != 1 {
        return Err(
            "selector: give exactly one of a register (rnm), an FN (fn_number) or an owner INN (owner_inn)".into()
        );
    }
    if sel.from >= sel.to {
        return Err(format!("selector: from ({}) must be before to ({})", sel.from, sel.to));
    }
    for t in &sel.types {
        if ffd::tags::doc_type(*t).is_none() {
            return Err(format!("selector.types: {t} is not a known form code"));
        }
    }
    Ok(())
}

/// Validates and persists a new pending job (the runner picks it up within its poll
/// interval).
pub async fn create_job(
    store: &dyn Store,
    mut selector: ResendSelector,
    created_by: &str,
) -> Result<ResendJob, JobError> {
    validate_selector(&selector).map_err(JobError::Invalid)?;
    let now = Timestamp::now();
    if selector.to > now {
        selector.to = now;
        if selector.from >= selector.to {
            return Err(JobError::Invalid("selector: the range starts in the future (nothing can be selected)".into()));
        }
    }
    selector.types.sort_unstable();
    selector.types.dedup();
    let job = ResendJob {
        id: Uuid::now_v7(),
        selector,
        state: JobState::Pending,
        created_by: created_by.to_owned(),
        created_at: now,
        updated_at: now,
        finished_at: None,
        selected: 0,
        selection_complete: false,
        delivered: 0,
        failed: 0,
        cursor: None,
        error: None,
    };
    store.put_job(&job).await?;
    tracing::info!(job = %job.id, created_by, "resend job created");
    Ok(job)
}

fn local_runs() -> &'static Mutex<HashMap<Uuid, CancellationToken>> {
    static RUNS: OnceLock<Mutex<HashMap<Uuid, CancellationToken>>> = OnceLock::new();
    RUNS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Registers a job being run in this process; its token fires on cancellation.
pub(crate) fn register_run(id: Uuid) -> CancellationToken {
    let token = CancellationToken::new();
    if let Ok(mut m) = local_runs().lock() {
        m.insert(id, token.clone());
    }
    token
}

/// Forgets a job run in this process.
pub(crate) fn unregister_run(id: Uuid) {
    if let Ok(mut m) = local_runs().lock() {
        m.remove(&id);
    }
}

fn running_here(id: Uuid) -> Option<CancellationToken> {
    local_runs().lock().ok().and_then(|m| m.get(&id).cloned())
}

/// Cancels a job: persists `cancelled` and stops the run at once if it is in this
/// process (on another node, the runner notices at its next page). Finished jobs cannot
/// be cancelled.
pub async fn cancel_job(store: &dyn Store, id: Uuid) -> Result<ResendJob, JobError> {
    let mut job = store.get_job(&id).await?.ok_or(JobError::NotFound(id))?;
    if job.state.is_terminal() {
        return Err(JobError::Finished(id, state_name(job.state)));
    }
    let now = Timestamp::now();
    job.state = JobState::Cancelled;
    job.finished_at = Some(now);
    job.updated_at = now;
    store.put_job(&job).await?;
    if let Some(token) = running_here(id) {
        token.cancel();
        // The runner records its last progress with the cancelled state; wait for it so
        // that the answer shows the final counters.
        for _ in 0..100 {
            if running_here(id).is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut current = store.get_job(&id).await?.ok_or(JobError::NotFound(id))?;
    if current.state != JobState::Cancelled {
        // A progress write raced with ours: assert the cancellation again.
        current.state = JobState::Cancelled;
        current.finished_at = Some(now);
        store.put_job(&current).await?;
    }
    metrics::counter!(crate::metrics::RESEND_JOBS, "state" => "cancelled").increment(1);
    tracing::info!(job = %id, "resend job cancelled");
    Ok(current)
}

/// Spawns the job runner.
pub fn spawn(shared: &Shared, tasks: &TaskTracker, stop: &CancellationToken) -> anyhow::Result<()> {
    let client = match shared.config.fns_url() {
        Some(url) => {
            Some(crate::control::fns::FnsClient::new(url, shared.config.fns.timeout, shared.config.resend.concurrency)?)
        }
        None => None,
    };
    let runner = Runner::new(shared.store.clone(), client, shared.config.resend.clone(), shared.node_id.clone());
    tasks.spawn(runner.run(stop.clone()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::Inn;

    fn sel() -> ResendSelector {
        ResendSelector {
            rnm: None,
            fn_number: None,
            owner_inn: Some(Inn::parse("7702203276").expect("inn")),
            from: Timestamp(0),
            to: Timestamp(1000),
            types: vec![],
        }
    }

    #[test]
    fn selectors() {
        assert!(validate_selector(&sel()).is_ok());
        let mut s = sel();
        s.owner_inn = None;
        assert!(validate_selector(&s).is_err(), "no source");
        let mut s = sel();
        s.fn_number = Some(ffd::FnNumber::parse_strict("9999078900005488").expect("fn"));
        assert!(validate_selector(&s).is_err(), "two sources");
        let mut s = sel();
        s.to = Timestamp(0);
        assert!(validate_selector(&s).is_err(), "empty range");
        let mut s = sel();
        s.types = vec![3, 99];
        assert!(validate_selector(&s).expect_err("99").contains("99"));
    }
}
