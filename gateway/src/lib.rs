//! # gateway — the OFD ingest gateway
//!
//! Accepts register connections over plain TCP, TLS and QUIC, frames and validates each
//! message with [`ffd`], checks the register, writes the document durably through a
//! [`storage::Store`], and only then answers with the operator acknowledgment. See
//! `ARCHITECTURE.md` for the data path.
//!
//! Two planes, and the few pieces they share:
//!
//! * [`data`] — the data plane: a register's socket to its acknowledgment (the hot path);
//! * [`control`] — the control plane: admin API, alerts, FNS forwarding, resend jobs;
//! * shared: [`config`], [`metrics`], [`health`], [`state`], [`shutdown`], [`process`],
//!   [`tls`] (certificates for either plane), and [`server`], which wires both planes
//!   together.
//!
//! The data plane never imports the control plane; the control plane sees the data plane
//! only through [`data::LiveView`]. `gateway/tests/architecture.rs` fails if either rule
//! (or an import circle anywhere in the workspace) appears.

pub mod control;
pub mod data;

pub mod config;
pub mod health;
pub mod metrics;
pub mod process;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod tls;

pub use config::Config;
pub use server::{Running, start, start_with_store};
