//! Revenue reports, shifts and FD continuity (issue 21's operator surface). Reads only:
//! viewers may call every route, nothing is audited, nothing is counted per register.
//!
//! * `GET /v1/reports` — receipts and sums by settlement kind, corrections, payment
//!   forms, VAT by rate code 1–12, revenue, average sale and unreadable documents, per
//!   local day, ISO week, month, register, owner or shift, over the registers the filters
//!   select; streamed as one JSON object or CSV ([`produce`]; the arithmetic is
//!   `control::reports`). Checks: [`query`].
//! * `GET /v1/registers/{rnm}/shifts` — each shift of an FN with its close report's
//!   counters beside what was received, and the verdict (`ShiftSummary::check`).
//! * `GET /v1/registers/{rnm}/gaps` — FD continuity of every FN of a register;
//!   `GET /v1/gaps` — every FN of the fleet with FDs missing.

mod continuity;
mod produce;
mod query;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use futures::channel::mpsc;

pub use query::{ReportQuery, zone};

use super::auth::Role;
use super::error::{ApiQuery, ApiResult};
use super::{Ctx, Route};
use produce::Producer;

/// Chunks buffered between the reader and the response body.
const CHANNEL: usize = 2;

/// Routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get(
            "/v1/reports",
            Role::Viewer,
            "Revenue report by day, week, month, register, owner or shift (rnm, owner_inn, tariff, from, to; JSON or CSV, streamed)",
            report,
        )
        .query::<ReportQuery>()
        .streams(&["application/json", "text/csv"]),
        Route::get(
            "/v1/registers/{rnm}/shifts",
            Role::Viewer,
            "Shifts of one FN of a register: close-report counters beside what was received, mismatch flag; paginated",
            continuity::shifts,
        )
        .query::<continuity::ShiftsQuery>(),
        Route::get(
            "/v1/registers/{rnm}/gaps",
            Role::Viewer,
            "FD continuity of every FN of a register: lowest, highest, received, missing, holes",
            continuity::register_gaps,
        ),
        Route::get("/v1/gaps", Role::Viewer, "FNs with FDs never received, fleet-wide; paginated", continuity::fleet_gaps)
            .query::<continuity::GapsQuery>(),
    ]
}

async fn report(State(ctx): State<Ctx>, ApiQuery(q): ApiQuery<ReportQuery>) -> ApiResult<Response> {
    let (by, format, from, to, time_zone) = query::check(&ctx, &q)?;
    let registers = query::registers(&ctx, &q).await?;
    let days = crate::control::reports::day_number(from).unwrap_or(0)..=crate::control::reports::day_number(to).unwrap_or(0);
    let plan = query::Plan { by, format, from, to, days, time_zone, registers };
    let default_zone = ctx.shared.config.reports.default_time_zone.trim().to_owned();
    let mut producer = Producer::new(ctx.shared.store.clone(), plan, &default_zone);
    // the first piece is read before answering, so a store that cannot report at all
    // answers with its status (503), not with a broken body
    let first = producer.next_chunk().await?;
    let (mut tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHANNEL);
    tokio::spawn(async move {
        let mut piece = first;
        while let Some(bytes) = piece {
            if tx.send(Ok(bytes)).await.is_err() {
                return; // the client went away
            }
            piece = match producer.next_chunk().await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "report aborted by a storage error");
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
        }
    });
    let mut resp = Body::from_stream(rx).into_response();
    let ct = match format {
        query::Format::Json => "application/json",
        query::Format::Csv => "text/csv; charset=utf-8",
    };
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(resp)
}
