//! `adminctl fns ...` — FNS forwarding: whether it is on, the backlog, and the delivery
//! state of one document.

use clap::Subcommand;
use serde_json::Value;

use super::Ctx;
use crate::client::CliResult;
use crate::output;

/// FNS verbs.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Forwarding endpoint and the undelivered backlog (size, oldest age).
    Status,
    /// Delivery state of one document: pending or delivered, attempts, last error.
    Delivery {
        /// FN number (16 digits).
        fn_number: String,
        /// FD number.
        fd: u32,
    },
}

/// Runs an FNS verb.
pub async fn run(verb: Verb, ctx: &Ctx) -> CliResult<()> {
    output::no_raw(ctx.format)?;
    match verb {
        Verb::Status => {
            let v = ctx.client.get("/v1/fns", &[]).await?;
            if output::structured(ctx.format, &v)? {
                return Ok(());
            }
            let backlog = v.get("backlog").cloned().unwrap_or(Value::Null);
            output::print_table(&output::key_values(&[
                (
                    "Forwarding",
                    if v.get("enabled").and_then(Value::as_bool) == Some(true) { "on" } else { "off" }.into(),
                ),
                ("Endpoint", output::field(&v, "url")),
                ("Undelivered documents", output::field(&backlog, "pending")),
                ("Oldest queued at", output::field(&backlog, "oldest_queued_at")),
                (
                    "Oldest age",
                    v.get("oldest_age_secs")
                        .and_then(Value::as_u64)
                        .map_or_else(|| "-".to_owned(), |s| output::human_duration(std::time::Duration::from_secs(s))),
                ),
            ]));
            Ok(())
        }
        Verb::Delivery { fn_number, fd } => {
            let v = ctx.client.get(&format!("/v1/fns/deliveries/{}/{fd}", fn_number.trim()), &[]).await?;
            if output::structured(ctx.format, &v)? {
                return Ok(());
            }
            let key = v.get("key").cloned().unwrap_or(Value::Null);
            output::print_table(&output::key_values(&[
                ("FN", output::field(&key, "fn_number")),
                ("FD", output::field(&key, "fd")),
                ("Status", output::field(&v, "status")),
                ("Queued at", output::field(&v, "queued_at")),
                ("Attempts", output::field(&v, "attempts")),
                ("Next attempt at", output::field(&v, "next_attempt_at")),
                ("Last attempt at", output::field(&v, "last_attempt_at")),
                ("Last error", output::field(&v, "last_error")),
                ("Delivered at", output::field(&v, "delivered_at")),
            ]));
            Ok(())
        }
    }
}
