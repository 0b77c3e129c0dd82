//! Reading registers: the list with its filters, one register with its FN history and
//! activity, the onboarding backlog of unknown FNs.

use serde_json::Value;

use crate::client::CliResult;
use crate::cmd::{Ctx, Paging, seg};
use crate::output::{self, Format, field, key_values, print_table, structured};

/// Filters of `registers list` (empty ones are not sent).
pub(super) struct ListFilter {
    pub(super) status: Option<String>,
    pub(super) owner_inn: Option<String>,
    pub(super) group: Option<String>,
    pub(super) tariff: Option<String>,
    pub(super) silent_for: Option<std::time::Duration>,
    pub(super) paid_until_before: Option<String>,
}

/// `registers list`.
pub(super) async fn list(ctx: &Ctx, f: ListFilter, paging: &Paging) -> CliResult<()> {
    let ListFilter { status, owner_inn, group, tariff, silent_for, paid_until_before } = f;
    let q = vec![
        ("status", status.unwrap_or_default()),
        ("owner_inn", owner_inn.unwrap_or_default()),
        ("group", group.unwrap_or_default()),
        ("tariff", tariff.unwrap_or_default()),
        ("silent_for", silent_for.map(|d| humantime::format_duration(d).to_string()).unwrap_or_default()),
        ("paid_until_before", paid_until_before.unwrap_or_default()),
    ];
    let v = ctx.pages("/v1/registers", q, paging).await?;
    output::list(
        ctx.format,
        &v,
        &[
            ("RNM", "rnm"),
            ("NAME", "name"),
            ("OWNER INN", "owner_inn"),
            ("FN", "fn_number"),
            ("STATUS", "status"),
            ("ACCEPTANCE", "acceptance"),
            ("TARIFF", "tariff"),
            ("PAID UNTIL", "paid_until"),
            ("LAST SEEN", "last_seen"),
            ("DOCS", "documents"),
        ],
        "registers",
    )
}

/// `registers show RNM`.
pub(super) async fn show(ctx: &Ctx, rnm: &str) -> CliResult<()> {
    let v = ctx.client.get(&format!("/v1/registers/{}", seg(rnm)), &[]).await?;
    print_register(ctx.format, &v)
}

/// `registers backlog`: unknown FNs that tried to send documents.
pub(super) async fn backlog(ctx: &Ctx, paging: &Paging) -> CliResult<()> {
    let v = ctx.pages("/v1/backlog", Vec::new(), paging).await?;
    output::list(
        ctx.format,
        &v,
        &[
            ("FN", "fn_number"),
            ("ATTEMPTS", "attempts"),
            ("FIRST SEEN", "first_seen"),
            ("LAST SEEN", "last_seen"),
            ("CLAIMED RNM", "claimed_rnm"),
            ("CLAIMED INN", "claimed_inn"),
            ("LAST PEER", "last_peer"),
        ],
        "unknown FNs",
    )
}

/// Prints a register view (`{register, acceptance, activity?}`).
pub(super) fn print_register(format: Format, v: &Value) -> CliResult<()> {
    if structured(format, v)? {
        return Ok(());
    }
    let r = v.get("register").unwrap_or(&Value::Null);
    let a = v.get("activity");
    let mut rows = vec![
        ("RNM", field(r, "rnm")),
        ("Name", field(r, "name")),
        ("Owner INN", field(r, "owner_inn")),
        ("KKT serial", field(r, "kkt_serial")),
        ("Address", field(r, "address")),
        ("Group", field(r, "group")),
        ("Status", field(r, "status")),
        ("Acceptance", field(v, "acceptance")),
        ("FN", field(r, "fn_number")),
        ("FN since", field(r, "fn_since")),
        ("Tariff", field(r, "tariff")),
        ("Next tariff", field(r, "next_tariff")),
        ("Paid until", field(r, "paid_until")),
    ];
    if let Some(a) = a {
        rows.extend([
            ("Last seen", field(a, "last_seen")),
            ("Last FN", field(a, "last_fn")),
            ("Last FD", field(a, "last_fd")),
            ("Last document time", field(a, "last_document_time")),
            ("Documents", field(a, "documents")),
            ("FLK errors", field(a, "flk_errors")),
        ]);
    }
    rows.extend([("Created", field(r, "created_at")), ("Updated", field(r, "updated_at"))]);
    print_table(&key_values(&rows));
    if let Some(hist) = r.get("fn_history").and_then(Value::as_array)
        && !hist.is_empty()
    {
        output::line("FN history:");
        let mut t = output::table(&["FN", "ACTIVE FROM", "REPLACED AT"]);
        for h in hist {
            t.add_row(vec![field(h, "fn_number"), field(h, "active_from"), field(h, "replaced_at")]);
        }
        print_table(&t);
    }
    Ok(())
}
