//! The resend job runner (lease `resend-runner`): runs pending and interrupted jobs, one
//! at a time, oldest first.
//!
//! The persisted cursor says which pass (count or deliver), which register (owner-INN
//! jobs walk the owner's registers in RNM order) and which store page comes next. After
//! each page the counters and the cursor are written together, so a restart resumes at
//! the page boundary with counters that match it. If a whole page fails (the endpoint is
//! down), nothing is counted, the error is shown on the job, and the page is tried again
//! later: an outage pauses a job instead of failing every document.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use storage::model::{DocumentRecord, JobState, ResendJob, ResendSelector};
use storage::{Page, PageRequest, RegisterFilter, Rnm, Store, StoreError, Timestamp};
use tokio_util::sync::CancellationToken;

use super::{register_run, state_name, unregister_run};
use crate::config::ResendConfig;
use crate::control::fns::{FnsClient, backoff};
use crate::metrics as m;

/// The runner lease.
pub const LEASE: &str = "resend-runner";

/// Which pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Pass {
    /// Counting the selection.
    #[default]
    Count,
    /// Delivering it.
    Deliver,
}

/// Where a job stands (persisted as JSON in `ResendJob::cursor`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    pass: Pass,
    /// Owner-INN jobs: the register being walked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    register: Option<Rnm>,
    /// The store's page cursor within the current source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every selected document was handled.
    Completed,
    /// Cancelled by an admin.
    Cancelled,
    /// The node is stopping, or lost the lease: the job stays running for whoever
    /// resumes it.
    Interrupted,
    /// Failed for good (the selection could not be read).
    Failed,
}

enum Stop {
    Cancelled,
    Interrupted,
}

/// Runs resend jobs.
pub struct Runner {
    store: Arc<dyn Store>,
    client: Option<FnsClient>,
    cfg: ResendConfig,
    node: String,
    lease_renewed: Option<Instant>,
}

impl Runner {
    /// A runner; without a client (no `[fns] url`) jobs wait.
    pub fn new(store: Arc<dyn Store>, client: Option<FnsClient>, cfg: ResendConfig, node: String) -> Self {
        Self { store, client, cfg, node, lease_renewed: None }
    }

    fn renew_every(&self) -> Duration {
        (self.cfg.lease_ttl / 3).max(Duration::from_millis(10))
    }

    async fn lease(&mut self) -> bool {
        if self.lease_renewed.is_some_and(|t| t.elapsed() < self.renew_every()) {
            return true;
        }
        let held = match self.store.try_lease(LEASE, &self.node, self.cfg.lease_ttl).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "renewing the resend runner lease");
                false
            }
        };
        self.lease_renewed = held.then(Instant::now);
        held
    }

    /// Runs until `stop`.
    pub async fn run(mut self, stop: CancellationToken) {
        if self.client.is_none() {
            tracing::info!("resend jobs wait: FNS forwarding is off ([fns] url unset)");
        }
        loop {
            if self.client.is_some() && self.lease().await {
                match self.runnable().await {
                    Ok(jobs) => {
                        for job in jobs {
                            if stop.is_cancelled() {
                                break;
                            }
                            let id = job.id;
                            let end = self.run_job(job, &stop).await;
                            tracing::info!(job = %id, ?end, "resend job run ended");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "listing resend jobs"),
                }
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(self.cfg.poll_interval.min(self.renew_every())) => {}
            }
        }
        if self.lease_renewed.is_some() {
            let _ = self.store.release_lease(LEASE, &self.node).await;
        }
    }

    /// Pending and running jobs, oldest first.
    async fn runnable(&self) -> Result<Vec<ResendJob>, StoreError> {
        let mut out = Vec::new();
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let p = self.store.list_jobs(&[JobState::Pending, JobState::Running], page.clone()).await?;
            out.extend(p.items);
            match p.next {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        out.sort_by_key(|j| (j.created_at, j.id));
        Ok(out)
    }

    /// Runs (or resumes) one job until it completes, is cancelled, or the node stops.
    pub async fn run_job(&mut self, job: ResendJob, stop: &CancellationToken) -> RunEnd {
        let id = job.id;
        let cancel = register_run(id);
        let end = self.drive(job, stop, &cancel).await;
        unregister_run(id);
        end
    }

    async fn drive(&mut self, mut job: ResendJob, stop: &CancellationToken, cancel: &CancellationToken) -> RunEnd {
        let Some(client) = self.client.clone() else {
            return RunEnd::Interrupted;
        };
        let mut cursor: Cursor = match job.cursor.as_deref().map(serde_json::from_str) {
            None => Cursor::default(),
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                let msg = format!("unreadable cursor {:?}: {e}", job.cursor);
                return self.fail(job, msg).await;
            }
        };
        if job.state == JobState::Pending {
            job.state = JobState::Running;
            match self.persist(&mut job, &cursor).await {
                Ok(None) => {}
                Ok(Some(stop)) => return self.ended(stop),
                Err(e) => {
                    tracing::warn!(job = %job.id, error = %e, "starting a resend job");
                    return RunEnd::Interrupted;
                }
            }
            tracing::info!(job = %job.id, "resend job started");
        }
        // Owner-INN jobs walk the owner's registers in RNM order.
        let registers = match self.sources(&job.selector).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(job = %job.id, error = %e, "listing the registers of a resend job");
                return RunEnd::Interrupted;
            }
        };
        if job.selector.owner_inn.is_some() && cursor.register.is_none() {
            cursor.register = registers.first().cloned();
        }
        let mut outage_pause = self.cfg.retry_initial;
        loop {
            if cancel.is_cancelled() {
                return self.finish_cancelled(job, &cursor).await;
            }
            if stop.is_cancelled() || !self.lease().await {
                return RunEnd::Interrupted;
            }
            // Owner-INN job whose owner has no (more) registers: the pass is over.
            let source_done = job.selector.owner_inn.is_some() && cursor.register.is_none();
            let page = if source_done {
                Page { items: Vec::new(), next: None }
            } else {
                match self.read_page(&job.selector, &cursor).await {
                    Ok(p) => p,
                    Err(StoreError::Invalid(e)) => {
                        return self.fail(job, format!("reading the selection: {e}")).await;
                    }
                    Err(e) => {
                        tracing::warn!(job = %job.id, error = %e, "reading a resend page; retrying");
                        pause(stop, cancel, outage_pause).await;
                        continue;
                    }
                }
            };
            let selected: Vec<DocumentRecord> = page.items.into_iter().filter(|d| matches(&job.selector, d)).collect();
            match cursor.pass {
                Pass::Count => job.selected += selected.len() as u64,
                Pass::Deliver => {
                    let (delivered, failed, last_error, interrupted) =
                        self.deliver(&client, &job, selected, stop, cancel).await;
                    if interrupted {
                        // Counters for a partial page would not match the cursor: the
                        // page is done again on resume (at least once).
                        if cancel.is_cancelled() {
                            job.delivered += delivered;
                            job.failed += failed;
                            return self.finish_cancelled(job, &cursor).await;
                        }
                        return RunEnd::Interrupted;
                    }
                    if delivered == 0 && failed > 0 {
                        // The endpoint looks down: pause the job, keep the cursor.
                        job.error = Some(format!(
                            "FNS endpoint failing ({}); the page is retried",
                            last_error.unwrap_or_default()
                        ));
                        if let Ok(Some(s)) = self.persist(&mut job, &cursor).await {
                            return self.ended(s);
                        }
                        pause(stop, cancel, outage_pause).await;
                        outage_pause = (outage_pause * 2).min(Duration::from_secs(30));
                        continue;
                    }
                    outage_pause = self.cfg.retry_initial;
                    job.error = None;
                    job.delivered += delivered;
                    job.failed += failed;
                    job.selected = job.selected.max(job.delivered + job.failed);
                }
            }
            // Advance the cursor.
            cursor.page = page.next;
            let mut finished = false;
            if cursor.page.is_none() {
                let next_register = cursor
                    .register
                    .as_ref()
                    .and_then(|cur| registers.iter().find(|r| r.as_str() > cur.as_str()).cloned());
                if next_register.is_some() {
                    cursor.register = next_register;
                } else {
                    match cursor.pass {
                        Pass::Count => {
                            job.selection_complete = true;
                            cursor = Cursor {
                                pass: Pass::Deliver,
                                register: registers.first().cloned().filter(|_| job.selector.owner_inn.is_some()),
                                page: None,
                            };
                            tracing::info!(job = %job.id, selected = job.selected, "resend selection counted");
                        }
                        Pass::Deliver => finished = true,
                    }
                }
            }
            if finished {
                job.state = JobState::Completed;
                job.finished_at = Some(Timestamp::now());
                job.cursor = None;
            }
            match self.persist(&mut job, &cursor).await {
                Ok(None) => {}
                Ok(Some(s)) => return self.ended(s),
                Err(e) => {
                    tracing::warn!(job = %job.id, error = %e, "persisting resend progress");
                    return RunEnd::Interrupted;
                }
            }
            if finished {
                metrics::counter!(m::RESEND_JOBS, "state" => "completed").increment(1);
                tracing::info!(job = %job.id, selected = job.selected, delivered = job.delivered, failed = job.failed, "resend job completed");
                return RunEnd::Completed;
            }
        }
    }

    fn ended(&self, s: Stop) -> RunEnd {
        match s {
            Stop::Cancelled => RunEnd::Cancelled,
            Stop::Interrupted => RunEnd::Interrupted,
        }
    }

    /// Writes the job with `cursor` unless it was cancelled or finished meanwhile (then
    /// its stored state wins and the progress is written under it), or the lease is gone.
    async fn persist(&mut self, job: &mut ResendJob, cursor: &Cursor) -> Result<Option<Stop>, StoreError> {
        if !self.lease().await {
            return Ok(Some(Stop::Interrupted));
        }
        if job.state != JobState::Completed {
            job.cursor = Some(serde_json::to_string(cursor).unwrap_or_default());
        }
        job.updated_at = Timestamp::now();
        let stored = self.store.get_job(&job.id).await?;
        match stored {
            None => return Ok(Some(Stop::Cancelled)), // deleted
            Some(s) if s.state.is_terminal() => {
                job.state = s.state;
                job.finished_at = s.finished_at;
                self.store.put_job(job).await?;
                return Ok(Some(Stop::Cancelled));
            }
            Some(_) => {}
        }
        self.store.put_job(job).await?;
        Ok(None)
    }

    async fn finish_cancelled(&mut self, mut job: ResendJob, cursor: &Cursor) -> RunEnd {
        job.state = JobState::Cancelled;
        job.cursor = Some(serde_json::to_string(cursor).unwrap_or_default());
        job.updated_at = Timestamp::now();
        if job.finished_at.is_none() {
            job.finished_at = Some(job.updated_at);
        }
        if let Err(e) = self.store.put_job(&job).await {
            tracing::warn!(job = %job.id, error = %e, "recording a cancelled resend job");
        }
        tracing::info!(job = %job.id, delivered = job.delivered, "resend job stopped: cancelled");
        RunEnd::Cancelled
    }

    async fn fail(&mut self, mut job: ResendJob, error: String) -> RunEnd {
        tracing::warn!(job = %job.id, %error, "resend job failed");
        job.state = JobState::Failed;
        job.error = Some(error);
        job.finished_at = Some(Timestamp::now());
        job.updated_at = Timestamp::now();
        if let Err(e) = self.store.put_job(&job).await {
            tracing::warn!(job = %job.id, error = %e, "recording a failed resend job");
        }
        metrics::counter!(m::RESEND_JOBS, "state" => state_name(JobState::Failed)).increment(1);
        RunEnd::Failed
    }

    /// The registers an owner-INN job walks (empty for other selectors).
    async fn sources(&self, sel: &ResendSelector) -> Result<Vec<Rnm>, StoreError> {
        let Some(inn) = &sel.owner_inn else {
            return Ok(Vec::new());
        };
        let filter = RegisterFilter { owner_inn: Some(inn.clone()), ..RegisterFilter::default() };
        let mut out = Vec::new();
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let p = self.store.list_registers(&filter, page.clone()).await?;
            out.extend(p.items.into_iter().map(|r| r.rnm));
            match p.next {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(out)
    }

    async fn read_page(&self, sel: &ResendSelector, cursor: &Cursor) -> Result<Page<DocumentRecord>, StoreError> {
        let page = PageRequest { limit: self.cfg.page_size, cursor: cursor.page.clone() };
        if let Some(f) = &sel.fn_number {
            return self.store.documents_by_fn(f, 0..=u32::MAX, page).await;
        }
        let rnm = sel
            .rnm
            .as_ref()
            .or(cursor.register.as_ref())
            .ok_or_else(|| StoreError::Invalid("no register to read".into()))?;
        self.store.documents_by_register(rnm, sel.from, sel.to, page).await
    }

    /// Delivers a page's documents; returns (delivered, failed, last error, interrupted).
    async fn deliver(
        &self,
        client: &FnsClient,
        job: &ResendJob,
        docs: Vec<DocumentRecord>,
        stop: &CancellationToken,
        cancel: &CancellationToken,
    ) -> (u64, u64, Option<String>, bool) {
        let id = job.id;
        let attempts = self.cfg.max_attempts.max(1);
        let results: Vec<Option<Result<(), String>>> = futures::stream::iter(docs)
            .map(|doc| async move {
                let mut last = String::new();
                for attempt in 0..attempts {
                    if stop.is_cancelled() || cancel.is_cancelled() {
                        return None;
                    }
                    match client.deliver(&doc, Some(id)).await {
                        Ok(()) => {
                            metrics::counter!(m::RESEND_DOCUMENTS, "result" => "delivered").increment(1);
                            return Some(Ok(()));
                        }
                        Err(e) => {
                            last = e.to_string();
                            if attempt + 1 < attempts {
                                let d = backoff(self.cfg.retry_initial, Duration::from_secs(30), attempt);
                                if pause(stop, cancel, d).await {
                                    return None;
                                }
                            }
                        }
                    }
                }
                metrics::counter!(m::RESEND_DOCUMENTS, "result" => "failed").increment(1);
                Some(Err(last))
            })
            .buffer_unordered(self.cfg.concurrency.max(1))
            .collect()
            .await;
        let mut delivered = 0;
        let mut failed = 0;
        let mut last_error = None;
        let mut interrupted = false;
        for r in results {
            match r {
                Some(Ok(())) => delivered += 1,
                Some(Err(e)) => {
                    failed += 1;
                    last_error = Some(e);
                }
                None => interrupted = true,
            }
        }
        (delivered, failed, last_error, interrupted)
    }
}

/// Whether a document read from the source belongs to the selection (the FN source
/// cannot filter by time, and no source filters by form code).
fn matches(sel: &ResendSelector, d: &DocumentRecord) -> bool {
    d.received_at >= sel.from && d.received_at < sel.to && (sel.types.is_empty() || sel.types.contains(&d.doc_type))
}

/// Sleeps `d`; true if stopped or cancelled meanwhile.
async fn pause(stop: &CancellationToken, cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        () = stop.cancelled() => true,
        () = cancel.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}
