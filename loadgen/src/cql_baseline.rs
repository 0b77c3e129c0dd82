//! The CQL baseline: what the cluster itself can durably write, measured with the same
//! driver, consistency and concurrency the gateway uses — the CQL analogue of the
//! canned-ack responder. Each "document" is one row of the document's size written
//! straight to the cluster, by `concurrency` workers in a closed loop; the rate and the
//! latency of each write are reported.
//!
//! Modes, to price the designs of the acknowledgment path side by side:
//! * `insert` — one plain `INSERT` per document (the floor);
//! * `lwt` — one `INSERT … IF NOT EXISTS` (a Paxos round: first writer wins);
//! * `read-insert` — a quorum point read, then a plain insert (dedup, then write);
//! * `insert2` — two plain inserts to two partitions in parallel (document + journal).
//!
//! The keyspace (`ofd_bench` unless told) is created with the requested replication
//! factor in data centre `dc1` and dropped at the end unless `--keep`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};
use serde::Serialize;

/// What one write per document does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One plain insert.
    Insert,
    /// One conditional insert (IF NOT EXISTS).
    Lwt,
    /// A quorum point read, then a plain insert.
    ReadInsert,
    /// Two plain inserts to two partitions, in parallel.
    Insert2,
}

/// Configuration of a run.
#[derive(Debug, Clone)]
pub struct CqlBaselineConfig {
    /// Contact points (`host:port`).
    pub nodes: Vec<String>,
    /// Data centre of the cluster.
    pub dc: String,
    /// Keyspace to create and use.
    pub keyspace: String,
    /// Replication factor of that keyspace.
    pub rf: u32,
    /// Writes per document.
    pub mode: Mode,
    /// Bytes of the row's blob (a typical receipt container is ~600).
    pub size: usize,
    /// Documents in flight.
    pub concurrency: usize,
    /// Measured time.
    pub duration: Duration,
    /// Unmeasured warm-up before it.
    pub warmup: Duration,
    /// Request timeout of the driver.
    pub timeout: Duration,
    /// Keep the keyspace afterwards.
    pub keep: bool,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct CqlBaselineReport {
    /// Mode.
    pub mode: Mode,
    /// Nodes the driver knew.
    pub nodes: usize,
    /// Replication factor.
    pub rf: u32,
    /// Concurrency.
    pub concurrency: usize,
    /// Blob size.
    pub size: usize,
    /// Measured seconds.
    pub seconds: f64,
    /// Documents written in the measured time.
    pub documents: u64,
    /// Documents per second.
    pub rate: f64,
    /// Failed writes (timeouts, unavailable) in the measured time.
    pub errors: u64,
    /// Latency percentiles of one document's writes, milliseconds.
    pub p50_ms: f64,
    /// p99.
    pub p99_ms: f64,
    /// p99.9.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

struct Statements {
    insert: PreparedStatement,
    insert_journal: PreparedStatement,
    lwt: PreparedStatement,
    read: PreparedStatement,
}

async fn connect(cfg: &CqlBaselineConfig) -> anyhow::Result<Session> {
    let lb = DefaultPolicy::builder().token_aware(true).permit_dc_failover(false).prefer_datacenter(cfg.dc.clone());
    let profile = ExecutionProfile::builder()
        .consistency(Consistency::LocalQuorum)
        .serial_consistency(Some(SerialConsistency::LocalSerial))
        .request_timeout(Some(cfg.timeout))
        .load_balancing_policy(lb.build())
        .build();
    SessionBuilder::new()
        .known_nodes(&cfg.nodes)
        .default_execution_profile_handle(profile.into_handle())
        .build()
        .await
        .with_context(|| format!("connecting to {}", cfg.nodes.join(",")))
}

async fn prepare(session: &Session, ks: &str) -> anyhow::Result<Statements> {
    let p = |q: String| async move {
        let mut s = session.prepare(q.as_str()).await.with_context(|| format!("preparing {q}"))?;
        s.set_is_idempotent(true);
        anyhow::Ok(s)
    };
    Ok(Statements {
        insert: p(format!("INSERT INTO {ks}.docs (k, fd, body) VALUES (?, ?, ?)")).await?,
        insert_journal: p(format!("INSERT INTO {ks}.journal (part, pos, k, fd) VALUES (?, ?, ?, ?)")).await?,
        lwt: p(format!("INSERT INTO {ks}.docs (k, fd, body) VALUES (?, ?, ?) IF NOT EXISTS")).await?,
        read: p(format!("SELECT body FROM {ks}.docs WHERE k = ? AND fd = ?")).await?,
    })
}

async fn setup(session: &Session, cfg: &CqlBaselineConfig) -> anyhow::Result<()> {
    let ks = &cfg.keyspace;
    if !ks.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        bail!("--keyspace must be lower-case letters, digits and _");
    }
    for q in [
        format!("DROP KEYSPACE IF EXISTS {ks}"),
        format!(
            "CREATE KEYSPACE {ks} WITH replication = {{'class': 'NetworkTopologyStrategy', '{}': {}}}",
            cfg.dc, cfg.rf
        ),
        format!("CREATE TABLE {ks}.docs (k text, fd bigint, body blob, PRIMARY KEY (k, fd))"),
        format!("CREATE TABLE {ks}.journal (part int, pos bigint, k text, fd bigint, PRIMARY KEY (part, pos, k, fd))"),
    ] {
        session.query_unpaged(q.as_str(), ()).await.with_context(|| q.clone())?;
    }
    session.await_schema_agreement().await.context("schema agreement")?;
    Ok(())
}

/// One document's writes.
async fn one(session: &Session, st: &Statements, mode: Mode, worker: usize, n: u64, body: &[u8]) -> anyhow::Result<()> {
    let key = format!("w{worker:05}-{}", n / 4096);
    let fd = i64::try_from(n).unwrap_or(i64::MAX);
    match mode {
        Mode::Insert => {
            session.execute_unpaged(&st.insert, (&key, fd, body)).await?;
        }
        Mode::Lwt => {
            session.execute_unpaged(&st.lwt, (&key, fd, body)).await?;
        }
        Mode::ReadInsert => {
            session.execute_unpaged(&st.read, (&key, fd)).await?;
            session.execute_unpaged(&st.insert, (&key, fd, body)).await?;
        }
        Mode::Insert2 => {
            let part = i32::try_from(worker % 64).unwrap_or(0);
            let pos = i64::try_from(n).unwrap_or(0) * 100_000 + i64::try_from(worker).unwrap_or(0);
            let a = session.execute_unpaged(&st.insert, (&key, fd, body));
            let b = session.execute_unpaged(&st.insert_journal, (part, pos, &key, fd));
            let (a, b) = tokio::join!(a, b);
            a?;
            b?;
        }
    }
    Ok(())
}

/// Runs the baseline and reports.
pub async fn run(cfg: CqlBaselineConfig) -> anyhow::Result<CqlBaselineReport> {
    let session = Arc::new(connect(&cfg).await?);
    setup(&session, &cfg).await?;
    let st = Arc::new(prepare(&session, &cfg.keyspace).await?);
    let body: Arc<Vec<u8>> = Arc::new((0..cfg.size).map(|i| (i * 31 % 251) as u8).collect());
    let start = Instant::now();
    let measure_from = start + cfg.warmup;
    let end = measure_from + cfg.duration;
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..cfg.concurrency {
        let (session, st, body, done, errors) =
            (session.clone(), st.clone(), body.clone(), done.clone(), errors.clone());
        let mode = cfg.mode;
        workers.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds are valid");
            let mut n: u64 = 0;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let r = one(&session, &st, mode, w, n, &body).await;
                n += 1;
                if t0 >= measure_from {
                    match r {
                        Ok(()) => {
                            let _ = hist.record(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX).max(1));
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            hist
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds are valid");
    for w in workers {
        let h = w.await.context("worker")?;
        hist.add(&h).context("merging histograms")?;
    }
    let seconds = cfg.duration.as_secs_f64();
    let documents = done.load(Ordering::Relaxed);
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let report = CqlBaselineReport {
        mode: cfg.mode,
        nodes: session.get_cluster_state().get_nodes_info().len(),
        rf: cfg.rf,
        concurrency: cfg.concurrency,
        size: cfg.size,
        seconds,
        documents,
        rate: documents as f64 / seconds,
        errors: errors.load(Ordering::Relaxed),
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        max_ms: hist.max() as f64 / 1000.0,
    };
    if !cfg.keep {
        let q = format!("DROP KEYSPACE IF EXISTS {}", cfg.keyspace);
        session.query_unpaged(q.as_str(), ()).await.with_context(|| q.clone())?;
    }
    Ok(report)
}
