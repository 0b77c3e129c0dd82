//! Connection-scale tests (`loadgen idle`): `idle` here checks the options and picks the
//! transport; the phases (`hold`), one held register (`register`), the report beside it.
//! May import docs, registers, stats, transport, verify, run (limits), net and sys.
//!
//! Open N connections at a ramp rate, optionally send one document on each (so the
//! gateway knows who is connected), then hold them all for a while and count who the
//! gateway closed.
//!
//! Each TCP or TLS connection is a file descriptor, and this process may open at most
//! `RLIMIT_NOFILE` (20,000 on the build machines, not raisable); a larger count is refused
//! with the number of processes it needs. QUIC connections share one UDP socket per source
//! address, so they are bounded by memory instead.
//!
//! **Phases**, for scripts that measure the server between them (its RSS per connection
//! before and after the first document): with `ready_file` the phase is written as JSON
//! (`connected` when every attempt finished, `plateau` when every first document was
//! answered, `done` at the end); with `wait_file` the first documents wait until that file
//! exists.
//!
//! **Reconnect storm** (`reconnect`): when the server closes a connection (a restart), the
//! register reconnects — exponential backoff with full jitter between attempts, as a
//! fleet of registers does — and delivers its next document, verified. The report gives,
//! per register, the time from its drop to the acknowledgment of that document, and the
//! wall-clock moments of the first drop and the last recovery, so that several processes
//! can be combined into "time until every register delivered its next document". The
//! hold ends early once every established register has been dropped and has recovered.

mod config;
mod hold;
mod register;
mod report;
mod state;

use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::registers::Population;
use crate::transport::quic::QuicConnector;
use crate::transport::tcp::TcpConnector;
use crate::transport::tls::TlsConnector;
use crate::transport::{SourcePool, TransportKind};
pub use config::{IdleConfig, Reconnect};
use hold::idle_with;
pub use report::{IdleReport, StormReport};

/// Opens, holds and reports.
pub async fn idle(cfg: IdleConfig, cancel: CancellationToken) -> anyhow::Result<IdleReport> {
    crate::net::check_target(cfg.target)?;
    for ip in &cfg.sources {
        anyhow::ensure!(ip.octets()[0] == 127, "source address {ip} is not in 127.0.0.0/8");
    }
    anyhow::ensure!(cfg.connections > 0, "--connections must be at least 1");
    if let Some(r) = cfg.ramp_rate {
        anyhow::ensure!(
            (crate::run::MIN_RATE..=crate::run::MAX_RATE).contains(&r),
            "--ramp-rate must be between {} and {} connections per second",
            crate::run::MIN_RATE,
            crate::run::MAX_RATE
        );
    }
    anyhow::ensure!(cfg.hold <= crate::run::MAX_RUN, "--hold may be at most 30 days");
    anyhow::ensure!(
        cfg.timeout <= crate::run::MAX_WAIT && cfg.connect_timeout <= crate::run::MAX_WAIT,
        "timeouts may be at most one day"
    );
    if let Some(r) = &cfg.reconnect {
        anyhow::ensure!(
            r.backoff_min <= r.backoff_max && r.backoff_max <= crate::run::MAX_WAIT,
            "--reconnect-backoff: MIN must not exceed MAX (at most one day)"
        );
    }
    let pop = Population { count: cfg.connections, ..cfg.population.clone() };
    pop.validate()?;
    if cfg.transport.uses_fd_per_connection() {
        let limit = crate::sys::FileLimit::current().context("reading RLIMIT_NOFILE")?;
        limit.check_connections(cfg.connections, "connections").map_err(anyhow::Error::msg)?;
    }
    if matches!(cfg.transport, TransportKind::Tls | TransportKind::Quic) {
        anyhow::ensure!(!cfg.ca.is_empty(), "TLS and QUIC need --ca or --gateway-data-dir");
    }
    let sources = Arc::new(SourcePool::new(cfg.sources.clone()));
    match cfg.transport {
        TransportKind::Tcp => {
            let c = TcpConnector::new(cfg.target, sources);
            idle_with(c, cfg, pop, cancel).await
        }
        TransportKind::Tls => {
            let c = TlsConnector::new(cfg.target, sources, &cfg.ca, &cfg.server_name, false)?;
            idle_with(c, cfg, pop, cancel).await
        }
        TransportKind::Quic => {
            let c = QuicConnector::new(cfg.target, sources, &cfg.ca, &cfg.server_name, &cfg.quic)?;
            idle_with(c, cfg, pop, cancel).await
        }
    }
}
