//! FNS JSON: a decoded document rendered the way the tax service itself renders it (the
//! JSON its receipt-check service returns), and read back.
//!
//! The rules, each settled from FNS JSON documents of 2024–2026 (sources in
//! `docs/ffd-testing.md`, "FNS JSON"):
//!
//! * the document is wrapped in its form name (`{"receipt": {...}}`) and carries `code`
//!   (the form code) and, when the message trailer is at hand, `messageFiscalSign` (its
//!   first 8 bytes as a big-endian unsigned 64-bit number: `81 06` + the FN's 6-byte sign);
//! * requisites under their FNS names from the tag table ([`crate::tags`]); a requisite
//!   whose tag has no name, whose value does not have its tag's type (kept verbatim), or
//!   whose name is already taken in the same object is keyed by its tag number and its
//!   value is the hex of its bytes — nothing is dropped, and reading it back is exact;
//! * strings exactly as sent: fixed-width fields keep their padding (`"userInn":
//!   "7700000000  "`, `kktRegId` padded to 20);
//! * integers as numbers, sums in kopecks, quantities as decimal numbers, the fiscal sign
//!   (1077) as the number printed on the receipt (bytes 2–5 of `21 04 xx xx xx xx`; a 1077 of
//!   another shape is written verbatim);
//! * times as the drive's local wall-clock time, `"2026-01-05T10:15:00"` (the drive counts
//!   seconds since 1970 in local time, without a zone);
//! * a tag the table marks repeatable is an array even when it appears once (`items`,
//!   `amountsNds`, `itemsIndustryDetails`); any other tag is an array only when it does
//!   repeat (`properties` and `checkingLabeledProdResult` are single);
//! * a product code inside 1163 (`productCodeNew`) is an object: `rawProductCode` (the code
//!   as sent), and where the FNS's decomposition is confirmed, `productIdType`, `gtin` and
//!   `sernum`.
//!
//! [`from_fns_json`] reads such JSON back into a [`Document`]. What the JSON does not carry
//! is not restored: the wire order of requisites (fields come back in tag order), the
//! scale of a quantity beyond its significant digits, the first two bytes of 1077 (`21 04`
//! in every document ever observed, and restored as such), and the last two trailer bytes.

use std::collections::HashMap;
use std::fmt::Write as _;

use bytes::Bytes;
use serde_json::{Map, Number, Value as Json};

use crate::document::{Document, Field, Value};
use crate::tags::{self, ValueType};
use crate::tlv::{Fvln, cp866_decode, cp866_encode, printed_fiscal_sign};

/// The product-code STLV whose children the FNS renders as objects.
const PRODUCT_CODE: u16 = 1163;

/// The FNS JSON of a document, without `messageFiscalSign` (use
/// [`to_fns_json_with_trailer`] when the message trailer is at hand).
pub fn to_fns_json(doc: &Document) -> Json {
    render(doc, None)
}

/// The FNS JSON of a document with `messageFiscalSign` taken from the message trailer (the
/// bytes after the document TLV in the container).
pub fn to_fns_json_with_trailer(doc: &Document, trailer: &[u8]) -> Json {
    render(doc, message_fiscal_sign(trailer))
}

/// The FN's message sign as the FNS renders it: the first 8 bytes of the trailer
/// (`81 06` + 6 bytes) as a big-endian u64. `None` for a shorter trailer.
pub fn message_fiscal_sign(trailer: &[u8]) -> Option<u64> {
    let head: [u8; 8] = trailer.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(head))
}

fn render(doc: &Document, sign: Option<u64>) -> Json {
    let form = u8::try_from(doc.doc_type).ok().and_then(tags::doc_type);
    let name = form.map_or_else(|| doc.doc_type.to_string(), |d| d.json.to_owned());
    let mut body = fields_json(&doc.fields, doc.doc_type);
    body.insert("code".to_owned(), Json::from(doc.doc_type));
    if let Some(sign) = sign {
        body.insert("messageFiscalSign".to_owned(), Json::from(sign));
    }
    let mut outer = Map::new();
    outer.insert(name, Json::Object(body));
    Json::Object(outer)
}

/// The JSON object of the requisites of one STLV (or of the document, `parent` = form).
fn fields_json(fields: &[Field], parent: u16) -> Map<String, Json> {
    // grouped by tag in wire order, so that each tag is handled once
    let mut order: Vec<u16> = Vec::new();
    let mut by_tag: HashMap<u16, Vec<&Field>> = HashMap::new();
    for f in fields {
        by_tag
            .entry(f.tag)
            .or_insert_with(|| {
                order.push(f.tag);
                Vec::new()
            })
            .push(f);
    }
    let mut out = Map::new();
    for tag in order {
        let same = by_tag.get(&tag).map_or(&[][..], Vec::as_slice);
        let info = tags::lookup(tag);
        let named = info
            .and_then(|t| t.json)
            .filter(|n| !out.contains_key(*n) && same.iter().all(|f| matches!(typed(f), Some(true))));
        let (key, render): (String, fn(&Field, u16) -> Json) = match named {
            Some(n) => (n.to_owned(), value_json),
            None => (tag.to_string(), verbatim_json),
        };
        let repeated = same.len() > 1 || (named.is_some() && info.is_some_and(|t| t.repeatable));
        let value = if repeated {
            Json::Array(same.iter().map(|f| render(f, parent)).collect())
        } else {
            same.first().map_or(Json::Null, |f| render(f, parent))
        };
        out.insert(key, value);
    }
    out
}

/// Whether the value has its tag's dictionary type (`None` for an unknown tag).
fn typed(field: &Field) -> Option<bool> {
    let info = tags::lookup(field.tag)?;
    Some(match (&field.value, info.ty) {
        (Value::Raw(_), _) => false,
        (Value::Byte(_), ValueType::Byte) => true,
        (Value::U16(_) | Value::U32(_), ValueType::U16) => true,
        (Value::U32(_), ValueType::U32) => true,
        (Value::Time(_), ValueType::UnixTime) => true,
        (Value::Vln(_) | Value::Bytes(_), ValueType::Vln) => true,
        (Value::Fvln(_), ValueType::Fvln) => true,
        (Value::Str(_), ValueType::Str) => true,
        // the printed fiscal sign carries bytes 2–5; only the usual `21 04` head is restored
        (Value::Bytes(b), ValueType::Bytes) if field.tag == 1077 => b.len() == 6 && b[..2] == [0x21, 0x04],
        (Value::Bytes(_), ValueType::Bytes) => true,
        (Value::Stlv(_), ValueType::Stlv) => true,
        _ => false,
    })
}

fn verbatim_json(field: &Field, _parent: u16) -> Json {
    Json::from(hex(&field.value.to_bytes()))
}

fn value_json(field: &Field, parent: u16) -> Json {
    match &field.value {
        Value::Byte(v) => Json::from(*v),
        Value::U16(v) => Json::from(*v),
        Value::U32(v) => Json::from(*v),
        Value::Time(v) => Json::from(local_date_time(*v)),
        Value::Vln(v) => Json::from(*v),
        Value::Fvln(f) => fvln_json(*f),
        Value::Str(b) if parent == PRODUCT_CODE => product_code_json(field.tag, &cp866_decode(b)),
        Value::Str(b) => Json::from(cp866_decode(b)),
        Value::Bytes(b) if field.tag == 1077 => printed_fiscal_sign(b).map_or(Json::Null, Json::from),
        Value::Bytes(b) | Value::Raw(b) => Json::from(hex(b)),
        Value::Stlv(children) => Json::Object(fields_json(children, field.tag)),
    }
}

/// A quantity as a JSON number: an integer when it is whole, otherwise the decimal (the
/// FNS writes `1` and `2.474`).
fn fvln_json(f: Fvln) -> Json {
    match 10u64.checked_pow(u32::from(f.scale)) {
        Some(unit) if f.mantissa.is_multiple_of(unit) => Json::from(f.mantissa / unit),
        _ => f.to_string().parse::<f64>().ok().and_then(Number::from_f64).map_or(Json::Null, Json::Number),
    }
}

/// A product code (a child of 1163) as the FNS renders it. The raw code is always there;
/// the FNS's decomposition is added only for the code types it is confirmed for
/// (`docs/ffd-testing.md`): ITF-14 (1303) and GS1.M (1305).
fn product_code_json(tag: u16, raw: &str) -> Json {
    let mut o = Map::new();
    o.insert("rawProductCode".to_owned(), Json::from(raw));
    let decomposed = match tag {
        1303 => Some((5, raw.to_owned(), String::new())),
        1305 => gs1_gtin_serial(raw).map(|(gtin, serial)| (6, gtin.to_owned(), serial.to_owned())),
        _ => None,
    };
    if let Some((id_type, gtin, serial)) = decomposed {
        o.insert("productIdType".to_owned(), Json::from(id_type));
        o.insert("gtin".to_owned(), Json::from(gtin));
        o.insert("sernum".to_owned(), Json::from(serial));
    }
    Json::Object(o)
}

/// GTIN (AI 01, 14 digits) and serial number (AI 21, up to a group separator) of a GS1
/// element string that starts with them.
fn gs1_gtin_serial(code: &str) -> Option<(&str, &str)> {
    let rest = code.strip_prefix("01")?;
    let gtin = rest.get(..14).filter(|g| g.bytes().all(|b| b.is_ascii_digit()))?;
    let serial = rest.get(14..)?.strip_prefix("21")?;
    Some((gtin, serial.split('\u{1d}').next().unwrap_or_default()))
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// Seconds since 1970 of the drive's local clock as `YYYY-MM-DDTHH:MM:SS`.
pub fn local_date_time(secs: u32) -> String {
    let days = i64::from(secs / 86_400);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The inverse of [`local_date_time`] (also accepts a missing `:SS`).
pub fn parse_local_date_time(s: &str) -> Option<u32> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(str::parse::<i64>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.splitn(3, ':').map(str::parse::<i64>);
    let (h, min) = (t.next()?.ok()?, t.next()?.ok()?);
    let sec = t.next().transpose().ok()?.unwrap_or(0);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || sec > 59 {
        return None;
    }
    let total = days_from_civil(y, m, day) * 86_400 + h * 3600 + min * 60 + sec;
    u32::try_from(total).ok()
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a date (inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A document read back from FNS JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnsDocument {
    /// The requisites, in tag order at every level.
    pub document: Document,
    /// `messageFiscalSign`, when present.
    pub message_fiscal_sign: Option<u64>,
}

/// Why FNS JSON could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("FNS JSON at {path}: {reason}")]
pub struct JsonError {
    /// Where (`receipt.items[2].price`).
    pub path: String,
    /// What is wrong.
    pub reason: &'static str,
}

fn err<T>(path: &str, reason: &'static str) -> Result<T, JsonError> {
    Err(JsonError { path: path.to_owned(), reason })
}

/// Reads FNS JSON (as [`to_fns_json`] writes it) back into a document.
pub fn from_fns_json(json: &Json) -> Result<FnsDocument, JsonError> {
    let Some((name, body)) = json.as_object().filter(|o| o.len() == 1).and_then(|o| o.iter().next()) else {
        return err("", "expected one key: the form name");
    };
    let doc_type = match tags::doc_types().iter().find(|d| d.json == name) {
        Some(d) => u16::from(d.code),
        None => name.parse().or_else(|_| err(name, "unknown form name"))?,
    };
    let Some(obj) = body.as_object() else { return err(name, "expected an object") };
    let mut message_fiscal_sign = None;
    let mut fields = Vec::new();
    for (key, v) in obj {
        let path = format!("{name}.{key}");
        match key.as_str() {
            "code" => {
                if v.as_u64() != Some(u64::from(doc_type)) {
                    return err(&path, "code differs from the form");
                }
            }
            "messageFiscalSign" => {
                message_fiscal_sign = Some(v.as_u64().map_or_else(|| err(&path, "expected an unsigned integer"), Ok)?);
            }
            _ => read_key(key, v, doc_type, &path, &mut fields)?,
        }
    }
    fields.sort_by_key(|f| f.tag);
    Ok(FnsDocument { document: Document { doc_type, fields }, message_fiscal_sign })
}

fn read_key(key: &str, v: &Json, parent: u16, path: &str, out: &mut Vec<Field>) -> Result<(), JsonError> {
    let verbatim = key.bytes().all(|b| b.is_ascii_digit());
    let Some(tag) = tags::by_json_name(key, parent) else { return err(path, "unknown key") };
    let values: Vec<&Json> = match v {
        Json::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    for (i, item) in values.into_iter().enumerate() {
        let p = format!("{path}[{i}]");
        let value = if verbatim {
            let bytes = item.as_str().and_then(unhex).map_or_else(|| err(&p, "expected hex"), Ok)?;
            verbatim_value(tag, bytes)
        } else {
            typed_value(tag, item, parent, &p)?
        };
        out.push(Field { tag, value });
    }
    Ok(())
}

/// A value written verbatim (by tag number): the bytes decoded as [`Document::decode`]
/// would, so that a requisite that was typed before becomes typed again.
fn verbatim_value(tag: u16, bytes: Vec<u8>) -> Value {
    let raw = Bytes::from(bytes);
    let mut w = crate::tlv::TlvWriter::new();
    w.begin(1).raw(tag, &raw).end();
    let data = Bytes::from(w.finish());
    match Document::decode(&data, &crate::frame::Limits::default()) {
        Ok((doc, _)) if doc.fields.len() == 1 && matches!(typed(&doc.fields[0]), Some(false) | None) => {
            doc.fields.into_iter().next().map_or(Value::Raw(raw), |f| f.value)
        }
        _ => Value::Raw(raw),
    }
}

fn typed_value(tag: u16, v: &Json, parent: u16, path: &str) -> Result<Value, JsonError> {
    let Some(info) = tags::lookup(tag) else { return err(path, "unknown tag") };
    let uint = || v.as_u64().map_or_else(|| err(path, "expected an unsigned integer"), Ok);
    Ok(match info.ty {
        ValueType::Byte => Value::Byte(u8::try_from(uint()?).or_else(|_| err(path, "above 255"))?),
        ValueType::U16 => match u16::try_from(uint()?) {
            Ok(n) => Value::U16(n),
            Err(_) => Value::U32(u32::try_from(uint()?).or_else(|_| err(path, "above 2^32-1"))?),
        },
        ValueType::U32 => Value::U32(u32::try_from(uint()?).or_else(|_| err(path, "above 2^32-1"))?),
        ValueType::UnixTime => match v {
            Json::String(s) => Value::Time(parse_local_date_time(s).map_or_else(|| err(path, "bad date-time"), Ok)?),
            _ => Value::Time(u32::try_from(uint()?).or_else(|_| err(path, "above 2^32-1"))?),
        },
        ValueType::Vln => match v {
            Json::String(s) => Value::Bytes(Bytes::from(unhex(s).map_or_else(|| err(path, "expected hex"), Ok)?)),
            _ => Value::Vln(uint()?),
        },
        ValueType::Fvln => Value::Fvln(fvln_from(v).map_or_else(|| err(path, "expected a decimal number"), Ok)?),
        ValueType::Str => {
            let text = match v {
                Json::Object(o) if parent == PRODUCT_CODE => o.get("rawProductCode").and_then(Json::as_str),
                other => other.as_str(),
            };
            let text = text.map_or_else(|| err(path, "expected a string"), Ok)?;
            Value::Str(Bytes::from(cp866_encode(text).map_or_else(|| err(path, "not representable in CP866"), Ok)?))
        }
        ValueType::Bytes if tag == 1077 => {
            let n = u32::try_from(uint()?).or_else(|_| err(path, "above 2^32-1"))?;
            let mut b = vec![0x21, 0x04];
            b.extend_from_slice(&n.to_be_bytes());
            Value::Bytes(Bytes::from(b))
        }
        ValueType::Bytes => {
            Value::Bytes(Bytes::from(v.as_str().and_then(unhex).map_or_else(|| err(path, "expected hex"), Ok)?))
        }
        ValueType::Stlv => {
            let Some(obj) = v.as_object() else { return err(path, "expected an object") };
            let mut children = Vec::new();
            for (key, child) in obj {
                read_key(key, child, tag, &format!("{path}.{key}"), &mut children)?;
            }
            children.sort_by_key(|f| f.tag);
            Value::Stlv(children)
        }
    })
}

/// A JSON number as a decimal with the fewest digits after the point (`2.474`, `1`,
/// `1.5e-5`).
fn fvln_from(v: &Json) -> Option<Fvln> {
    let Json::Number(n) = v else { return None };
    let text = n.to_string();
    let (base, exp) = match text.split_once(['e', 'E']) {
        Some((b, e)) => (b, e.parse::<i32>().ok()?),
        None => (text.as_str(), 0),
    };
    let (int, frac) = base.split_once('.').unwrap_or((base, ""));
    let frac = frac.trim_end_matches('0');
    let mut mantissa = format!("{int}{frac}").parse::<u64>().ok()?;
    let mut scale = i32::try_from(frac.len()).ok()? - exp;
    while scale < 0 {
        mantissa = mantissa.checked_mul(10)?;
        scale += 1;
    }
    while scale > 0 && mantissa.is_multiple_of(10) && mantissa != 0 {
        mantissa /= 10;
        scale -= 1;
    }
    if mantissa == 0 {
        scale = 0;
    }
    Some(Fvln { scale: u8::try_from(scale).ok()?, mantissa })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_match_known_values() {
        assert_eq!(local_date_time(0), "1970-01-01T00:00:00");
        assert_eq!(local_date_time(1_488_541_080), "2017-03-03T11:38:00");
        assert_eq!(local_date_time(1_767_225_600), "2026-01-01T00:00:00");
        assert_eq!(local_date_time(u32::MAX), "2106-02-07T06:28:15");
        for secs in [0, 59, 86_399, 86_400, 951_782_400, 1_709_164_800, 1_767_225_599, u32::MAX] {
            assert_eq!(parse_local_date_time(&local_date_time(secs)), Some(secs), "{secs}");
        }
        assert_eq!(parse_local_date_time("2024-09-17T18:01"), Some(1_726_596_060));
        assert_eq!(parse_local_date_time("2024-13-01T00:00:00"), None);
    }

    #[test]
    fn message_fiscal_sign_is_the_big_endian_head_of_the_trailer() {
        let trailer = [0x81, 0x06, 0x83, 0xd3, 0x1f, 0xed, 0x6f, 0x40, 0x00, 0x00];
        // the value an FNS JSON of 2026 carries (its leading 0x8106 is the trailer's type)
        assert_eq!(message_fiscal_sign(&trailer), Some(0x8106_83d3_1fed_6f40));
        assert_eq!(message_fiscal_sign(&trailer[..7]), None);
    }

    #[test]
    fn gs1_codes_split_into_gtin_and_serial() {
        assert_eq!(gs1_gtin_serial("0104605035006964215OoyE8qxeIOn>"), Some(("04605035006964", "5OoyE8qxeIOn>")));
        assert_eq!(gs1_gtin_serial("010460503500696421ABC\u{1d}91XYZ"), Some(("04605035006964", "ABC")));
        assert_eq!(gs1_gtin_serial("0204605035006964215Oo"), None);
    }

    #[test]
    fn quantities_keep_their_digits() {
        for (scale, mantissa, text, back) in
            [(3, 2474, "2.474", (3, 2474)), (0, 1, "1", (0, 1)), (3, 1000, "1", (0, 1)), (6, 15, "0.000015", (6, 15))]
        {
            let j = fvln_json(Fvln { scale, mantissa });
            assert_eq!(j.to_string(), text);
            assert_eq!(fvln_from(&j), Some(Fvln { scale: back.0, mantissa: back.1 }));
        }
    }
}
