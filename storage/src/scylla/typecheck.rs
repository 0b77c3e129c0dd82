//! Offline check of every statement against the schema, without a server: the columns a
//! statement names exist in its table, the Rust row types read from each SELECT pass the
//! driver's type check against the column types the schema files declare, and values of the
//! Rust types the call sites bind serialise against the bind markers' types. This is
//! what a server would otherwise be the first to find (at prepare time or at the first
//! row), so it runs in the default test run.

use std::collections::HashMap;

use bytes::Bytes;
use scylla::deserialize::row::DeserializeRow;
use scylla::frame::response::result::{CollectionType, ColumnSpec, ColumnType, NativeType, TableSpec};
use scylla::serialize::row::{RowSerializationContext, SerializeRow};
use scylla::serialize::writers::RowWriter;
use scylla::value::{CqlTimestamp, MaybeUnset};
use uuid::Uuid;

use super::config::MigrationConfig;
use super::journal::EntryRow;
use super::registers::{UnknownRow, UnknownRowNoFn};
use super::rows::{DeliveryRowTuple, DocInsert, DocRow};
use super::schema::render;
use super::statements::STATEMENTS;

const KS: &str = "ofd";

/// table -> column -> type, from the rendered schema.
fn schema() -> HashMap<String, HashMap<String, ColumnType<'static>>> {
    let cfg = MigrationConfig::single_dc(KS, "dc1", 3);
    let mut out = HashMap::new();
    for v in render(&cfg).expect("render") {
        for s in v.statements.iter().filter(|s| s.starts_with("CREATE TABLE")) {
            let name = s
                .trim_start_matches("CREATE TABLE IF NOT EXISTS ofd.")
                .split([' ', '('])
                .next()
                .expect("name")
                .to_owned();
            let body = &s[s.find('(').expect("(") + 1..];
            let mut cols = HashMap::new();
            // column lines up to the closing parenthesis of the column list
            for line in body.lines().map(str::trim).take_while(|l| !l.starts_with(')')) {
                let line = line.trim_end_matches(',');
                if line.is_empty() || line.starts_with("PRIMARY KEY") {
                    continue;
                }
                let mut it = line.splitn(2, ' ');
                let col = it.next().expect("column").to_owned();
                let typ = it.next().expect("type").trim().trim_end_matches(" PRIMARY KEY");
                cols.insert(col, parse_type(typ));
            }
            out.insert(name, cols);
        }
    }
    out
}

fn native(t: &str) -> ColumnType<'static> {
    ColumnType::Native(match t {
        "text" => NativeType::Text,
        "int" => NativeType::Int,
        "bigint" => NativeType::BigInt,
        "smallint" => NativeType::SmallInt,
        "boolean" => NativeType::Boolean,
        "timestamp" => NativeType::Timestamp,
        "blob" => NativeType::Blob,
        "uuid" => NativeType::Uuid,
        other => panic!("type {other} not modelled in the test"),
    })
}

fn parse_type(t: &str) -> ColumnType<'static> {
    let t = t.trim();
    if let Some(inner) = t.strip_prefix("set<").and_then(|r| r.strip_suffix('>')) {
        return ColumnType::Collection { frozen: false, typ: CollectionType::Set(Box::new(parse_type(inner))) };
    }
    if let Some(inner) = t.strip_prefix("frozen<").and_then(|r| r.strip_suffix('>')) {
        return parse_type(inner);
    }
    if let Some(inner) = t.strip_prefix("tuple<").and_then(|r| r.strip_suffix('>')) {
        return ColumnType::Tuple(inner.split(',').map(parse_type).collect());
    }
    native(t)
}

fn spec(name: &str, typ: ColumnType<'static>) -> ColumnSpec<'static> {
    ColumnSpec::owned(name.to_owned(), typ, TableSpec::owned(KS.to_owned(), "t".to_owned()))
}

fn statement(name: &str) -> String {
    STATEMENTS
        .iter()
        .find(|(n, _, _)| *n == name)
        .unwrap_or_else(|| panic!("no statement {name}"))
        .2
        .replace("{ks}", KS)
}

fn table_of(stmt: &str) -> String {
    let after = stmt.split("ofd.").nth(1).expect("qualified table");
    after.split([' ', '(']).next().expect("table").to_owned()
}

/// The result columns of a SELECT.
fn result_specs(stmt: &str, cols: &HashMap<String, ColumnType<'static>>) -> Vec<ColumnSpec<'static>> {
    let list = stmt.trim_start_matches("SELECT ").split(" FROM ").next().expect("select list");
    list.split(',')
        .map(str::trim)
        .map(|c| {
            if let Some(inner) = c.strip_prefix("WRITETIME(").and_then(|r| r.strip_suffix(')')) {
                assert!(cols.contains_key(inner), "WRITETIME of unknown column {inner}");
                spec(c, ColumnType::Native(NativeType::BigInt))
            } else {
                let t = cols.get(c).unwrap_or_else(|| panic!("unknown column {c} in {stmt}"));
                spec(c, t.clone())
            }
        })
        .collect()
}

/// The bind markers of a statement, in order, typed from the columns they bind to.
fn marker_specs(stmt: &str, cols: &HashMap<String, ColumnType<'static>>) -> Vec<ColumnSpec<'static>> {
    let col = |c: &str| -> ColumnSpec<'static> {
        let t = cols.get(c).unwrap_or_else(|| panic!("unknown column {c:?} in {stmt}"));
        spec(c, t.clone())
    };
    let toks: Vec<String> = tokenize(stmt);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i].as_str();
        if t == "VALUES" {
            // INSERT INTO t (c1, ...) VALUES (v1, ...): positional
            let names = paren_list(&toks, toks.iter().position(|x| x == "(").expect("column list"));
            let values = paren_list(&toks, i + 1);
            assert_eq!(names.len(), values.len(), "{stmt}");
            for (n, v) in names.iter().zip(&values) {
                if v == "?" {
                    out.push(col(n));
                }
            }
            i += 1 + 2 * values.len() + 1;
            continue;
        }
        if t == "?" {
            let prev = toks[i - 1].as_str();
            match prev {
                "TIMESTAMP" => out.push(spec("[timestamp]", native("bigint"))),
                "TTL" => out.push(spec("[ttl]", native("int"))),
                "LIMIT" => out.push(spec("[limit]", native("int"))),
                "=" | "<" | ">" | "<=" | ">=" => out.push(col(&toks[i - 2])),
                "+" | "-" => out.push(col(&toks[i - 2])), // c = c + ?
                "(" | "," => {
                    // (a, b, c) op (?, ?, ?): the k-th marker of the right tuple
                    let open = (0..i).rev().find(|&j| toks[j] == "(").expect("(");
                    let k = toks[open..i].iter().filter(|x| *x == "?").count();
                    let lhs_close = open - 2; // ")" before the operator
                    let lhs_open = (0..lhs_close).rev().find(|&j| toks[j] == "(").expect("(");
                    let lhs = paren_list(&toks, lhs_open);
                    out.push(col(&lhs[k]));
                }
                other => panic!("marker after {other:?} in {stmt}"),
            }
        }
        i += 1;
    }
    out
}

fn tokenize(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\n' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            '(' | ')' | ',' | '?' | '+' | '-' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(c.to_string());
            }
            '<' | '>' | '=' => {
                if !cur.is_empty() && !cur.ends_with(['<', '>']) {
                    out.push(std::mem::take(&mut cur));
                }
                cur.push(c);
                if chars.peek() != Some(&'=') {
                    out.push(std::mem::take(&mut cur));
                }
            }
            '\'' => {
                // a string literal is one token
                cur.push(c);
                for d in chars.by_ref() {
                    cur.push(d);
                    if d == '\'' {
                        break;
                    }
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The comma-separated tokens inside the parenthesis at `open`.
fn paren_list(toks: &[String], open: usize) -> Vec<String> {
    assert_eq!(toks[open], "(");
    toks[open + 1..].iter().take_while(|t| *t != ")").filter(|t| *t != ",").cloned().collect()
}

fn check_row<R>(name: &str)
where
    R: for<'f, 'm> DeserializeRow<'f, 'm>,
{
    let schema = schema();
    let stmt = statement(name);
    let cols = &schema[&table_of(&stmt)];
    let specs = result_specs(&stmt, cols);
    if let Err(e) = R::type_check(&specs) {
        panic!("{name}: row type does not match the columns: {e}");
    }
}

fn check_values(name: &str, values: &dyn SerializeRow) {
    let schema = schema();
    let stmt = statement(name);
    let cols = &schema[&table_of(&stmt)];
    let specs = marker_specs(&stmt, cols);
    let ctx = RowSerializationContext::from_specs(&specs);
    let mut buf = Vec::new();
    let mut w = RowWriter::new(&mut buf);
    if let Err(e) = values.serialize(&ctx, &mut w) {
        panic!("{name}: values do not match the bind markers {specs:?}: {e}");
    }
    assert_eq!(w.value_count(), specs.len(), "{name}: number of values");
}

#[test]
fn every_statement_names_existing_columns() {
    let schema = schema();
    for (name, _, _) in STATEMENTS {
        let stmt = statement(name);
        let table = table_of(&stmt);
        let cols = schema.get(&table).unwrap_or_else(|| panic!("{name}: no table {table}"));
        // both resolve every column they mention, or panic naming it
        if stmt.starts_with("SELECT") {
            result_specs(&stmt, cols);
        }
        marker_specs(&stmt, cols);
    }
}

#[test]
fn rows_read_match_the_schema() {
    check_row::<DocRow>("doc_get");
    check_row::<DocRow>("doc_range");
    check_row::<(Option<CqlTimestamp>,)>("doc_received");
    check_row::<(CqlTimestamp, String, i64)>("idx_after");
    check_row::<(i64,)>("dir_int_asc");
    check_row::<(i64,)>("dir_int_desc");
    check_row::<(String,)>("dir_text_from");
    check_row::<DeliveryRowTuple>("dlv_get");
    check_row::<EntryRow>("jr_after");
    check_row::<(Option<i32>, Option<i64>)>("cur_get");
    check_row::<(i16, Option<i64>, Option<CqlTimestamp>, Option<CqlTimestamp>)>("backlog_all");
    check_row::<(String, Option<String>)>("node_all");
    check_row::<(Option<String>,)>("reg_get");
    check_row::<(String, Option<String>)>("reg_after");
    check_row::<(Option<String>,)>("fn_get");
    check_row::<(String,)>("owner_after");
    check_row::<(CqlTimestamp, String)>("upd_after");
    check_row::<(String, Option<String>)>("act_get");
    check_row::<(Option<Vec<u8>>, Option<bool>)>("doc_raw");
    check_row::<(Option<String>, Option<String>)>("rep_cont_get");
    check_row::<(Option<String>, Option<Vec<u8>>, Option<Vec<u8>>)>("rep_row_get");
    check_row::<(i64, Option<String>, Option<Vec<u8>>)>("rep_range");
    check_row::<(String,)>("gap_after");
    check_row::<UnknownRowNoFn>("unk_get");
    check_row::<UnknownRow>("unk_after");
    for n in
        ["tariff_get", "tariff_all", "rule_get", "rule_all", "state_get", "note_get", "due_until", "job_get", "job_all"]
    {
        check_row::<(Option<String>,)>(n);
    }
    check_row::<(CqlTimestamp, Uuid, Option<String>)>("audit_day");
    check_row::<(CqlTimestamp, Uuid, Option<String>)>("audit_day_before");
    check_row::<(String, Option<String>)>("state_after");
    check_row::<(CqlTimestamp, Uuid, Option<String>)>("note_day");
    check_row::<(CqlTimestamp, Uuid, Option<String>)>("note_day_before");
}

#[test]
fn values_bound_match_the_markers() {
    let t = CqlTimestamp(0);
    let raw = Bytes::from_static(b"raw");
    // (the same Rust types as the call sites bind)
    check_values(
        "doc_insert",
        &DocInsert {
            fn_text: "f",
            fd_bucket: 0,
            fd: 0,
            rnm: "r",
            doc_type: 0,
            ffd_version: MaybeUnset::Set(0),
            doc_time: MaybeUnset::Set(t),
            received_at: t,
            total: MaybeUnset::Unset,
            fiscal_sign: MaybeUnset::Set(0),
            response_code: 0,
            flk_error: MaybeUnset::Set("e"),
            opaque: false,
            telemetry: MaybeUnset::Unset,
            raw: &raw,
            ack: &raw,
            attempt: Uuid::nil(),
        },
    );
    check_values("doc_get", &("f", 0i32, 0i64));
    check_values("doc_received", &("f", 0i32, 0i64));
    check_values("doc_range", &("f", 0i32, 0i64, 0i64, 1i32));
    check_values("idx_insert", &("r", 0i32, t, "f", 0i64, 0i16));
    check_values("idx_after", &("r", 0i32, t, "f", 0i64, 1i32));
    check_values("dir_int_insert", &("k", "o", 0i64, 0i32));
    check_values("dir_int_asc", &("k", "o", 0i64, 0i64));
    check_values("dir_int_desc", &("k", "o", 0i64, 0i64));
    check_values("dir_text_insert", &("k", "o", "e"));
    check_values("dir_text_from", &("k", "o", "e"));
    check_values("jr_insert", &(0i16, 0i32, 0i64, "f", 0i64, "r", "{}".to_owned(), false));
    check_values("jr_after", &(0i16, 0i32, 0i64, "f", 0i64, 1i32));
    check_values("jr_done", &(0i16, 0i32, 0i64, "f", 0i64));
    check_values("jr_retry", &(t, 1i32, 0i16, 0i32, 0i64, "f", 0i64));
    check_values("jr_drop_hour", &(0i16, 0i32));
    check_values("cur_get", &(0i16, "derive"));
    check_values("cur_set", &(0i16, "derive", 0i32, 0i64, t, 0i64));
    check_values("backlog_set", &(0i16, 0i64, Some(t), t, 0i64));
    check_values("backlog_all", &());
    check_values("dlv_get", &("f", 0i32, 0i64));
    check_values("dlv_delivered", &(t, t, t, "f", 0i32, 0i64));
    check_values("dlv_failed", &(t, 1i32, "e", t, t, "f", 0i32, 0i64));
    check_values("lease_take", &("n", "h", 1i32));
    check_values("lease_renew", &(1i32, "h", "n", "h"));
    check_values("lease_release", &("n", "h"));
    check_values("node_beat", &("n", t, "fp", 1i32));
    check_values("node_all", &());
    check_values("node_leave", &("n",));
    check_values("reg_get", &("b".to_owned(), "r"));
    check_values("reg_after", &("b", "r"));
    check_values("reg_insert", &("b".to_owned(), "r".to_owned(), "{}".to_owned(), 1i64, t));
    check_values("fn_get", &("f",));
    check_values("fn_insert", &("f".to_owned(), "r".to_owned()));
    check_values("fn_delete", &("f".to_owned(),));
    check_values("owner_insert", &("i".to_owned(), "r".to_owned()));
    check_values("owner_delete", &("i".to_owned(), "r".to_owned()));
    check_values("owner_after", &("i", "r"));
    check_values("upd_insert", &(0i32, 0i32, t, "r".to_owned()));
    check_values("upd_after", &(0i32, 0i32, t, "r"));
    check_values("act_get", &("r",));
    check_values("act_put", &("r", "f", "{}".to_owned(), 0i64));
    check_values("doc_raw", &("f", 0i32, 0i64));
    check_values("rep_cont_get", &("f",));
    check_values("rep_row_get", &("f", 0i16, 0i64));
    check_values("rep_range", &("f", 0i16, 0i64, 0i64));
    check_values("rep_cont_put", &("f", "r", "{}".to_owned(), 0i64));
    check_values("rep_row_put", &("f", 0i16, 0i64, Some("{}".to_owned()), vec![1u8], vec![1u8], 0i64));
    check_values("gap_put", &("p".to_owned(), "f", 0i64));
    check_values("gap_delete", &(0i64, "p".to_owned(), "f"));
    check_values("gap_after", &("p", "f"));
    check_values("unk_get", &("p", "f"));
    check_values("unk_put", &("p", "f", t, t, 1i64, Some("r"), None::<&str>, Some("peer")));
    check_values("unk_after", &("p", "f"));
    check_values("unk_delete", &("p".to_owned(), "f"));
    check_values("tariff_get", &("n",));
    check_values("tariff_put", &("n", "{}".to_owned()));
    check_values("tariff_all", &());
    check_values("audit_put", &(0i32, t, Uuid::nil(), "{}".to_owned()));
    check_values("audit_day", &(0i32,));
    check_values("audit_day_before", &(0i32, t, Uuid::nil()));
    check_values("rule_get", &("n",));
    check_values("rule_put", &("n", "{}".to_owned()));
    check_values("rule_all", &());
    check_values("rule_delete", &("n",));
    check_values("state_put", &("r", "b", "n", "{}".to_owned()));
    check_values("state_get", &("r", "b".to_owned(), "n"));
    check_values("state_after", &("r", "b", "n"));
    check_values("state_drop_bucket", &("r", "b"));
    check_values("note_put", &(0i32, 0i32, t, Uuid::nil(), "{}"));
    check_values("note_get", &(0i32, 0i32, t, Uuid::nil()));
    check_values("note_day", &(0i32, 0i32, 1i32));
    check_values("note_day_before", &(0i32, 0i32, t, Uuid::nil(), 1i32));
    check_values("due_put", &(0i32, t, Uuid::nil(), "{}"));
    check_values("due_delete", &(0i32, t, Uuid::nil()));
    check_values("due_until", &(0i32, t, 1i32));
    check_values("job_put", &(Uuid::nil(), t, "{}".to_owned()));
    check_values("job_get", &(Uuid::nil(),));
    check_values("job_all", &());
}

fn panic_message(r: std::thread::Result<()>) -> String {
    match r {
        Ok(()) => String::new(),
        Err(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default(),
    }
}

#[test]
fn the_checker_catches_mismatches() {
    // negative controls: each check fails for the reason it exists
    let m = panic_message(std::panic::catch_unwind(|| check_row::<(i32,)>("doc_received")));
    assert!(m.contains("row type does not match"), "int read from a timestamp column: {m:?}");
    let m = panic_message(std::panic::catch_unwind(|| check_row::<(Option<String>, Option<i64>)>("act_get")));
    assert!(m.contains("row type does not match"), "bigint read from a text column: {m:?}");
    let m = panic_message(std::panic::catch_unwind(|| check_values("fn_get", &(1i32,))));
    assert!(m.contains("values do not match"), "int bound to a text key: {m:?}");
    let m = panic_message(std::panic::catch_unwind(|| check_values("doc_get", &("f", 0i32))));
    assert!(m.contains("values do not match"), "a missing value: {m:?}");
    let m = panic_message(std::panic::catch_unwind(|| {
        check_values("dlv_failed", &(0i64, 1i32, "e", CqlTimestamp(0), CqlTimestamp(0), "f", 0i32, 0i64))
    }));
    assert!(m.contains("values do not match"), "a bigint bound to a timestamp: {m:?}");
    let m = panic_message(std::panic::catch_unwind(|| {
        let schema = schema();
        marker_specs("SELECT x FROM ofd.documents WHERE nope = ?", &schema["documents"]);
    }));
    assert!(m.contains("unknown column \"nope\""), "a misspelt column: {m:?}");
}
