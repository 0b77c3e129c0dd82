//! Alert rules, alert states with the per-register traffic light, and webhook
//! notifications (`docs/alerts.md`).
//!
//! * `GET/POST /v1/alerts/rules`, `GET/DELETE /v1/alerts/rules/{name}`,
//!   `POST /v1/alerts/rules/{name}/enable|disable` — rules (writes audited as
//!   `alert_rule.*`, with the rule before and after);
//! * `GET /v1/alerts` — states, filtered by `rule`, `state` (firing|resolved), `rnm`,
//!   `owner_inn`; each page carries the traffic light of the registers it names (with
//!   `owner_inn` or `rnm`: of every register selected, green ones included) and a summary
//!   of the colours;
//! * `GET /v1/alerts/notifications` — webhook deliveries, newest first, with attempts,
//!   next attempt, delivery time, last error, abandoned.
//!
//! A rule body is the model's JSON: `{"name", "condition": {"kind": "silent", "for_secs":
//! 86400}, "scope": {"type": "owner_inn", "value": "7702203276"}, "severity", "enabled",
//! "webhook"}` (`scope` defaults to all registers, `severity` to warning, `enabled` to
//! true).

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use storage::model::{
    AlertCondition, AlertNotification, AlertRule, AlertScope, AlertState, AlertStatus, RegisterStatus, Severity,
};
use storage::{AlertFilter, Inn, Page, PageRequest, RegisterFilter, Rnm, Timestamp};

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, FieldError};
use super::{Ctx, Route, audit, page_request};
use crate::control::alerts::{Light, condition, light, validate_rule};

/// Routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/v1/alerts/rules", Role::Viewer, "List alert rules with their firing counts", list_rules),
        Route::post("/v1/alerts/rules", "alert_rule.create", "Create an alert rule", create_rule)
            .body::<RuleInput>()
            .answers(StatusCode::CREATED),
        Route::get("/v1/alerts/rules/{name}", Role::Viewer, "One alert rule with its firing count", show_rule),
        Route::post("/v1/alerts/rules/{name}/enable", "alert_rule.enable", "Enable an alert rule", enable_rule),
        Route::post(
            "/v1/alerts/rules/{name}/disable",
            "alert_rule.disable",
            "Disable an alert rule (its firing alerts resolve at the next evaluation)",
            disable_rule,
        ),
        Route::delete(
            "/v1/alerts/rules/{name}",
            "alert_rule.delete",
            "Delete an alert rule and its alert states",
            delete_rule,
        )
        .answers(StatusCode::NO_CONTENT),
        Route::get(
            "/v1/alerts",
            Role::Viewer,
            "Alert states with the traffic light per register (rule, state, rnm, owner_inn; paginated)",
            list_alerts,
        )
        .query::<AlertQuery>(),
        Route::get(
            "/v1/alerts/notifications",
            Role::Viewer,
            "Webhook notifications and their delivery state, newest first (paginated)",
            list_notifications,
        )
        .query::<NotificationQuery>(),
    ]
}

// ---------------------------------------------------------------- rules

/// A rule as shown: the stored rule, a description and how many alerts fire.
#[derive(Debug, Serialize)]
struct RuleView {
    #[serde(flatten)]
    rule: AlertRule,
    /// Condition kind (`silent`, `fn_end_of_life`, ...).
    kind: &'static str,
    /// The condition in words.
    description: String,
    /// Registers for which the rule fires now.
    firing: u64,
}

fn view(rule: AlertRule, firing: u64) -> RuleView {
    RuleView { kind: condition::kind(&rule.condition), description: condition::describe(&rule.condition), firing, rule }
}

/// Every firing state (firing states are few: they are the alerts).
pub(super) async fn firing_states(ctx: &Ctx) -> ApiResult<Vec<AlertState>> {
    let filter = AlertFilter { status: Some(AlertStatus::Firing), ..AlertFilter::default() };
    let mut out = Vec::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let p = ctx.shared.store.list_alert_states(&filter, page.clone()).await?;
        out.extend(p.items);
        match p.next {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    Ok(out)
}

async fn firing_by_rule(ctx: &Ctx) -> ApiResult<HashMap<String, u64>> {
    let mut out = HashMap::new();
    for s in firing_states(ctx).await? {
        *out.entry(s.rule).or_default() += 1;
    }
    Ok(out)
}

/// A list of rules.
#[derive(Debug, Serialize)]
struct RuleList {
    items: Vec<RuleView>,
    next: Option<String>,
}

async fn list_rules(State(ctx): State<Ctx>) -> ApiResult<Json<RuleList>> {
    let mut rules = ctx.shared.store.list_rules().await?;
    rules.sort_by(|a, b| a.name.cmp(&b.name));
    let firing = firing_by_rule(&ctx).await?;
    let items = rules
        .into_iter()
        .map(|r| {
            let n = firing.get(&r.name).copied().unwrap_or(0);
            view(r, n)
        })
        .collect();
    Ok(Json(RuleList { items, next: None }))
}

async fn load_rule(ctx: &Ctx, name: &str) -> ApiResult<AlertRule> {
    ctx.shared.store.get_rule(name).await?.ok_or_else(|| ApiError::not_found(format!("alert rule {name:?} not found")))
}

async fn show_rule(State(ctx): State<Ctx>, ApiPath(name): ApiPath<String>) -> ApiResult<Json<RuleView>> {
    let rule = load_rule(&ctx, &name).await?;
    let firing = firing_by_rule(&ctx).await?.get(&rule.name).copied().unwrap_or(0);
    Ok(Json(view(rule, firing)))
}

/// Body of `POST /v1/alerts/rules`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RuleInput {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    condition: Option<AlertCondition>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    scope: Option<AlertScope>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    severity: Option<Severity>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    webhook: Option<String>,
}

async fn create_rule(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<RuleInput>,
) -> ApiResult<(StatusCode, Json<RuleView>)> {
    let mut errs = Vec::new();
    let name = body.name.as_deref().map(str::trim).unwrap_or("").to_owned();
    if name.is_empty() {
        errs.push(FieldError::new("name", "is required"));
    }
    let Some(condition) = body.condition else {
        errs.push(FieldError::new(
            "condition",
            "is required: {\"kind\": silent | fn_end_of_life | paid_period_ending | unsent_backlog | fd_gaps | fn_warnings | flk_errors, ...}",
        ));
        return Err(ApiError::validation(errs));
    };
    let now = Timestamp::now();
    let rule = AlertRule {
        name,
        condition,
        scope: body.scope.unwrap_or(AlertScope::All),
        severity: body.severity.unwrap_or(Severity::Warning),
        enabled: body.enabled.unwrap_or(true),
        webhook: body.webhook.map(|w| w.trim().to_owned()).filter(|w| !w.is_empty()),
        created_at: now,
        updated_at: now,
    };
    if errs.is_empty()
        && let Err(e) = validate_rule(&rule)
    {
        let (field, message) = e.split_once(": ").unwrap_or(("rule", e.as_str()));
        errs.push(FieldError::new(field, message));
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    if ctx.shared.store.get_rule(&rule.name).await?.is_some() {
        return Err(ApiError::conflict("already_exists", format!("alert rule {:?} already exists", rule.name))
            .with_field("name"));
    }
    let target = rule.name.clone();
    let after = serde_json::to_value(&rule).unwrap_or(Value::Null);
    audit::audited(&ctx, &caller, &target, None, Some(after), async {
        ctx.shared.store.put_rule(&rule).await.map_err(ApiError::from)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view(rule, 0))))
}

async fn set_enabled(ctx: Ctx, caller: Caller, name: String, enabled: bool) -> ApiResult<Json<RuleView>> {
    let before = load_rule(&ctx, &name).await?;
    let mut after = before.clone();
    after.enabled = enabled;
    if before.enabled != enabled {
        after.updated_at = Timestamp::now().max(before.updated_at);
    }
    let stored = after.clone();
    audit::audited(
        &ctx,
        &caller,
        &name,
        serde_json::to_value(&before).ok(),
        serde_json::to_value(&after).ok(),
        async { ctx.shared.store.put_rule(&stored).await.map_err(ApiError::from) },
    )
    .await?;
    let firing = firing_by_rule(&ctx).await?.get(&after.name).copied().unwrap_or(0);
    Ok(Json(view(after, firing)))
}

async fn enable_rule(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
    _body: Bytes,
) -> ApiResult<Json<RuleView>> {
    set_enabled(ctx, caller, name, true).await
}

async fn disable_rule(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
    _body: Bytes,
) -> ApiResult<Json<RuleView>> {
    set_enabled(ctx, caller, name, false).await
}

async fn delete_rule(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let before = load_rule(&ctx, &name).await?;
    audit::audited(&ctx, &caller, &name, serde_json::to_value(&before).ok(), None, async {
        ctx.shared.store.delete_rule(&name).await.map_err(ApiError::from)
    })
    .await?;
    // the firing gauge of a deleted rule goes to zero at the next evaluation
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- states and lights

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AlertQuery {
    rule: Option<String>,
    state: Option<String>,
    rnm: Option<String>,
    owner_inn: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
}

/// One alert state with its register's facts.
#[derive(Debug, Serialize)]
struct AlertView {
    #[serde(flatten)]
    state: AlertState,
    /// Owner of the register (absent if the register is gone).
    owner_inn: Option<String>,
}

/// A register's colour.
#[derive(Debug, Serialize)]
struct RegisterLight {
    rnm: Rnm,
    owner_inn: Option<String>,
    name: Option<String>,
    status: Option<RegisterStatus>,
    light: Light,
    /// Firing alerts by severity.
    critical: u64,
    warning: u64,
    info: u64,
}

/// `GET /v1/alerts`.
#[derive(Debug, Serialize)]
struct AlertPage {
    items: Vec<AlertView>,
    next: Option<String>,
    /// Traffic light of the registers on this page (or selected by `rnm`/`owner_inn`).
    registers: Vec<RegisterLight>,
    /// How many of those are green, yellow, red, grey.
    summary: BTreeMap<&'static str, u64>,
}

/// Registers of an owner looked at by one request at most.
const MAX_OWNER_REGISTERS: usize = 10_000;

fn present(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

async fn list_alerts(State(ctx): State<Ctx>, ApiQuery(q): ApiQuery<AlertQuery>) -> ApiResult<Json<AlertPage>> {
    let status = match present(&q.state) {
        None | Some("all") => None,
        Some("firing") => Some(AlertStatus::Firing),
        Some("resolved") => Some(AlertStatus::Resolved),
        Some(other) => {
            return Err(ApiError::invalid_param("state", format!("{other:?} is not a state (firing or resolved)")));
        }
    };
    let rnm = present(&q.rnm)
        .map(|s| Rnm::parse(s).map_err(|e| ApiError::invalid_param("rnm", e.to_string())))
        .transpose()?;
    let owner = present(&q.owner_inn)
        .map(|s| Inn::parse(s).map_err(|e| ApiError::invalid_param("owner_inn", e.to_string())))
        .transpose()?;
    let page = page_request(q.limit, q.cursor)?;
    let store = &ctx.shared.store;

    // registers selected explicitly (their lights are shown even when green)
    let mut selected: Vec<Rnm> = Vec::new();
    let mut owner_set: Option<HashSet<Rnm>> = None;
    if let Some(inn) = &owner {
        let filter = RegisterFilter { owner_inn: Some(inn.clone()), ..RegisterFilter::default() };
        let mut rp = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let p = store.list_registers(&filter, rp.clone()).await?;
            selected.extend(p.items.into_iter().map(|r| r.rnm));
            match p.next {
                Some(c) if selected.len() < MAX_OWNER_REGISTERS => rp.cursor = Some(c),
                _ => break,
            }
        }
        owner_set = Some(selected.iter().cloned().collect());
    }
    if let Some(r) = &rnm {
        if owner_set.as_ref().is_some_and(|s| !s.contains(r)) {
            selected.clear();
        } else {
            selected = vec![r.clone()];
        }
    }

    let filter = AlertFilter { rule: present(&q.rule).map(str::to_owned), status, rnm: rnm.clone() };
    let p = store.list_alert_states(&filter, page).await?;
    let states: Vec<AlertState> =
        p.items.into_iter().filter(|s| owner_set.as_ref().is_none_or(|set| set.contains(&s.rnm))).collect();

    // the registers to colour: selected ones, else those on the page
    let mut to_colour: Vec<Rnm> = if rnm.is_some() || owner.is_some() { selected } else { Vec::new() };
    for s in &states {
        if !to_colour.contains(&s.rnm) {
            to_colour.push(s.rnm.clone());
        }
    }
    let mut firing: HashMap<Rnm, Vec<Severity>> = HashMap::new();
    for s in firing_states(&ctx).await? {
        firing.entry(s.rnm).or_default().push(s.severity);
    }
    let mut registers = Vec::with_capacity(to_colour.len());
    let mut owners: HashMap<Rnm, String> = HashMap::new();
    let mut summary: BTreeMap<&'static str, u64> =
        [Light::Green, Light::Yellow, Light::Red, Light::Grey].iter().map(|l| (l.as_str(), 0)).collect();
    for r in to_colour {
        let reg = store.get_register(&r).await?;
        let sev = firing.get(&r).cloned().unwrap_or_default();
        let count = |s: Severity| sev.iter().filter(|x| **x == s).count() as u64;
        let l = light(reg.as_ref().map_or(RegisterStatus::Active, |g| g.status), sev.iter().copied());
        *summary.entry(l.as_str()).or_default() += 1;
        if let Some(g) = &reg {
            owners.insert(r.clone(), g.owner_inn.to_string());
        }
        registers.push(RegisterLight {
            owner_inn: reg.as_ref().map(|g| g.owner_inn.to_string()),
            name: reg.as_ref().map(|g| g.name.clone()),
            status: reg.as_ref().map(|g| g.status),
            light: l,
            critical: count(Severity::Critical),
            warning: count(Severity::Warning),
            info: count(Severity::Info),
            rnm: r,
        });
    }
    // red first, then yellow, grey, green
    let rank = |l: Light| match l {
        Light::Red => 0,
        Light::Yellow => 1,
        Light::Grey => 2,
        Light::Green => 3,
    };
    registers.sort_by(|a, b| rank(a.light).cmp(&rank(b.light)).then_with(|| a.rnm.as_str().cmp(b.rnm.as_str())));
    let items = states.into_iter().map(|s| AlertView { owner_inn: owners.get(&s.rnm).cloned(), state: s }).collect();
    Ok(Json(AlertPage { items, next: p.next, registers, summary }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct NotificationQuery {
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list_notifications(
    State(ctx): State<Ctx>,
    ApiQuery(q): ApiQuery<NotificationQuery>,
) -> ApiResult<Json<Page<AlertNotification>>> {
    let page = page_request(q.limit, q.cursor)?;
    Ok(Json(ctx.shared.store.list_notifications(page).await?))
}
