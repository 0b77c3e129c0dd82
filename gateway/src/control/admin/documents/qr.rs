//! The QR code printed on every receipt (FNS order ММВ-7-20/229@): what a buyer or an
//! inspector holds, e.g. `t=20260105T1230&s=1234.50&fn=9999078900005488&i=2&fp=1234567890&n=1`.
//!
//! Parts: `t` date and time (`YYYYMMDDTHHMM`, seconds optional), `s` total in rubles
//! (`1234.50`; up to two decimals), `fn` the FN (16 digits), `i` the FD number, `fp` the
//! fiscal sign (up to 10 digits), `n` the operation type (1–4). Unknown parts are
//! ignored, as readers of these codes do; every known part is required except `n`. A
//! malformed part is reported by its name.

use ffd::FnNumber;
use storage::Timestamp;

/// A parsed receipt QR string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptQr {
    /// `t`, as unix seconds of the local time written on the receipt.
    pub time_secs: i64,
    /// Whether `t` carried seconds (else the comparison is to the minute).
    pub has_seconds: bool,
    /// `s`, in kopecks.
    pub sum_kopecks: u64,
    /// `fn`.
    pub fn_number: FnNumber,
    /// `i`.
    pub fd: u32,
    /// `fp`.
    pub fiscal_sign: u32,
    /// `n`, when present.
    pub operation: Option<u8>,
}

/// A malformed part: which, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrError {
    /// The part's name (`t`, `s`, `fn`, `i`, `fp`, `n`), or `qr` for the whole string.
    pub part: &'static str,
    /// Why, for people.
    pub message: String,
}

fn err(part: &'static str, message: impl Into<String>) -> QrError {
    QrError { part, message: message.into() }
}

/// Parses a QR string (leading `?` and surrounding blanks are tolerated).
pub fn parse(s: &str) -> Result<ReceiptQr, QrError> {
    let s = s.trim().trim_start_matches('?');
    if s.is_empty() {
        return Err(err("qr", "is empty; expected t=…&s=…&fn=…&i=…&fp=…&n=…"));
    }
    let (mut t, mut sum, mut fnn, mut i, mut fp, mut n) = (None, None, None, None, None, None);
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(err("qr", format!("{pair:?} is not a name=value part")));
        };
        let slot = match k.trim().to_ascii_lowercase().as_str() {
            "t" => &mut t,
            "s" => &mut sum,
            "fn" => &mut fnn,
            "i" => &mut i,
            "fp" => &mut fp,
            "n" => &mut n,
            _ => continue,
        };
        if slot.is_some() {
            return Err(err("qr", format!("part {k:?} appears twice")));
        }
        *slot = Some(v.trim());
    }
    let t = need(t, "t", "the date and time, e.g. t=20260105T1230")?;
    let sum = need(sum, "s", "the total in rubles, e.g. s=1234.50")?;
    let fnn = need(fnn, "fn", "the FN, 16 digits")?;
    let i = need(i, "i", "the FD number")?;
    let fp = need(fp, "fp", "the fiscal sign")?;
    let (time_secs, has_seconds) = parse_time(t)?;
    let fn_number = FnNumber::parse_strict(fnn).map_err(|e| err("fn", format!("{fnn:?}: {e}")))?;
    let fd = digits(i, 10)
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v > 0)
        .ok_or_else(|| err("i", format!("{i:?} is not an FD number (a whole number from 1)")))?;
    let fiscal_sign = digits(fp, 10)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| err("fp", format!("{fp:?} is not a fiscal sign (up to 10 digits, at most 4294967295)")))?;
    let operation = n
        .map(|v| {
            digits(v, 1)
                .and_then(|d| u8::try_from(d).ok())
                .filter(|d| (1..=4).contains(d))
                .ok_or_else(|| err("n", format!("{v:?} is not an operation type (1 to 4)")))
        })
        .transpose()?;
    Ok(ReceiptQr { time_secs, has_seconds, sum_kopecks: parse_sum(sum)?, fn_number, fd, fiscal_sign, operation })
}

fn need<'a>(v: Option<&'a str>, part: &'static str, what: &str) -> Result<&'a str, QrError> {
    v.ok_or_else(|| err(part, format!("is missing ({part}= {what})")))
}

/// A run of 1..=max ASCII digits.
fn digits(s: &str, max: usize) -> Option<u64> {
    (!s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn parse_sum(s: &str) -> Result<u64, QrError> {
    let bad = || err("s", format!("{s:?} is not a sum (rubles with up to two decimals after a point, e.g. 1234.50)"));
    let (rub, kop) = s.split_once('.').unwrap_or((s, ""));
    let rub = digits(rub, 12).ok_or_else(bad)?;
    let kop = match kop.len() {
        0 if !s.contains('.') => 0,
        1 => digits(kop, 1).ok_or_else(bad)? * 10,
        2 => digits(kop, 2).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    Ok(rub * 100 + kop)
}

fn parse_time(s: &str) -> Result<(i64, bool), QrError> {
    let bad = |why: &str| err("t", format!("{s:?} {why} (YYYYMMDDTHHMM, e.g. 20260105T1230)"));
    let (date, clock) = s.split_once(['T', 't']).ok_or_else(|| bad("has no T between date and time"))?;
    if date.len() != 8
        || !(clock.len() == 4 || clock.len() == 6)
        || !format!("{date}{clock}").bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad("is not a date and time"));
    }
    let num = |r: std::ops::Range<usize>, from: &str| from[r].parse::<u8>().unwrap_or(u8::MAX);
    let year: i32 = date[..4].parse().map_err(|_| bad("has a bad year"))?;
    let month = time::Month::try_from(num(4..6, date)).map_err(|_| bad("has a month outside 01-12"))?;
    let day =
        time::Date::from_calendar_date(year, month, num(6..8, date)).map_err(|_| bad("is not a calendar date"))?;
    let secs = if clock.len() == 6 { num(4..6, clock) } else { 0 };
    let t = time::Time::from_hms(num(0..2, clock), num(2..4, clock), secs).map_err(|_| bad("is not a time of day"))?;
    Ok((day.with_time(t).assume_utc().unix_timestamp(), clock.len() == 6))
}

/// `YYYYMMDDTHHMM[SS]` of a stored document time (tag 1012 is the register's local time,
/// stored as if it were UTC, like the QR code's).
pub fn format_time(t: Timestamp, with_seconds: bool) -> String {
    let dt = time::OffsetDateTime::from_unix_timestamp(t.unix_secs()).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let base = format!("{:04}{:02}{:02}T{:02}{:02}", dt.year(), u8::from(dt.month()), dt.day(), dt.hour(), dt.minute());
    if with_seconds { format!("{base}{:02}", dt.second()) } else { base }
}

/// Rubles with two decimals, as the QR code writes them.
pub fn format_sum(kopecks: u64) -> String {
    format!("{}.{:02}", kopecks / 100, kopecks % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "t=20260105T1230&s=1234.50&fn=9999078900005488&i=2&fp=1234567890&n=1";

    #[test]
    fn parses_the_printed_string() {
        let q = parse(GOOD).expect("valid");
        assert_eq!(q.sum_kopecks, 123_450);
        assert_eq!((q.fd, q.fiscal_sign, q.operation, q.has_seconds), (2, 1_234_567_890, Some(1), false));
        assert_eq!(format_time(Timestamp::from_unix_secs(q.time_secs), false), "20260105T1230");
        assert_eq!(parse("t=20260105T123005&s=12&fn=9999078900005488&i=2&fp=7").expect("v").sum_kopecks, 1200);
        assert_eq!(parse("?s=0.5&t=20260105T1230&fn=9999078900005488&i=2&fp=7&x=y").expect("v").sum_kopecks, 50);
    }

    #[test]
    fn malformed_parts_are_named() {
        let part = |s: &str| parse(s).expect_err(s).part;
        assert_eq!(part(""), "qr");
        assert_eq!(part("garbage"), "qr");
        assert_eq!(part(&GOOD.replace("s=1234.50", "s=12,34")), "s");
        assert_eq!(part(&GOOD.replace("s=1234.50", "s=1.234")), "s");
        assert_eq!(part(&GOOD.replace("t=20260105T1230", "t=20261305T1230")), "t");
        assert_eq!(part(&GOOD.replace("t=20260105T1230", "t=202601051230")), "t");
        assert_eq!(part(&GOOD.replace("fn=9999078900005488", "fn=99990789")), "fn");
        assert_eq!(part(&GOOD.replace("i=2", "i=x")), "i");
        assert_eq!(part(&GOOD.replace("fp=1234567890", "fp=99999999999")), "fp");
        assert_eq!(part(&GOOD.replace("n=1", "n=7")), "n");
        assert_eq!(part(&GOOD.replace("&i=2", "")), "i");
        assert_eq!(part(&format!("{GOOD}&s=1")), "qr");
    }
}
