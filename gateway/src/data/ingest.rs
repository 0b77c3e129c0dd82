//! The ingest pipeline for one framed message with a body:
//!
//! ```text
//! inspect (ffd: the attempt — session header, container integrity,
//!          session FN vs container FN;                         ── close-class error → close
//!          then the verdict from the container alone — form, FLK)
//!   → register check (in-memory index)                        ── refused → no ack, close
//!   → build the acknowledgment (signer)                         (code 0, 11 or 14)
//!   → durable append (bounded in-flight, ack timeout)         ── error/timeout → no ack, close
//!   → reply: the new ack, or the stored one for a retransmission
//! ```
//!
//! Nothing is acknowledged unless the store returned `Durability::Durable` for it. A
//! document answered with 11 or 14 is stored too: the operator keeps everything it
//! acknowledged. What is stored is a function of the container alone; everything about
//! this attempt (envelope, register state, clock, storage) only answers or closes it
//! (docs/verdict.md).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ffd::ack::{AckFields, build_ack_container, wrap_reply};
use ffd::tags::{TagClass, tag_bucket};
use ffd::{AckSigner, Message, Summary};
use storage::model::{AppendOutcome, DocumentRecord, TelemetryRecord};
use storage::{Durability, Store, Timestamp};
use tokio::sync::Semaphore;

use crate::config::{IngestConfig, TagPolicy};
use crate::data::backlog::Backlog;
use crate::data::close::{CloseReason, Transport};
use crate::data::meters::{code_index, meters};
use crate::data::registry::{Refusal, Registry};
use crate::metrics as m;

/// The `reason` of `ofd_gateway_documents_refused_total` for an attempt refused because it
/// carries a tag the dictionary does not know and the tag's class is `strict`.
pub const UNKNOWN_TAG_REFUSAL: &str = "unknown_tag";

/// The policy for tags the dictionary does not know, per tag class
/// (`ingest.unknown_requisite_tags`, `…_marking_tags`, `…_other_tags`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnknownTagPolicy {
    /// 1000–1999.
    pub requisite: TagPolicy,
    /// 2000–2999.
    pub marking: TagPolicy,
    /// Everything else.
    pub other: TagPolicy,
}

impl UnknownTagPolicy {
    /// From the `[ingest]` section.
    pub fn from_config(c: &IngestConfig) -> Self {
        Self { requisite: c.unknown_requisite_tags, marking: c.unknown_marking_tags, other: c.unknown_other_tags }
    }

    fn of(&self, tag: u16) -> TagPolicy {
        match TagClass::of(tag) {
            TagClass::Requisite => self.requisite,
            TagClass::Marking => self.marking,
            TagClass::Other => self.other,
        }
    }
}

/// Which tag numbers have been logged as unknown: one bit per tag, 8 KiB whatever
/// registers send, so "logged once per tag" costs bounded memory.
struct SeenTags(Box<[AtomicU64]>);

impl SeenTags {
    fn new() -> Self {
        Self((0..1024).map(|_| AtomicU64::new(0)).collect())
    }

    /// True the first time `tag` is offered.
    fn first(&self, tag: u16) -> bool {
        let bit = 1u64 << (tag % 64);
        self.0.get(usize::from(tag / 64)).is_some_and(|w| w.fetch_or(bit, Ordering::Relaxed) & bit == 0)
    }
}

/// At most one log line per [`Throttle::EVERY`] for a failure that can repeat for every
/// document (a store that refuses, fails or stalls: a full disk would otherwise log once
/// per refused document); the lines held back are counted in the next one. The metrics
/// count every occurrence.
struct Throttle {
    started: Instant,
    next_ms: AtomicU64,
    held_back: AtomicU64,
}

impl Throttle {
    const EVERY: Duration = Duration::from_secs(10);

    fn new() -> Self {
        Self { started: Instant::now(), next_ms: AtomicU64::new(0), held_back: AtomicU64::new(0) }
    }

    /// `Some(n)` when a line may be written now, `n` lines having been held back since the
    /// last one.
    fn pass(&self) -> Option<u64> {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        let every = u64::try_from(Self::EVERY.as_millis()).unwrap_or(u64::MAX);
        if now >= next
            && self
                .next_ms
                .compare_exchange(next, now.saturating_add(every), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.held_back.swap(0, Ordering::Relaxed))
        } else {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// What to do after a message.
#[derive(Debug)]
pub enum Answer {
    /// Write this reply (session header + acknowledgment container).
    Reply(Bytes),
    /// Close without answering.
    Close(CloseReason),
}

/// Shared ingest state.
pub struct Ingest {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    signer: Arc<dyn AckSigner>,
    backlog: Arc<Backlog>,
    limits: ffd::Limits,
    ofd_inn: [u8; 12],
    accept_opaque: bool,
    unknown_tags: UnknownTagPolicy,
    seen_tags: SeenTags,
    inflight: Semaphore,
    ack_timeout: Duration,
    storage_log: Throttle,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").field("backend", &self.store.backend()).finish_non_exhaustive()
    }
}

/// Construction parameters.
pub struct IngestParts {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Register index.
    pub registry: Arc<Registry>,
    /// Acknowledgment signer.
    pub signer: Arc<dyn AckSigner>,
    /// Unknown-FN recorder.
    pub backlog: Arc<Backlog>,
    /// Wire limits.
    pub limits: ffd::Limits,
    /// Operator INN as digits.
    pub ofd_inn: String,
    /// Accept opaque bodies.
    pub accept_opaque: bool,
    /// What to do with tags the dictionary does not know.
    pub unknown_tags: UnknownTagPolicy,
    /// Documents in flight at most.
    pub max_inflight: usize,
    /// Durable-write deadline.
    pub ack_timeout: Duration,
}

impl Ingest {
    /// Builds the pipeline.
    pub fn new(p: IngestParts) -> Self {
        Self {
            store: p.store,
            registry: p.registry,
            signer: p.signer,
            backlog: p.backlog,
            limits: p.limits,
            ofd_inn: AckFields::pad_inn(&p.ofd_inn),
            accept_opaque: p.accept_opaque,
            unknown_tags: p.unknown_tags,
            seen_tags: SeenTags::new(),
            inflight: Semaphore::new(p.max_inflight),
            ack_timeout: p.ack_timeout,
            storage_log: Throttle::new(),
        }
    }

    /// The wire limits.
    pub fn limits(&self) -> &ffd::Limits {
        &self.limits
    }

    /// Handles one message with a body.
    pub async fn handle(&self, msg: &Message, transport: Transport, peer: Option<SocketAddr>) -> Answer {
        let started = Instant::now();
        let insp = match ffd::inspect(msg, &self.limits) {
            Ok(i) => i,
            Err(e) => {
                metrics::counter!(m::PROTOCOL_ERRORS, "code" => e.code()).increment(1);
                tracing::debug!(error = %e, ?peer, "malformed message, closing");
                return Answer::Close(CloseReason::Protocol);
            }
        };
        let header = *insp.header();
        let meters = meters();
        let doc_meters = meters.doc_type(header.doc_type);
        doc_meters.received.increment(1);
        let summary = insp.summary().copied();
        if summary.is_none() && insp.verdict.is_ok() && !self.accept_opaque {
            metrics::counter!(m::DOCUMENTS_REFUSED, "reason" => "opaque_refused").increment(1);
            return Answer::Close(CloseReason::Protocol);
        }
        if let Some(s) = summary.as_ref().filter(|s| !s.unknown_tags.is_empty())
            && self.refuse_unknown_tags(s, &header, peer)
        {
            return Answer::Close(CloseReason::Protocol);
        }
        let doc_time = summary.and_then(|s| s.doc_time).map(|t| Timestamp::from_unix_secs(i64::from(t)));
        let now = Timestamp::now();
        let rnm = match self.registry.check(&header.fn_number, doc_time, now) {
            Ok(rnm) => rnm,
            Err(refusal) => {
                metrics::counter!(m::DOCUMENTS_REFUSED, "reason" => refusal.as_str()).increment(1);
                if refusal == Refusal::UnknownFn {
                    metrics::counter!(m::UNKNOWN_FN_ATTEMPTS).increment(1);
                    let claimed = summary.and_then(|s| s.rnm).map(|r| String::from_utf8_lossy(&r).trim().to_owned());
                    self.backlog.record(header.fn_number, now, claimed, peer);
                }
                return Answer::Close(CloseReason::Refused(refusal));
            }
        };
        let code = insp.response_code();
        let ack_fields = AckFields {
            fn_number: header.fn_number,
            fd: header.fd,
            code,
            time: u32::try_from(now.unix_secs()).unwrap_or(u32::MAX),
            ofd_inn: self.ofd_inn,
            service1: header.service1,
        };
        let ack = Bytes::from(build_ack_container(&ack_fields, self.signer.as_ref()));
        let flk_error = insp.verdict.as_ref().err().map(|e| e.code().to_owned());
        let record = DocumentRecord {
            fn_number: header.fn_number,
            fd: header.fd,
            rnm,
            doc_type: header.doc_type,
            ffd_version: summary.and_then(|s| s.ffd_version).map(|v| v.tag_value()),
            doc_time,
            received_at: now,
            total: summary.and_then(|s| s.total),
            fiscal_sign: summary.and_then(|s| s.fiscal_sign),
            response_code: code.value(),
            flk_error,
            opaque: summary.is_none(),
            telemetry: summary.map(|s| s.telemetry).filter(|t| t.is_reported()).map(TelemetryRecord::from),
            raw: insp.container.bytes().clone(),
            ack: ack.clone(),
        };

        let outcome = {
            // bounded in-flight documents: when storage is slow, connections wait here and
            // stop reading, which pushes back on the registers
            let Ok(_permit) = self.inflight.acquire().await else {
                return Answer::Close(CloseReason::Shutdown);
            };
            meters.inflight.increment(1.0);
            let r =
                tokio::time::timeout(self.ack_timeout, self.store.append_documents(vec![record], Durability::Durable))
                    .await;
            meters.inflight.decrement(1.0);
            r
        };
        let committed = match outcome {
            Err(_elapsed) => {
                metrics::counter!(m::STORAGE_ERRORS, "code" => "timeout").increment(1);
                if let Some(held_back) = self.storage_log.pass() {
                    tracing::warn!(fn_number = %header.fn_number, fd = header.fd, held_back, "durable write not confirmed in time; not acknowledged (storage failures are logged once per 10 s; held_back = lines since the last)");
                }
                return Answer::Close(CloseReason::StorageTimeout);
            }
            Ok(Err(e)) => {
                metrics::counter!(m::STORAGE_ERRORS, "code" => e.code()).increment(1);
                if let Some(held_back) = self.storage_log.pass() {
                    tracing::warn!(error = %e, fn_number = %header.fn_number, fd = header.fd, held_back, "storage refused or failed; not acknowledged (storage failures are logged once per 10 s; held_back = lines since the last)");
                } else {
                    tracing::debug!(error = %e, fn_number = %header.fn_number, fd = header.fd, "storage refused or failed; not acknowledged");
                }
                return Answer::Close(CloseReason::StorageError);
            }
            Ok(Ok(c)) => c,
        };
        if committed.durability != Durability::Durable {
            metrics::counter!(m::STORAGE_ERRORS, "code" => "not_durable").increment(1);
            tracing::error!("store reported a non-durable commit for an acknowledged path; not acknowledged");
            return Answer::Close(CloseReason::StorageError);
        }
        let reply_ack = match committed.outcomes.into_iter().next() {
            Some(AppendOutcome::Stored) => {
                doc_meters.acked[code_index(code.value())].increment(1);
                if let Err(e) = &insp.verdict {
                    metrics::counter!(m::FLK_ERRORS, "code" => e.code()).increment(1);
                    let tag = match e {
                        ffd::FfdError::Flk(flk) => flk.tag(),
                        _ => None,
                    };
                    tracing::info!(fn_number = %header.fn_number, fd = header.fd, response_code = code.value(), error = e.code(), tag, reason = %e, "document stored with a non-zero response code");
                }
                if summary.is_some_and(|s| s.newer_tags) {
                    metrics::counter!(m::NEWER_TAG_DOCUMENTS).increment(1);
                }
                ack
            }
            Some(AppendOutcome::Duplicate { ack, identical }) => {
                let kind = if identical { "identical" } else { "conflict" };
                metrics::counter!(m::DUPLICATES, "kind" => kind).increment(1);
                if !identical {
                    tracing::warn!(fn_number = %header.fn_number, fd = header.fd, "document conflicts with the stored one under the same (FN, FD); the original is kept");
                }
                ack
            }
            None => {
                metrics::counter!(m::STORAGE_ERRORS, "code" => "no_outcome").increment(1);
                return Answer::Close(CloseReason::StorageError);
            }
        };
        let reply = wrap_reply(msg.header(), &reply_ack);
        meters.transport(transport).ack_latency.record(started.elapsed().as_secs_f64());
        Answer::Reply(reply)
    }
}

impl Ingest {
    /// Counts and logs the tags of a document that the dictionary does not know; true when
    /// one of them falls in a class whose policy is `strict` (the attempt is refused: no
    /// answer and nothing stored, so the stored answer never depends on this setting).
    fn refuse_unknown_tags(
        &self,
        s: &Summary,
        header: &ffd::container::ContainerHeader,
        peer: Option<SocketAddr>,
    ) -> bool {
        let tags = s.unknown_tags.tags();
        let refuse = tags.iter().any(|&t| self.unknown_tags.of(t) == TagPolicy::Strict);
        let action = if refuse { "refused" } else { "accepted" };
        for &tag in tags {
            metrics::counter!(m::UNKNOWN_TAGS, "bucket" => tag_bucket(tag), "action" => action).increment(1);
            if self.seen_tags.first(tag) {
                tracing::info!(tag, class = TagClass::of(tag).as_str(), fn_number = %header.fn_number, fd = header.fd, action, "a requisite with a tag the dictionary does not know (logged once per tag)");
            }
        }
        if refuse {
            metrics::counter!(m::DOCUMENTS_REFUSED, "reason" => UNKNOWN_TAG_REFUSAL).increment(1);
            tracing::debug!(?tags, count = s.unknown_tags.count(), fn_number = %header.fn_number, fd = header.fd, ?peer, "attempt refused: unknown tag in a class configured strict");
        }
        refuse
    }
}
