//! The metrics catalogue: every metric the gateway process exports is defined here — name,
//! kind, unit (in the name, base units), help, labels, and histogram buckets — and nowhere
//! else. `docs/metrics.md` is generated from this table and a test fails when they
//! disagree.
//!
//! Label sets are bounded by construction: transport (`tcp|tls|quic`), document type (the
//! known form codes or `other`), reason (a `CloseReason`), error codes (enum codes), rule
//! names and severities. Never a register, FN or INN: there are hundreds of thousands.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// What kind of metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic counter (`_total`).
    Counter,
    /// Value that goes up and down.
    Gauge,
    /// Distribution with explicit buckets.
    Histogram,
}

impl Kind {
    /// Prometheus type name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// One metric.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// Full name.
    pub name: &'static str,
    /// Kind.
    pub kind: Kind,
    /// Help text.
    pub help: &'static str,
    /// Label names.
    pub labels: &'static [&'static str],
    /// Histogram buckets (upper bounds).
    pub buckets: &'static [f64],
}

/// Latency buckets from 100 µs to 10 s.
pub const LATENCY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Documents per group commit.
pub const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0];

/// Delays of background work (FNS delivery after receipt, alert evaluation): 10 ms to a day.
pub const DELAY_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0];

macro_rules! metric_names {
    ($($(#[$m:meta])* $id:ident = $name:literal;)*) => {
        $( $(#[$m])* pub const $id: &str = $name; )*
    };
}

metric_names! {
    /// Gauge: open connections by transport.
    CONNECTIONS_OPEN = "ofd_gateway_connections_open";
    /// Counter: accepted connections by transport.
    CONNECTIONS_ACCEPTED = "ofd_gateway_connections_accepted_total";
    /// Counter: closed connections by transport and reason.
    CONNECTIONS_CLOSED = "ofd_gateway_connections_closed_total";
    /// Counter: handshakes by transport and result.
    HANDSHAKES = "ofd_gateway_handshakes_total";
    /// Histogram: handshake duration by transport.
    HANDSHAKE_SECONDS = "ofd_gateway_handshake_seconds";
    /// Counter: header-only messages answered.
    PINGS = "ofd_gateway_pings_total";
    /// Counter: documents received (framed and intact) by document type.
    DOCUMENTS_RECEIVED = "ofd_gateway_documents_received_total";
    /// Counter: documents acknowledged by document type and response code.
    DOCUMENTS_ACKED = "ofd_gateway_documents_acknowledged_total";
    /// Counter: documents refused without acknowledgment, by reason.
    DOCUMENTS_REFUSED = "ofd_gateway_documents_refused_total";
    /// Counter: retransmissions answered with the stored acknowledgment, by kind.
    DUPLICATES = "ofd_gateway_duplicates_total";
    /// Counter: protocol errors (connection closed) by error code.
    PROTOCOL_ERRORS = "ofd_gateway_protocol_errors_total";
    /// Counter: format-logic (code 11/14) answers by error code.
    FLK_ERRORS = "ofd_gateway_flk_errors_total";
    /// Counter: tags unknown to the dictionary, by tag-number bucket and action.
    UNKNOWN_TAGS = "ofd_gateway_unknown_tags_total";
    /// Counter: documents carrying a requisite newer than their FFD version.
    NEWER_TAG_DOCUMENTS = "ofd_gateway_newer_tag_documents_total";
    /// Histogram: from a whole message read to its acknowledgment written, by transport.
    ACK_LATENCY = "ofd_gateway_ack_latency_seconds";
    /// Counter: storage errors on the ingest path, by error code.
    STORAGE_ERRORS = "ofd_gateway_storage_errors_total";
    /// Gauge: documents waiting for their durable write.
    INFLIGHT_DOCUMENTS = "ofd_gateway_inflight_documents";
    /// Gauge: bytes of message buffers held.
    BUFFERED_BYTES = "ofd_gateway_buffered_bytes";
    /// Counter: bytes read from registers, by transport.
    BYTES_RECEIVED = "ofd_gateway_received_bytes_total";
    /// Counter: bytes written to registers, by transport.
    BYTES_SENT = "ofd_gateway_sent_bytes_total";
    /// Counter: refused attempts by unknown FNs.
    UNKNOWN_FN_ATTEMPTS = "ofd_gateway_unknown_fn_attempts_total";
    /// Gauge: FNs in the in-memory register index.
    REGISTRY_FNS = "ofd_gateway_registry_fns";
    /// Counter: register index refreshes by result.
    REGISTRY_REFRESHES = "ofd_gateway_registry_refreshes_total";
    /// Counter: admin API requests by route template and HTTP status.
    ADMIN_REQUESTS = "ofd_gateway_admin_requests_total";
    /// Histogram: admin API request duration by route template.
    ADMIN_REQUEST_SECONDS = "ofd_gateway_admin_request_seconds";
    /// Counter: failed admin authentications, and requests refused by the per-address limit.
    ADMIN_AUTH_FAILURES = "ofd_gateway_admin_auth_failures_total";
    /// Gauge: 1 when ready to serve.
    READY = "ofd_gateway_ready";
    /// Gauge: documents waiting for FNS delivery (whole store).
    FNS_BACKLOG = "ofd_gateway_fns_backlog_documents";
    /// Gauge: age of the oldest undelivered document.
    FNS_OLDEST_AGE = "ofd_gateway_fns_backlog_oldest_age_seconds";
    /// Counter: FNS delivery attempts by result.
    FNS_DELIVERIES = "ofd_gateway_fns_deliveries_total";
    /// Histogram: duration of one FNS delivery request, by kind (forward, resend).
    FNS_REQUEST_SECONDS = "ofd_gateway_fns_request_seconds";
    /// Histogram: from receipt of a document to its FNS delivery.
    FNS_DELIVERY_DELAY = "ofd_gateway_fns_delivery_delay_seconds";
    /// Gauge: delivery partitions leased by this node.
    FNS_PARTITIONS = "ofd_gateway_fns_partitions_leased";
    /// Counter: documents of resend jobs by result.
    RESEND_DOCUMENTS = "ofd_gateway_resend_documents_total";
    /// Counter: resend jobs finished, by final state.
    RESEND_JOBS = "ofd_gateway_resend_jobs_finished_total";
    /// Gauge: firing alerts by rule and severity.
    ALERTS_FIRING = "ofd_gateway_alerts_firing";
    /// Counter: alert transitions by rule, severity and new status.
    ALERT_TRANSITIONS = "ofd_gateway_alert_transitions_total";
    /// Counter: webhook notification attempts by result.
    ALERT_NOTIFICATIONS = "ofd_gateway_alert_notifications_total";
    /// Counter: pushes of the alert states to the Alertmanager, by result.
    ALERTMANAGER_PUSHES = "ofd_gateway_alertmanager_pushes_total";
    /// Counter: alert evaluations by result.
    ALERT_EVALUATIONS = "ofd_gateway_alert_evaluations_total";
    /// Histogram: duration of one evaluation of every rule over every register.
    ALERT_EVALUATION_SECONDS = "ofd_gateway_alert_evaluation_seconds";
    /// Gauge: 1, labelled with the version.
    BUILD_INFO = "ofd_gateway_build_info";
    /// Counter: CPU time of the process.
    PROCESS_CPU = "process_cpu_seconds_total";
    /// Gauge: resident memory.
    PROCESS_RSS = "process_resident_memory_bytes";
    /// Gauge: open file descriptors.
    PROCESS_OPEN_FDS = "process_open_fds";
    /// Gauge: the file-descriptor limit.
    PROCESS_MAX_FDS = "process_max_fds";
    /// Gauge: start time of the process.
    PROCESS_START = "process_start_time_seconds";
}

use Kind::{Counter, Gauge, Histogram};

const fn def(
    name: &'static str,
    kind: Kind,
    help: &'static str,
    labels: &'static [&'static str],
    buckets: &'static [f64],
) -> MetricDef {
    MetricDef { name, kind, help, labels, buckets }
}

/// Every metric of the process.
pub static CATALOGUE: &[MetricDef] = &[
    def(CONNECTIONS_OPEN, Gauge, "Open register connections.", &["transport"], &[]),
    def(CONNECTIONS_ACCEPTED, Counter, "Register connections accepted.", &["transport"], &[]),
    def(CONNECTIONS_CLOSED, Counter, "Register connections closed, by reason.", &["transport", "reason"], &[]),
    def(HANDSHAKES, Counter, "TLS/QUIC handshakes, by result (ok, timeout, failed).", &["transport", "result"], &[]),
    def(HANDSHAKE_SECONDS, Histogram, "Duration of successful TLS/QUIC handshakes.", &["transport"], LATENCY_BUCKETS),
    def(PINGS, Counter, "Header-only messages (pings) answered.", &["transport"], &[]),
    def(DOCUMENTS_RECEIVED, Counter, "Intact documents received, by document type.", &["doc_type"], &[]),
    def(
        DOCUMENTS_ACKED,
        Counter,
        "Documents acknowledged after their durable write, by document type and response code.",
        &["doc_type", "code"],
        &[],
    ),
    def(
        DOCUMENTS_REFUSED,
        Counter,
        "Documents refused without acknowledgment (connection closed), by reason.",
        &["reason"],
        &[],
    ),
    def(
        DUPLICATES,
        Counter,
        "Retransmitted documents answered with the stored acknowledgment (identical) or conflicting with the stored original (conflict).",
        &["kind"],
        &[],
    ),
    def(
        PROTOCOL_ERRORS,
        Counter,
        "Messages refused for the attempt (malformed, a session FN that differs from the container's, a resource limit) that closed the connection, by error code.",
        &["code"],
        &[],
    ),
    def(FLK_ERRORS, Counter, "Documents stored and answered with code 11 or 14, by error code.", &["code"], &[]),
    def(
        UNKNOWN_TAGS,
        Counter,
        "Requisites whose tag the dictionary does not know (once per document and tag, the first 8 of a document), by tag-number bucket (1000-1099 … 2900-2999, other) and action (accepted, refused: ingest.unknown_*_tags = strict).",
        &["bucket", "action"],
        &[],
    ),
    def(
        NEWER_TAG_DOCUMENTS,
        Counter,
        "Documents accepted although they carry a requisite that their declared FFD version (1209) does not have yet.",
        &[],
        &[],
    ),
    def(
        ACK_LATENCY,
        Histogram,
        "Time from a whole message read to its acknowledgment written (includes the durable write).",
        &["transport"],
        LATENCY_BUCKETS,
    ),
    def(
        STORAGE_ERRORS,
        Counter,
        "Storage failures on the ingest path (nothing acknowledged), by error code.",
        &["code"],
        &[],
    ),
    def(INFLIGHT_DOCUMENTS, Gauge, "Documents waiting for their durable write.", &[], &[]),
    def(BUFFERED_BYTES, Gauge, "Bytes of message buffers held by connections.", &[], &[]),
    def(BYTES_RECEIVED, Counter, "Bytes of messages read from registers.", &["transport"], &[]),
    def(BYTES_SENT, Counter, "Bytes of replies written to registers.", &["transport"], &[]),
    def(UNKNOWN_FN_ATTEMPTS, Counter, "Messages refused because their FN belongs to no register.", &[], &[]),
    def(REGISTRY_FNS, Gauge, "FNs in the in-memory register index.", &[], &[]),
    def(REGISTRY_REFRESHES, Counter, "Refreshes of the register index from storage, by result.", &["result"], &[]),
    def(
        ADMIN_REQUESTS,
        Counter,
        "Admin API requests, by route (path template, or `unmatched`) and HTTP status.",
        &["route", "status"],
        &[],
    ),
    def(
        ADMIN_REQUEST_SECONDS,
        Histogram,
        "Duration of admin API requests, by route (path template).",
        &["route"],
        LATENCY_BUCKETS,
    ),
    def(
        ADMIN_AUTH_FAILURES,
        Counter,
        "Admin API authentication failures (unauthenticated: a 401) and requests refused while their source address is over admin.max_auth_failures (limited: a 429).",
        &["result"],
        &[],
    ),
    def(
        READY,
        Gauge,
        "1 when the gateway is ready to serve, 0 while starting, draining, or while storage is poisoned or degraded (e.g. free disk space below storage.min_free_space).",
        &[],
        &[],
    ),
    def(FNS_BACKLOG, Gauge, "Documents stored but not yet delivered to the FNS (the outbox), whole store.", &[], &[]),
    def(FNS_OLDEST_AGE, Gauge, "Age of the oldest document not yet delivered to the FNS (0 when none).", &[], &[]),
    def(
        FNS_DELIVERIES,
        Counter,
        "FNS delivery attempts, by result (delivered, timeout, connect, rejected, unavailable, error).",
        &["result"],
        &[],
    ),
    def(
        FNS_REQUEST_SECONDS,
        Histogram,
        "Duration of one FNS delivery request, by kind (forward, resend).",
        &["kind"],
        LATENCY_BUCKETS,
    ),
    def(
        FNS_DELIVERY_DELAY,
        Histogram,
        "Time from the receipt of a document to its delivery to the FNS.",
        &[],
        DELAY_BUCKETS,
    ),
    def(FNS_PARTITIONS, Gauge, "FNS delivery partitions whose lease this node holds.", &[], &[]),
    def(
        RESEND_DOCUMENTS,
        Counter,
        "Documents delivered again by resend jobs, by result (delivered, failed).",
        &["result"],
        &[],
    ),
    def(RESEND_JOBS, Counter, "Resend jobs finished, by final state (completed, cancelled, failed).", &["state"], &[]),
    def(ALERTS_FIRING, Gauge, "Firing alerts (register count), by rule and severity.", &["rule", "severity"], &[]),
    def(
        ALERT_TRANSITIONS,
        Counter,
        "Alert state changes, by rule, severity and new status (firing, resolved).",
        &["rule", "severity", "status"],
        &[],
    ),
    def(
        ALERT_NOTIFICATIONS,
        Counter,
        "Webhook notification attempts, by result (delivered, failed, abandoned).",
        &["result"],
        &[],
    ),
    def(
        ALERTMANAGER_PUSHES,
        Counter,
        "Pushes of the alert states to the Alertmanager (alerts.alertmanager_url), by result (ok, error).",
        &["result"],
        &[],
    ),
    def(ALERT_EVALUATIONS, Counter, "Evaluations of the alert rules, by result (ok, error).", &["result"], &[]),
    def(
        ALERT_EVALUATION_SECONDS,
        Histogram,
        "Duration of one evaluation of every enabled rule over every register.",
        &[],
        DELAY_BUCKETS,
    ),
    def(BUILD_INFO, Gauge, "Always 1; the version is a label.", &["version"], &[]),
    def(
        storage::metrics::COMMIT_BATCH_DOCUMENTS,
        Histogram,
        "Documents per group commit of the embedded store.",
        &[],
        BATCH_BUCKETS,
    ),
    def(
        storage::metrics::COMMIT_SECONDS,
        Histogram,
        "Duration of one group commit (write and sync).",
        &[],
        LATENCY_BUCKETS,
    ),
    def(storage::metrics::COMMIT_QUEUE_DEPTH, Gauge, "Append requests waiting for the group-commit writer.", &[], &[]),
    def(storage::metrics::COMMIT_ERRORS_TOTAL, Counter, "Failed group commits, by error code.", &["error"], &[]),
    def(storage::metrics::POISONED, Gauge, "1 while the store is poisoned by a durability failure.", &[], &[]),
    def(
        storage::metrics::FREE_BYTES,
        Gauge,
        "Bytes available on the file system of the embedded store (statvfs, to unprivileged users), as last seen (every second, and as the writer writes).",
        &[],
        &[],
    ),
    def(
        storage::metrics::MIN_FREE_BYTES,
        Gauge,
        "The free space the embedded store keeps (storage.min_free_space in bytes); below it intake pauses.",
        &[],
        &[],
    ),
    def(
        storage::metrics::INTAKE_PAUSED,
        Gauge,
        "1 while the embedded store refuses new documents and admin writes for lack of disk space (below storage.min_free_space, or after a journal write failed with ENOSPC until the store reopened).",
        &[],
        &[],
    ),
    def(
        storage::metrics::REPORT_LAG_SECONDS,
        Gauge,
        "Seconds since the report aggregates last reflected every stored document (embedded backend; 0 while caught up, rises to the 5 s flush interval under load; the cluster backend's is the derive follower's journal lag).",
        &[],
        &[],
    ),
    def(
        storage::metrics::REPORT_ERRORS_TOTAL,
        Counter,
        "Report aggregation steps that failed and are retried: a fold, a scan or a flush (embedded backend; the log says which FN).",
        &[],
        &[],
    ),
    def(
        storage::metrics::OPERATION_SECONDS,
        Histogram,
        "Duration of cluster-backend operations, by operation.",
        &["op"],
        LATENCY_BUCKETS,
    ),
    def(
        storage::metrics::CLOCK_OFFSET_SECONDS,
        Gauge,
        "This node's clock minus the CQL cluster's (cluster backend); appends are refused beyond a quarter of storage.journal_settle.",
        &[],
        &[],
    ),
    def(
        storage::metrics::JOURNAL_LAG_SECONDS,
        Gauge,
        "Age of the oldest journal entry a follower of this node has not processed, by follower (derive: the time index and activity; fns: FNS forwarding); cluster backend.",
        &["follower"],
        &[],
    ),
    def(
        storage::metrics::DERIVED_LAG_SECONDS,
        Gauge,
        "The largest lag of any journal partition's derived views (time index, activity), as this node measures it, seconds (cluster backend); appends to a partition beyond storage.max_derived_lag are refused.",
        &[],
        &[],
    ),
    def(
        storage::metrics::JOURNAL_ENTRIES_TOTAL,
        Counter,
        "Journal entries read by the followers of this node, by follower (cluster backend).",
        &["follower"],
        &[],
    ),
    def(
        storage::metrics::JOURNAL_ERRORS_TOTAL,
        Counter,
        "Follower rounds that failed and are retried, by follower (cluster backend).",
        &["follower"],
        &[],
    ),
    def(
        storage::metrics::JOURNAL_PARTITIONS,
        Gauge,
        "Journal partitions whose lease this node holds, by follower (cluster backend).",
        &["follower"],
        &[],
    ),
    def(
        storage::metrics::SWEPT_TOTAL,
        Counter,
        "Journal entries a sweep found that a follower had passed (a clock error on some node), by follower (cluster backend).",
        &["follower"],
        &[],
    ),
    def(
        storage::metrics::APPENDS_REFUSED_TOTAL,
        Counter,
        "Appends not acknowledged by the store's own rules, by reason: clock_skew (nothing written), slow_journal (written, but the journal entry took over half the settle time; a retransmission gets the stored answer), derived_lag (the document's journal partition's derived views lag beyond storage.max_derived_lag; nothing written; cluster backend), disk_space (free disk space below storage.min_free_space; nothing written; embedded store).",
        &["reason"],
        &[],
    ),
    def(PROCESS_CPU, Counter, "CPU time consumed by the process (user + system).", &[], &[]),
    def(PROCESS_RSS, Gauge, "Resident memory of the process.", &[], &[]),
    def(PROCESS_OPEN_FDS, Gauge, "Open file descriptors.", &[], &[]),
    def(PROCESS_MAX_FDS, Gauge, "The process limit on open file descriptors.", &[], &[]),
    def(PROCESS_START, Gauge, "Start time of the process, Unix seconds.", &[], &[]),
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process (tests start several gateways in one
/// process; they share it) and describes every metric.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let mut builder = PrometheusBuilder::new();
            for m in CATALOGUE.iter().filter(|m| m.kind == Histogram) {
                #[allow(clippy::expect_used)]
                {
                    builder = builder
                        .set_buckets_for_metric(Matcher::Full(m.name.to_owned()), m.buckets)
                        .expect("every histogram of the catalogue has buckets (tested)");
                }
            }
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; gateway metrics go to it");
            }
            for m in CATALOGUE {
                match m.kind {
                    Counter => metrics::describe_counter!(m.name, m.help),
                    Gauge => metrics::describe_gauge!(m.name, m.help),
                    Histogram => metrics::describe_histogram!(m.name, m.help),
                }
            }
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

/// The values of the `doc_type` label: one name per form an FN sends (operators read
/// names, not form codes), and `other` for anything else. Bounded: 11 values.
pub const DOC_TYPE_LABELS: &[(u8, &str, &str)] = &[
    (1, "registration", "registration report (form 1)"),
    (11, "registration_change", "report on changed registration parameters (form 11)"),
    (2, "shift_open", "shift opening report (form 2)"),
    (3, "receipt", "receipt (form 3)"),
    (4, "bso", "strict-reporting form, БСО (form 4)"),
    (31, "receipt_correction", "correction receipt (form 31)"),
    (41, "bso_correction", "correction БСО (form 41)"),
    (21, "state_report", "report on the current state of settlements (form 21)"),
    (5, "shift_close", "shift closing report (form 5)"),
    (6, "fn_close", "FN closing report (form 6)"),
    (0, "other", "any other form code"),
];

/// A bounded label for a document type: its name, or `other`.
pub fn doc_type_label(doc_type: u8) -> &'static str {
    DOC_TYPE_LABELS.iter().find(|(code, _, _)| *code == doc_type && *code != 0).map_or("other", |(_, name, _)| name)
}

/// Creates a series of a catalogued metric at zero: a counter or gauge is added 0, a
/// histogram is registered with empty buckets. A dashboard panel or an alert rule over a
/// metric then has a series before the first event (`rate()` sees the first one too).
pub fn prime(name: &'static str, labels: &[(&'static str, &'static str)]) {
    let Some(def) = CATALOGUE.iter().find(|m| m.name == name) else {
        debug_assert!(false, "{name} is not in the catalogue");
        return;
    };
    let labels: Vec<metrics::Label> = labels.iter().map(|(k, v)| metrics::Label::new(*k, *v)).collect();
    match def.kind {
        Counter => metrics::counter!(def.name, labels).increment(0),
        Gauge => metrics::gauge!(def.name, labels).increment(0.0),
        Histogram => drop(metrics::histogram!(def.name, labels)),
    }
}

/// Creates at zero every catalogued metric that has no labels, and the storage metrics'
/// known label values (a plane primes its own labelled metrics: `data::prime_metrics`,
/// `control::prime_metrics`).
pub fn prime_catalogue() {
    for m in CATALOGUE.iter().filter(|m| m.labels.is_empty()) {
        prime(m.name, &[]);
    }
    for code in ["io", "poisoned", "corrupt", "closed", "unavailable"] {
        prime(storage::metrics::COMMIT_ERRORS_TOTAL, &[("error", code)]);
    }
    // cluster backend only: with the embedded store these series stay at zero
    prime(storage::metrics::OPERATION_SECONDS, &[("op", "append_documents")]);
    for follower in ["derive", "fns"] {
        prime(storage::metrics::JOURNAL_LAG_SECONDS, &[("follower", follower)]);
        prime(storage::metrics::JOURNAL_ENTRIES_TOTAL, &[("follower", follower)]);
        prime(storage::metrics::JOURNAL_ERRORS_TOTAL, &[("follower", follower)]);
        prime(storage::metrics::JOURNAL_PARTITIONS, &[("follower", follower)]);
        prime(storage::metrics::SWEPT_TOTAL, &[("follower", follower)]);
    }
    for reason in ["clock_skew", "slow_journal", "derived_lag", "disk_space"] {
        prime(storage::metrics::APPENDS_REFUSED_TOTAL, &[("reason", reason)]);
    }
}

/// Renders `docs/metrics.md` from the catalogue.
pub fn render_markdown() -> String {
    let mut out = String::from(
        "# Metrics\n\nGenerated from `gateway/src/metrics.rs` (`cargo run -p gateway -- metrics-doc > docs/metrics.md`); a test fails when this file and the code disagree.\n\nNo metric carries a register, FN or INN label.\n\n| name | type | labels | help |\n|---|---|---|---|\n",
    );
    for m in CATALOGUE {
        let labels = if m.labels.is_empty() { "—".to_owned() } else { m.labels.join(", ") };
        out.push_str(&format!("| `{}` | {} | {} | {} |\n", m.name, m.kind.as_str(), labels, m.help));
    }
    out.push_str("\nEvery metric exists from the start: its series are created at zero for every known value of its labels (histograms with empty buckets), so a panel or an alert rule over it has data before the first event.\n");
    out.push_str(
        "\nValues of `doc_type` (bounded; any other form code is `other`):\n\n| value | document |\n|---|---|\n",
    );
    for (_, name, what) in DOC_TYPE_LABELS {
        out.push_str(&format!("| `{name}` | {what} |\n"));
    }
    out.push_str("\nHistogram buckets (seconds): latency histograms use ");
    out.push_str(&format!("{:?}", LATENCY_BUCKETS));
    out.push_str("; background delays use ");
    out.push_str(&format!("{:?}", DELAY_BUCKETS));
    out.push_str("; batch-size histograms use ");
    out.push_str(&format!("{:?}", BATCH_BUCKETS));
    out.push_str(".\n");
    out
}
