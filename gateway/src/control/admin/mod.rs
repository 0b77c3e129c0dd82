//! The admin HTTP API (`/v1/...`), JSON over HTTP on its own listener (default
//! `127.0.0.1:8080`). Reference: `docs/admin-api.md`.
//!
//! The API is one declarative **route table** ([`route_table`]): method, path template,
//! required role, audit action and handler. The router is built from it, and tests walk
//! the same table, so a route cannot exist without authentication, a role and (for
//! writes) an audit action:
//!
//! * every route is wrapped in one guard: bearer token → [`auth::Caller`] (401
//!   `unauthenticated`), role check (403 `forbidden`), then the handler; the guard counts
//!   `ofd_gateway_admin_requests_total{route,status}` and the latency histogram with the
//!   path *template* as the label (bounded);
//! * unknown paths and methods also authenticate first (401 before 404/405), so the API
//!   cannot be enumerated without a token;
//! * errors are JSON with a stable code and the right status ([`error`]);
//! * writes need role `admin` and are audited before they are applied ([`audit`]);
//! * after every register write the in-memory register index is updated at once
//!   (through `data::LiveView`), so ingestion on this node follows the change immediately; other
//!   nodes pick it up on their periodic refresh (`ingest.registry_refresh`).
//!
//! Adding a noun (e.g. `alerts`) is one file exporting `pub fn routes() -> Vec<Route>`
//! and one name in the `nouns!` list below.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use serde::de::DeserializeOwned;
use storage::{PageRequest, Timestamp};

use crate::metrics as m;
use crate::state::Shared;

pub mod auth;
pub mod error;
pub mod listener;
pub mod throttle;

pub use auth::{Auth, Caller, Role};
pub use error::{ApiError, ApiResult, FieldError};
pub use listener::serve;
pub use throttle::Throttle;

/// Declares the noun modules and the route table made of their `routes()`.
macro_rules! nouns {
    ($($noun:ident),* $(,)?) => {
        $(pub mod $noun;)*

        /// Every admin route, in a stable order.
        pub fn route_table() -> Vec<Route> {
            let mut all = Vec::new();
            $(all.extend($noun::routes());)*
            all
        }
    };
}

nouns!(registers, tariffs, documents, backlog, audit, alerts, lights, resend, fns, reports, openapi);

/// Largest request body (an import of 5,000 rows is ~1.5 MB).
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// State of the admin handlers.
#[derive(Clone)]
pub struct Ctx {
    /// The gateway's shared handles.
    pub shared: Shared,
    /// Configured tokens.
    pub auth: Arc<Auth>,
    /// Failed authentications per source address.
    pub throttle: Arc<Throttle>,
}

impl Ctx {
    /// Handles for a gateway: its tokens and its failure limit from the configuration.
    pub fn new(shared: Shared, auth: Arc<Auth>) -> Self {
        let a = &shared.config.admin;
        let throttle = Arc::new(Throttle::new(a.max_auth_failures, a.auth_failure_window));
        Self { shared, auth, throttle }
    }
}

/// One row of the route table.
#[derive(Clone)]
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path template, e.g. `/v1/registers/{rnm}`.
    pub path: &'static str,
    /// Least role allowed.
    pub role: Role,
    /// Audit action recorded by writes (empty for reads).
    pub action: &'static str,
    /// One line for the route list in docs and `--help`.
    pub summary: &'static str,
    /// Query parameters, from the handler's query type (OpenAPI).
    pub query: Option<fn() -> Vec<utoipa::openapi::path::Parameter>>,
    /// Request body: its schema name and schema, from the handler's body type, and
    /// whether it is required (OpenAPI).
    pub body: Option<(fn() -> openapi::BodySchema, bool)>,
    /// Status of a successful answer.
    pub ok: StatusCode,
    /// Media types of a successful answer (JSON unless streamed).
    pub produces: &'static [&'static str],
    handler: MethodRouter<Ctx>,
}

fn query_params<T: utoipa::IntoParams>() -> Vec<utoipa::openapi::path::Parameter> {
    T::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query))
}

fn body_schema<T: utoipa::ToSchema>() -> openapi::BodySchema {
    let mut deps = Vec::new();
    T::schemas(&mut deps);
    openapi::BodySchema { name: T::name().into_owned(), schema: <T as utoipa::PartialSchema>::schema(), deps }
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("role", &self.role)
            .field("action", &self.action)
            .finish()
    }
}

impl Route {
    fn new<H, T>(
        method: Method,
        filter: MethodFilter,
        path: &'static str,
        role: Role,
        action: &'static str,
        summary: &'static str,
        handler: H,
    ) -> Self
    where
        H: Handler<T, Ctx>,
        T: 'static,
    {
        Self {
            method,
            path,
            role,
            action,
            summary,
            query: None,
            body: None,
            ok: StatusCode::OK,
            produces: &["application/json"],
            handler: on(filter, handler),
        }
    }

    /// Documents the query parameters: the handler's `ApiQuery<T>` type.
    pub fn query<T: utoipa::IntoParams>(mut self) -> Self {
        self.query = Some(query_params::<T>);
        self
    }

    /// Documents the request body: the handler's `ApiJson<T>` type.
    pub fn body<T: utoipa::ToSchema>(mut self) -> Self {
        self.body = Some((body_schema::<T>, true));
        self
    }

    /// Documents an optional request body.
    pub fn optional_body<T: utoipa::ToSchema>(mut self) -> Self {
        self.body = Some((body_schema::<T>, false));
        self
    }

    /// The status of a successful answer (201 for creations, 204 for deletions).
    pub fn answers(mut self, status: StatusCode) -> Self {
        self.ok = status;
        self
    }

    /// A streamed answer in these media types.
    pub fn streams(mut self, media: &'static [&'static str]) -> Self {
        self.produces = media;
        self
    }

    /// A read route.
    pub fn get<H, T>(path: &'static str, role: Role, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, Ctx>,
        T: 'static,
    {
        Self::new(Method::GET, MethodFilter::GET, path, role, "", summary, handler)
    }

    /// A write route (role admin), audited as `action`.
    pub fn post<H, T>(path: &'static str, action: &'static str, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, Ctx>,
        T: 'static,
    {
        Self::new(Method::POST, MethodFilter::POST, path, Role::Admin, action, summary, handler)
    }

    /// A read-only POST (a query whose parameters do not fit a URL); role `role`, not
    /// audited.
    pub fn post_read<H, T>(path: &'static str, role: Role, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, Ctx>,
        T: 'static,
    {
        Self::new(Method::POST, MethodFilter::POST, path, role, "", summary, handler)
    }

    /// A DELETE route (role admin), audited as `action`.
    pub fn delete<H, T>(path: &'static str, action: &'static str, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, Ctx>,
        T: 'static,
    {
        Self::new(Method::DELETE, MethodFilter::DELETE, path, Role::Admin, action, summary, handler)
    }

    /// True for routes that change state (they are audited).
    pub fn is_write(&self) -> bool {
        !self.action.is_empty()
    }
}

/// What the guard knows about the route it protects.
#[derive(Debug, Clone, Copy)]
struct RouteMeta {
    path: &'static str,
    role: Role,
    action: &'static str,
}

/// The admin router for a running gateway.
pub fn router(shared: Shared) -> Router {
    let auth = Arc::new(Auth::from_config(&shared.config));
    build(Ctx::new(shared, auth), route_table())
}

/// Builds a router from a route table.
pub fn build(ctx: Ctx, routes: Vec<Route>) -> Router {
    let mut by_path: BTreeMap<&'static str, MethodRouter<Ctx>> = BTreeMap::new();
    for r in routes {
        let meta = RouteMeta { path: r.path, role: r.role, action: r.action };
        let guarded = r.handler.layer(middleware::from_fn_with_state((ctx.clone(), meta), guard));
        let merged = match by_path.remove(r.path) {
            Some(existing) => existing.merge(guarded),
            None => guarded,
        };
        by_path.insert(r.path, merged);
    }
    let mut app = Router::new();
    for (path, mr) in by_path {
        app = app.route(path, mr.fallback(unmatched));
    }
    app.fallback(unmatched).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)).with_state(ctx)
}

fn peer(req: &Request) -> Option<SocketAddr> {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

fn observe(route: &'static str, status: StatusCode, started: Instant) {
    metrics::counter!(m::ADMIN_REQUESTS, "route" => route, "status" => status.as_u16().to_string()).increment(1);
    metrics::histogram!(m::ADMIN_REQUEST_SECONDS, "route" => route).record(started.elapsed().as_secs_f64());
}

fn authenticate(ctx: &Ctx, headers: &HeaderMap, source: Option<SocketAddr>, route: &str) -> Result<Caller, ApiError> {
    if let Some(ip) = source.map(|s| s.ip())
        && let Some(wait) = ctx.throttle.blocked(ip)
    {
        tracing::warn!(route, peer = ?source, "admin API: too many failed authentications from this address");
        let secs = wait.as_secs().max(1);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failures",
            format!("too many failed authentications from {ip}; try again in {secs} s"),
        )
        .with_retry_after(secs));
    }
    ctx.auth.authenticate(headers, source).inspect_err(|e| {
        ctx.throttle.failed(source.map(|s| s.ip()));
        tracing::warn!(route, peer = ?source, reason = %e.message, "admin API: authentication failed");
    })
}

async fn guard(State((ctx, meta)): State<(Ctx, RouteMeta)>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let source = peer(&req);
    let resp = match authenticate(&ctx, req.headers(), source, meta.path) {
        Err(e) => e.into_response(),
        Ok(caller) if caller.role < meta.role => {
            tracing::warn!(route = meta.path, actor = %caller.actor, peer = ?source, "admin API: permission denied");
            ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "role {} may not call {} {} (needs {})",
                    caller.role.as_str(),
                    req.method(),
                    meta.path,
                    meta.role.as_str()
                ),
            )
            .into_response()
        }
        Ok(mut caller) => {
            caller.action = meta.action;
            if !meta.action.is_empty() {
                tracing::info!(route = meta.path, action = meta.action, actor = %caller.actor, peer = ?source, "admin API: write");
            }
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
    };
    observe(meta.path, resp.status(), started);
    resp
}

/// Unknown path or method: authenticate first (401), then 404 or 405.
async fn unmatched(State(ctx): State<Ctx>, req: Request) -> Response {
    let started = Instant::now();
    let resp = match authenticate(&ctx, req.headers(), peer(&req), "unmatched") {
        Err(e) => e.into_response(),
        Ok(_) => {
            let known = route_table().iter().any(|r| path_matches(r.path, req.uri().path()));
            if known {
                ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    format!("{} is not allowed on {}", req.method(), req.uri().path()),
                )
                .into_response()
            } else {
                ApiError::not_found(format!("no admin route {}", req.uri().path())).into_response()
            }
        }
    };
    observe("unmatched", resp.status(), started);
    resp
}

/// Whether a concrete path matches a template (`{param}` matches one segment).
pub fn path_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

// ---------------------------------------------------------------- shared helpers

/// Default page size of list routes.
pub const DEFAULT_LIMIT: u32 = 100;

/// A page request from `limit` and `cursor` query parameters (limit 1..=1000).
pub fn page_request(limit: Option<u32>, cursor: Option<String>) -> ApiResult<PageRequest> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > PageRequest::MAX_LIMIT {
        return Err(ApiError::invalid_param("limit", format!("must be between 1 and {}", PageRequest::MAX_LIMIT)));
    }
    Ok(PageRequest { limit, cursor: cursor.filter(|c| !c.is_empty()) })
}

/// Parses a time parameter: RFC 3339, or a date `YYYY-MM-DD` (midnight UTC).
pub fn parse_time(field: &str, s: &str) -> ApiResult<Timestamp> {
    let s = s.trim();
    if let Ok(t) = Timestamp::parse_rfc3339(s) {
        return Ok(t);
    }
    let date_fmt = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &date_fmt) {
        let secs = d.midnight().assume_utc().unix_timestamp();
        return Ok(Timestamp::from_unix_secs(secs));
    }
    Err(ApiError::invalid_param(
        field,
        format!("{s:?} is not a time: expected RFC 3339 (2026-11-23T10:00:00Z) or a date (2026-11-23)"),
    ))
}

/// Parses a duration parameter ("24h", "30m", "7d").
pub fn parse_duration(field: &str, s: &str) -> ApiResult<std::time::Duration> {
    humantime::parse_duration(s.trim())
        .map_err(|e| ApiError::invalid_param(field, format!("{s:?} is not a duration ({e}); write e.g. 24h, 30m, 7d")))
}

/// A JSON body that may be empty (then `T::default()`).
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request("bad_json", format!("invalid JSON body: {e}")))
}

#[cfg(test)]
mod tests;
