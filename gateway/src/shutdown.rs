//! Graceful shutdown: one signal shared by every task, with the moment it fired, so each
//! idle connection can close at its own random offset within the drain period (thousands
//! of registers must not all reconnect in the same second).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

/// The shutdown signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    token: CancellationToken,
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    started: OnceLock<tokio::time::Instant>,
    drain: Duration,
}

impl Shutdown {
    /// A signal with a drain period.
    pub fn new(drain: Duration) -> Self {
        Self { token: CancellationToken::new(), inner: Arc::new(Inner { started: OnceLock::new(), drain }) }
    }

    /// Fires the signal (idempotent).
    pub fn trigger(&self) {
        self.inner.started.get_or_init(tokio::time::Instant::now);
        self.token.cancel();
    }

    /// Whether it fired.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when it fires.
    pub async fn triggered(&self) {
        self.token.cancelled().await;
    }

    /// The token (for tasks that only need cancellation).
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// The drain period.
    pub fn drain(&self) -> Duration {
        self.inner.drain
    }

    /// A connection's random moment within the drain period.
    pub fn random_offset(&self) -> Duration {
        let ms = u64::try_from(self.inner.drain.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 { Duration::ZERO } else { Duration::from_millis(rand::rng().random_range(0..ms)) }
    }

    /// Resolves at `offset` after the signal fired.
    pub async fn close_at(&self, offset: Duration) {
        self.token.cancelled().await;
        let start = self.inner.started.get().copied().unwrap_or_else(tokio::time::Instant::now);
        tokio::time::sleep_until(start + offset).await;
    }
}
