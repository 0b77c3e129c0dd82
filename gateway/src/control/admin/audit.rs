//! The audit log: every mutating admin call is recorded — who (token name), what
//! (action), on what (target), when, from where (peer), and the state before and after —
//! **before** the change is applied and before the response is sent.
//!
//! Order of a mutating call: read the current state, compute the new one, append the
//! audit entry durably, then write the change. If the audit entry cannot be written the
//! call fails with 503 `audit_unavailable` and nothing is changed (fail closed, as Vault
//! does). If the change itself then fails (a concurrent edit, storage down), a second
//! entry with the action suffixed `.failed` and the error as `after` is appended (best
//! effort), so the log never claims a change that did not happen without saying so.
//!
//! Route: `GET /v1/audit` (viewer), newest first, filters `actor`, `action` (prefix),
//! `target`, `since`.

use std::future::Future;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use storage::model::AuditEntry;
use storage::{AuditFilter, Page, PageRequest, Timestamp};

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiQuery, ApiResult};
use super::{Ctx, Route, page_request, parse_time};

/// Routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get(
            "/v1/audit",
            Role::Viewer,
            "Audit log, newest first (actor, action prefix, target, since; paginated)",
            list,
        )
        .query::<ListQuery>(),
    ]
}

/// Appends an audit entry for the caller's action; 503 when it cannot be written.
pub async fn record(
    ctx: &Ctx,
    caller: &Caller,
    target: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> ApiResult<()> {
    record_action(ctx, caller, caller.action, target, before, after).await
}

async fn record_action(
    ctx: &Ctx,
    caller: &Caller,
    action: &str,
    target: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> ApiResult<()> {
    let entry = AuditEntry {
        id: uuid::Uuid::now_v7(),
        at: Timestamp::now(),
        actor: caller.actor.clone(),
        action: action.to_owned(),
        target: target.to_owned(),
        before,
        after,
        source: caller.source.map(|s| s.to_string()),
    };
    match ctx.shared.store.append_audit(&entry).await {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::error!(error = %e, action, "audit log write failed; refusing the admin call");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                format!("the audit log cannot be written ({e}); nothing was changed"),
            ))
        }
    }
}

/// Records the action, then runs `apply`; if `apply` fails, records `<action>.failed`.
pub async fn audited<T, F>(
    ctx: &Ctx,
    caller: &Caller,
    target: &str,
    before: Option<Value>,
    after: Option<Value>,
    apply: F,
) -> ApiResult<T>
where
    F: Future<Output = ApiResult<T>>,
{
    record(ctx, caller, target, before, after).await?;
    match apply.await {
        Ok(v) => Ok(v),
        Err(e) => {
            let failed = format!("{}.failed", caller.action);
            let detail = serde_json::json!({"error": {"code": e.code, "message": e.message}});
            if let Err(again) = record_action(ctx, caller, &failed, target, None, Some(detail)).await {
                tracing::error!(error = %again.message, "could not record the failure of an audited admin call");
            }
            Err(e)
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    since: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list(State(ctx): State<Ctx>, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Json<Page<AuditEntry>>> {
    let filter = AuditFilter {
        actor: q.actor.filter(|s| !s.is_empty()),
        action_prefix: q.action.filter(|s| !s.is_empty()),
        target: q.target.filter(|s| !s.is_empty()),
        since: q.since.as_deref().map(|s| parse_time("since", s)).transpose()?,
    };
    let page: PageRequest = page_request(q.limit, q.cursor)?;
    Ok(Json(ctx.shared.store.list_audit(&filter, page).await?))
}
