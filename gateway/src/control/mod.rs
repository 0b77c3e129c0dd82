//! **The control plane**: what operators talk to and what runs beside ingest — the admin
//! API, alert evaluation and notification, FNS forwarding, resend jobs.
//!
//! May import the shared pieces (`config`, `metrics`, `state`, `health`, `tls`), `ffd`
//! and `storage`; of the data plane only [`crate::data::LiveView`] (through
//! [`crate::state::Shared`]). Background work here is leased through the store, so a
//! cluster runs each piece once.

pub mod admin;
pub mod alerts;
pub mod fns;
pub mod resend;
