//! FNS forwarding status (`docs/fns.md`):
//!
//! * `GET /v1/fns` — whether forwarding is on, the endpoint, and the backlog (documents
//!   not yet delivered, age of the oldest);
//! * `GET /v1/fns/deliveries/{fn_number}/{fd}` — delivery state of one document
//!   (pending/delivered, attempts, next attempt, last error, delivered at).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use storage::Timestamp;
use storage::model::{BacklogStats, Delivery, DocumentKey};

use super::auth::Role;
use super::error::{ApiError, ApiPath, ApiResult};
use super::{Ctx, Route};

/// Routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/v1/fns", Role::Viewer, "FNS forwarding: endpoint and backlog", status),
        Route::get("/v1/fns/deliveries/{fn_number}/{fd}", Role::Viewer, "FNS delivery state of one document", delivery),
    ]
}

/// `GET /v1/fns`.
#[derive(Debug, Serialize)]
struct Status {
    /// Forwarding is configured on this node.
    enabled: bool,
    /// The endpoint.
    url: Option<String>,
    /// Outbox size and oldest entry (whole store).
    backlog: BacklogStats,
    /// Age of the oldest undelivered document, seconds.
    oldest_age_secs: Option<u64>,
}

async fn status(State(ctx): State<Ctx>) -> ApiResult<Json<Status>> {
    let backlog = ctx.shared.store.backlog().await?;
    let url = ctx.shared.config.fns_url().map(str::to_owned);
    Ok(Json(Status {
        enabled: url.is_some(),
        url,
        oldest_age_secs: backlog.oldest_queued_at.map(|t| Timestamp::now().since(t).as_secs()),
        backlog,
    }))
}

async fn delivery(
    State(ctx): State<Ctx>,
    ApiPath((fn_number, fd)): ApiPath<(String, String)>,
) -> ApiResult<Json<Delivery>> {
    let fn_number = ffd::FnNumber::parse_strict(fn_number.trim())
        .map_err(|_| ApiError::invalid_param("fn_number", format!("{fn_number:?} is not 16 digits")))?;
    let fd: u32 =
        fd.trim().parse().map_err(|_| ApiError::invalid_param("fd", format!("{fd:?} is not a document number")))?;
    let key = DocumentKey { fn_number, fd };
    ctx.shared
        .store
        .get_delivery(&key)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no delivery of document {fn_number}/{fd}")))
}
