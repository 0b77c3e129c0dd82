//! # gateway — the OFD ingest gateway
//!
//! Accepts register connections over plain TCP, TLS and QUIC, frames and validates each
//! message with [`ffd`], checks the register, writes the document durably through a
//! [`storage::Store`], and only then answers with the operator acknowledgment. See
//! `ARCHITECTURE.md` for the data path.

pub mod admin;
pub mod alerts;
pub mod backlog;
pub mod close;
pub mod config;
pub mod fns;
pub mod health;
pub mod ingest;
pub mod listeners;
pub mod metrics;
pub mod process;
pub mod quic;
pub mod registry;
pub mod resend;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod signer;
pub mod state;
pub mod tls;

pub use config::Config;
pub use server::{Running, start, start_with_store};
