//! The delivery request: payload and HTTP client.
//!
//! One POST per document, `Content-Type: application/json`, with
//! `Idempotency-Key: <FN>:<FD>` (a receiver deduplicates on it: delivery is at least
//! once) and, for documents sent again by a resend job, `X-Resend-Job: <job id>`. The body
//! is the same for the first delivery and for a resend:
//!
//! ```json
//! { "fn": "9999078900005488", "fd": 1, "rnm": "0000000005008570", "doc_type": 11,
//!   "received_at": "2025-01-01T10:00:00Z", "doc_time": "…", "response_code": 0,
//!   "fiscal_sign": 123456, "format": "json", "document": { "fiscalReportCorrection": {…} } }
//! ```
//!
//! A document whose container or body does not decode (encrypted, or answered with code
//! 11) has `"format": "raw"`, `"opaque": true|false` and `"raw_base64"` (the whole
//! container as received) instead of `"document"`.

use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use ffd::container::{Container, MSG_FROM_FN};
use ffd::document::Document;
use serde_json::{Value, json};
use storage::model::DocumentRecord;
use uuid::Uuid;

use crate::metrics as m;

/// Header carrying the deduplication key `<FN>:<FD>`.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Header marking a delivery made by a resend job (value: the job id).
pub const RESEND_JOB: &str = "X-Resend-Job";

/// The deduplication key of a document.
pub fn idempotency_key(doc: &DocumentRecord) -> String {
    format!("{}:{}", doc.fn_number, doc.fd)
}

/// The FNS JSON form of the document body, when it decodes (with `messageFiscalSign`
/// from the container's trailer).
fn fns_json(doc: &DocumentRecord) -> Option<Value> {
    if doc.opaque {
        return None;
    }
    let container = Container::parse(doc.raw.clone(), MSG_FROM_FN).ok()?;
    let (document, trailer) = Document::decode_lenient(&container.data(), &ffd::Limits::default()).ok()?;
    Some(ffd::json::to_fns_json_with_trailer(&document, &trailer))
}

/// The JSON body delivered for a document.
pub fn payload(doc: &DocumentRecord) -> Value {
    let mut v = json!({
        "fn": doc.fn_number.to_string(),
        "fd": doc.fd,
        "rnm": doc.rnm.as_str(),
        "doc_type": doc.doc_type,
        "ffd_version": doc.ffd_version,
        "received_at": doc.received_at.to_rfc3339(),
        "doc_time": doc.doc_time.map(|t| t.to_rfc3339()),
        "response_code": doc.response_code,
        "flk_error": doc.flk_error,
        "total": doc.total,
        "fiscal_sign": doc.fiscal_sign,
    });
    if let Value::Object(map) = &mut v {
        match fns_json(doc) {
            Some(document) => {
                map.insert("format".into(), "json".into());
                map.insert("document".into(), document);
            }
            None => {
                map.insert("format".into(), "raw".into());
                map.insert("opaque".into(), doc.opaque.into());
                map.insert("raw_base64".into(), base64::engine::general_purpose::STANDARD.encode(&doc.raw).into());
            }
        }
    }
    v
}

/// Why a delivery failed. [`SendError::label`] is a bounded metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No answer within the timeout.
    #[error("timeout")]
    Timeout,
    /// Could not connect.
    #[error("connect: {0}")]
    Connect(String),
    /// A 4xx answer (the receiver refused the document; retried all the same: a
    /// fiscal document is never dropped).
    #[error("HTTP {0}: {1}")]
    Rejected(u16, String),
    /// A 5xx or other non-2xx answer.
    #[error("HTTP {0}: {1}")]
    Unavailable(u16, String),
    /// Anything else (request build, body, protocol).
    #[error("{0}")]
    Other(String),
}

impl SendError {
    /// Bounded label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect(_) => "connect",
            Self::Rejected(..) => "rejected",
            Self::Unavailable(..) => "unavailable",
            Self::Other(_) => "error",
        }
    }

    fn from_reqwest(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else if e.is_connect() {
            Self::Connect(root_cause(e))
        } else {
            Self::Other(root_cause(e))
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Installs the process-wide rustls crypto provider (ring) once; harmless when one is
/// installed already.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client for the FNS endpoint.
#[derive(Debug, Clone)]
pub struct FnsClient {
    http: reqwest::Client,
    url: reqwest::Url,
}

impl FnsClient {
    /// A client for `url` with a per-request `timeout`, keeping up to `concurrency` idle
    /// connections.
    pub fn new(url: &str, timeout: Duration, concurrency: usize) -> anyhow::Result<Self> {
        install_crypto_provider();
        let url = reqwest::Url::parse(url.trim()).map_err(|e| anyhow::anyhow!("fns.url {url:?}: {e}"))?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(concurrency)
            .user_agent(concat!("ofd-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("building the FNS HTTP client: {e}"))?;
        Ok(Self { http, url })
    }

    /// The endpoint.
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// Delivers one document (`body` is its serialised [`payload`]); `resend` names the
    /// job for a delivery made again. `Ok` on a 2xx answer.
    pub async fn send(&self, doc: &DocumentRecord, body: Bytes, resend: Option<Uuid>) -> Result<(), SendError> {
        let started = Instant::now();
        let mut req = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_KEY, idempotency_key(doc))
            .body(body);
        if let Some(job) = resend {
            req = req.header(RESEND_JOB, job.to_string());
        }
        let result = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    Ok(())
                } else {
                    let text = resp.text().await.unwrap_or_default();
                    let text: String = text.chars().take(200).collect();
                    if status.is_client_error() {
                        Err(SendError::Rejected(status.as_u16(), text))
                    } else {
                        Err(SendError::Unavailable(status.as_u16(), text))
                    }
                }
            }
            Err(e) => Err(SendError::from_reqwest(&e)),
        };
        let kind = if resend.is_some() { "resend" } else { "forward" };
        metrics::histogram!(m::FNS_REQUEST_SECONDS, "kind" => kind).record(started.elapsed().as_secs_f64());
        result
    }

    /// Serialises the payload of `doc` and delivers it.
    pub async fn deliver(&self, doc: &DocumentRecord, resend: Option<Uuid>) -> Result<(), SendError> {
        let body = serde_json::to_vec(&payload(doc)).map_err(|e| SendError::Other(e.to_string()))?;
        self.send(doc, Bytes::from(body), resend).await
    }
}
