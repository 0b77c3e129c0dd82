//! `adminctl documents ...`

use clap::Subcommand;
use serde_json::Value;

mod export;

use super::{Ctx, Paging, seg};
use crate::client::{CliError, CliResult, exit};
use crate::output::{self, Format, field, key_values, print_table, structured};

/// Document verbs.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// List documents of a register (by receive time) or of an FN (by FD).
    #[command(visible_alias = "ls")]
    List {
        /// Register.
        #[arg(long, required_unless_present = "fn_number", conflicts_with = "fn_number")]
        rnm: Option<String>,
        /// FN.
        #[arg(long = "fn")]
        fn_number: Option<String>,
        /// Received at or after (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        from: Option<String>,
        /// Received before (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        to: Option<String>,
        /// With --fn: first FD.
        #[arg(long, requires = "fn_number")]
        fd_from: Option<u32>,
        /// With --fn: last FD.
        #[arg(long, requires = "fn_number")]
        fd_to: Option<u32>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one document as FNS-style JSON (-o raw: the container bytes in hex).
    Show {
        /// FN.
        #[arg(value_name = "FN")]
        fn_number: String,
        /// FD.
        fd: u32,
    },
    /// Stream the documents of a register or an owner over a period, as JSON lines (FNS
    /// JSON per document) or CSV (-o jsonl|csv); resumable by FD position.
    Export(export::ExportArgs),
    /// Check a receipt: from its QR string (--qr 't=…&s=…&fn=…&i=…&fp=…&n=1': the sum,
    /// date and operation are checked too), or from --fn, --fd and --fiscal-sign. Exit 4
    /// when no such document exists or a part disagrees (each one is named).
    Verify {
        /// The receipt's QR code string, as it is.
        #[arg(long, conflicts_with_all = ["fn_number", "fd", "fiscal_sign"], required_unless_present_all = ["fn_number", "fd", "fiscal_sign"])]
        qr: Option<String>,
        /// FN.
        #[arg(long = "fn")]
        fn_number: Option<String>,
        /// FD.
        #[arg(long)]
        fd: Option<u32>,
        /// Fiscal sign as printed on the receipt (ФП).
        #[arg(long)]
        fiscal_sign: Option<u32>,
    },
}

/// Runs a document verb.
pub async fn run(verb: Verb, ctx: &Ctx) -> CliResult<()> {
    if matches!(verb, Verb::Show { .. }) && matches!(ctx.format, Format::Jsonl | Format::Csv) {
        return Err(CliError::usage("-o jsonl and -o csv are only available for `documents export`"));
    }
    if !matches!(verb, Verb::Show { .. } | Verb::Export(_)) {
        output::no_raw(ctx.format)?;
    }
    match verb {
        Verb::List {
            rnm,
            fn_number,
            from,
            to,
            fd_from,
            fd_to,
            paging,
        } => {
            let q = vec![
                ("rnm", rnm.unwrap_or_default()),
                ("fn", fn_number.unwrap_or_default()),
                ("from", from.unwrap_or_default()),
                ("to", to.unwrap_or_default()),
                ("fd_from", fd_from.map(|v| v.to_string()).unwrap_or_default()),
                ("fd_to", fd_to.map(|v| v.to_string()).unwrap_or_default()),
            ];
            let v = ctx.pages("/v1/documents", q, &paging).await?;
            output::list(
                ctx.format,
                &v,
                &[
                    ("FN", "fn_number"),
                    ("FD", "fd"),
                    ("TYPE", "doc_type_name"),
                    ("DOC TIME", "doc_time"),
                    ("RECEIVED", "received_at"),
                    ("TOTAL (KOP)", "total_kopecks"),
                    ("FISCAL SIGN", "fiscal_sign"),
                    ("CODE", "response_code"),
                ],
                "documents",
            )
        }
        Verb::Show { fn_number, fd } => {
            let v = ctx
                .client
                .get(&format!("/v1/documents/{}/{fd}", seg(&fn_number)), &[])
                .await?;
            match ctx.format {
                Format::Raw => {
                    output::line(v.get("raw_hex").and_then(Value::as_str).unwrap_or(""));
                    Ok(())
                }
                Format::Table => {
                    let d = v.get("document").unwrap_or(&Value::Null);
                    print_table(&key_values(&[
                        ("FN", field(d, "fn_number")),
                        ("FD", field(d, "fd")),
                        ("RNM", field(d, "rnm")),
                        ("Type", format!("{} ({})", field(d, "doc_type_name"), field(d, "doc_type"))),
                        ("Document time", field(d, "doc_time")),
                        ("Received", field(d, "received_at")),
                        ("Total (kopecks)", field(d, "total_kopecks")),
                        ("Fiscal sign", field(d, "fiscal_sign")),
                        ("Response code", field(d, "response_code")),
                        ("FLK error", field(d, "flk_error")),
                    ]));
                    // VAT per rate, named as the FFD table names the 1199 code
                    let vat: Vec<(String, String)> = v
                        .get("vat")
                        .and_then(Value::as_array)
                        .map(|lines| {
                            lines
                                .iter()
                                .map(|l| {
                                    let what = if l.get("turnover").and_then(Value::as_bool) == Some(true) {
                                        "turnover"
                                    } else {
                                        "VAT"
                                    };
                                    (
                                        format!("{} ({what}, code {})", field(l, "name"), field(l, "code")),
                                        rubles(l.get("amount_kopecks").and_then(Value::as_u64).unwrap_or(0)),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    if !vat.is_empty() {
                        let rows: Vec<(&str, String)> = vat.iter().map(|(k, a)| (k.as_str(), a.clone())).collect();
                        print_table(&key_values(&rows));
                    }
                    match v.get("fns_json") {
                        Some(j) if !j.is_null() => output::line(
                            &serde_json::to_string_pretty(j).unwrap_or_default(),
                        ),
                        _ => output::note(&format!(
                            "not decodable: {}",
                            field(&v, "decode_error")
                        )),
                    }
                    Ok(())
                }
                _ => structured(ctx.format, &v).map(|_| ()),
            }
        }
        Verb::Export(args) => export::run(ctx, args).await,
        Verb::Verify { qr, fn_number, fd, fiscal_sign } => {
            let q = match &qr {
                Some(text) => vec![("qr", text.clone())],
                None => vec![
                    ("fn", fn_number.clone().unwrap_or_default()),
                    ("fd", fd.map(|v| v.to_string()).unwrap_or_default()),
                    ("fiscal_sign", fiscal_sign.map(|v| v.to_string()).unwrap_or_default()),
                ],
            };
            let v = ctx.client.get("/v1/documents/verify", &q).await?;
            let valid = v.get("valid").and_then(Value::as_bool).unwrap_or(false);
            let result = field(&v, "result");
            if !structured(ctx.format, &v)? {
                let (fnn, fd, sign) = (field(&v, "fn_number"), field(&v, "fd"), field(&v, "fiscal_sign"));
                let text = match result.as_str() {
                    "ok" if qr.is_some() => {
                        format!("valid: FN {fnn} FD {fd} exists; fiscal sign, sum and date agree with the receipt")
                    }
                    "ok" => format!("valid: FN {fnn} FD {fd} exists with fiscal sign {sign}"),
                    "not_found" => format!("NOT valid: no document FN {fnn} FD {fd}"),
                    _ => {
                        let mut text = format!("NOT valid: FN {fnn} FD {fd} exists but the receipt disagrees with it:");
                        for m in v.get("mismatches").and_then(Value::as_array).into_iter().flatten() {
                            let name = match m.get("field").and_then(Value::as_str).unwrap_or("") {
                                "fp" | "fiscal_sign" => "fiscal sign (fp)",
                                "s" => "sum (s)",
                                "t" => "date and time (t)",
                                "n" => "operation type (n)",
                                other => other,
                            };
                            text.push_str(&format!(
                                "\n  {name}: the receipt says {}, the stored document {}",
                                field(m, "receipt"),
                                m.get("stored").and_then(Value::as_str).unwrap_or("has none")
                            ));
                        }
                        text
                    }
                };
                output::line(&text);
            }
            if valid {
                Ok(())
            } else {
                Err(CliError::new(exit::NOT_FOUND, String::new()))
            }
        }
    }
}

/// Kopecks as rubles with two decimals.
fn rubles(kopecks: u64) -> String {
    format!("{}.{:02}", kopecks / 100, kopecks % 100)
}
