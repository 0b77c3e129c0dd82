//! Create one register; import many (all-or-nothing unless `partial`, idempotent).

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use ffd::FnNumber;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use storage::model::Register;
use storage::{Rnm, Timestamp};

use super::MAX_IMPORT_ROWS;
use super::input::{Change, RegisterInput, Valid, apply_to_index, clear_backlog, plan, plan_names, validate};
use super::view::{RegisterView, audit_value, diff, view, write_one};
use crate::control::admin::auth::Caller;
use crate::control::admin::error::{ApiError, ApiJson, ApiResult, FieldError};
use crate::control::admin::{Ctx, audit};

// ---------------------------------------------------------------- handlers

pub(super) async fn create(
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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
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

pub(super) async fn import(
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
