//! The onboarding backlog: FNs that tried to deliver documents but belong to no register,
//! with attempt counts, first/last seen, the RNM/INN their documents claimed and the last
//! peer address. FNs onboarded since (present in the register index) are left out (and
//! dropped from storage), so the list is what still needs onboarding.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use storage::Page;
use storage::model::UnknownFn;

use super::auth::Role;
use super::error::{ApiQuery, ApiResult};
use super::{Ctx, Route, page_request};

/// Routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get(
            "/v1/backlog",
            Role::Viewer,
            "Unknown FNs that tried to send documents (counts, first/last seen); paginated",
            list,
        )
        .query::<ListQuery>(),
    ]
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list(State(ctx): State<Ctx>, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Json<Page<UnknownFn>>> {
    let page = page_request(q.limit, q.cursor)?;
    let mut p = ctx.shared.store.list_unknown_fns(page).await?;
    let mut onboarded = Vec::new();
    p.items.retain(|u| {
        let known = ctx.shared.data.knows_fn(&u.fn_number);
        if known {
            onboarded.push(u.fn_number);
        }
        !known
    });
    for f in onboarded {
        if let Err(e) = ctx.shared.store.remove_unknown_fn(&f).await {
            tracing::debug!(error = %e, "could not drop an onboarded FN from the backlog");
        }
    }
    Ok(Json(p))
}
