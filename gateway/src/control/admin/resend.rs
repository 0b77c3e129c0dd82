//! Resend jobs (`docs/fns.md`): deliver selected documents to the FNS again.
//!
//! * `POST /v1/resend` — create a job: exactly one of `rnm`, `fn_number`, `owner_inn`;
//!   `from` (required) and `to` (default now), RFC 3339 or a date; `types` (form codes).
//!   Audited as `resend.create`. Refused with 409 `fns_not_configured` when the gateway has
//!   no `[fns] url` (the job could not run).
//! * `GET /v1/resend` — jobs, newest first (`state` filter, comma-separated), paginated.
//! * `GET /v1/resend/{id}` — one job with its progress (`selected`, `selection_complete`,
//!   `delivered`, `failed`, `percent`).
//! * `POST /v1/resend/{id}/cancel` — cancel (audited as `resend.cancel`); 409
//!   `already_finished` for a finished job.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use storage::model::{JobState, ResendJob, ResendSelector};
use storage::{Inn, Page, Rnm, Timestamp};
use uuid::Uuid;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, FieldError};
use super::{Ctx, Route, audit, page_request, parse_time};
use crate::control::resend::{self, JobError};

/// Routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::post(
            "/v1/resend",
            "resend.create",
            "Create a resend job (rnm | fn_number | owner_inn, from, to, types)",
            create,
        )
        .body::<CreateJob>()
        .answers(axum::http::StatusCode::CREATED),
        Route::get("/v1/resend", Role::Viewer, "List resend jobs, newest first (state; paginated)", list)
            .query::<ListQuery>(),
        Route::get("/v1/resend/{id}", Role::Viewer, "One resend job with its progress", show),
        Route::post("/v1/resend/{id}/cancel", "resend.cancel", "Cancel a resend job", cancel),
    ]
}

/// A job as shown.
#[derive(Debug, Serialize)]
struct JobView {
    #[serde(flatten)]
    job: ResendJob,
    /// Handled share of the selection, 0–100, once the selection is counted.
    percent: Option<f64>,
}

fn view(job: ResendJob) -> JobView {
    let percent = (job.selection_complete).then(|| {
        if job.selected == 0 {
            100.0
        } else {
            ((job.delivered + job.failed) as f64 * 100.0 / job.selected as f64).min(100.0)
        }
    });
    JobView { job, percent }
}

fn job_error(e: JobError) -> ApiError {
    match e {
        JobError::NotFound(id) => ApiError::not_found(format!("resend job {id} not found")),
        JobError::Invalid(m) => {
            let (field, message) = m.split_once(": ").unwrap_or(("selector", m.as_str()));
            ApiError::validation(vec![FieldError::new(field.trim_start_matches("selector."), message)])
        }
        JobError::Finished(id, state) => {
            ApiError::conflict("already_finished", format!("resend job {id} is already {state}"))
        }
        JobError::Store(e) => e.into(),
    }
}

/// Body of `POST /v1/resend`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateJob {
    #[serde(default)]
    rnm: Option<String>,
    #[serde(default)]
    fn_number: Option<String>,
    #[serde(default)]
    owner_inn: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    types: Vec<u8>,
}

fn present(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

async fn create(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<CreateJob>,
) -> ApiResult<(StatusCode, Json<JobView>)> {
    let mut errs = Vec::new();
    let rnm = match present(&body.rnm).map(Rnm::parse) {
        Some(Err(e)) => {
            errs.push(FieldError::new("rnm", e.to_string()));
            None
        }
        other => other.and_then(Result::ok),
    };
    let fn_number = match present(&body.fn_number).map(ffd::FnNumber::parse_strict) {
        Some(Err(e)) => {
            errs.push(FieldError::new("fn_number", format!("{e:?}: must be 16 digits")));
            None
        }
        other => other.and_then(Result::ok),
    };
    let owner_inn = match present(&body.owner_inn).map(Inn::parse) {
        Some(Err(e)) => {
            errs.push(FieldError::new("owner_inn", e.to_string()));
            None
        }
        other => other.and_then(Result::ok),
    };
    let from = match present(&body.from) {
        None => {
            errs.push(FieldError::new("from", "is required (RFC 3339 or a date)"));
            None
        }
        Some(s) => match parse_time("from", s) {
            Ok(t) => Some(t),
            Err(e) => {
                errs.push(FieldError::new("from", e.message));
                None
            }
        },
    };
    let to = match present(&body.to) {
        None => Some(Timestamp::now()),
        Some(s) => match parse_time("to", s) {
            Ok(t) => Some(t),
            Err(e) => {
                errs.push(FieldError::new("to", e.message));
                None
            }
        },
    };
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let (Some(from), Some(to)) = (from, to) else {
        return Err(ApiError::validation(vec![FieldError::new("from", "is required")]));
    };
    let selector = ResendSelector { rnm, fn_number, owner_inn, from, to, types: body.types };
    resend::validate_selector(&selector).map_err(|m| job_error(JobError::Invalid(m)))?;
    if ctx.shared.config.fns_url().is_none() {
        return Err(ApiError::conflict(
            "fns_not_configured",
            "FNS forwarding is off on this gateway ([fns] url unset): a resend job could not run",
        ));
    }
    let target = "resend".to_owned();
    let after = serde_json::to_value(&selector).unwrap_or(Value::Null);
    let store = ctx.shared.store.clone();
    let actor = caller.actor.clone();
    let job = audit::audited(&ctx, &caller, &target, None, Some(after), async {
        resend::create_job(store.as_ref(), selector, &actor).await.map_err(job_error)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view(job))))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    state: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
}

fn parse_state(s: &str) -> ApiResult<JobState> {
    Ok(match s {
        "pending" => JobState::Pending,
        "running" => JobState::Running,
        "completed" => JobState::Completed,
        "cancelled" => JobState::Cancelled,
        "failed" => JobState::Failed,
        other => {
            return Err(ApiError::invalid_param(
                "state",
                format!("{other:?} is not a job state (pending, running, completed, cancelled, failed)"),
            ));
        }
    })
}

async fn list(State(ctx): State<Ctx>, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Json<Page<JobView>>> {
    let states = present(&q.state)
        .map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(parse_state).collect::<ApiResult<Vec<_>>>())
        .transpose()?
        .unwrap_or_default();
    let page = page_request(q.limit, q.cursor)?;
    let p = ctx.shared.store.list_jobs(&states, page).await?;
    Ok(Json(Page { items: p.items.into_iter().map(view).collect(), next: p.next }))
}

fn parse_id(s: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(s.trim()).map_err(|_| ApiError::invalid_param("id", format!("{s:?} is not a job id (a UUID)")))
}

async fn show(State(ctx): State<Ctx>, ApiPath(id): ApiPath<String>) -> ApiResult<Json<JobView>> {
    let id = parse_id(&id)?;
    let job = ctx.shared.store.get_job(&id).await?.ok_or_else(|| job_error(JobError::NotFound(id)))?;
    Ok(Json(view(job)))
}

async fn cancel(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    _body: Bytes,
) -> ApiResult<Json<JobView>> {
    let id = parse_id(&id)?;
    let before = ctx.shared.store.get_job(&id).await?.ok_or_else(|| job_error(JobError::NotFound(id)))?;
    if before.state.is_terminal() {
        return Err(job_error(JobError::Finished(id, resend::state_name(before.state))));
    }
    let store = ctx.shared.store.clone();
    let target = id.to_string();
    let job = audit::audited(
        &ctx,
        &caller,
        &target,
        serde_json::to_value(&before).ok(),
        Some(serde_json::json!({"state": "cancelled"})),
        async { resend::cancel_job(store.as_ref(), id).await.map_err(job_error) },
    )
    .await?;
    Ok(Json(view(job)))
}
