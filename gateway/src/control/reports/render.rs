//! Report rows as CSV (the full flat matrix, one column per figure, for spreadsheets) and
//! as JSON (the same figures, structured). Money is in kopecks, exact integers; nothing
//! is rounded except the average sale receipt (half up, like `Totals::average_sale`).
//!
//! Per settlement kind (`sale`, `sale_return`, `expense`, `expense_return`) and again for
//! corrections (`correction_<kind>`): the receipt count and the 18 sums of
//! [`ffd::figures::Amounts::fields`] (total, cash, cashless, prepayment, credit,
//! counter-provision, VAT of codes 1–12). `revenue_*` is sales minus sale returns,
//! corrections of those kinds included (`Totals::revenue`).

use ffd::figures::{Amounts, KIND_NAMES, VAT_CODES};
use serde_json::{Map, Value, json};
use storage::model::{Line, Totals};

use super::Row;

/// The six money fields before VAT, in [`Amounts::fields`] order.
pub const MONEY: [&str; 6] = ["total", "cash", "cashless", "prepayment", "credit", "counter_provision"];

/// The names of the 18 fields of [`Amounts::fields`].
pub fn field_names() -> Vec<String> {
    let mut v: Vec<String> = MONEY.iter().map(|s| (*s).to_owned()).collect();
    v.extend((1..=VAT_CODES).map(|c| format!("vat{c}")));
    v
}

/// The CSV header.
pub fn csv_header() -> String {
    let mut cols: Vec<String> =
        ["group", "rnm", "name", "documents", "unreadable", "receipts", "corrections"].map(str::to_owned).to_vec();
    let fields = field_names();
    for prefix in ["", "correction_"] {
        for k in KIND_NAMES {
            cols.push(format!("{prefix}{k}_count"));
            cols.extend(fields.iter().map(|f| format!("{prefix}{k}_{f}")));
        }
    }
    cols.extend(fields.iter().map(|f| format!("revenue_{f}")));
    cols.push("average_sale".to_owned());
    let mut s = cols.join(",");
    s.push('\n');
    s
}

/// A CSV field, quoted when it needs to be.
fn csv_text(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

/// One CSV line (`group` is the row's label, or `total`).
pub fn csv_row(group: &str, rnm: Option<&str>, name: &str, t: &Totals) -> String {
    let mut cols: Vec<String> = vec![
        csv_text(group),
        rnm.unwrap_or("").to_owned(),
        csv_text(name),
        t.documents.to_string(),
        t.unreadable.to_string(),
        t.receipts().to_string(),
        t.correction_count().to_string(),
    ];
    for lines in [&t.kinds, &t.corrections] {
        for l in lines {
            cols.push(l.count.to_string());
            cols.extend(l.amounts.fields().iter().map(u64::to_string));
        }
    }
    cols.extend(t.revenue().0.iter().map(i64::to_string));
    cols.push(t.average_sale().map(|a| a.to_string()).unwrap_or_default());
    let mut s = cols.join(",");
    s.push('\n');
    s
}

fn amounts_json(a: &Amounts, out: &mut Map<String, Value>) {
    let f = a.fields();
    for (name, v) in MONEY.iter().zip(f) {
        out.insert((*name).to_owned(), json!(v));
    }
    let vat: Map<String, Value> = (1..=VAT_CODES).map(|c| (c.to_string(), json!(f[5 + c]))).collect();
    out.insert("vat".into(), Value::Object(vat));
}

fn line_json(l: &Line) -> Value {
    let mut m = Map::new();
    m.insert("count".into(), json!(l.count));
    amounts_json(&l.amounts, &mut m);
    Value::Object(m)
}

/// The figures of a row as JSON.
pub fn totals_json(t: &Totals) -> Value {
    let kinds = |lines: &[Line; 4]| -> Value {
        Value::Object(KIND_NAMES.iter().zip(lines).map(|(k, l)| ((*k).to_owned(), line_json(l))).collect())
    };
    let net = t.revenue().0;
    let mut revenue = Map::new();
    for (name, v) in MONEY.iter().zip(net) {
        revenue.insert((*name).to_owned(), json!(v));
    }
    revenue.insert("vat".into(), Value::Object((1..=VAT_CODES).map(|c| (c.to_string(), json!(net[5 + c]))).collect()));
    json!({
        "documents": t.documents,
        "unreadable": t.unreadable,
        "receipts": t.receipts(),
        "corrections": t.correction_count(),
        "kinds": kinds(&t.kinds),
        "correction_kinds": kinds(&t.corrections),
        "revenue": revenue,
        "average_sale": t.average_sale(),
    })
}

/// One row as JSON: `group` (its label), `rnm` and `name` for register and shift rows,
/// then the figures.
pub fn row_json(r: &Row) -> Value {
    let mut v = totals_json(&r.totals);
    if let Some(o) = v.as_object_mut() {
        o.insert("group".into(), json!(r.key.label()));
        if let Some(rnm) = &r.rnm {
            o.insert("rnm".into(), json!(rnm));
        }
        if !r.name.is_empty() {
            o.insert("name".into(), json!(r.name));
        }
        if let super::GroupKey::Shift(_, f, s) = &r.key {
            o.insert("fn_number".into(), json!(f));
            o.insert("shift".into(), json!(s));
        }
    }
    v
}
