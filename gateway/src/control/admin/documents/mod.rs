//! Documents: list by register (receive-time range) or by FN (FD range, optionally a
//! receive-time range), show one decoded as FNS-style JSON with its raw container and
//! acknowledgment in hex, and the receipt check every OFD offers: does a document with
//! this FN, FD and printed fiscal sign exist — from the three numbers, or from the
//! receipt's QR string as it is ([`qr`]), which also checks the sum, the date and the
//! operation type against the stored document and names each part that disagrees.

use axum::Json;
use axum::extract::State;
use ffd::FnNumber;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use storage::model::{DocumentKey, DocumentRecord, TelemetryRecord};
use storage::{Page, Rnm, Timestamp};

use super::auth::Role;
use super::error::{ApiError, ApiPath, ApiQuery, ApiResult};
use super::{Ctx, Route, page_request, parse_time};

pub mod export;
pub mod qr;

/// Routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get(
            "/v1/documents",
            Role::Viewer,
            "List documents by rnm (from/to) or fn (fd_from/fd_to, from/to); paginated",
            list,
        )
        .query::<ListQuery>(),
        Route::get(
            "/v1/documents/verify",
            Role::Viewer,
            "Check a receipt: fn, fd and fiscal_sign, or the receipt's QR string (qr) whose sum, date and operation are checked too",
            verify,
        )
        .query::<VerifyQuery>(),
        Route::get(
            "/v1/documents/export",
            Role::Viewer,
            "Stream the documents of a register (rnm) or an owner (owner_inn) received in from..to as JSON lines or CSV (format), resumable after a position (after=FN:FD)",
            export::export,
        )
        .query::<export::ExportQuery>()
        .streams(&["application/x-ndjson", "text/csv"]),
        Route::get(
            "/v1/documents/{fn_number}/{fd}",
            Role::Viewer,
            "One document: metadata, FNS-style JSON, raw container and ack in hex",
            show,
        ),
    ]
}

/// A document without its bytes.
#[derive(Debug, Serialize)]
pub struct DocumentSummary {
    /// FN.
    pub fn_number: FnNumber,
    /// FD.
    pub fd: u32,
    /// Register.
    pub rnm: Rnm,
    /// Form code.
    pub doc_type: u8,
    /// Form name in the FNS JSON format (e.g. `receipt`).
    pub doc_type_name: Option<&'static str>,
    /// FFD version (tag 1209 value).
    pub ffd_version: Option<u8>,
    /// Document time (1012).
    pub doc_time: Option<Timestamp>,
    /// Received.
    pub received_at: Timestamp,
    /// Total, kopecks.
    pub total_kopecks: Option<u64>,
    /// Printed fiscal sign.
    pub fiscal_sign: Option<u32>,
    /// Acknowledgment response code.
    pub response_code: u8,
    /// Format-logic error code.
    pub flk_error: Option<String>,
    /// Stored verbatim (encrypted / unreadable body).
    pub opaque: bool,
    /// Drive report carried by the document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<TelemetryRecord>,
}

impl From<&DocumentRecord> for DocumentSummary {
    fn from(d: &DocumentRecord) -> Self {
        Self {
            fn_number: d.fn_number,
            fd: d.fd,
            rnm: d.rnm.clone(),
            doc_type: d.doc_type,
            doc_type_name: ffd::tags::doc_type(d.doc_type).map(|t| t.json),
            ffd_version: d.ffd_version,
            doc_time: d.doc_time,
            received_at: d.received_at,
            total_kopecks: d.total,
            fiscal_sign: d.fiscal_sign,
            response_code: d.response_code,
            flk_error: d.flk_error.clone(),
            opaque: d.opaque,
            telemetry: d.telemetry.clone(),
        }
    }
}

fn parse_fn(field: &str, s: &str) -> ApiResult<FnNumber> {
    FnNumber::parse_strict(s.trim()).map_err(|e| ApiError::invalid_param(field, e.to_string()))
}

fn parse_fd(field: &str, s: &str) -> ApiResult<u32> {
    s.trim()
        .parse::<u32>()
        .map_err(|_| ApiError::invalid_param(field, format!("{s:?} is not an FD number (a whole number)")))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    rnm: Option<String>,
    #[serde(rename = "fn")]
    fn_number: Option<String>,
    from: Option<String>,
    to: Option<String>,
    fd_from: Option<String>,
    fd_to: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

async fn list(State(ctx): State<Ctx>, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Json<Page<DocumentSummary>>> {
    let page = page_request(q.limit, q.cursor.clone())?;
    let from = nonempty(&q.from).map(|s| parse_time("from", s)).transpose()?;
    let to = nonempty(&q.to).map(|s| parse_time("to", s)).transpose()?;
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(ApiError::invalid_param("to", "must be after from"));
    }
    let store = &ctx.shared.store;
    let docs = match (nonempty(&q.rnm), nonempty(&q.fn_number)) {
        (Some(rnm), None) => {
            let rnm = Rnm::parse(rnm).map_err(|e| ApiError::invalid_param("rnm", e.to_string()))?;
            let from = from.unwrap_or(Timestamp(0));
            let to = to.unwrap_or_else(|| Timestamp::now().plus(std::time::Duration::from_secs(86_400)));
            store.documents_by_register(&rnm, from, to, page).await?
        }
        (None, Some(f)) => {
            let f = parse_fn("fn", f)?;
            let lo = nonempty(&q.fd_from).map(|s| parse_fd("fd_from", s)).transpose()?.unwrap_or(0);
            let hi = nonempty(&q.fd_to).map(|s| parse_fd("fd_to", s)).transpose()?.unwrap_or(u32::MAX);
            if lo > hi {
                return Err(ApiError::invalid_param("fd_to", "must not be below fd_from"));
            }
            let mut p = store.documents_by_fn(&f, lo..=hi, page).await?;
            // a time range narrows the FD page (the page may then hold fewer items)
            p.items.retain(|d| from.is_none_or(|f| d.received_at >= f) && to.is_none_or(|t| d.received_at < t));
            p
        }
        _ => {
            return Err(ApiError::bad_request("invalid_parameter", "give exactly one of rnm or fn").with_field("rnm"));
        }
    };
    Ok(Json(Page { items: docs.items.iter().map(DocumentSummary::from).collect(), next: docs.next }))
}

/// The VAT a receipt states at one rate.
#[derive(Debug, Serialize)]
pub struct VatLine {
    /// The 1199 code.
    pub code: u8,
    /// Its name in the FFD table ("НДС 22%"), or "unknown code N".
    pub name: String,
    /// VAT in kopecks (for 0 % and "not subject to VAT": the turnover at that rate).
    pub amount_kopecks: u64,
    /// True for 0 % and "not subject to VAT": the amount is a turnover, not VAT.
    pub turnover: bool,
}

/// One document in full.
#[derive(Debug, Serialize)]
pub struct DocumentView {
    /// Metadata.
    pub document: DocumentSummary,
    /// FNS-style JSON of the decoded document (absent for opaque bodies).
    pub fns_json: Option<Value>,
    /// Why the body could not be decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode_error: Option<String>,
    /// VAT per rate as the receipt states it (tags 1102–1107 and 1115/1119), by 1199 code.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vat: Vec<VatLine>,
    /// The container as received, hex.
    pub raw_hex: String,
    /// The acknowledgment container sent, hex.
    pub ack_hex: String,
}

async fn load(ctx: &Ctx, f: &str, fd: &str) -> ApiResult<Option<DocumentRecord>> {
    let key = DocumentKey { fn_number: parse_fn("fn", f)?, fd: parse_fd("fd", fd)? };
    Ok(ctx.shared.store.get_document(&key).await?)
}

/// The FNS JSON (with `messageFiscalSign` from the trailer, as forwarded to the FNS) and
/// the VAT per rate of a stored body.
fn decode(raw: &bytes::Bytes) -> Result<(Value, Vec<VatLine>), String> {
    let c = ffd::container::Container::parse(raw.clone(), ffd::container::MSG_FROM_FN).map_err(|e| e.to_string())?;
    let (doc, trailer) =
        ffd::document::Document::decode_lenient(&c.data(), &ffd::Limits::default()).map_err(|e| e.to_string())?;
    let vat = ffd::vat::receipt_totals(&doc)
        .into_iter()
        .map(|t| VatLine {
            code: t.code,
            name: t.rate.map_or_else(|| format!("unknown code {}", t.code), |r| r.name.to_owned()),
            amount_kopecks: t.amount,
            turnover: t.rate.is_some_and(|r| r.base_only),
        })
        .collect();
    Ok((ffd::json::to_fns_json_with_trailer(&doc, &trailer), vat))
}

async fn show(State(ctx): State<Ctx>, ApiPath((f, fd)): ApiPath<(String, String)>) -> ApiResult<Json<DocumentView>> {
    let Some(d) = load(&ctx, &f, &fd).await? else {
        return Err(ApiError::not_found(format!("no document FN {f} FD {fd}")));
    };
    let (fns_json, decode_error) = if d.opaque {
        (None, Some("the body is encrypted or not a plaintext document; stored verbatim".to_owned()))
    } else {
        match decode(&d.raw) {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        }
    };
    let (fns_json, vat) = match fns_json {
        Some((json, vat)) => (Some(json), vat),
        None => (None, Vec::new()),
    };
    Ok(Json(DocumentView {
        document: DocumentSummary::from(&d),
        fns_json,
        decode_error,
        vat,
        raw_hex: hex::encode(&d.raw),
        ack_hex: hex::encode(&d.ack),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct VerifyQuery {
    #[serde(rename = "fn")]
    fn_number: Option<String>,
    fd: Option<String>,
    fiscal_sign: Option<String>,
    qr: Option<String>,
}

/// One part of the receipt that disagrees with the stored document.
#[derive(Debug, Serialize)]
pub struct Mismatch {
    /// The part: `fp` / `fiscal_sign`, `s` (sum), `t` (date and time), `n` (operation).
    pub field: &'static str,
    /// What the receipt says.
    pub receipt: String,
    /// What the stored document says (absent when the document lacks it).
    pub stored: Option<String>,
}

/// Result of a receipt check.
#[derive(Debug, Serialize)]
pub struct Verification {
    /// FN asked about.
    pub fn_number: FnNumber,
    /// FD asked about.
    pub fd: u32,
    /// Fiscal sign asked about.
    pub fiscal_sign: u32,
    /// A document with this FN and FD exists.
    pub found: bool,
    /// It exists and every part asked about agrees.
    pub valid: bool,
    /// `ok`, `not_found`, or the first disagreement: `fiscal_sign_mismatch`,
    /// `sum_mismatch`, `date_mismatch`, `operation_mismatch`.
    pub result: &'static str,
    /// Every part that disagrees.
    pub mismatches: Vec<Mismatch>,
    /// The document, when found.
    pub document: Option<DocumentSummary>,
}

/// The operation type (tag 1054) of a stored receipt.
fn operation_of(d: &DocumentRecord) -> Option<u8> {
    if d.opaque {
        return None;
    }
    let c = ffd::container::Container::parse(d.raw.clone(), ffd::container::MSG_FROM_FN).ok()?;
    let (doc, _) = ffd::document::Document::decode_lenient(&c.data(), &ffd::Limits::default()).ok()?;
    doc.get(1054).and_then(ffd::document::Value::as_u64).and_then(|v| u8::try_from(v).ok())
}

async fn verify(State(ctx): State<Ctx>, ApiQuery(q): ApiQuery<VerifyQuery>) -> ApiResult<Json<Verification>> {
    let receipt = match nonempty(&q.qr) {
        Some(text) => {
            if let Some(other) = [("fn", &q.fn_number), ("fd", &q.fd), ("fiscal_sign", &q.fiscal_sign)]
                .into_iter()
                .find(|(_, v)| nonempty(v).is_some())
            {
                return Err(ApiError::invalid_param(other.0, "give either qr or fn, fd and fiscal_sign, not both"));
            }
            let parsed = qr::parse(text).map_err(|e| {
                let message = if e.part == "qr" { e.message } else { format!("part {}: {}", e.part, e.message) };
                ApiError::invalid_param("qr", message).with_extra("part", Value::from(e.part))
            })?;
            Some(parsed)
        }
        None => None,
    };
    let (fn_number, fd_n, fiscal_sign) = match &receipt {
        Some(r) => (r.fn_number, r.fd, r.fiscal_sign),
        None => {
            let (Some(f), Some(fd), Some(sign)) = (nonempty(&q.fn_number), nonempty(&q.fd), nonempty(&q.fiscal_sign))
            else {
                let missing = [("fn", &q.fn_number), ("fd", &q.fd), ("fiscal_sign", &q.fiscal_sign)]
                    .into_iter()
                    .find(|(_, v)| nonempty(v).is_none())
                    .map_or("fn", |(k, _)| k);
                return Err(ApiError::invalid_param(
                    missing,
                    "is required: give qr (the receipt's QR string), or fn, fd and fiscal_sign",
                ));
            };
            let fiscal_sign = sign.parse::<u32>().map_err(|_| {
                ApiError::invalid_param(
                    "fiscal_sign",
                    format!("{sign:?} is not a fiscal sign (the number printed on the receipt, up to 10 digits)"),
                )
            })?;
            (parse_fn("fn", f)?, parse_fd("fd", fd)?, fiscal_sign)
        }
    };
    let doc = ctx.shared.store.get_document(&DocumentKey { fn_number, fd: fd_n }).await?;
    let mut mismatches = Vec::new();
    if let Some(d) = &doc {
        if d.fiscal_sign != Some(fiscal_sign) {
            let field = if receipt.is_some() { "fp" } else { "fiscal_sign" };
            mismatches.push(Mismatch {
                field,
                receipt: fiscal_sign.to_string(),
                stored: d.fiscal_sign.map(|v| v.to_string()),
            });
        }
        if let Some(r) = &receipt {
            if d.total != Some(r.sum_kopecks) {
                mismatches.push(Mismatch {
                    field: "s",
                    receipt: qr::format_sum(r.sum_kopecks),
                    stored: d.total.map(qr::format_sum),
                });
            }
            let given = qr::format_time(Timestamp::from_unix_secs(r.time_secs), r.has_seconds);
            let stored = d.doc_time.map(|t| qr::format_time(t, r.has_seconds));
            if stored.as_deref() != Some(given.as_str()) {
                mismatches.push(Mismatch { field: "t", receipt: given, stored });
            }
            if let Some(n) = r.operation {
                let stored = operation_of(d);
                if stored != Some(n) {
                    mismatches.push(Mismatch {
                        field: "n",
                        receipt: n.to_string(),
                        stored: stored.map(|v| v.to_string()),
                    });
                }
            }
        }
    }
    let found = doc.is_some();
    let result = match (found, mismatches.first().map(|m| m.field)) {
        (false, _) => "not_found",
        (true, None) => "ok",
        (true, Some("fp" | "fiscal_sign")) => "fiscal_sign_mismatch",
        (true, Some("s")) => "sum_mismatch",
        (true, Some("t")) => "date_mismatch",
        (true, Some(_)) => "operation_mismatch",
    };
    Ok(Json(Verification {
        fn_number,
        fd: fd_n,
        fiscal_sign,
        found,
        valid: found && mismatches.is_empty(),
        result,
        mismatches,
        document: doc.as_ref().map(DocumentSummary::from),
    }))
}
