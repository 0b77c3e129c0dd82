//! `GET /v1/documents/export`: the documents of a register (`rnm`) or of every register of
//! an owner (`owner_inn`) received in `[from, to)`, **streamed** as JSON lines (one
//! document a line: its keys and its FNS-style JSON) or CSV (one row a document).
//!
//! * Order: registers by RNM; within a register its FNs (replaced ones first, then the
//!   current); within an FN ascending FD. That order makes the export resumable by FD
//!   position: `after=<FN>:<FD>` continues right after that document.
//! * Memory: one page of [`PAGE`] documents at a time, handed to the response body through
//!   a bounded channel, so a slow reader holds the producer back (never the whole set in
//!   memory, whatever its size).
//! * A storage error in the middle aborts the body (the client sees an incomplete
//!   transfer, not a clean end) — a client resumes from its last complete line.
//!
//! Cost: documents are read by FN and FD and filtered by receive time, so an export of a
//! short period reads every document of the FNs concerned.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use ffd::FnNumber;
use futures::SinkExt;
use futures::channel::mpsc;
use serde::Deserialize;
use serde_json::json;
use storage::model::{DocumentRecord, Register};
use storage::{Inn, PageRequest, RegisterFilter, Rnm, Store, Timestamp};

use super::super::error::{ApiError, ApiQuery, ApiResult};
use super::super::{Ctx, parse_time};
use super::{decode, nonempty};

/// Documents read per storage call.
pub const PAGE: u32 = 500;
/// Chunks (one page each at most) buffered between the reader and the response body.
const CHANNEL: usize = 2;
/// Registers of one owner exported at most.
pub const MAX_REGISTERS: usize = 100_000;

/// CSV columns.
pub const CSV_COLUMNS: [&str; 12] = [
    "fn_number",
    "fd",
    "rnm",
    "doc_type",
    "doc_type_name",
    "doc_time",
    "received_at",
    "total",
    "fiscal_sign",
    "response_code",
    "flk_error",
    "opaque",
];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ExportQuery {
    rnm: Option<String>,
    owner_inn: Option<String>,
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
    after: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Jsonl,
    Csv,
}

/// Where to start: after this document.
#[derive(Debug, Clone, Copy)]
struct After {
    fn_number: FnNumber,
    fd: u32,
}

fn parse_after(s: &str) -> ApiResult<After> {
    let bad = || {
        ApiError::invalid_param("after", format!("{s:?} is not a position: write <FN>:<FD>, e.g. 9999078900005488:120"))
    };
    let (f, fd) = s.split_once(':').ok_or_else(bad)?;
    let fn_number = FnNumber::parse_strict(f.trim()).map_err(|e| ApiError::invalid_param("after", e.to_string()))?;
    let fd = fd.trim().parse::<u32>().map_err(|_| bad())?;
    Ok(After { fn_number, fd })
}

/// The FNs of a register in export order (replaced ones first, then the current one).
fn fns_of(r: &Register) -> Vec<FnNumber> {
    let mut out: Vec<FnNumber> = r.fn_history.iter().map(|h| h.fn_number).collect();
    out.push(r.fn_number);
    out.dedup();
    out
}

pub(super) async fn export(State(ctx): State<Ctx>, ApiQuery(q): ApiQuery<ExportQuery>) -> ApiResult<Response> {
    let format = match nonempty(&q.format) {
        None | Some("jsonl") => Format::Jsonl,
        Some("csv") => Format::Csv,
        Some(other) => {
            return Err(ApiError::invalid_param("format", format!("{other:?} is not a format (jsonl or csv)")));
        }
    };
    let from = nonempty(&q.from).map(|s| parse_time("from", s)).transpose()?.unwrap_or(Timestamp(0));
    let to = nonempty(&q.to).map(|s| parse_time("to", s)).transpose()?.unwrap_or(Timestamp(i64::MAX));
    if from >= to {
        return Err(ApiError::invalid_param("to", "must be after from"));
    }
    let after = nonempty(&q.after).map(parse_after).transpose()?;
    let store = ctx.shared.store.clone();
    let mut registers: Vec<Register> = match (nonempty(&q.rnm), nonempty(&q.owner_inn)) {
        (Some(rnm), None) => {
            let rnm = Rnm::parse(rnm).map_err(|e| ApiError::invalid_param("rnm", e.to_string()))?;
            let r = store.get_register(&rnm).await?.ok_or_else(|| ApiError::not_found(format!("no register {rnm}")))?;
            vec![r]
        }
        (None, Some(inn)) => {
            let inn = Inn::parse(inn).map_err(|e| ApiError::invalid_param("owner_inn", e.to_string()))?;
            let filter = RegisterFilter { owner_inn: Some(inn), ..RegisterFilter::default() };
            crate::control::admin::registers::collect(store.as_ref(), &filter, MAX_REGISTERS).await?.ok_or_else(|| {
                ApiError::invalid_param(
                    "owner_inn",
                    format!("the owner has more than {MAX_REGISTERS} registers: export them by rnm"),
                )
            })?
        }
        _ => {
            return Err(
                ApiError::bad_request("invalid_parameter", "give exactly one of rnm or owner_inn").with_field("rnm")
            );
        }
    };
    registers.sort_by(|a, b| a.rnm.as_str().cmp(b.rnm.as_str()));
    // resume: skip what comes before the position
    let mut start: Option<(usize, usize, u32)> = Some((0, 0, 0));
    if let Some(a) = after {
        start = None;
        for (ri, r) in registers.iter().enumerate() {
            if let Some(fi) = fns_of(r).iter().position(|f| *f == a.fn_number) {
                start = Some((ri, fi, a.fd.saturating_add(1)));
            }
        }
        if start.is_none() {
            return Err(ApiError::invalid_param(
                "after",
                format!("FN {} belongs to none of the registers exported", a.fn_number),
            ));
        }
        if a.fd == u32::MAX {
            return Err(ApiError::invalid_param("after", "no document comes after FD 4294967295"));
        }
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHANNEL);
    let (ri0, fi0, fd0) = start.unwrap_or((0, 0, 0));
    tokio::spawn(produce(store, registers, (ri0, fi0, fd0), from, to, format, tx));
    let mut resp = Body::from_stream(rx).into_response();
    let ct = match format {
        Format::Jsonl => "application/x-ndjson",
        Format::Csv => "text/csv; charset=utf-8",
    };
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(resp)
}

/// Reads page after page and sends them down the channel until done, the client goes
/// away, or storage fails (then the body is aborted).
async fn produce(
    store: std::sync::Arc<dyn Store>,
    registers: Vec<Register>,
    (ri0, fi0, fd0): (usize, usize, u32),
    from: Timestamp,
    to: Timestamp,
    format: Format,
    mut tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    if format == Format::Csv {
        let header = format!("{}\n", CSV_COLUMNS.join(","));
        if tx.send(Ok(Bytes::from(header))).await.is_err() {
            return;
        }
    }
    for (ri, r) in registers.iter().enumerate().skip(ri0) {
        for (fi, f) in fns_of(r).iter().enumerate() {
            if ri == ri0 && fi < fi0 {
                continue;
            }
            let first_fd = if ri == ri0 && fi == fi0 { fd0 } else { 0 };
            let mut page = PageRequest::first(PAGE);
            loop {
                let p = match store.documents_by_fn(f, first_fd..=u32::MAX, page.clone()).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "document export: storage error; the response is aborted");
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                        return;
                    }
                };
                let mut chunk = String::new();
                for d in p.items.iter().filter(|d| d.received_at >= from && d.received_at < to && d.rnm == r.rnm) {
                    match format {
                        Format::Jsonl => jsonl_line(&mut chunk, d),
                        Format::Csv => csv_row(&mut chunk, d),
                    }
                }
                if !chunk.is_empty() && tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                    return; // the client went away
                }
                match p.next {
                    Some(c) => page.cursor = Some(c),
                    None => break,
                }
            }
        }
    }
}

fn jsonl_line(out: &mut String, d: &DocumentRecord) {
    let document = if d.opaque { None } else { decode(&d.raw).ok().map(|(fns_json, _vat)| fns_json) };
    let v = json!({
        "fn_number": d.fn_number,
        "fd": d.fd,
        "rnm": d.rnm,
        "doc_type": d.doc_type,
        "doc_time": d.doc_time,
        "received_at": d.received_at,
        "response_code": d.response_code,
        "fns_json": document,
        "raw_hex": if document.is_none() { Some(hex::encode(&d.raw)) } else { None },
    });
    out.push_str(&v.to_string());
    out.push('\n');
}

fn csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn csv_row(out: &mut String, d: &DocumentRecord) {
    let fields = [
        d.fn_number.to_string(),
        d.fd.to_string(),
        d.rnm.to_string(),
        d.doc_type.to_string(),
        ffd::tags::doc_type(d.doc_type).map(|t| t.json.to_owned()).unwrap_or_default(),
        d.doc_time.map(Timestamp::to_rfc3339).unwrap_or_default(),
        d.received_at.to_rfc3339(),
        d.total.map(|k| format!("{}.{:02}", k / 100, k % 100)).unwrap_or_default(),
        d.fiscal_sign.map(|v| v.to_string()).unwrap_or_default(),
        d.response_code.to_string(),
        d.flk_error.clone().unwrap_or_default(),
        d.opaque.to_string(),
    ];
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f);
    }
    out.push('\n');
}
