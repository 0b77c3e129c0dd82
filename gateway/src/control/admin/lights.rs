//! The fleet's traffic light: every register is green, yellow, red or grey, whether or
//! not an alert ever fired for it (`docs/alerts.md`).
//!
//! * `GET /v1/lights` — registers with their colour, filtered by `state` (a colour),
//!   `owner_inn`, `tariff`; paginated over the registers, so a page filtered by colour may
//!   hold fewer than `limit` items (follow `next` until it is null);
//! * `GET /v1/lights/summary` — how many registers have each colour (they add up to
//!   `total`, the number of registers selected), and with `by=tariff|owner_inn` the same
//!   counts per tariff plan or per owner.
//!
//! Colours come from the firing alert states (few: they are the alerts) and the
//! register's status (suspended = grey); registers are read a page of 1,000 at a time, so
//! memory holds one page and the firing states, never the fleet.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use storage::model::{Register, Severity};
use storage::{Inn, PageRequest, RegisterFilter, Rnm};

use super::alerts::firing_states;
use super::auth::Role;
use super::error::{ApiError, ApiQuery, ApiResult};
use super::{Ctx, Route, page_request};
use crate::control::alerts::{Light, light};

/// Routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get(
            "/v1/lights",
            Role::Viewer,
            "The traffic light of every register (state = a colour, owner_inn, tariff; paginated)",
            list,
        )
        .query::<ListQuery>(),
        Route::get(
            "/v1/lights/summary",
            Role::Viewer,
            "How many registers are green, yellow, red, grey (they add up to total); by=tariff|owner_inn for totals per group",
            summary,
        )
        .query::<SummaryQuery>(),
    ]
}

const COLOURS: [Light; 4] = [Light::Red, Light::Yellow, Light::Green, Light::Grey];

fn parse_light(s: &str) -> ApiResult<Light> {
    COLOURS
        .into_iter()
        .find(|l| l.as_str() == s)
        .ok_or_else(|| ApiError::invalid_param("state", format!("{s:?} is not a colour (red, yellow, green or grey)")))
}

fn present(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn register_filter(owner_inn: &Option<String>, tariff: &Option<String>) -> ApiResult<RegisterFilter> {
    let owner_inn = present(owner_inn)
        .map(|s| Inn::parse(s).map_err(|e| ApiError::invalid_param("owner_inn", e.to_string())))
        .transpose()?;
    Ok(RegisterFilter { owner_inn, tariff: present(tariff).map(str::to_owned), ..RegisterFilter::default() })
}

/// Firing alerts of every register that has one, by severity.
async fn firing(ctx: &Ctx) -> ApiResult<HashMap<Rnm, Vec<Severity>>> {
    let mut out: HashMap<Rnm, Vec<Severity>> = HashMap::new();
    for s in firing_states(ctx).await? {
        out.entry(s.rnm).or_default().push(s.severity);
    }
    Ok(out)
}

/// One register's colour.
#[derive(Debug, Serialize)]
struct RegisterLight {
    rnm: Rnm,
    name: String,
    owner_inn: String,
    tariff: Option<String>,
    status: storage::model::RegisterStatus,
    light: Light,
    /// Firing alerts by severity.
    critical: u64,
    warning: u64,
    info: u64,
}

fn colour(r: &Register, firing: &HashMap<Rnm, Vec<Severity>>) -> RegisterLight {
    let sev = firing.get(&r.rnm).map(Vec::as_slice).unwrap_or_default();
    let count = |s: Severity| sev.iter().filter(|x| **x == s).count() as u64;
    RegisterLight {
        rnm: r.rnm.clone(),
        name: r.name.clone(),
        owner_inn: r.owner_inn.to_string(),
        tariff: r.tariff.clone(),
        status: r.status,
        light: light(r.status, sev.iter().copied()),
        critical: count(Severity::Critical),
        warning: count(Severity::Warning),
        info: count(Severity::Info),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    state: Option<String>,
    owner_inn: Option<String>,
    tariff: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /v1/lights`.
#[derive(Debug, Serialize)]
struct LightPage {
    items: Vec<RegisterLight>,
    next: Option<String>,
}

async fn list(State(ctx): State<Ctx>, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Json<LightPage>> {
    let wanted = present(&q.state).map(parse_light).transpose()?;
    let filter = register_filter(&q.owner_inn, &q.tariff)?;
    let page = page_request(q.limit, q.cursor)?;
    let firing = firing(&ctx).await?;
    let p = ctx.shared.store.list_registers(&filter, page).await?;
    let items = p.items.iter().map(|r| colour(r, &firing)).filter(|l| wanted.is_none_or(|w| l.light == w)).collect();
    Ok(Json(LightPage { items, next: p.next }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SummaryQuery {
    by: Option<String>,
    owner_inn: Option<String>,
    tariff: Option<String>,
}

/// Counts of each colour.
#[derive(Debug, Default, Clone, Serialize)]
struct Counts {
    total: u64,
    red: u64,
    yellow: u64,
    green: u64,
    grey: u64,
}

impl Counts {
    fn add(&mut self, l: Light) {
        self.total += 1;
        match l {
            Light::Red => self.red += 1,
            Light::Yellow => self.yellow += 1,
            Light::Green => self.green += 1,
            Light::Grey => self.grey += 1,
        }
    }
}

/// The counts of one tariff plan or owner.
#[derive(Debug, Serialize)]
struct Group {
    /// The plan's name or the owner's INN; null for registers without a plan.
    key: Option<String>,
    #[serde(flatten)]
    counts: Counts,
}

/// `GET /v1/lights/summary`.
#[derive(Debug, Serialize)]
struct Summary {
    #[serde(flatten)]
    counts: Counts,
    /// `tariff` or `owner_inn` when grouped.
    by: Option<&'static str>,
    /// Counts per group, by key (absent without `by`).
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<Group>>,
}

async fn summary(State(ctx): State<Ctx>, ApiQuery(q): ApiQuery<SummaryQuery>) -> ApiResult<Json<Summary>> {
    let by = match present(&q.by) {
        None => None,
        Some("tariff") => Some("tariff"),
        Some("owner_inn" | "owner-inn") => Some("owner_inn"),
        Some(other) => {
            return Err(ApiError::invalid_param("by", format!("{other:?} is not a grouping (tariff or owner_inn)")));
        }
    };
    let filter = register_filter(&q.owner_inn, &q.tariff)?;
    let firing = firing(&ctx).await?;
    let mut counts = Counts::default();
    let mut groups: BTreeMap<Option<String>, Counts> = BTreeMap::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let p = ctx.shared.store.list_registers(&filter, page.clone()).await?;
        for r in &p.items {
            let l = colour(r, &firing).light;
            counts.add(l);
            let key = match by {
                Some("tariff") => r.tariff.clone(),
                Some(_) => Some(r.owner_inn.to_string()),
                None => continue,
            };
            groups.entry(key).or_default().add(l);
        }
        match p.next {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    let groups = by.map(|_| groups.into_iter().map(|(key, counts)| Group { key, counts }).collect());
    Ok(Json(Summary { counts, by, groups }))
}
