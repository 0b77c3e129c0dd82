//! The admin HTTP API (`/v1/...`) on its own listener.

use axum::Router;

use crate::state::Shared;

/// The admin router.
pub fn router(shared: Shared) -> Router {
    let _ = shared;
    Router::new()
}
