//! `adminctl alerts ...`: rules (add, list, show, enable, disable, delete), alert states
//! with the traffic light per register, webhook notifications.

use std::time::Duration;

use clap::Subcommand;
use serde_json::{Value, json};

use super::{Ctx, Paging, seg};
use crate::client::{CliError, CliResult};
use crate::output::{self, Format, field, key_values, print_table, structured};

/// The condition of a new rule: exactly one kind.
#[derive(Debug, Clone, clap::Args)]
pub struct Condition {
    /// Fire when a register sent no document for longer than this (e.g. 24h).
    #[arg(long, value_parser = crate::parse_duration, help_heading = "Condition (exactly one kind)")]
    pub silent: Option<Duration>,
    /// Fire when the FN has at most this many days left (key resource 1213, or
    /// registration date plus --fn-term-days).
    #[arg(long, value_name = "DAYS", help_heading = "Condition (exactly one kind)")]
    pub fn_end_of_life: Option<u32>,
    /// FN term in days for the registration-date estimate (e.g. 456, 1110).
    #[arg(long, value_name = "DAYS", default_value_t = 456, help_heading = "Condition (exactly one kind)")]
    pub fn_term_days: u32,
    /// Fire when the paid period ends within this many days (or has ended).
    #[arg(long, value_name = "DAYS", help_heading = "Condition (exactly one kind)")]
    pub paid_period_ending: Option<u32>,
    /// Fire when a register reports more than N unsent documents (1097).
    #[arg(long, value_name = "N", help_heading = "Condition (exactly one kind)")]
    pub unsent_above: Option<u32>,
    /// Fire when the oldest unsent document (1098) is older than this (e.g. 3d).
    #[arg(long, value_parser = crate::parse_duration, help_heading = "Condition (exactly one kind)")]
    pub unsent_older_than: Option<Duration>,
    /// Fire when more than N FDs of the register's FNs were never received (holes between
    /// the lowest and highest FD received).
    #[arg(long, value_name = "N", help_heading = "Condition (exactly one kind)")]
    pub fd_gaps_above: Option<u64>,
    /// Fire when an FD has been missing for longer than this (e.g. 1h).
    #[arg(long, value_parser = crate::parse_duration, help_heading = "Condition (exactly one kind)")]
    pub fd_gap_older_than: Option<Duration>,
    /// Fire on FN warning flags: "any", or tags among 1050,1051,1052,1053.
    #[arg(long, value_name = "FLAGS", help_heading = "Condition (exactly one kind)")]
    pub fn_warnings: Option<String>,
    /// Fire when more than N documents got code 14 (format-logic errors) within --flk-window.
    #[arg(long, value_name = "N", help_heading = "Condition (exactly one kind)")]
    pub flk_above: Option<u32>,
    /// Window of --flk-above.
    #[arg(long, value_parser = crate::parse_duration, default_value = "1h", help_heading = "Condition (exactly one kind)")]
    pub flk_window: Duration,
}

/// Rules verbs.
#[derive(Debug, Subcommand)]
pub enum RuleVerb {
    /// Add a rule.
    Add {
        /// Rule name (letters, digits, '-', '_', '.'); also the metric label.
        name: String,
        #[command(flatten)]
        condition: Box<Condition>,
        /// Only registers of this owner INN.
        #[arg(long, conflicts_with_all = ["group", "register"])]
        owner_inn: Option<String>,
        /// Only registers of this group.
        #[arg(long, conflicts_with = "register")]
        group: Option<String>,
        /// Only these registers (repeat).
        #[arg(long = "register", value_name = "RNM")]
        register: Vec<String>,
        /// info, warning (yellow) or critical (red).
        #[arg(long, default_value = "warning", value_parser = ["info", "warning", "critical"])]
        severity: String,
        /// Webhook URL notified on firing and resolving.
        #[arg(long)]
        webhook: Option<String>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List rules.
    #[command(visible_alias = "ls")]
    List,
    /// Show a rule.
    Show {
        /// Rule name.
        name: String,
    },
    /// Enable a rule.
    Enable {
        /// Rule name.
        name: String,
    },
    /// Disable a rule (its firing alerts resolve at the next evaluation).
    Disable {
        /// Rule name.
        name: String,
    },
    /// Delete a rule and its alert states.
    #[command(visible_alias = "rm")]
    Delete {
        /// Rule name.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// Alerts verbs.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Alert rules: add, list, show, enable, disable, delete.
    #[command(visible_alias = "rule")]
    Rules {
        /// What to do.
        #[command(subcommand)]
        verb: RuleVerb,
    },
    /// Alert states with the traffic light (green/yellow/red, grey = suspended) per register.
    #[command(visible_alias = "ls")]
    List {
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        /// Alerts that are firing, resolved or all; or registers whose light is red,
        /// yellow, green or grey (every register has one).
        #[arg(long, default_value = "firing", value_parser = ["firing", "resolved", "all", "red", "yellow", "green", "grey"])]
        state: String,
        /// Only this register.
        #[arg(long = "register", visible_alias = "rnm", value_name = "RNM")]
        register: Option<String>,
        /// Only registers of this owner (their lights are shown, green ones too).
        #[arg(long)]
        owner_inn: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// How many registers are red, yellow, green and grey (they add up to the number of
    /// registers); with --by, the same per tariff plan or owner INN.
    Summary {
        /// Totals per tariff plan or per owner INN.
        #[arg(long, value_parser = ["tariff", "owner-inn"])]
        by: Option<String>,
        /// Only registers of this owner.
        #[arg(long)]
        owner_inn: Option<String>,
        /// Only registers on this tariff plan.
        #[arg(long)]
        tariff: Option<String>,
    },
    /// Webhook notifications and their delivery state, newest first.
    Notifications {
        #[command(flatten)]
        paging: Paging,
    },
}

fn warning_mask(s: &str) -> CliResult<u8> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("any") || s.is_empty() {
        return Ok(0);
    }
    let mut mask = 0u8;
    for part in s.split(',').map(str::trim) {
        let bit = match part {
            "1050" => 1,
            "1051" => 2,
            "1052" => 4,
            "1053" => 8,
            other => {
                return Err(CliError::usage(format!(
                    "--fn-warnings: {other:?} is not one of 1050, 1051, 1052, 1053 (or \"any\")"
                )));
            }
        };
        mask |= bit;
    }
    Ok(mask)
}

/// The rule condition JSON from the flags.
pub fn condition_json(c: &Condition) -> CliResult<Value> {
    let mut kinds = Vec::new();
    if let Some(d) = c.silent {
        kinds.push(json!({"kind": "silent", "for_secs": d.as_secs().max(1)}));
    }
    if let Some(days) = c.fn_end_of_life {
        kinds.push(json!({"kind": "fn_end_of_life", "within_days": days, "fn_term_days": c.fn_term_days}));
    }
    if let Some(days) = c.paid_period_ending {
        kinds.push(json!({"kind": "paid_period_ending", "within_days": days}));
    }
    if c.unsent_above.is_some() || c.unsent_older_than.is_some() {
        kinds.push(json!({
            "kind": "unsent_backlog",
            "count_above": c.unsent_above,
            "older_than_secs": c.unsent_older_than.map(|d| d.as_secs().max(1)),
        }));
    }
    if c.fd_gaps_above.is_some() || c.fd_gap_older_than.is_some() {
        kinds.push(json!({
            "kind": "fd_gaps",
            "missing_above": c.fd_gaps_above,
            "older_than_secs": c.fd_gap_older_than.map(|d| d.as_secs().max(1)),
        }));
    }
    if let Some(f) = &c.fn_warnings {
        kinds.push(json!({"kind": "fn_warnings", "mask": warning_mask(f)?}));
    }
    if let Some(n) = c.flk_above {
        kinds.push(json!({"kind": "flk_errors", "above": n, "window_secs": c.flk_window.as_secs().max(1)}));
    }
    match kinds.len() {
        1 => Ok(kinds.remove(0)),
        0 => Err(CliError::usage(
            "which condition? give one of --silent, --fn-end-of-life, --paid-period-ending, --unsent-above/--unsent-older-than, --fd-gaps-above/--fd-gap-older-than, --fn-warnings, --flk-above",
        )),
        _ => Err(CliError::usage("give one condition kind per rule")),
    }
}

/// Runs an alerts verb.
pub async fn run(verb: Verb, ctx: &Ctx) -> CliResult<()> {
    output::no_raw(ctx.format)?;
    match verb {
        Verb::Rules { verb } => run_rules(verb, ctx).await,
        Verb::List { rule, state, register, owner_inn, paging } => {
            if matches!(state.as_str(), "red" | "yellow" | "green" | "grey") {
                if rule.is_some() || register.is_some() {
                    return Err(CliError::usage(
                        "--state with a colour lists registers: it goes with --owner-inn, not --rule or --register",
                    ));
                }
                return list_lights(ctx, &state, owner_inn.unwrap_or_default(), &paging).await;
            }
            let fleet = register.is_none();
            let owner = owner_inn.clone().unwrap_or_default();
            let q = vec![
                ("rule", rule.unwrap_or_default()),
                ("state", state),
                ("rnm", register.unwrap_or_default()),
                ("owner_inn", owner_inn.unwrap_or_default()),
            ];
            let mut v = alert_pages(ctx, q, &paging).await?;
            if fleet {
                // the summary is the fleet's (or the owner's): every register has a colour
                let s = ctx.client.get("/v1/lights/summary", &[("owner_inn", owner)]).await?;
                v["summary"] = s;
            }
            print_alerts(ctx.format, &v)
        }
        Verb::Summary { by, owner_inn, tariff } => {
            let q = vec![
                ("by", by.map(|b| b.replace('-', "_")).unwrap_or_default()),
                ("owner_inn", owner_inn.unwrap_or_default()),
                ("tariff", tariff.unwrap_or_default()),
            ];
            let v = ctx.client.get("/v1/lights/summary", &q).await?;
            print_summary(ctx.format, &v)
        }
        Verb::Notifications { paging } => {
            let v = ctx.pages("/v1/alerts/notifications", Vec::new(), &paging).await?;
            if structured(ctx.format, &v)? {
                return Ok(());
            }
            let items = v.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
            if items.is_empty() {
                output::note("no notifications");
                return Ok(());
            }
            let mut t = output::table(&["CREATED", "RULE", "RNM", "STATUS", "DELIVERY", "ATTEMPTS", "LAST ERROR"]);
            for n in &items {
                let delivery = if n.get("delivered_at").is_some_and(|d| !d.is_null()) {
                    format!("delivered {}", field(n, "delivered_at"))
                } else if n.get("abandoned").and_then(Value::as_bool) == Some(true) {
                    "abandoned".to_owned()
                } else {
                    format!("retry at {}", field(n, "next_attempt_at"))
                };
                t.add_row(vec![
                    field(n, "created_at"),
                    field(n, "rule"),
                    field(n, "rnm"),
                    field(n, "status"),
                    delivery,
                    field(n, "attempts"),
                    field(n, "last_error"),
                ]);
            }
            print_table(&t);
            if let Some(next) = v.get("next").and_then(Value::as_str) {
                output::note(&format!("more notifications: --cursor {next} (or --all)"));
            }
            Ok(())
        }
    }
}

/// Like `Ctx::pages`, keeping the register lights of every page.
async fn alert_pages(ctx: &Ctx, mut query: Vec<(&str, String)>, p: &Paging) -> CliResult<Value> {
    let limit = if p.all { 1000 } else { p.limit };
    query.push(("limit", limit.to_string()));
    let mut cursor = p.cursor.clone();
    let mut items: Vec<Value> = Vec::new();
    let mut registers: Vec<Value> = Vec::new();
    loop {
        let mut q = query.clone();
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let page = ctx.client.get("/v1/alerts", &q).await?;
        items.extend(page.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
        for r in page.get("registers").and_then(Value::as_array).cloned().unwrap_or_default() {
            if !registers.iter().any(|x| x.get("rnm") == r.get("rnm")) {
                registers.push(r);
            }
        }
        cursor = page.get("next").and_then(Value::as_str).map(str::to_owned);
        if !p.all || cursor.is_none() {
            break;
        }
    }
    let mut summary = serde_json::Map::new();
    for colour in ["green", "yellow", "red", "grey"] {
        let n = registers.iter().filter(|r| r.get("light").and_then(Value::as_str) == Some(colour)).count();
        summary.insert(colour.into(), json!(n));
    }
    Ok(json!({"items": items, "next": cursor, "registers": registers, "summary": summary}))
}

fn light_cell(l: &str) -> String {
    match l {
        "red" => "● red".into(),
        "yellow" => "● yellow".into(),
        "green" => "● green".into(),
        "grey" => "○ grey".into(),
        other => other.into(),
    }
}

fn print_alerts(format: Format, v: &Value) -> CliResult<()> {
    if structured(format, v)? {
        return Ok(());
    }
    let items = v.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
    if items.is_empty() {
        output::note("no alerts");
    } else {
        let mut t = output::table(&["RULE", "RNM", "OWNER INN", "SEVERITY", "STATE", "SINCE", "RESOLVED", "DETAIL"]);
        for a in &items {
            t.add_row(vec![
                field(a, "rule"),
                field(a, "rnm"),
                field(a, "owner_inn"),
                field(a, "severity"),
                field(a, "status"),
                field(a, "since"),
                field(a, "resolved_at"),
                field(a, "detail"),
            ]);
        }
        print_table(&t);
    }
    let regs = v.get("registers").and_then(Value::as_array).cloned().unwrap_or_default();
    if !regs.is_empty() {
        let mut t = output::table(&["RNM", "NAME", "OWNER INN", "LIGHT", "CRITICAL", "WARNING", "INFO"]);
        for r in &regs {
            t.add_row(vec![
                field(r, "rnm"),
                field(r, "name"),
                field(r, "owner_inn"),
                light_cell(&field(r, "light")),
                field(r, "critical"),
                field(r, "warning"),
                field(r, "info"),
            ]);
        }
        print_table(&t);
    }
    let s = v.get("summary").cloned().unwrap_or(Value::Null);
    output::line(&summary_line(&s));
    if let Some(next) = v.get("next").and_then(Value::as_str) {
        output::note(&format!("more alerts: --cursor {next} (or --all)"));
    }
    Ok(())
}

/// "registers: 1 red, 0 yellow, 999 green, 1 grey (1001 registers)".
fn summary_line(s: &Value) -> String {
    let total = s.get("total").map(|_| format!(" ({} registers)", field(s, "total"))).unwrap_or_default();
    format!(
        "registers: {} red, {} yellow, {} green, {} grey{total}",
        field(s, "red"),
        field(s, "yellow"),
        field(s, "green"),
        field(s, "grey")
    )
}

fn print_summary(format: Format, v: &Value) -> CliResult<()> {
    if structured(format, v)? {
        return Ok(());
    }
    if let Some(groups) = v.get("groups").and_then(Value::as_array) {
        let by = if v.get("by").and_then(Value::as_str) == Some("tariff") { "TARIFF" } else { "OWNER INN" };
        let mut t = output::table(&[by, "RED", "YELLOW", "GREEN", "GREY", "TOTAL"]);
        for g in groups {
            let key = g.get("key").and_then(Value::as_str).map_or_else(|| "(none)".to_owned(), str::to_owned);
            t.add_row(vec![key, field(g, "red"), field(g, "yellow"), field(g, "green"), field(g, "grey"), field(g, "total")]);
        }
        print_table(&t);
    }
    output::line(&summary_line(v));
    Ok(())
}

/// `alerts list --state <colour>`: registers of that colour, filled up to `--limit`
/// (a page of registers may hold fewer of one colour), and the fleet's summary.
async fn list_lights(ctx: &Ctx, colour: &str, owner_inn: String, p: &Paging) -> CliResult<()> {
    let mut cursor = p.cursor.clone();
    let mut items: Vec<Value> = Vec::new();
    loop {
        let mut q = vec![
            ("state", colour.to_owned()),
            ("owner_inn", owner_inn.clone()),
            ("limit", if p.all { 1000 } else { p.limit }.to_string()),
        ];
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let page = ctx.client.get("/v1/lights", &q).await?;
        items.extend(page.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
        cursor = page.get("next").and_then(Value::as_str).map(str::to_owned);
        if cursor.is_none() || (!p.all && items.len() >= p.limit as usize) {
            break;
        }
    }
    let summary = ctx.client.get("/v1/lights/summary", &[("owner_inn", owner_inn)]).await?;
    let v = json!({"registers": items, "next": cursor, "summary": summary});
    if structured(ctx.format, &v)? {
        return Ok(());
    }
    if items.is_empty() {
        output::note(&format!("no {colour} registers"));
    } else {
        let mut t = output::table(&["RNM", "NAME", "OWNER INN", "TARIFF", "LIGHT", "CRITICAL", "WARNING", "INFO"]);
        for r in &items {
            t.add_row(vec![
                field(r, "rnm"),
                field(r, "name"),
                field(r, "owner_inn"),
                field(r, "tariff"),
                light_cell(&field(r, "light")),
                field(r, "critical"),
                field(r, "warning"),
                field(r, "info"),
            ]);
        }
        print_table(&t);
    }
    output::line(&summary_line(&v["summary"]));
    if let Some(next) = v.get("next").and_then(Value::as_str) {
        output::note(&format!("more registers: --cursor {next} (or --all)"));
    }
    Ok(())
}

fn print_rule(format: Format, v: &Value) -> CliResult<()> {
    if structured(format, v)? {
        return Ok(());
    }
    let scope = match v.get("scope") {
        Some(s) => match (s.get("type").and_then(Value::as_str), s.get("value")) {
            (Some("all"), _) | (None, _) => "all registers".to_owned(),
            (Some(t), Some(val)) => format!("{t} {}", output::cell(Some(val))),
            (Some(t), None) => t.to_owned(),
        },
        None => "-".into(),
    };
    print_table(&key_values(&[
        ("Name", field(v, "name")),
        ("Condition", field(v, "description")),
        ("Scope", scope),
        ("Severity", field(v, "severity")),
        ("Enabled", field(v, "enabled")),
        ("Webhook", field(v, "webhook")),
        ("Firing", field(v, "firing")),
        ("Created", field(v, "created_at")),
        ("Updated", field(v, "updated_at")),
    ]));
    Ok(())
}

async fn run_rules(verb: RuleVerb, ctx: &Ctx) -> CliResult<()> {
    match verb {
        RuleVerb::Add { name, condition, owner_inn, group, register, severity, webhook, disabled } => {
            let scope = match (owner_inn, group, register.is_empty()) {
                (Some(inn), _, _) => json!({"type": "owner_inn", "value": inn}),
                (None, Some(g), _) => json!({"type": "group", "value": g}),
                (None, None, false) => json!({"type": "registers", "value": register}),
                (None, None, true) => json!({"type": "all"}),
            };
            let body = json!({
                "name": name,
                "condition": condition_json(&condition)?,
                "scope": scope,
                "severity": severity,
                "enabled": !disabled,
                "webhook": webhook,
            });
            let v = ctx.client.post("/v1/alerts/rules", &body).await?;
            print_rule(ctx.format, &v)
        }
        RuleVerb::List => {
            let v = ctx.client.get("/v1/alerts/rules", &[]).await?;
            if structured(ctx.format, &v)? {
                return Ok(());
            }
            let items = v.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
            if items.is_empty() {
                output::note("no alert rules");
                return Ok(());
            }
            let mut t = output::table(&["NAME", "CONDITION", "SEVERITY", "ENABLED", "FIRING", "WEBHOOK"]);
            for r in &items {
                t.add_row(vec![
                    field(r, "name"),
                    field(r, "description"),
                    field(r, "severity"),
                    field(r, "enabled"),
                    field(r, "firing"),
                    field(r, "webhook"),
                ]);
            }
            print_table(&t);
            Ok(())
        }
        RuleVerb::Show { name } => {
            let v = ctx.client.get(&format!("/v1/alerts/rules/{}", seg(&name)), &[]).await?;
            print_rule(ctx.format, &v)
        }
        RuleVerb::Enable { name } => {
            let v = ctx.client.post(&format!("/v1/alerts/rules/{}/enable", seg(&name)), &json!({})).await?;
            print_rule(ctx.format, &v)
        }
        RuleVerb::Disable { name } => {
            let v = ctx.client.post(&format!("/v1/alerts/rules/{}/disable", seg(&name)), &json!({})).await?;
            print_rule(ctx.format, &v)
        }
        RuleVerb::Delete { name, yes } => {
            ctx.confirm(&format!("Delete alert rule {name} and its alert states"), yes)?;
            ctx.client.delete(&format!("/v1/alerts/rules/{}", seg(&name))).await?;
            if !structured(ctx.format, &json!({"deleted": name}))? {
                output::line(&format!("alert rule {name} deleted"));
            }
            Ok(())
        }
    }
}
