//! Onboarding through the gateway's admin API, so that a quick start is one command:
//! `POST {admin}/v1/registers/import` with `Authorization: Bearer <token>` and
//! `{"registers": [...], "partial": false, "dry_run": false}`, in batches of at most
//! 5,000. The token comes from `--admin-token`, `LOADGEN_ADMIN_TOKEN`, or
//! `<gateway data dir>/admin-token` (created by the gateway on a developer machine).

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::registers::Population;

/// Largest batch the admin API accepts.
pub const MAX_BATCH: usize = 5_000;

/// Where and how to onboard.
#[derive(Debug, Clone)]
pub struct OnboardConfig {
    /// Admin API base URL (loopback only).
    pub admin: reqwest::Url,
    /// Bearer token.
    pub token: String,
    /// Registers per request (≤ 5,000).
    pub batch: usize,
    /// Tariff plan for every register.
    pub tariff: Option<String>,
    /// End of the paid period, RFC 3339.
    pub paid_until: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// The summed answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportOutcome {
    /// Registers created.
    #[serde(default)]
    pub created: u64,
    /// Registers changed.
    #[serde(default)]
    pub updated: u64,
    /// Registers already as given.
    #[serde(default)]
    pub unchanged: u64,
    /// Per-register errors.
    #[serde(default)]
    pub errors: Vec<serde_json::Value>,
}

/// Picks the token: the flag (or `LOADGEN_ADMIN_TOKEN`, which clap folds into it), else
/// `<data_dir>/admin-token`.
pub fn resolve_token(flag: Option<&str>, data_dir: Option<&Path>) -> anyhow::Result<String> {
    if let Some(t) = flag.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(t.to_owned());
    }
    if let Some(dir) = data_dir {
        let p = dir.join("admin-token");
        let t = std::fs::read_to_string(&p).with_context(|| format!("reading the admin token from {}", p.display()))?;
        let t = t.trim();
        anyhow::ensure!(!t.is_empty(), "{} is empty", p.display());
        return Ok(t.to_owned());
    }
    anyhow::bail!(
        "onboarding needs an admin token: --admin-token, LOADGEN_ADMIN_TOKEN, or \
         --gateway-data-dir DIR (reads DIR/admin-token)"
    )
}

/// The paid-until default: one year from now, RFC 3339.
pub fn default_paid_until() -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::days(365))
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Imports the population; fails on the first refused batch or on per-register errors.
pub async fn onboard(cfg: &OnboardConfig, population: &Population) -> anyhow::Result<ImportOutcome> {
    population.validate()?;
    let batch = cfg.batch.clamp(1, MAX_BATCH);
    let url = format!("{}/v1/registers/import", cfg.admin.as_str().trim_end_matches('/'));
    let client = reqwest::Client::builder().timeout(cfg.timeout).build().context("building the HTTP client")?;
    let mut total = ImportOutcome::default();
    let mut rows = Vec::with_capacity(batch);
    let mut iter = population.iter().peekable();
    while iter.peek().is_some() {
        rows.clear();
        for reg in iter.by_ref().take(batch) {
            rows.push(reg?.import_row(cfg.tariff.as_deref(), cfg.paid_until.as_deref()));
        }
        let body = serde_json::json!({
            "registers": rows,
            "partial": false,
            "dry_run": false,
        });
        let resp = client
            .post(&url)
            .bearer_auth(&cfg.token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        anyhow::ensure!(
            status.is_success(),
            "POST {url} answered {status}: {}",
            text.chars().take(500).collect::<String>()
        );
        let out: ImportOutcome =
            serde_json::from_str(&text).with_context(|| format!("unexpected answer from {url}: {text:.200}"))?;
        total.created += out.created;
        total.updated += out.updated;
        total.unchanged += out.unchanged;
        total.errors.extend(out.errors);
    }
    anyhow::ensure!(
        total.errors.is_empty(),
        "the gateway refused {} registers, e.g. {}",
        total.errors.len(),
        total.errors.first().map(ToString::to_string).unwrap_or_default()
    );
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_sources() {
        assert_eq!(resolve_token(Some(" t1 "), None).expect("flag"), "t1");
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("admin-token"), "secret\n").expect("write");
        assert_eq!(resolve_token(None, Some(dir.path())).expect("file"), "secret");
        assert_eq!(resolve_token(Some("f"), Some(dir.path())).expect("flag wins"), "f");
        assert!(resolve_token(None, None).is_err());
        let empty = tempfile::tempdir().expect("tmp");
        assert!(resolve_token(None, Some(empty.path())).is_err());
    }

    #[test]
    fn paid_until_is_rfc3339() {
        let s = default_paid_until();
        assert!(time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).is_ok(), "{s}");
    }
}
