//! # loadgen — cash-register simulator and benchmark driver
//!
//! Simulates many registers (KKT), each with its own fiscal drive (FN), registration
//! number (RNM) and owner, producing a realistic, valid sequence of fiscal documents, and
//! sends them to the gateway over plain TCP, TLS or QUIC. Every acknowledgment is
//! verified; latency is recorded in HdrHistograms measured from the *intended* send time
//! (open loop) so that queueing in the system under test is not hidden.
//!
//! Modules, in data-flow order:
//! * [`registers`] — register identities, reproducible from `(seed, index)`;
//! * [`docs`] — the document sequence of one register (shifts, receipts, reports) and
//!   injected faults, each with the outcome the gateway must produce;
//! * [`transport`] — TCP, TLS and QUIC clients behind one [`transport::Connector`] trait,
//!   with source-address spreading over `127.0.0.x`;
//! * [`run`] — the scheduler: open and closed loops, persistent and per-document
//!   connections, ramp, resends and duplicates;
//! * [`verify`] — acknowledgment checks by mismatch kind;
//! * [`stats`] — histograms, counters, thresholds and the report (human and JSON);
//! * [`idle`] — connection-scale tests (open N connections and hold them);
//! * [`baseline`] — the trivial responder that is this machine's practical limit;
//! * [`onboard`] — register import through the gateway's admin API;
//! * [`pacer`] — the sub-millisecond timer of the open-loop schedule;
//! * [`net`] and [`sys`] — loopback-only address rules, file-descriptor limit.

pub mod baseline;
pub mod cql_baseline;
pub mod docs;
pub mod idle;
pub mod net;
pub mod onboard;
pub mod pacer;
pub mod registers;
pub mod run;
pub mod stats;
pub mod sys;
pub mod transport;
pub mod verify;

/// Installs the ring crypto provider as the process default (rustls and reqwest need one;
/// calling it twice is harmless).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
