//! What an idle run is asked to do: how many connections, how fast, how long to hold,
//! whether to send a first document, and how registers come back after a drop.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use rustls::pki_types::CertificateDer;

use crate::registers::Population;
use crate::transport::TransportKind;
use crate::transport::quic::QuicOptions;

/// Reconnect behaviour after the server dropped a connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reconnect {
    /// Upper bound of the first (jittered) wait, and the base of the exponential backoff.
    pub backoff_min: Duration,
    /// Largest wait between two attempts.
    pub backoff_max: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self { backoff_min: Duration::from_millis(100), backoff_max: Duration::from_secs(1) }
    }
}

impl Reconnect {
    /// The wait before attempt `n` (0-based): uniform in `[0, min(max, min·2ⁿ)]`.
    pub fn wait(&self, attempt: u32, rng: &mut impl rand::Rng) -> Duration {
        let cap = self.backoff_min.saturating_mul(1u32 << attempt.min(20)).min(self.backoff_max);
        let ms = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        if ms == 0 { Duration::ZERO } else { Duration::from_micros(rng.random_range(0..=ms)) }
    }
}

/// What to hold.
#[derive(Debug, Clone)]
pub struct IdleConfig {
    /// Target (loopback only).
    pub target: SocketAddr,
    /// Transport.
    pub transport: TransportKind,
    /// Trusted certificates (TLS, QUIC).
    pub ca: Vec<CertificateDer<'static>>,
    /// TLS server name.
    pub server_name: String,
    /// Source addresses.
    pub sources: Vec<Ipv4Addr>,
    /// Connections to open (connection `i` belongs to register `first + i`).
    pub connections: u64,
    /// Registers (for `send_first`).
    pub population: Population,
    /// FD of the first document of every register.
    pub fd_start: u32,
    /// New connections per second (unlimited if `None`).
    pub ramp_rate: Option<f64>,
    /// How long to hold after the plateau (a reconnect storm ends it early when every
    /// register recovered).
    pub hold: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Send one document (an open-shift report) on each connection and verify its ack.
    pub send_first: bool,
    /// Reply timeout for that document.
    pub timeout: Duration,
    /// QUIC options (keep-alive is what holds QUIC connections past the idle timeout).
    pub quic: QuicOptions,
    /// Write the phase here as JSON (`connected`, `plateau`, `done`).
    pub ready_file: Option<PathBuf>,
    /// Send the first documents only once this file exists (then at the ramp rate).
    pub wait_file: Option<PathBuf>,
    /// Reconnect and deliver the next document when the server drops a connection.
    pub reconnect: Option<Reconnect>,
    /// Write one CSV line per recovery here (register, drop and recovery times).
    pub storm_csv: Option<PathBuf>,
    /// Progress line on stderr (terminal only).
    pub progress: bool,
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    #[test]
    fn backoff_is_jittered_exponential_and_capped() {
        let r = Reconnect { backoff_min: Duration::from_millis(100), backoff_max: Duration::from_secs(1) };
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for attempt in 0..30 {
            let cap = Duration::from_millis(100 * (1u64 << attempt.min(10))).min(Duration::from_secs(1));
            for _ in 0..50 {
                assert!(r.wait(attempt, &mut rng) <= cap, "attempt {attempt}");
            }
        }
        // jitter: not always the cap
        let waits: Vec<Duration> = (0..50).map(|_| r.wait(5, &mut rng)).collect();
        assert!(waits.iter().any(|w| *w < Duration::from_millis(900)));
        let zero = Reconnect { backoff_min: Duration::ZERO, backoff_max: Duration::ZERO };
        assert_eq!(zero.wait(3, &mut rng), Duration::ZERO);
    }
}
