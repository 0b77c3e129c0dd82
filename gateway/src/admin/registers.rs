//! Registers: create one, import many, list with filters, show, suspend, resume, replace
//! the FN.
//!
//! Input rows are taken as strings and checked field by field, so that every broken field
//! is reported with its name and rule (`FieldError`), and nothing is written unless the
//! whole call is valid (imports: unless `partial`). Checks: RNM 16 digits whose check code
//! matches owner INN and KKT serial; INN control digits; FN exactly 16 digits and not
//! owned by another register; name 1–256 characters; tariff an existing plan; paid_until
//! RFC 3339.
//!
//! Import semantics (`POST /v1/registers/import`): rows are upserts keyed by RNM. A new
//! RNM is created (status active). For an existing one, given fields replace stored ones;
//! empty/absent `group`, `tariff`, `paid_until` leave the stored value as it is; a
//! different `fn_number` is an FN replacement (the old FN goes to the history, replaced
//! now). A row that changes nothing counts as `unchanged`, so importing the same file
//! twice is idempotent.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use ffd::FnNumber;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use storage::model::{FnRecord, Register, RegisterActivity, RegisterStatus};
use storage::{IdError, Inn, Page, PageRequest, RegisterFilter, Rnm, Timestamp};

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, FieldError};
use super::{Ctx, Route, audit, optional_json, page_request, parse_duration, parse_time};

/// Most rows in one import request.
pub const MAX_IMPORT_ROWS: usize = 5_000;

/// Routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get(
            "/v1/registers",
            Role::Viewer,
            "List registers (status, owner_inn, group, tariff, silent_for, paid_until_before; paginated)",
            list,
        ),
        Route::post("/v1/registers", "register.create", "Create one register", create),
        Route::post(
            "/v1/registers/import",
            "register.import",
            "Import up to 5,000 registers (all-or-nothing unless partial; dry_run)",
            import,
        ),
        Route::get(
            "/v1/registers/{rnm}",
            Role::Viewer,
            "One register with FN history, activity and document counts",
            show,
        ),
        Route::post(
            "/v1/registers/{rnm}/suspend",
            "register.suspend",
            "Suspend a register (its documents are refused)",
            suspend,
        ),
        Route::post("/v1/registers/{rnm}/resume", "register.resume", "Resume a suspended register", resume),
        Route::post(
            "/v1/registers/{rnm}/replace-fn",
            "register.replace_fn",
            "Replace the FN (the old one is kept in the history)",
            replace_fn,
        ),
    ]
}

// ---------------------------------------------------------------- input validation

/// A register as sent by a client: every field a string, checked one by one.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    /// RNM (16 digits with check code).
    #[serde(default)]
    pub rnm: Option<String>,
    /// KKT serial.
    #[serde(default)]
    pub kkt_serial: Option<String>,
    /// Owner INN.
    #[serde(default)]
    pub owner_inn: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Address.
    #[serde(default)]
    pub address: Option<String>,
    /// Group / shop.
    #[serde(default)]
    pub group: Option<String>,
    /// FN number (16 digits).
    #[serde(default)]
    pub fn_number: Option<String>,
    /// Tariff plan name.
    #[serde(default)]
    pub tariff: Option<String>,
    /// End of the paid period (RFC 3339).
    #[serde(default)]
    pub paid_until: Option<String>,
}

/// A row whose fields are all valid.
#[derive(Debug, Clone)]
pub(crate) struct Valid {
    rnm: Rnm,
    kkt_serial: String,
    owner_inn: Inn,
    name: String,
    address: String,
    group: Option<String>,
    fn_number: FnNumber,
    tariff: Option<String>,
    paid_until: Option<Timestamp>,
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn id_message(e: &IdError) -> String {
    e.to_string()
}

/// Checks every field of a row; returns all broken fields.
pub(crate) fn validate(row: &RegisterInput, plans: &HashSet<String>) -> Result<Valid, Vec<FieldError>> {
    let mut errs = Vec::new();
    let required = |errs: &mut Vec<FieldError>, field: &str, v: &Option<String>| {
        let p = present(v);
        if p.is_none() {
            errs.push(FieldError::new(field, "is required"));
        }
        p.map(str::to_owned)
    };
    let rnm = required(&mut errs, "rnm", &row.rnm)
        .and_then(|s| Rnm::parse(&s).map_err(|e| errs.push(FieldError::new("rnm", id_message(&e)))).ok());
    let kkt_serial = required(&mut errs, "kkt_serial", &row.kkt_serial).and_then(|s| {
        if s.chars().count() > 20 {
            errs.push(FieldError::new("kkt_serial", format!("must be 1 to 20 characters, got {}", s.chars().count())));
            None
        } else {
            Some(s)
        }
    });
    let owner_inn = required(&mut errs, "owner_inn", &row.owner_inn)
        .and_then(|s| Inn::parse(&s).map_err(|e| errs.push(FieldError::new("owner_inn", id_message(&e)))).ok());
    let name = required(&mut errs, "name", &row.name).and_then(|s| {
        if s.chars().count() > 256 {
            errs.push(FieldError::new("name", "must be 1 to 256 characters"));
            None
        } else {
            Some(s)
        }
    });
    let address = row.address.as_deref().map(str::trim).unwrap_or("").to_owned();
    if address.chars().count() > 256 {
        errs.push(FieldError::new("address", "must be at most 256 characters"));
    }
    let group = present(&row.group).map(str::to_owned);
    if group.as_ref().is_some_and(|g| g.chars().count() > 128) {
        errs.push(FieldError::new("group", "must be at most 128 characters"));
    }
    let fn_number = required(&mut errs, "fn_number", &row.fn_number).and_then(|s| {
        FnNumber::parse_strict(&s).map_err(|e| errs.push(FieldError::new("fn_number", e.to_string()))).ok()
    });
    let tariff = present(&row.tariff).map(str::to_owned);
    if let Some(t) = &tariff
        && !plans.contains(t)
    {
        errs.push(FieldError::new(
            "tariff",
            format!("unknown tariff plan {t:?} (create it first: adminctl tariffs create)"),
        ));
    }
    let paid_until = present(&row.paid_until).and_then(|s| {
        Timestamp::parse_rfc3339(s)
            .map_err(|_| {
                errs.push(FieldError::new(
                    "paid_until",
                    format!("{s:?} is not an RFC 3339 time (e.g. 2026-11-23T00:00:00Z)"),
                ))
            })
            .ok()
    });
    if let (Some(r), Some(i), Some(s)) = (&rnm, &owner_inn, &kkt_serial)
        && let Err(IdError::Checksum { expected, .. }) = r.verify(i, s)
    {
        errs.push(FieldError::new(
            "rnm",
            format!(
                "RNM {r} fails its check code for owner INN {i} and KKT serial {s} (the last 6 digits should be {expected})"
            ),
        ));
    }
    match (rnm, kkt_serial, owner_inn, name, fn_number) {
        (Some(rnm), Some(kkt_serial), Some(owner_inn), Some(name), Some(fn_number)) if errs.is_empty() => {
            Ok(Valid { rnm, kkt_serial, owner_inn, name, address, group, fn_number, tariff, paid_until })
        }
        _ => Err(errs),
    }
}

/// The names of the existing tariff plans.
pub(crate) async fn plan_names(ctx: &Ctx) -> ApiResult<HashSet<String>> {
    Ok(ctx.shared.store.list_tariffs().await?.into_iter().map(|p| p.name).collect())
}

/// What a valid row does to storage.
#[derive(Debug, Clone)]
enum Change {
    Create(Box<Register>),
    Update { before: Box<Register>, after: Box<Register> },
    Unchanged,
}

/// Compares two registers ignoring bookkeeping (version, updated_at).
fn same(a: &Register, b: &Register) -> bool {
    let mut b = b.clone();
    b.version = a.version;
    b.updated_at = a.updated_at;
    *a == b
}

/// Decides what a valid row does, given what is stored.
async fn plan(ctx: &Ctx, v: Valid, now: Timestamp) -> Result<Change, Vec<FieldError>> {
    let store = &ctx.shared.store;
    let storage_err = |e: storage::StoreError| vec![FieldError::new("rnm", format!("storage error: {e}"))];
    let existing = store.get_register(&v.rnm).await.map_err(storage_err)?;
    let owner = store.register_by_fn(&v.fn_number).await.map_err(storage_err)?;
    if let Some(o) = &owner
        && o.rnm != v.rnm
    {
        return Err(vec![FieldError::new(
            "fn_number",
            format!("FN {} already belongs to register {}", v.fn_number, o.rnm),
        )]);
    }
    match existing {
        None => Ok(Change::Create(Box::new(Register {
            name: v.name,
            address: v.address,
            group: v.group,
            tariff: v.tariff,
            paid_until: v.paid_until,
            ..Register::new(v.rnm, v.kkt_serial, v.owner_inn, v.fn_number, now)
        }))),
        Some(before) => {
            let mut after = before.clone();
            after.kkt_serial = v.kkt_serial;
            after.owner_inn = v.owner_inn;
            after.name = v.name;
            after.address = v.address;
            if v.group.is_some() {
                after.group = v.group;
            }
            if v.tariff.is_some() {
                after.tariff = v.tariff;
            }
            if v.paid_until.is_some() {
                after.paid_until = v.paid_until;
            }
            if v.fn_number != before.fn_number {
                if let Some(h) = before.fn_history.iter().find(|h| h.fn_number == v.fn_number) {
                    return Err(vec![FieldError::new(
                        "fn_number",
                        format!(
                            "FN {} was replaced on this register at {}; a replaced FN cannot become current again",
                            v.fn_number, h.replaced_at
                        ),
                    )]);
                }
                replace(&mut after, v.fn_number, now);
            }
            if same(&before, &after) {
                Ok(Change::Unchanged)
            } else {
                after.version = before.version + 1;
                after.updated_at = now.max(before.updated_at);
                Ok(Change::Update { before: Box::new(before), after: Box::new(after) })
            }
        }
    }
}

/// Moves the current FN to the history and makes `new` current from `at`.
fn replace(r: &mut Register, new: FnNumber, at: Timestamp) {
    r.fn_history.push(FnRecord { fn_number: r.fn_number, active_from: r.fn_since, replaced_at: at });
    r.fn_number = new;
    r.fn_since = Some(at);
}

/// Makes the change visible to ingestion on this node at once.
fn apply_to_index(ctx: &Ctx, registers: &[Register]) {
    for r in registers {
        ctx.shared.registry.apply(r);
    }
}

/// Removes onboarded FNs from the onboarding backlog (best effort).
async fn clear_backlog(ctx: &Ctx, fns: Vec<FnNumber>) {
    let store = ctx.shared.store.clone();
    futures::stream::iter(fns)
        .for_each_concurrent(64, |f| {
            let store = store.clone();
            async move {
                if let Err(e) = store.remove_unknown_fn(&f).await {
                    tracing::debug!(error = %e, "could not drop an onboarded FN from the backlog");
                }
            }
        })
        .await;
}

// ---------------------------------------------------------------- views

/// Whether documents of a register are accepted now, and why not.
pub(crate) fn acceptance(r: &Register, now: Timestamp, grace: Duration) -> &'static str {
    if r.status == RegisterStatus::Suspended {
        return "suspended";
    }
    match r.paid_until {
        Some(p) if now > p.plus(grace) => "tariff_expired",
        Some(p) if now > p => "grace_period",
        _ => "accepted",
    }
}

/// A register as shown by the API.
#[derive(Debug, Serialize)]
pub struct RegisterView {
    /// The stored register.
    pub register: Register,
    /// `accepted`, `grace_period`, `tariff_expired` or `suspended`.
    pub acceptance: &'static str,
    /// What ingestion recorded (last seen, last FD, counts, telemetry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<RegisterActivity>,
}

pub(crate) fn view(ctx: &Ctx, register: Register, activity: Option<RegisterActivity>) -> RegisterView {
    RegisterView {
        acceptance: acceptance(&register, Timestamp::now(), ctx.shared.config.ingest.tariff_grace),
        register,
        activity,
    }
}

fn audit_value(r: &Register) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

/// The fields that differ between two JSON objects: (before, after).
pub(crate) fn diff(before: &Value, after: &Value) -> (Value, Value) {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return (before.clone(), after.clone());
    };
    let mut ob = serde_json::Map::new();
    let mut oa = serde_json::Map::new();
    for (k, va) in a {
        if matches!(k.as_str(), "version" | "updated_at") {
            continue;
        }
        let vb = b.get(k).unwrap_or(&Value::Null);
        if vb != va {
            ob.insert(k.clone(), vb.clone());
            oa.insert(k.clone(), va.clone());
        }
    }
    (Value::Object(ob), Value::Object(oa))
}

fn parse_rnm(s: &str) -> ApiResult<Rnm> {
    Rnm::parse(s).map_err(|e| ApiError::invalid_param("rnm", e.to_string()))
}

async fn load(ctx: &Ctx, rnm: &Rnm) -> ApiResult<Register> {
    ctx.shared
        .store
        .get_register(rnm)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("register {rnm} does not exist")))
}

/// Writes one changed register (audited first), with its version as the precondition,
/// and updates the index.
async fn write_one(ctx: &Ctx, caller: &Caller, before: Option<&Register>, after: Register) -> ApiResult<Register> {
    let target = after.rnm.to_string();
    // a create must not overwrite a register created concurrently: version 0 = absent
    let expected = Some(before.map_or(0, |b| b.version));
    let stored = after.clone();
    audit::audited(ctx, caller, &target, before.map(audit_value), Some(audit_value(&after)), async {
        ctx.shared.store.put_registers(vec![stored], vec![expected]).await.map_err(ApiError::from)
    })
    .await?;
    apply_to_index(ctx, std::slice::from_ref(&after));
    Ok(after)
}

// ---------------------------------------------------------------- handlers

async fn create(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiJson(input): ApiJson<RegisterInput>,
) -> ApiResult<(StatusCode, Json<RegisterView>)> {
    let plans = plan_names(&ctx).await?;
    let valid = validate(&input, &plans).map_err(ApiError::validation)?;
    if let Some(existing) = ctx.shared.store.get_register(&valid.rnm).await? {
        return Err(ApiError::conflict(
            "already_exists",
            format!("register {} already exists (use registers import to update it)", existing.rnm),
        )
        .with_field("rnm"));
    }
    let now = Timestamp::now();
    let change = plan(&ctx, valid, now).await.map_err(ApiError::validation)?;
    let Change::Create(reg) = change else {
        return Err(ApiError::conflict(
            "already_exists",
            "register already exists (use registers import to update it)",
        ));
    };
    let reg = write_one(&ctx, &caller, None, *reg).await?;
    clear_backlog(&ctx, vec![reg.fn_number]).await;
    Ok((StatusCode::CREATED, Json(view(&ctx, reg, None))))
}

/// Body of `POST /v1/registers/import`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// Rows.
    pub registers: Vec<RegisterInput>,
    /// Apply the valid rows even if some are invalid.
    #[serde(default)]
    pub partial: bool,
    /// Validate and count only.
    #[serde(default)]
    pub dry_run: bool,
}

/// Answer of an import.
#[derive(Debug, Default, Serialize)]
pub struct ImportOutcome {
    /// Registers created.
    pub created: u64,
    /// Registers changed.
    pub updated: u64,
    /// Rows that matched the stored register.
    pub unchanged: u64,
    /// Invalid rows (line = 1-based row of the request).
    pub errors: Vec<FieldError>,
    /// Nothing was written.
    pub dry_run: bool,
}

async fn import(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<ImportRequest>,
) -> ApiResult<Json<ImportOutcome>> {
    if req.registers.len() > MAX_IMPORT_ROWS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_rows",
            format!("at most {MAX_IMPORT_ROWS} registers per request, got {} (send batches)", req.registers.len()),
        ));
    }
    let plans = plan_names(&ctx).await?;
    let now = Timestamp::now();
    let mut errors: Vec<FieldError> = Vec::new();
    let mut at_line = |line: usize, errs: Vec<FieldError>| {
        errors.extend(errs.into_iter().map(|mut e| {
            e.line = Some(line);
            e
        }));
    };
    // field checks, then duplicates inside the request
    let mut valid: Vec<(usize, Valid)> = Vec::with_capacity(req.registers.len());
    let mut seen_rnm: HashMap<Rnm, usize> = HashMap::new();
    let mut seen_fn: HashMap<FnNumber, usize> = HashMap::new();
    for (i, row) in req.registers.iter().enumerate() {
        let line = i + 1;
        match validate(row, &plans) {
            Err(errs) => at_line(line, errs),
            Ok(v) => {
                if let Some(first) = seen_rnm.get(&v.rnm) {
                    at_line(
                        line,
                        vec![FieldError::new(
                            "rnm",
                            format!("register {} appears again (first on line {first})", v.rnm),
                        )],
                    );
                } else if let Some(first) = seen_fn.get(&v.fn_number) {
                    at_line(
                        line,
                        vec![FieldError::new(
                            "fn_number",
                            format!("FN {} appears again (first on line {first})", v.fn_number),
                        )],
                    );
                } else {
                    seen_rnm.insert(v.rnm.clone(), line);
                    seen_fn.insert(v.fn_number, line);
                    valid.push((line, v));
                }
            }
        }
    }
    // compare with storage (reads in parallel, order kept)
    let planned: Vec<(usize, Result<Change, Vec<FieldError>>)> = futures::stream::iter(valid)
        .map(|(line, v)| {
            let ctx = &ctx;
            async move { (line, plan(ctx, v, now).await) }
        })
        .buffered(32)
        .collect()
        .await;
    let mut out = ImportOutcome { dry_run: req.dry_run, ..ImportOutcome::default() };
    let mut writes: Vec<Register> = Vec::new();
    let mut expected: Vec<Option<u64>> = Vec::new();
    let mut created: Vec<String> = Vec::new();
    let mut changes: Vec<Value> = Vec::new();
    for (line, p) in planned {
        match p {
            Err(errs) => at_line(line, errs),
            Ok(Change::Unchanged) => out.unchanged += 1,
            Ok(Change::Create(r)) => {
                out.created += 1;
                created.push(r.rnm.to_string());
                writes.push(*r);
                expected.push(Some(0)); // must still be absent: a concurrent create is a conflict
            }
            Ok(Change::Update { before, after }) => {
                out.updated += 1;
                let (b, a) = diff(&audit_value(&before), &audit_value(&after));
                changes.push(json!({"rnm": after.rnm, "before": b, "after": a}));
                expected.push(Some(before.version));
                writes.push(*after);
            }
        }
    }
    errors.sort_by_key(|e| e.line);
    out.errors = errors;
    if !out.errors.is_empty() && !req.partial {
        let n_rows: HashSet<Option<usize>> = out.errors.iter().map(|e| e.line).collect();
        let mut err = ApiError::validation(out.errors.clone());
        err.code = "invalid_rows";
        err.message = format!(
            "{} of {} rows are invalid; nothing was applied (first: line {}: {}: {})",
            n_rows.len(),
            req.registers.len(),
            out.errors[0].line.unwrap_or(0),
            out.errors[0].field,
            out.errors[0].message
        );
        return Err(err
            .with_extra("created", json!(0))
            .with_extra("updated", json!(0))
            .with_extra("unchanged", json!(0))
            .with_extra("dry_run", json!(req.dry_run)));
    }
    if req.dry_run || writes.is_empty() {
        return Ok(Json(out));
    }
    let after = json!({
        "rows": req.registers.len(),
        "created": out.created,
        "updated": out.updated,
        "unchanged": out.unchanged,
        "invalid_rows": out.errors.len(),
        "created_rnms": created,
        "changes": changes,
    });
    let target = format!("{} registers", writes.len());
    let written = writes.clone();
    audit::audited(&ctx, &caller, &target, None, Some(after), async {
        ctx.shared.store.put_registers(written, expected).await.map_err(ApiError::from)
    })
    .await?;
    apply_to_index(&ctx, &writes);
    clear_backlog(&ctx, writes.iter().map(|r| r.fn_number).collect()).await;
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    owner_inn: Option<String>,
    group: Option<String>,
    tariff: Option<String>,
    silent_for: Option<String>,
    paid_until_before: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// One row of a register list.
#[derive(Debug, Serialize)]
pub struct ListItem {
    /// The register.
    #[serde(flatten)]
    pub register: Register,
    /// Acceptance now.
    pub acceptance: &'static str,
    /// Last document received.
    pub last_seen: Option<Timestamp>,
    /// Highest FD of the last FN.
    pub last_fd: Option<u32>,
    /// Documents stored.
    pub documents: u64,
}

/// Registers scanned at most by one silent_for request (the filter needs activity, which
/// the store cannot filter on); the page is cut there and `next` continues.
const MAX_SCAN: usize = 20_000;

async fn list(State(ctx): State<Ctx>, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Json<Page<ListItem>>> {
    let status = match q.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some("active") => Some(RegisterStatus::Active),
        Some("suspended") => Some(RegisterStatus::Suspended),
        Some(other) => {
            return Err(ApiError::invalid_param("status", format!("{other:?} is not a status (active or suspended)")));
        }
    };
    let owner_inn = match present(&q.owner_inn) {
        Some(s) => Some(Inn::parse(s).map_err(|e| ApiError::invalid_param("owner_inn", e.to_string()))?),
        None => None,
    };
    let filter = RegisterFilter {
        status,
        owner_inn,
        group: present(&q.group).map(str::to_owned),
        tariff: present(&q.tariff).map(str::to_owned),
        paid_until_before: present(&q.paid_until_before).map(|s| parse_time("paid_until_before", s)).transpose()?,
    };
    let silent_for = present(&q.silent_for).map(|s| parse_duration("silent_for", s)).transpose()?;
    let page = page_request(q.limit, q.cursor)?;
    let limit = page.effective_limit();
    let now = Timestamp::now();
    let grace = ctx.shared.config.ingest.tariff_grace;
    let store = &ctx.shared.store;
    let mut items = Vec::new();
    let mut cursor = page.cursor.clone();
    let mut scanned = 0usize;
    loop {
        let want = u32::try_from(limit - items.len()).unwrap_or(PageRequest::MAX_LIMIT);
        let p = store.list_registers(&filter, PageRequest { limit: want, cursor: cursor.clone() }).await?;
        scanned += p.items.len();
        let rnms: Vec<Rnm> = p.items.iter().map(|r| r.rnm.clone()).collect();
        let acts: HashMap<Rnm, RegisterActivity> = store.get_activities(&rnms).await?.into_iter().collect();
        for r in p.items {
            let act = acts.get(&r.rnm);
            if let Some(d) = silent_for {
                let last = act.and_then(|a| a.last_seen).unwrap_or(r.created_at);
                if now.since(last) < d {
                    continue;
                }
            }
            items.push(ListItem {
                acceptance: acceptance(&r, now, grace),
                last_seen: act.and_then(|a| a.last_seen),
                last_fd: act.and_then(|a| a.last_fd),
                documents: act.map_or(0, |a| a.documents),
                register: r,
            });
        }
        cursor = p.next;
        if cursor.is_none() || items.len() >= limit || silent_for.is_none() || scanned >= MAX_SCAN {
            break;
        }
    }
    Ok(Json(Page { items, next: cursor }))
}

async fn show(State(ctx): State<Ctx>, ApiPath(rnm): ApiPath<String>) -> ApiResult<Json<RegisterView>> {
    let rnm = parse_rnm(&rnm)?;
    let reg = load(&ctx, &rnm).await?;
    let activity = ctx.shared.store.get_activity(&rnm).await?.unwrap_or_default();
    Ok(Json(view(&ctx, reg, Some(activity))))
}

/// Optional body of suspend/resume.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusChange {
    /// Why (recorded in the audit log).
    #[serde(default)]
    reason: Option<String>,
}

async fn set_status(
    ctx: Ctx,
    caller: Caller,
    rnm: String,
    body: Bytes,
    status: RegisterStatus,
) -> ApiResult<Json<RegisterView>> {
    let rnm = parse_rnm(&rnm)?;
    let change: StatusChange = optional_json(&body)?;
    let before = load(&ctx, &rnm).await?;
    let mut after = before.clone();
    after.status = status;
    if before.status != status {
        after.version += 1;
        after.updated_at = Timestamp::now().max(before.updated_at);
    }
    let target = rnm.to_string();
    let mut after_json = audit_value(&after);
    if let (Some(r), Some(o)) = (change.reason, after_json.as_object_mut()) {
        o.insert("reason".into(), Value::from(r));
    }
    let expected = Some(before.version);
    let stored = after.clone();
    let changed = before.status != status;
    audit::audited(&ctx, &caller, &target, Some(audit_value(&before)), Some(after_json), async {
        if changed {
            ctx.shared.store.put_registers(vec![stored], vec![expected]).await?;
        }
        Ok(())
    })
    .await?;
    apply_to_index(&ctx, std::slice::from_ref(&after));
    Ok(Json(view(&ctx, after, None)))
}

async fn suspend(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiPath(rnm): ApiPath<String>,
    body: Bytes,
) -> ApiResult<Json<RegisterView>> {
    set_status(ctx, caller, rnm, body, RegisterStatus::Suspended).await
}

async fn resume(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiPath(rnm): ApiPath<String>,
    body: Bytes,
) -> ApiResult<Json<RegisterView>> {
    set_status(ctx, caller, rnm, body, RegisterStatus::Active).await
}

/// Body of replace-fn.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplaceFn {
    /// The new FN (16 digits).
    #[serde(default)]
    fn_number: Option<String>,
    /// When the replacement happened (default now; not in the future).
    #[serde(default)]
    at: Option<String>,
}

async fn replace_fn(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiPath(rnm): ApiPath<String>,
    ApiJson(body): ApiJson<ReplaceFn>,
) -> ApiResult<Json<RegisterView>> {
    let rnm = parse_rnm(&rnm)?;
    let mut errs = Vec::new();
    let new_fn = match present(&body.fn_number) {
        None => {
            errs.push(FieldError::new("fn_number", "is required"));
            None
        }
        Some(s) => FnNumber::parse_strict(s).map_err(|e| errs.push(FieldError::new("fn_number", e.to_string()))).ok(),
    };
    let now = Timestamp::now();
    let at = match present(&body.at) {
        None => Some(now),
        Some(s) => match Timestamp::parse_rfc3339(s) {
            Ok(t) if t > now.plus(Duration::from_secs(60)) => {
                errs.push(FieldError::new("at", "must not be in the future"));
                None
            }
            Ok(t) => Some(t),
            Err(_) => {
                errs.push(FieldError::new("at", format!("{s:?} is not an RFC 3339 time")));
                None
            }
        },
    };
    let (Some(new_fn), Some(at), true) = (new_fn, at, errs.is_empty()) else {
        return Err(ApiError::validation(errs));
    };
    let before = load(&ctx, &rnm).await?;
    if before.fn_number == new_fn {
        return Err(ApiError::validation(vec![FieldError::new(
            "fn_number",
            format!("FN {new_fn} is already the current FN of register {rnm}"),
        )]));
    }
    if before.all_fns().any(|f| *f == new_fn) {
        return Err(ApiError::validation(vec![FieldError::new(
            "fn_number",
            format!("FN {new_fn} was already replaced on register {rnm}; a replaced FN cannot become current again"),
        )]));
    }
    if let Some(owner) = ctx.shared.store.register_by_fn(&new_fn).await? {
        return Err(ApiError::validation(vec![FieldError::new(
            "fn_number",
            format!("FN {new_fn} already belongs to register {}", owner.rnm),
        )]));
    }
    let mut after = before.clone();
    replace(&mut after, new_fn, at);
    after.version += 1;
    after.updated_at = now.max(before.updated_at);
    let after = write_one(&ctx, &caller, Some(&before), after).await?;
    clear_backlog(&ctx, vec![new_fn]).await;
    Ok(Json(view(&ctx, after, None)))
}
