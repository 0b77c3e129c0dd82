//! State shared by the planes of one gateway process: ingest, admin API, background work.

use std::sync::Arc;

use storage::Store;

use crate::config::Config;
use crate::data::LiveView;
use crate::health::Readiness;
use crate::shutdown::Shutdown;

/// Shared handles.
#[derive(Clone)]
pub struct Shared {
    /// Effective configuration.
    pub config: Arc<Config>,
    /// Storage.
    pub store: Arc<dyn Store>,
    /// The data plane as the control plane may see it (admin changes to registers are
    /// applied to the ingest index at once through it).
    pub data: LiveView,
    /// Readiness.
    pub readiness: Arc<Readiness>,
    /// Graceful shutdown.
    pub shutdown: Shutdown,
    /// This node's name.
    pub node_id: String,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("node_id", &self.node_id).finish_non_exhaustive()
    }
}
