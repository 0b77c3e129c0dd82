//! The parameters of `GET /v1/reports`, checked one by one (each error names its field)
//! before anything is read: grouping, format, time zone, the range of local days (at most
//! `[reports] max_days`), and the registers the filters select (an unknown register,
//! owner or tariff plan is a 404 naming the field).

use std::ops::RangeInclusive;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Deserialize;
use storage::model::Register;
use storage::{Inn, RegisterFilter, Rnm};

use crate::control::admin::Ctx;
use crate::control::admin::error::{ApiError, ApiResult};
use crate::control::reports::{Grouping, day_number};

/// Registers one report covers at most.
pub const MAX_REGISTERS: usize = 100_000;

/// Query of `GET /v1/reports`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// One register (RNM).
    pub rnm: Option<String>,
    /// Registers of this owner INN.
    pub owner_inn: Option<String>,
    /// Registers on this tariff plan.
    pub tariff: Option<String>,
    /// First local day: YYYY-MM-DD, `today` or `yesterday` (required).
    pub from: Option<String>,
    /// Last local day, included (default: `from`).
    pub to: Option<String>,
    /// Rows per `day` (default), `week` (ISO), `month`, `register`, `owner` or `shift`.
    pub by: Option<String>,
    /// Count every register's days in this IANA zone instead of its own.
    pub time_zone: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// Output format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object, its rows streamed.
    Json,
    /// CSV, one row a group, then a `total` row.
    Csv,
}

/// A checked report request.
#[derive(Debug)]
pub struct Plan {
    /// Grouping.
    pub by: Grouping,
    /// Format.
    pub format: Format,
    /// First and last local day.
    pub from: Date,
    /// See `from`.
    pub to: Date,
    /// The same as day numbers.
    pub days: RangeInclusive<i32>,
    /// A zone imposed on every register.
    pub time_zone: Option<String>,
    /// The registers, by RNM.
    pub registers: Vec<Register>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A zone of the tz database; the error names `field`.
pub fn zone(field: &str, name: &str) -> ApiResult<TimeZone> {
    TimeZone::get(name).map_err(|_| {
        ApiError::invalid_param(field, format!("{name:?} is not an IANA time zone (e.g. Europe/Moscow, Asia/Vladivostok)"))
    })
}

/// A local date: `YYYY-MM-DD`, or `today` / `yesterday` in `tz`.
fn parse_date(field: &str, s: &str, tz: &TimeZone) -> ApiResult<Date> {
    let today = || tz.to_datetime(jiff::Timestamp::now()).date();
    let d = match s {
        "today" => Some(today()),
        "yesterday" => today().yesterday().ok(),
        _ => s.parse::<Date>().ok().filter(|_| s.len() == 10),
    };
    d.ok_or_else(|| ApiError::invalid_param(field, format!("{s:?} is not a date: write YYYY-MM-DD, today or yesterday")))
}

/// Checks everything but the registers.
pub fn check(ctx: &Ctx, q: &ReportQuery) -> ApiResult<(Grouping, Format, Date, Date, Option<String>)> {
    let by = match nonempty(&q.by) {
        None => Grouping::Day,
        Some(s) => Grouping::parse(s).ok_or_else(|| {
            ApiError::invalid_param("by", format!("{s:?} is not a grouping (one of {})", Grouping::NAMES.join(", ")))
        })?,
    };
    let format = match nonempty(&q.format) {
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some(s) => return Err(ApiError::invalid_param("format", format!("{s:?} is not a format (json or csv)"))),
    };
    let cfg = &ctx.shared.config.reports;
    let imposed = nonempty(&q.time_zone).map(str::to_owned);
    let tz = match &imposed {
        Some(name) => zone("time_zone", name)?,
        None => zone("time_zone", cfg.default_time_zone.trim())?,
    };
    let from = parse_date("from", nonempty(&q.from).ok_or_else(|| ApiError::invalid_param("from", "is required"))?, &tz)?;
    let to = match nonempty(&q.to) {
        Some(s) => parse_date("to", s, &tz)?,
        None => from,
    };
    if from > to {
        return Err(ApiError::invalid_param("to", format!("{to} is before from ({from})")));
    }
    let (Some(a), Some(b)) = (day_number(from), day_number(to)) else {
        return Err(ApiError::invalid_param("from", "is out of range"));
    };
    let days = i64::from(b) - i64::from(a) + 1;
    if days > i64::from(cfg.max_days) {
        return Err(ApiError::invalid_param(
            "to",
            format!("the range {from}..{to} is {days} days; at most {} (reports.max_days)", cfg.max_days),
        ));
    }
    Ok((by, format, from, to, imposed))
}

/// The registers the filters select, by RNM.
pub async fn registers(ctx: &Ctx, q: &ReportQuery) -> ApiResult<Vec<Register>> {
    let store = &ctx.shared.store;
    let owner = nonempty(&q.owner_inn)
        .map(|s| Inn::parse(s).map_err(|e| ApiError::invalid_param("owner_inn", e.to_string())))
        .transpose()?;
    let tariff = nonempty(&q.tariff).map(str::to_owned);
    if let Some(t) = &tariff
        && store.get_tariff(t).await?.is_none()
    {
        return Err(ApiError::not_found(format!("tariff plan {t:?} does not exist")).with_field("tariff"));
    }
    let filter = RegisterFilter { owner_inn: owner.clone(), tariff, ..RegisterFilter::default() };
    if let Some(s) = nonempty(&q.rnm) {
        let rnm = Rnm::parse(s).map_err(|e| ApiError::invalid_param("rnm", e.to_string()))?;
        let r = store
            .get_register(&rnm)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("register {rnm} does not exist")).with_field("rnm"))?;
        return Ok(if filter.matches(&r) { vec![r] } else { Vec::new() });
    }
    let Some(mut out) = crate::control::admin::registers::collect(store.as_ref(), &filter, MAX_REGISTERS).await? else {
        return Err(ApiError::invalid_param(
            "owner_inn",
            format!("the filters select more than {MAX_REGISTERS} registers: narrow them (owner_inn, tariff, rnm)"),
        ));
    };
    if out.is_empty()
        && let Some(inn) = owner
    {
        return Err(ApiError::not_found(format!("owner INN {inn} has no register")).with_field("owner_inn"));
    }
    out.sort_by(|a, b| a.rnm.as_str().cmp(b.rnm.as_str()));
    Ok(out)
}
