//! # storage — what the OFD platform keeps, and where
//!
//! * [`ids`] and [`model`]: the domain (registers with validated RNM and INN, tariffs,
//!   documents, FNS deliveries, resend jobs, alert rules and states, the audit log, the
//!   onboarding backlog). Serde types, no backend: `adminctl` uses them with
//!   `default-features = false`.
//! * [`store`]: the async [`Store`] trait, with [`Durability`] travelling with each write.
//! * Backends behind features: `embedded` (fjall, the default) and `scylla`.
//! * `conformance`: one test suite every backend runs.

pub mod error;
pub mod ids;
pub mod metrics;
pub mod model;
pub mod store;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "embedded")]
pub mod embedded;
#[cfg(feature = "testkit")]
pub mod faulty;
#[cfg(feature = "scylla")]
pub mod scylla;
#[cfg(feature = "testkit")]
pub mod tmpfs;

pub use error::StoreError;
pub use ids::{IdError, Inn, Rnm, Timestamp};
pub use store::{
    AlertFilter, AlertStore, AuditFilter, AuditStore, Committed, DeliveryStore, DocumentStore, Durability, Health,
    JobStore, NodeInfo, Page, PageRequest, RegisterFilter, RegisterStore, ReportStore, Store, TariffStore,
};
