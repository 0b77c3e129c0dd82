//! Starting and stopping a gateway: validate config, open storage, load the register
//! index, bind every listener, spawn the accept loops and background tasks, and on
//! shutdown drain connections and close storage. Tests start gateways in-process on port
//! 0 through [`start`]; the binary calls the same function.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use storage::{Health, Store};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::data::backlog::{self, Backlog};
use crate::data::ingest::{Ingest, IngestParts};
use crate::data::listeners;
use crate::data::registry::{self, Registry, Rules};
use crate::data::session::{SessionConfig, SessionCtx};
use crate::health::{self, Readiness};
use crate::shutdown::Shutdown;
use crate::state::Shared;

/// A running gateway.
pub struct Running {
    /// Bound plain-TCP address.
    pub tcp: Option<SocketAddr>,
    /// Bound TLS address.
    pub tls: Option<SocketAddr>,
    /// Bound QUIC address.
    pub quic: Option<SocketAddr>,
    /// Bound admin API address.
    pub admin: Option<SocketAddr>,
    /// Bound metrics address.
    pub metrics: Option<SocketAddr>,
    /// The development certificate in use, if any.
    pub dev_cert: Option<PathBuf>,
    /// Shared handles (control plane, tests).
    pub shared: Shared,
    registry: Arc<Registry>,
    connections: TaskTracker,
    background: TaskTracker,
    background_stop: tokio_util::sync::CancellationToken,
    fatal: Arc<std::sync::Mutex<Option<String>>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("tcp", &self.tcp).field("tls", &self.tls).field("quic", &self.quic).finish()
    }
}

/// Opens the configured store.
pub async fn open_store(cfg: &Config) -> anyhow::Result<Arc<dyn Store>> {
    match cfg.storage.backend.as_str() {
        "embedded" => {
            use storage::embedded::{EmbeddedOptions, EmbeddedStore, SyncMode};
            let opts = EmbeddedOptions {
                sync_mode: if cfg.storage.sync == "sync_data" { SyncMode::SyncData } else { SyncMode::SyncAll },
                max_batch_documents: cfg.storage.max_batch,
                queue_capacity: cfg.storage.queue_capacity,
                min_free_space: cfg.storage.min_free_space.0,
                ..EmbeddedOptions::default()
            };
            let path = cfg.data_dir.join("store");
            // opening recovers the journal: blocking work, off the async workers
            let store = tokio::task::spawn_blocking(move || {
                EmbeddedStore::open(&path, opts).with_context(|| format!("opening the store in {}", path.display()))
            })
            .await
            .context("store opening task")??;
            Ok(Arc::new(store))
        }
        #[cfg(feature = "scylla")]
        "scylla" => {
            let sc = scylla_config(cfg)?;
            let nodes = sc.nodes.join(",");
            let store = storage::scylla::ScyllaStore::connect(sc).await.with_context(|| {
                format!(
                    "opening the CQL store at {nodes}, keyspace {} (on a new cluster, run `gateway migrate` first)",
                    cfg.storage.keyspace
                )
            })?;
            Ok(Arc::new(store))
        }
        #[cfg(not(feature = "scylla"))]
        "scylla" => {
            bail!("this build has no CQL backend (built with --no-default-features); rebuild with the `scylla` feature")
        }
        other => bail!("unknown storage backend {other:?}"),
    }
}

/// The CQL settings of the `[storage]` section (and this node's name).
#[cfg(feature = "scylla")]
pub fn scylla_config(cfg: &Config) -> anyhow::Result<storage::scylla::ScyllaConfig> {
    let s = &cfg.storage;
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let sc = storage::scylla::ScyllaConfig {
        nodes: s.nodes.clone(),
        keyspace: s.keyspace.clone(),
        local_dc: (!s.local_dc.trim().is_empty()).then(|| s.local_dc.trim().to_owned()),
        consistency: s.consistency.parse().map_err(|e| anyhow::anyhow!("{e}"))?,
        request_timeout_ms: ms(s.request_timeout),
        min_replication_factor: s.min_replication_factor,
        journal_settle_ms: ms(s.journal_settle),
        speculative_delay_ms: ms(s.speculative_delay),
        max_derived_lag_ms: ms(s.max_derived_lag),
        node_id: Some(cfg.node_id()),
        allow_periodic_commitlog: s.allow_periodic_commitlog,
        ..storage::scylla::ScyllaConfig::default()
    };
    sc.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(sc)
}

/// Announces this node's signer fingerprint to the nodes sharing the store, and refuses to
/// start beside a live node that signs with another key: the same document would get
/// different acknowledgments depending on the gateway a register reached.
async fn check_signers(store: &dyn Store, node: &str, fingerprint: &str) -> anyhow::Result<()> {
    store.announce_signer(fingerprint);
    let nodes = store.cluster_nodes().await.context("listing the gateway nodes sharing the store")?;
    let clashing: Vec<String> = nodes
        .iter()
        .filter(|n| n.node != node && !n.signer_fingerprint.is_empty() && n.signer_fingerprint != fingerprint)
        .map(|n| format!("{} (key {})", n.node, n.signer_fingerprint))
        .collect();
    if !clashing.is_empty() {
        bail!(
            "gateway nodes sharing this store sign acknowledgments with another key: {}; this node's key is {fingerprint}. \
             Every gateway on one store needs the same signer.key_hex",
            clashing.join(", ")
        );
    }
    if !nodes.is_empty() {
        tracing::info!(nodes = nodes.len(), signer = fingerprint, "gateway nodes sharing the store");
    }
    Ok(())
}

/// Starts a gateway with a validated configuration.
pub async fn start(cfg: Config) -> anyhow::Result<Running> {
    cfg.validate().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("creating data_dir {}", cfg.data_dir.display()))?;
    let prometheus = crate::metrics::install();
    let store = open_store(&cfg).await?;
    match start_with_store(cfg, store.clone(), prometheus).await {
        Ok(r) => Ok(r),
        Err(e) => {
            // give leases, heartbeat rows and file locks back before reporting
            let _ = store.close().await;
            Err(e)
        }
    }
}

/// Starts a gateway on a given store (tests wrap stores with fault injection).
pub async fn start_with_store(
    cfg: Config,
    store: Arc<dyn Store>,
    prometheus: metrics_exporter_prometheus::PrometheusHandle,
) -> anyhow::Result<Running> {
    cfg.validate().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("creating data_dir {}", cfg.data_dir.display()))?;
    let cfg = Arc::new(cfg);
    crate::metrics::prime_catalogue();
    crate::data::prime_metrics();
    crate::control::prime_metrics();
    let shutdown = Shutdown::new(cfg.shutdown.drain_period);
    let rules =
        Rules { tariff_grace: cfg.ingest.tariff_grace, replaced_fn_tolerance: cfg.ingest.replaced_fn_tolerance };
    let registry = Arc::new(Registry::load(store.as_ref(), rules).await.context("loading registers")?);
    tracing::info!(fns = registry.len(), backend = store.backend(), "register index loaded");
    let built = crate::data::signer::build(&cfg)?;
    let signer = built.signer;
    check_signers(store.as_ref(), &cfg.node_id(), &built.fingerprint).await?;
    let backlog = Arc::new(Backlog::new());
    let ingest = Arc::new(Ingest::new(IngestParts {
        store: store.clone(),
        registry: registry.clone(),
        signer,
        backlog: backlog.clone(),
        limits: cfg.ffd_limits(),
        ofd_inn: cfg.ofd_inn.clone(),
        accept_opaque: cfg.ingest.accept_opaque,
        unknown_tags: crate::data::ingest::UnknownTagPolicy::from_config(&cfg.ingest),
        max_inflight: cfg.limits.max_inflight_documents,
        ack_timeout: cfg.limits.ack_timeout,
    }));
    let ctx = SessionCtx {
        ingest,
        config: Arc::new(SessionConfig {
            idle_timeout: cfg.limits.idle_timeout,
            frame_timeout: cfg.limits.frame_timeout,
            write_timeout: cfg.limits.write_timeout,
        }),
        buffers: Arc::new(Semaphore::new(cfg.limits.max_buffered_bytes)),
        shutdown: shutdown.clone(),
    };
    let readiness = Arc::new(Readiness::new(store.clone(), shutdown.clone()));
    let shared = Shared {
        config: cfg.clone(),
        store: store.clone(),
        data: crate::data::LiveView::new(registry.clone()),
        readiness: readiness.clone(),
        shutdown: shutdown.clone(),
        node_id: cfg.node_id(),
    };

    let (soft, hard) = crate::process::fd_limit();
    let capacity = crate::process::connection_capacity();
    let max_connections = if cfg.limits.max_connections == 0 { capacity } else { cfg.limits.max_connections };
    if max_connections > capacity {
        tracing::warn!(max_connections, capacity, "limits.max_connections exceeds what the file limit allows");
    }
    tracing::info!(
        soft_limit = soft,
        hard_limit = hard,
        tcp_tls_connections = max_connections,
        quic_connections = cfg.limits.max_quic_connections,
        "process file limit: {soft} open files allows about {capacity} TCP/TLS connections; QUIC connections share one UDP socket"
    );

    let connections = TaskTracker::new();
    let background = TaskTracker::new();
    let background_stop = tokio_util::sync::CancellationToken::new();
    let slots = Arc::new(Semaphore::new(max_connections));

    // ---- listeners (all bound before anything is served, so a bad address fails fast)
    let tcp = match cfg.listen.tcp.0 {
        Some(a) => Some(listeners::bind_tcp(a).with_context(|| format!("binding listen.tcp {a}"))?),
        None => None,
    };
    let tls_listener = match cfg.listen.tls.0 {
        Some(a) => Some(listeners::bind_tcp(a).with_context(|| format!("binding listen.tls {a}"))?),
        None => None,
    };
    let need_tls = cfg.listen.tls.0.is_some() || cfg.listen.quic.0.is_some();
    let material = if need_tls { Some(crate::tls::load(&cfg)?) } else { None };
    let dev_cert = material.as_ref().and_then(|m| m.dev_cert.clone());
    if let Some(p) = &dev_cert {
        tracing::info!(path = %p.display(), "using a self-signed development certificate (trust it with `loadgen --ca`)");
    }
    let quic_endpoint = match (cfg.listen.quic.0, &material) {
        (Some(a), Some(m)) => {
            Some(crate::data::quic::endpoint(&cfg, m, a).with_context(|| format!("binding listen.quic {a}"))?)
        }
        _ => None,
    };
    let admin_listener = match cfg.listen.admin.0 {
        Some(a) => Some(tokio::net::TcpListener::bind(a).await.with_context(|| format!("binding listen.admin {a}"))?),
        None => None,
    };
    let metrics_listener = match cfg.listen.metrics.0 {
        Some(a) => Some(tokio::net::TcpListener::bind(a).await.with_context(|| format!("binding listen.metrics {a}"))?),
        None => None,
    };

    let addr = |l: &Option<tokio::net::TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
    let running_addrs = (
        addr(&tcp),
        addr(&tls_listener),
        quic_endpoint.as_ref().and_then(|e| e.local_addr().ok()),
        addr(&admin_listener),
        addr(&metrics_listener),
    );

    if let Some(l) = tcp {
        background.spawn(listeners::run_tcp(l, ctx.clone(), slots.clone(), connections.clone()));
    }
    if let (Some(l), Some(m)) = (tls_listener, &material) {
        let tls_config = crate::tls::server_config(&cfg, m, false)?;
        background.spawn(listeners::run_tls(
            l,
            tls_config,
            cfg.limits.handshake_timeout,
            ctx.clone(),
            slots.clone(),
            connections.clone(),
        ));
    }
    if let Some(ep) = quic_endpoint {
        let quic_slots = Arc::new(Semaphore::new(cfg.limits.max_quic_connections));
        background.spawn(listeners::run_quic(
            ep,
            cfg.limits.handshake_timeout,
            cfg.quic.retry,
            ctx.clone(),
            quic_slots,
            connections.clone(),
        ));
    }
    if let Some(l) = metrics_listener {
        let app = health::router(readiness.clone(), prometheus);
        let stop = background_stop.clone();
        background.spawn(async move {
            let _ = axum::serve(l, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
        });
    }
    if let Some(l) = admin_listener {
        // plain HTTP, or TLS with admin.tls (control/admin/listener.rs)
        background.spawn(crate::control::admin::serve(l, shared.clone(), background_stop.clone())?);
    }
    background.spawn(registry::refresh_loop(
        registry.clone(),
        store.clone(),
        cfg.ingest.registry_refresh,
        background_stop.clone(),
    ));
    // ---- FNS forwarding, alert evaluation and webhooks, resend jobs (issue 6): each
    // leases its share of the work through the store, so a cluster runs it once.
    crate::control::fns::spawn(&shared, &background, &background_stop)?;
    crate::control::alerts::spawn(&shared, &background, &background_stop)?;
    crate::control::resend::spawn(&shared, &background, &background_stop)?;
    // ---- end of issue 6 block
    background.spawn(backlog::flush_loop(backlog, store.clone(), Duration::from_secs(2), background_stop.clone()));

    // poisoned storage: stop acknowledging (every write already fails), fail readiness,
    // and exit so a supervisor restarts the process
    let fatal = Arc::new(std::sync::Mutex::new(None));
    {
        let store = store.clone();
        let shutdown = shutdown.clone();
        let fatal = fatal.clone();
        let stop = background_stop.clone();
        background.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Health::Poisoned(reason) = store.health() {
                    tracing::error!(%reason, "storage is poisoned: refusing all documents and shutting down");
                    if let Ok(mut f) = fatal.lock() {
                        *f = Some(format!("storage poisoned: {reason}"));
                    }
                    shutdown.trigger();
                    return;
                }
            }
        });
    }

    if let Err(e) = write_addrs_file(&cfg.data_dir, &running_addrs) {
        // a full data directory must not stop a start (the store waits for space)
        tracing::warn!(error = %format!("{e:#}"), "could not write the addresses file");
    }
    readiness.set_started();
    let not_ready: Vec<String> = readiness.checks().into_iter().filter_map(|(_, r)| r.err()).collect();
    metrics::gauge!(crate::metrics::READY).set(if not_ready.is_empty() { 1.0 } else { 0.0 });
    if !not_ready.is_empty() {
        tracing::warn!(reasons = %not_ready.join("; "), "gateway started, but not ready (it waits; /readyz says why)");
    }
    tracing::info!(
        tcp = ?running_addrs.0,
        tls = ?running_addrs.1,
        quic = ?running_addrs.2,
        admin = ?running_addrs.3,
        metrics = ?running_addrs.4,
        "{}",
        if not_ready.is_empty() { "gateway ready" } else { "gateway listening (not ready yet)" }
    );
    Ok(Running {
        tcp: running_addrs.0,
        tls: running_addrs.1,
        quic: running_addrs.2,
        admin: running_addrs.3,
        metrics: running_addrs.4,
        dev_cert,
        shared,
        registry,
        connections,
        background,
        background_stop,
        fatal,
    })
}

/// Name of the file, in the data directory, where a started gateway writes the addresses
/// it actually bound (useful with port 0: tests, scripts, loadgen).
pub const ADDRS_FILE: &str = "gateway.addrs.json";

type Addrs = (Option<SocketAddr>, Option<SocketAddr>, Option<SocketAddr>, Option<SocketAddr>, Option<SocketAddr>);

fn write_addrs_file(data_dir: &std::path::Path, a: &Addrs) -> anyhow::Result<()> {
    let json = serde_json::json!({
        "tcp": a.0, "tls": a.1, "quic": a.2, "admin": a.3, "metrics": a.4,
        "pid": std::process::id(),
    });
    let path = data_dir.join(ADDRS_FILE);
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&json)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

impl Running {
    /// The ingest register index of this node (tests look inside it).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The shutdown signal (fire it to begin a graceful shutdown).
    pub fn shutdown_signal(&self) -> Shutdown {
        self.shared.shutdown.clone()
    }

    /// Begins a graceful shutdown and waits for it to finish.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shared.shutdown.trigger();
        self.wait().await
    }

    /// Waits until the shutdown signal fires, then drains: no new connections, in-flight
    /// documents finish and are answered, idle connections close over the drain period,
    /// storage is flushed and closed. `Err` if the process should exit non-zero (storage
    /// poisoned).
    pub async fn wait(self) -> anyhow::Result<()> {
        let shutdown = self.shared.shutdown.clone();
        shutdown.triggered().await;
        metrics::gauge!(crate::metrics::READY).set(0.0);
        tracing::info!(drain = ?shutdown.drain(), open = self.connections.len(), "draining connections");
        self.connections.close();
        let cfg = &self.shared.config;
        let budget = shutdown.drain() + cfg.limits.ack_timeout.min(Duration::from_secs(30)) + Duration::from_secs(2);
        if tokio::time::timeout(budget, self.connections.wait()).await.is_err() {
            tracing::warn!(
                left = self.connections.len(),
                "connections still open after the drain budget; closing them"
            );
        }
        self.background_stop.cancel();
        self.background.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.background.wait()).await;
        if let Err(e) = self.shared.store.close().await {
            tracing::warn!(error = %e, "closing storage");
        }
        tracing::info!("gateway stopped");
        match self.fatal.lock().ok().and_then(|f| f.clone()) {
            Some(reason) => bail!(reason),
            None => Ok(()),
        }
    }
}
