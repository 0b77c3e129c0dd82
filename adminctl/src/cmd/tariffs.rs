//! `adminctl tariffs ...`

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{Value, json};

use super::{Ctx, seg};
use crate::client::{CliError, CliResult};
use crate::output::{self, Format, field, key_values, print_table, structured};

/// Which registers a bulk verb applies to.
#[derive(Debug, Clone, clap::Args)]
pub struct Select {
    /// A register (repeat for several).
    #[arg(long = "rnm")]
    pub rnms: Vec<String>,
    /// A CSV file with an `rnm` column (e.g. a register import file).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Filter: active or suspended.
    #[arg(long)]
    pub status: Option<String>,
    /// Filter: owner INN.
    #[arg(long)]
    pub owner_inn: Option<String>,
    /// Filter: group.
    #[arg(long)]
    pub group: Option<String>,
    /// Filter: current tariff plan.
    #[arg(long)]
    pub current_tariff: Option<String>,
    /// Filter: paid period ends before this date/time.
    #[arg(long)]
    pub paid_until_before: Option<String>,
    /// Every register.
    #[arg(long)]
    pub all_registers: bool,
}

/// Tariff verbs.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Create a plan.
    Create {
        /// Plan name (letters, digits, '-', '_', '.').
        name: String,
        /// Length of the paid period in days.
        #[arg(long)]
        period_days: u32,
        /// Price per period in rubles (e.g. 3000 or 2999.99).
        #[arg(long, value_parser = parse_rubles)]
        price: u64,
        /// Description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List plans.
    #[command(visible_alias = "ls")]
    List,
    /// Show a plan.
    Show {
        /// Plan name.
        name: String,
    },
    /// Assign a plan to registers (one, a list, a CSV, or a filter).
    Assign {
        /// Plan name.
        plan: String,
        #[command(flatten)]
        select: Select,
        /// Switch at the end of the current paid period (at the next renewal) instead of now.
        #[arg(long)]
        at_period_end: bool,
        /// Report what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation of a bulk change.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Extend paid-until by the plan period (one, a list, a CSV, or a filter).
    Renew {
        #[command(flatten)]
        select: Select,
        /// Periods to add.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=120))]
        periods: u32,
        /// Report what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation of a bulk change.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// Rubles ("3000", "2999.99", "2999,9") to kopecks.
pub fn parse_rubles(s: &str) -> Result<u64, String> {
    let s = s.trim().replace(',', ".");
    let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
    let ok = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 2
        && frac.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return Err("must be an amount in rubles with at most 2 decimals, e.g. 3000 or 2999.99".into());
    }
    let rub: u64 = whole.parse().map_err(|_| "amount too large".to_owned())?;
    let kop: u64 = format!("{frac:0<2}").parse().unwrap_or(0);
    rub.checked_mul(100)
        .and_then(|k| k.checked_add(kop))
        .ok_or_else(|| "amount too large".into())
}

fn rnms_from_csv(path: &Path) -> CliResult<Vec<String>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(path)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?;
    let headers = rdr
        .headers()
        .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?
        .clone();
    let col = headers
        .iter()
        .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case("rnm"))
        .ok_or_else(|| CliError::usage(format!("{}: line 1: no \"rnm\" column", path.display())))?;
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
        if let Some(v) = rec.get(col).filter(|v| !v.is_empty()) {
            out.push(v.to_owned());
        }
    }
    if out.is_empty() {
        return Err(CliError::usage(format!("{}: no registers listed", path.display())));
    }
    Ok(out)
}

/// The selection part of a bulk body, and whether it is a bulk change.
fn selection(s: &Select) -> CliResult<(serde_json::Map<String, Value>, bool, String)> {
    let mut rnms = s.rnms.clone();
    if let Some(p) = &s.csv {
        rnms.extend(rnms_from_csv(p)?);
    }
    let filter: Vec<(&str, &Option<String>)> = vec![
        ("status", &s.status),
        ("owner_inn", &s.owner_inn),
        ("group", &s.group),
        ("tariff", &s.current_tariff),
        ("paid_until_before", &s.paid_until_before),
    ];
    let has_filter = s.all_registers || filter.iter().any(|(_, v)| v.is_some());
    let mut body = serde_json::Map::new();
    match (rnms.is_empty(), has_filter) {
        (false, true) => Err(CliError::usage(
            "give registers (--rnm/--csv) or a filter (--status, --owner-inn, --group, --current-tariff, --paid-until-before, --all-registers), not both",
        )),
        (true, false) => Err(CliError::usage(
            "which registers? give --rnm, --csv, a filter (--status, --owner-inn, --group, --current-tariff, --paid-until-before) or --all-registers",
        )),
        (false, false) => {
            let bulk = rnms.len() > 1;
            let what = if bulk {
                format!("{} registers", rnms.len())
            } else {
                format!("register {}", rnms[0])
            };
            body.insert("rnms".into(), json!(rnms));
            Ok((body, bulk, what))
        }
        (true, true) => {
            let mut f = serde_json::Map::new();
            let mut desc = Vec::new();
            for (k, v) in filter {
                if let Some(v) = v {
                    f.insert(k.into(), json!(v));
                    desc.push(format!("{k}={v}"));
                }
            }
            if s.all_registers {
                f.insert("all".into(), json!(true));
                desc.push("all".into());
            }
            body.insert("filter".into(), Value::Object(f));
            Ok((body, true, format!("every register matching {}", desc.join(", "))))
        }
    }
}

/// Runs a tariff verb.
pub async fn run(verb: Verb, ctx: &Ctx) -> CliResult<()> {
    output::no_raw(ctx.format)?;
    match verb {
        Verb::Create {
            name,
            period_days,
            price,
            description,
        } => {
            let v = ctx
                .client
                .post(
                    "/v1/tariffs",
                    &json!({"name": name, "period_days": period_days, "price_kopecks": price, "description": description}),
                )
                .await?;
            print_plan(ctx.format, &v)
        }
        Verb::List => {
            let v = ctx.client.get("/v1/tariffs", &[]).await?;
            if structured(ctx.format, &v)? {
                return Ok(());
            }
            let mut t = output::table(&["NAME", "PERIOD (DAYS)", "PRICE (RUB)", "DESCRIPTION"]);
            for p in v.get("items").and_then(Value::as_array).into_iter().flatten() {
                t.add_row(vec![
                    field(p, "name"),
                    field(p, "period_days"),
                    rubles(p),
                    field(p, "description"),
                ]);
            }
            print_table(&t);
            Ok(())
        }
        Verb::Show { name } => {
            let v = ctx
                .client
                .get(&format!("/v1/tariffs/{}", seg(&name)), &[])
                .await?;
            print_plan(ctx.format, &v)
        }
        Verb::Assign {
            plan,
            select,
            at_period_end,
            dry_run,
            yes,
        } => {
            let (mut body, bulk, what) = selection(&select)?;
            if bulk && !dry_run {
                ctx.confirm(&format!("Assign plan {plan} to {what}"), yes)?;
            }
            body.insert("plan".into(), json!(plan));
            body.insert(
                "effective".into(),
                json!(if at_period_end { "period_end" } else { "now" }),
            );
            body.insert("dry_run".into(), json!(dry_run));
            let v = ctx
                .client
                .post("/v1/tariffs/assign", &Value::Object(body))
                .await?;
            print_bulk(ctx.format, &v)
        }
        Verb::Renew {
            select,
            periods,
            dry_run,
            yes,
        } => {
            let (mut body, bulk, what) = selection(&select)?;
            if bulk && !dry_run {
                ctx.confirm(&format!("Renew {what} by {periods} period(s)"), yes)?;
            }
            body.insert("periods".into(), json!(periods));
            body.insert("dry_run".into(), json!(dry_run));
            let v = ctx
                .client
                .post("/v1/tariffs/renew", &Value::Object(body))
                .await?;
            print_bulk(ctx.format, &v)
        }
    }
}

fn rubles(p: &Value) -> String {
    match p.get("price_kopecks").and_then(Value::as_u64) {
        Some(k) => format!("{}.{:02}", k / 100, k % 100),
        None => "-".into(),
    }
}

fn print_plan(format: Format, v: &Value) -> CliResult<()> {
    if structured(format, v)? {
        return Ok(());
    }
    print_table(&key_values(&[
        ("Name", field(v, "name")),
        ("Period (days)", field(v, "period_days")),
        ("Price (RUB)", rubles(v)),
        ("Description", field(v, "description")),
        ("Created", field(v, "created_at")),
    ]));
    Ok(())
}

fn print_bulk(format: Format, v: &Value) -> CliResult<()> {
    if structured(format, v)? {
        return Ok(());
    }
    let dry = v.get("dry_run").and_then(Value::as_bool).unwrap_or(false);
    output::line(&format!(
        "{} matched, {} {}changed, {} unchanged",
        field(v, "matched"),
        field(v, "changed"),
        if dry { "would be " } else { "" },
        field(v, "unchanged"),
    ));
    let regs = v.get("registers").and_then(Value::as_array);
    if let Some(regs) = regs.filter(|r| !r.is_empty()) {
        let mut t = output::table(&["RNM", "TARIFF", "NEXT TARIFF", "PAID UNTIL"]);
        for r in regs {
            t.add_row(vec![
                field(r, "rnm"),
                field(r, "tariff"),
                field(r, "next_tariff"),
                field(r, "paid_until"),
            ]);
        }
        print_table(&t);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_rubles;

    #[test]
    fn rubles_to_kopecks() {
        assert_eq!(parse_rubles("3000"), Ok(300_000));
        assert_eq!(parse_rubles("2999.99"), Ok(299_999));
        assert_eq!(parse_rubles("2999,9"), Ok(299_990));
        assert!(parse_rubles("12.345").is_err());
        assert!(parse_rubles("-1").is_err());
        assert!(parse_rubles("abc").is_err());
    }
}
