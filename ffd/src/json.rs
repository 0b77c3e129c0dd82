//! Rendering of decoded documents in the FNS JSON style: the document wrapped in its form
//! name (`{"receipt": {...}}`), requisites under their FNS names (`fiscalDriveNumber`,
//! `fiscalDocumentNumber`, `items`, …), sums as integers in kopecks, times as Unix
//! seconds, the fiscal sign as the number printed on the receipt. Repeatable requisites
//! (and any tag that does repeat) become arrays; tags without a known name are keyed by
//! their number so that nothing is dropped.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Number, Value as Json};

use crate::document::{Document, Field, Value};
use crate::tags;
use crate::tlv::{cp866_decode, printed_fiscal_sign};

/// Tags holding an INN: trimmed, and the "00" some registers prepend to a 10-digit INN
/// is removed (no real 12-digit INN starts with 00).
const INN_TAGS: &[u16] = &[1016, 1017, 1018, 1203, 1226, 1228];

/// The FNS-style JSON of a document.
pub fn to_fns_json(doc: &Document) -> Json {
    let name = u8::try_from(doc.doc_type)
        .ok()
        .and_then(tags::doc_type)
        .map_or_else(|| doc.doc_type.to_string(), |d| d.json.to_owned());
    let mut outer = Map::new();
    outer.insert(name, Json::Object(fields_json(&doc.fields)));
    Json::Object(outer)
}

fn fields_json(fields: &[Field]) -> Map<String, Json> {
    // fields grouped by tag in wire order, so that each tag is handled once: scanning the
    // whole list for every field was quadratic (~19 ms for 8 100 distinct tags)
    let mut by_tag: HashMap<u16, Vec<&Field>> = HashMap::new();
    for f in fields {
        by_tag.entry(f.tag).or_default().push(f);
    }
    let mut out = Map::new();
    let mut emitted = HashSet::new();
    for field in fields {
        if !emitted.insert(field.tag) {
            continue; // already emitted as part of its array
        }
        let info = tags::lookup(field.tag);
        let key = info.and_then(|t| t.json).map_or_else(|| field.tag.to_string(), str::to_owned);
        let same = by_tag.get(&field.tag).map_or(&[][..], Vec::as_slice);
        let repeated = info.is_some_and(|t| t.repeatable) || same.len() > 1;
        let value =
            if repeated { Json::Array(same.iter().map(|f| value_json(f)).collect()) } else { value_json(field) };
        out.insert(key, value);
    }
    out
}

fn value_json(field: &Field) -> Json {
    match &field.value {
        Value::Byte(v) => Json::from(*v),
        Value::U16(v) => Json::from(*v),
        Value::U32(v) | Value::Time(v) => Json::from(*v),
        Value::Vln(v) => Json::from(*v),
        Value::Fvln(f) => Number::from_f64(f.to_f64()).map_or(Json::Null, Json::Number),
        Value::Str(b) => {
            let text = cp866_decode(b);
            let text = text.trim_end_matches(' ');
            if INN_TAGS.contains(&field.tag) && text.len() == 12 && text.starts_with("00") {
                Json::from(&text[2..])
            } else {
                Json::from(text)
            }
        }
        Value::Bytes(b) if field.tag == 1077 => printed_fiscal_sign(b).map_or(Json::Null, Json::from),
        Value::Bytes(b) | Value::Raw(b) => Json::from(hex_string(b)),
        Value::Stlv(children) => Json::Object(fields_json(children)),
    }
}

fn hex_string(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    /// The former, quadratic grouping: the reference the grouped one must equal.
    fn fields_json_reference(fields: &[Field]) -> Map<String, Json> {
        let mut out = Map::new();
        for (i, field) in fields.iter().enumerate() {
            let info = tags::lookup(field.tag);
            let key = info.and_then(|t| t.json).map_or_else(|| field.tag.to_string(), str::to_owned);
            if out.contains_key(&key) && fields[..i].iter().any(|f| f.tag == field.tag) {
                continue;
            }
            let repeated =
                info.is_some_and(|t| t.repeatable) || fields.iter().filter(|f| f.tag == field.tag).count() > 1;
            let value = if repeated {
                Json::Array(fields.iter().filter(|f| f.tag == field.tag).map(value_json).collect())
            } else {
                value_json(field)
            };
            out.insert(key, value);
        }
        out
    }

    #[test]
    fn grouping_matches_the_reference() {
        let f = |tag: u16, v: u64| Field { tag, value: Value::Vln(v) };
        let raw = |tag: u16| Field { tag, value: Value::Raw(Bytes::from_static(b"\x01")) };
        // repeats, interleaving, a repeatable tag seen once, unknown tags, and two tags
        // sharing one JSON name (1020 and 1201 are both "totalSum")
        let fields = vec![
            f(1020, 1),
            f(1201, 2),
            raw(9000),
            f(1020, 3),
            Field { tag: 1101, value: Value::Byte(1) },
            raw(9001),
            raw(9000),
            f(1201, 4),
            f(1031, 5),
        ];
        for n in 0..=fields.len() {
            assert_eq!(fields_json(&fields[..n]), fields_json_reference(&fields[..n]), "prefix {n}");
        }
        let mut rev = fields.clone();
        rev.reverse();
        assert_eq!(fields_json(&rev), fields_json_reference(&rev));
    }
}
