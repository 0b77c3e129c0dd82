//! Forwarding of accepted documents to the tax service (FNS).
//!
//! The store queues every newly stored document in the outbox atomically with its write
//! ([`storage::DeliveryStore`]), so nothing accepted can be forgotten. This module drains
//! the outbox:
//!
//! * [`client`] builds the delivery payload (the FNS JSON form from [`ffd::json`] when the
//!   container decodes, else the raw container in base64 with its metadata) and POSTs it
//!   with `Idempotency-Key: <FN>:<FD>`, so that a receiver deduplicates what at-least-once
//!   delivery may repeat.
//! * [`forwarder`] leases delivery partitions through the store (`fns-partition-<p>`),
//!   pulls due deliveries, sends them with bounded concurrency, marks them delivered on a
//!   2xx answer and reschedules them with exponential backoff and jitter otherwise. A
//!   delivered document leaves the outbox and is never sent again except by a resend job
//!   ([`crate::control::resend`]).
//! * [`receiver`] is the local FNS receiver (`fns-receiver` binary): a deduplicating sink
//!   with statistics and failure injection, for demos and tests.

pub mod client;
pub mod forwarder;
pub mod receiver;

use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use client::{FnsClient, SendError, payload};
pub use forwarder::Forwarder;

use crate::state::Shared;

/// Delay before retry number `attempt` (0 for the first retry): `initial · 2^attempt`,
/// capped at `max`, then "equal jitter" — a random point in the upper half — so that
/// documents failed together do not come back together.
pub fn backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX);
    let full = initial.saturating_mul(factor).min(max);
    let half = full / 2;
    let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    let extra = if jitter_ms == 0 { 0 } else { rand::rng().random_range(0..=jitter_ms) };
    (half + Duration::from_millis(extra)).max(Duration::from_millis(1))
}

/// Spawns the forwarder (when `[fns] url` is set) and the backlog sampler (always: an
/// unconfigured or failing endpoint is exactly when the backlog matters).
pub fn spawn(shared: &Shared, tasks: &TaskTracker, stop: &CancellationToken) -> anyhow::Result<()> {
    let cfg = &shared.config.fns;
    tasks.spawn(forwarder::backlog_loop(shared.store.clone(), cfg.backlog_interval, stop.clone()));
    if let Some(url) = shared.config.fns_url() {
        let client = FnsClient::new(url, cfg.timeout, cfg.concurrency)?;
        let fwd = Forwarder::new(shared.store.clone(), client, cfg.clone(), shared.node_id.clone());
        tasks.spawn(fwd.run(stop.clone()));
        tracing::info!(url, "FNS forwarding on");
    } else {
        tracing::warn!("FNS forwarding is off ([fns] url unset): accepted documents wait in the outbox");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let i = Duration::from_secs(1);
        let m = Duration::from_secs(60);
        for attempt in 0..40 {
            let full = i.saturating_mul(1u32 << attempt.min(30)).min(m);
            for _ in 0..20 {
                let d = backoff(i, m, attempt);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
        assert!(backoff(Duration::ZERO, Duration::ZERO, 3) >= Duration::from_millis(1));
    }
}
