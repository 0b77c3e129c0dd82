//! What the API shows of a register, and the helpers every handler shares (load, write
//! one audited change, apply it to the ingest index).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use storage::model::{Register, RegisterActivity, RegisterStatus};
use storage::{Rnm, Timestamp};

use super::input::apply_to_index;
use crate::control::admin::auth::Caller;
use crate::control::admin::error::{ApiError, ApiResult};
use crate::control::admin::{Ctx, audit};

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

pub(super) fn audit_value(r: &Register) -> Value {
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

pub(super) fn parse_rnm(s: &str) -> ApiResult<Rnm> {
    Rnm::parse(s).map_err(|e| ApiError::invalid_param("rnm", e.to_string()))
}

pub(super) async fn load(ctx: &Ctx, rnm: &Rnm) -> ApiResult<Register> {
    ctx.shared
        .store
        .get_register(rnm)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("register {rnm} does not exist")))
}

/// Writes one changed register (audited first), with its version as the precondition,
/// and updates the index.
pub(super) async fn write_one(
    ctx: &Ctx,
    caller: &Caller,
    before: Option<&Register>,
    after: Register,
) -> ApiResult<Register> {
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
