//! Row validation: every field checked with its name and rule; what a valid row does to
//! storage (create, update, unchanged).

use std::collections::HashSet;

use ffd::FnNumber;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use storage::model::{FnRecord, Register};
use storage::{IdError, Inn, Rnm, Timestamp};

use crate::control::admin::Ctx;
use crate::control::admin::error::{ApiResult, FieldError};

// ---------------------------------------------------------------- input validation

/// A register as sent by a client: every field a string, checked one by one.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
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
    /// IANA time zone of the place of settlement (e.g. `Asia/Vladivostok`), for reports;
    /// absent: `[reports] default_time_zone`.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// A row whose fields are all valid.
#[derive(Debug, Clone)]
pub(crate) struct Valid {
    pub(super) rnm: Rnm,
    kkt_serial: String,
    owner_inn: Inn,
    name: String,
    address: String,
    group: Option<String>,
    pub(super) fn_number: FnNumber,
    tariff: Option<String>,
    paid_until: Option<Timestamp>,
    time_zone: Option<String>,
}

pub(super) fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub(super) fn id_message(e: &IdError) -> String {
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
    let time_zone = present(&row.time_zone).and_then(|z| match time_zone_rule(z) {
        Ok(()) => Some(z.to_owned()),
        Err(m) => {
            errs.push(FieldError::new("time_zone", m));
            None
        }
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
            Ok(Valid { rnm, kkt_serial, owner_inn, name, address, group, fn_number, tariff, paid_until, time_zone })
        }
        _ => Err(errs),
    }
}

/// A register's time zone must be in the tz database (and fit the stored record's rule).
pub(crate) fn time_zone_rule(z: &str) -> Result<(), String> {
    match jiff::tz::TimeZone::get(z) {
        Ok(_) if z.len() <= 64 => Ok(()),
        _ => Err(format!("{z:?} is not an IANA time zone (e.g. Europe/Moscow, Asia/Vladivostok)")),
    }
}

/// The names of the existing tariff plans.
pub(crate) async fn plan_names(ctx: &Ctx) -> ApiResult<HashSet<String>> {
    Ok(ctx.shared.store.list_tariffs().await?.into_iter().map(|p| p.name).collect())
}

/// What a valid row does to storage.
#[derive(Debug, Clone)]
pub(super) enum Change {
    Create(Box<Register>),
    Update { before: Box<Register>, after: Box<Register> },
    Unchanged,
}

/// Compares two registers ignoring bookkeeping (version, updated_at).
pub(super) fn same(a: &Register, b: &Register) -> bool {
    let mut b = b.clone();
    b.version = a.version;
    b.updated_at = a.updated_at;
    *a == b
}

/// Decides what a valid row does, given what is stored.
pub(super) async fn plan(ctx: &Ctx, v: Valid, now: Timestamp) -> Result<Change, Vec<FieldError>> {
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
            time_zone: v.time_zone,
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
            if v.time_zone.is_some() {
                after.time_zone = v.time_zone;
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
pub(super) fn replace(r: &mut Register, new: FnNumber, at: Timestamp) {
    r.fn_history.push(FnRecord { fn_number: r.fn_number, active_from: r.fn_since, replaced_at: at });
    r.fn_number = new;
    r.fn_since = Some(at);
}

/// Makes the change visible to ingestion on this node at once.
pub(super) fn apply_to_index(ctx: &Ctx, registers: &[Register]) {
    for r in registers {
        ctx.shared.data.apply_register(r);
    }
}

/// Removes onboarded FNs from the onboarding backlog (best effort).
pub(super) async fn clear_backlog(ctx: &Ctx, fns: Vec<FnNumber>) {
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
