//! Changing registers: create one, suspend, resume, replace its FN, set its time zone. Each answers with the
//! register as it is now.

use serde_json::json;

use super::view::print_register;
use crate::client::CliResult;
use crate::cmd::{Ctx, seg};

/// The fields of `registers add`.
pub(super) struct NewRegister {
    pub(super) rnm: String,
    pub(super) kkt_serial: String,
    pub(super) owner_inn: String,
    pub(super) name: String,
    pub(super) fn_number: String,
    pub(super) address: Option<String>,
    pub(super) group: Option<String>,
    pub(super) tariff: Option<String>,
    pub(super) paid_until: Option<String>,
    pub(super) time_zone: Option<String>,
}

/// `registers add`.
pub(super) async fn add(ctx: &Ctx, r: NewRegister) -> CliResult<()> {
    let NewRegister { rnm, kkt_serial, owner_inn, name, fn_number, address, group, tariff, paid_until, time_zone } = r;
    let body = json!({
        "rnm": rnm, "kkt_serial": kkt_serial, "owner_inn": owner_inn, "name": name,
        "fn_number": fn_number, "address": address, "group": group, "tariff": tariff,
        "paid_until": paid_until, "time_zone": time_zone,
    });
    let v = ctx.client.post("/v1/registers", &body).await?;
    print_register(ctx.format, &v)?;
    Ok(())
}

/// `registers suspend RNM`.
pub(super) async fn suspend(ctx: &Ctx, rnm: &str, reason: Option<String>, yes: bool) -> CliResult<()> {
    ctx.confirm(&format!("Suspend register {rnm} (its documents will be refused)"), yes)?;
    let v = ctx.client.post(&format!("/v1/registers/{}/suspend", seg(rnm)), &json!({"reason": reason})).await?;
    print_register(ctx.format, &v)
}

/// `registers resume RNM`.
pub(super) async fn resume(ctx: &Ctx, rnm: &str, reason: Option<String>) -> CliResult<()> {
    let v = ctx.client.post(&format!("/v1/registers/{}/resume", seg(rnm)), &json!({"reason": reason})).await?;
    print_register(ctx.format, &v)
}

/// `registers replace-fn RNM --fn FN`.
pub(super) async fn replace_fn(ctx: &Ctx, rnm: &str, fn_number: &str, at: Option<String>, yes: bool) -> CliResult<()> {
    ctx.confirm(&format!("Replace the FN of register {rnm} with {fn_number} (cannot be undone)"), yes)?;
    let v = ctx
        .client
        .post(&format!("/v1/registers/{}/replace-fn", seg(rnm)), &json!({"fn_number": fn_number, "at": at}))
        .await?;
    print_register(ctx.format, &v)
}

/// `registers set-time-zone RNM ZONE` (an empty ZONE: back to the gateway's default).
pub(super) async fn set_time_zone(ctx: &Ctx, rnm: &str, zone: &str) -> CliResult<()> {
    let v =
        ctx.client.post(&format!("/v1/registers/{}/time-zone", seg(rnm)), &json!({"time_zone": zone.trim()})).await?;
    print_register(ctx.format, &v)
}
