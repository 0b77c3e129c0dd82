//! The local FNS receiver: the other end of the forwarder, for demos and tests (the real
//! FNS channel is outside this project). Run it as the `fns-receiver` binary.
//!
//! * `POST /documents` (or `POST /`): one document as the gateway delivers it. Deduplicated
//!   by the `Idempotency-Key` header (`<FN>:<FD>`; taken from the body's `fn`/`fd` when the
//!   header is missing). Deliveries carrying `X-Resend-Job` are counted as resends, not as
//!   duplicates. Answers 200 (also for a duplicate: it is already here), 400 for a body
//!   that is not a document, 503 for an injected failure.
//! * `POST /alerts`: a webhook sink for alert notifications (counted, kept, listed by
//!   `GET /alerts`), so one demo process shows both channels.
//! * `GET /stats`: counters as JSON ([`Stats`]).
//! * `GET /documents/{fn}/{fd}`: what arrived for one document ([`DocumentView`]);
//!   `GET /documents?limit=N`: the keys in arrival order.
//! * Failure injection: the first `fail_first` POSTs, then a random `fail_ratio` of them,
//!   are answered 503 and not recorded.
//! * `data`: every recorded event is appended to this JSON-lines file and replayed at
//!   start, so deduplication and counters survive a restart of the receiver.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use storage::Timestamp;

use super::client::{IDEMPOTENCY_KEY, RESEND_JOB};

/// Header with which alert notifications identify themselves (webhook deduplication).
pub const NOTIFICATION_ID: &str = "X-Alert-Notification";

/// Options of a receiver.
#[derive(Debug, Clone, Default)]
pub struct ReceiverOptions {
    /// Answer the first N POSTs with 503.
    pub fail_first: u64,
    /// After those, answer this fraction of POSTs (0.0–1.0) with 503, at random.
    pub fail_ratio: f64,
    /// JSON-lines file of received events (appended; replayed at start).
    pub data: Option<PathBuf>,
}

/// Counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// POST requests of any kind, failed ones included.
    pub requests: u64,
    /// Document deliveries recorded (first, duplicate and resend).
    pub received: u64,
    /// Distinct documents (by idempotency key).
    pub unique: u64,
    /// Deliveries of a document already received that were not resends (at-least-once
    /// repeats: 0 under normal operation).
    pub duplicates: u64,
    /// Deliveries marked as resends (`X-Resend-Job`).
    pub resends: u64,
    /// Distinct documents received at least once as a resend.
    pub resent_unique: u64,
    /// POSTs answered 503 by failure injection.
    pub injected_failures: u64,
    /// POSTs that were not a document (400).
    pub rejected: u64,
    /// Alert notifications received.
    pub alerts: u64,
    /// Alert notifications received again (same notification id).
    pub alert_duplicates: u64,
}

/// What arrived for one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentView {
    /// `<FN>:<FD>`.
    pub key: String,
    /// First arrival.
    pub first_received_at: String,
    /// Deliveries that were not resends.
    pub deliveries: u64,
    /// Resend deliveries.
    pub resends: u64,
    /// Job id of the last resend.
    pub last_resend_job: Option<String>,
    /// The body of the first arrival.
    pub body: Value,
}

/// One recorded event (the data file holds one per line).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Event {
    Document { key: String, at: String, resend_job: Option<String>, body: Value },
    Alert { id: Option<String>, at: String, body: Value },
}

#[derive(Default)]
struct Inner {
    stats: Stats,
    docs: HashMap<String, DocumentView>,
    order: Vec<String>,
    alerts: Vec<Value>,
    alert_ids: std::collections::HashSet<String>,
    file: Option<BufWriter<File>>,
}

impl Inner {
    fn apply(&mut self, ev: &Event) {
        match ev {
            Event::Document { key, at, resend_job, body } => {
                self.stats.received += 1;
                let resend = resend_job.is_some();
                if resend {
                    self.stats.resends += 1;
                }
                match self.docs.get_mut(key) {
                    Some(d) => {
                        if resend {
                            if d.resends == 0 {
                                self.stats.resent_unique += 1;
                            }
                            d.resends += 1;
                            d.last_resend_job.clone_from(resend_job);
                        } else {
                            d.deliveries += 1;
                            self.stats.duplicates += 1;
                        }
                    }
                    None => {
                        self.stats.unique += 1;
                        if resend {
                            self.stats.resent_unique += 1;
                        }
                        self.order.push(key.clone());
                        self.docs.insert(
                            key.clone(),
                            DocumentView {
                                key: key.clone(),
                                first_received_at: at.clone(),
                                deliveries: u64::from(!resend),
                                resends: u64::from(resend),
                                last_resend_job: resend_job.clone(),
                                body: body.clone(),
                            },
                        );
                    }
                }
            }
            Event::Alert { id, body, .. } => {
                if let Some(id) = id
                    && !self.alert_ids.insert(id.clone())
                {
                    self.stats.alert_duplicates += 1;
                    return;
                }
                self.stats.alerts += 1;
                self.alerts.push(body.clone());
            }
        }
    }

    fn record(&mut self, ev: Event) -> std::io::Result<()> {
        if let Some(f) = self.file.as_mut() {
            serde_json::to_writer(&mut *f, &ev)?;
            f.write_all(b"\n")?;
            f.flush()?;
        }
        self.apply(&ev);
        Ok(())
    }
}

struct Shared {
    opts: ReceiverOptions,
    inner: Mutex<Inner>,
}

/// A receiver (cheap to clone; clones share state).
#[derive(Clone)]
pub struct Receiver {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").field("opts", &self.shared.opts).finish_non_exhaustive()
    }
}

impl Receiver {
    /// A receiver; with `opts.data`, replays that file and appends to it.
    pub fn open(opts: ReceiverOptions) -> anyhow::Result<Self> {
        let mut inner = Inner::default();
        if let Some(path) = &opts.data {
            if path.exists() {
                let f = File::open(path).map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
                for (n, line) in BufReader::new(f).lines().enumerate() {
                    let line = line?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Event>(&line) {
                        Ok(ev) => inner.apply(&ev),
                        // a torn last line after a crash: ignore it
                        Err(e) => tracing::warn!(line = n + 1, error = %e, "skipping a bad line of the data file"),
                    }
                }
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
            inner.file = Some(BufWriter::new(f));
        }
        Ok(Self { shared: Arc::new(Shared { opts, inner: Mutex::new(inner) }) })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    /// What arrived for `<FN>:<FD>`.
    pub fn document(&self, key: &str) -> Option<DocumentView> {
        self.lock().docs.get(key).cloned()
    }

    /// Keys in arrival order.
    pub fn keys(&self) -> Vec<String> {
        self.lock().order.clone()
    }

    /// Alert notifications received, in arrival order.
    pub fn alerts(&self) -> Vec<Value> {
        self.lock().alerts.clone()
    }

    /// Whether this POST is to fail (and counts it).
    fn inject_failure(&self) -> bool {
        let mut inner = self.lock();
        inner.stats.requests += 1;
        let n = inner.stats.requests;
        let fail = n <= self.shared.opts.fail_first
            || (self.shared.opts.fail_ratio > 0.0
                && rand::rng().random_bool(self.shared.opts.fail_ratio.clamp(0.0, 1.0)));
        if fail {
            inner.stats.injected_failures += 1;
        }
        fail
    }

    /// The HTTP routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", post(post_document))
            .route("/documents", post(post_document).get(list_documents))
            .route("/documents/{fn_number}/{fd}", get(get_document))
            .route("/alerts", post(post_alert).get(list_alerts))
            .route("/stats", get(get_stats))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router()).with_graceful_shutdown(shutdown).await
    }

    /// Binds `addr` (port 0 for any) and serves in a background task until the returned
    /// token is cancelled (tests and embedding).
    pub async fn spawn(self, addr: SocketAddr) -> anyhow::Result<(SocketAddr, tokio_util::sync::CancellationToken)> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let stop = tokio_util::sync::CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = self.serve(listener, async move { s.cancelled().await }).await;
        });
        Ok((bound, stop))
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn injected() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "injected failure\n").into_response()
}

fn bad(rx: &Receiver, msg: String) -> Response {
    rx.lock().stats.rejected += 1;
    (StatusCode::BAD_REQUEST, Json(json!({ "error": msg }))).into_response()
}

async fn post_document(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    if rx.inject_failure() {
        return injected();
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return bad(&rx, "the body is not a JSON object".into()),
        Err(e) => return bad(&rx, format!("the body is not JSON: {e}")),
    };
    let key = header(&headers, IDEMPOTENCY_KEY).or_else(|| {
        let f = body.get("fn")?.as_str()?;
        let d = body.get("fd")?.as_u64()?;
        Some(format!("{f}:{d}"))
    });
    let Some(key) = key else {
        return bad(&rx, format!("no {IDEMPOTENCY_KEY} header and no fn/fd in the body"));
    };
    let ev = Event::Document {
        key: key.clone(),
        at: Timestamp::now().to_rfc3339(),
        resend_job: header(&headers, RESEND_JOB),
        body,
    };
    let mut inner = rx.lock();
    let duplicate = inner.docs.contains_key(&key);
    if let Err(e) = inner.record(ev) {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": format!("writing the data file: {e}") })))
            .into_response();
    }
    Json(json!({ "key": key, "duplicate": duplicate })).into_response()
}

async fn post_alert(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    if rx.inject_failure() {
        return injected();
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad(&rx, format!("the body is not JSON: {e}")),
    };
    let ev = Event::Alert { id: header(&headers, NOTIFICATION_ID), at: Timestamp::now().to_rfc3339(), body };
    let mut inner = rx.lock();
    if let Err(e) = inner.record(ev) {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": format!("writing the data file: {e}") })))
            .into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn get_stats(State(rx): State<Receiver>) -> Json<Stats> {
    Json(rx.stats())
}

async fn get_document(State(rx): State<Receiver>, Path((fn_number, fd)): Path<(String, u32)>) -> Response {
    match rx.document(&format!("{fn_number}:{fd}")) {
        Some(d) => Json(d).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({ "error": format!("document {fn_number}:{fd} has not arrived") })))
            .into_response(),
    }
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn list_documents(State(rx): State<Receiver>, Query(q): Query<Limit>) -> Json<Value> {
    let inner = rx.lock();
    let limit = q.limit.unwrap_or(100);
    let keys: Vec<&String> = inner.order.iter().rev().take(limit).collect();
    Json(json!({ "total": inner.order.len(), "newest_first": keys }))
}

async fn list_alerts(State(rx): State<Receiver>, Query(q): Query<Limit>) -> Json<Value> {
    let inner = rx.lock();
    let limit = q.limit.unwrap_or(1000);
    let skip = inner.alerts.len().saturating_sub(limit);
    Json(json!({ "total": inner.alerts.len(), "alerts": &inner.alerts[skip..] }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(key: &str, resend: Option<&str>) -> Event {
        Event::Document { key: key.into(), at: "t".into(), resend_job: resend.map(Into::into), body: json!({}) }
    }

    #[test]
    fn counts_unique_duplicates_and_resends() {
        let mut i = Inner::default();
        i.apply(&doc("a:1", None));
        i.apply(&doc("a:2", None));
        i.apply(&doc("a:1", None));
        i.apply(&doc("a:1", Some("j")));
        i.apply(&doc("a:1", Some("j")));
        i.apply(&doc("a:3", Some("j")));
        let s = &i.stats;
        assert_eq!((s.received, s.unique, s.duplicates, s.resends, s.resent_unique), (6, 3, 1, 3, 2));
        assert_eq!(i.docs["a:1"].deliveries, 2);
        assert_eq!(i.docs["a:1"].resends, 2);
    }

    #[test]
    fn data_file_is_replayed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = ReceiverOptions { data: Some(dir.path().join("rx.jsonl")), ..ReceiverOptions::default() };
        let rx = Receiver::open(opts.clone()).expect("open");
        rx.lock().record(doc("f:1", None)).expect("record");
        rx.lock().record(doc("f:1", None)).expect("record");
        drop(rx);
        let rx = Receiver::open(opts).expect("reopen");
        let s = rx.stats();
        assert_eq!((s.unique, s.duplicates), (1, 1));
    }
}
