//! What every subcommand shares: the outcome and exit-code classes, Ctrl-C, resolving
//! the connection options, onboarding through the admin API, JSON output.

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use loadgen::onboard::{OnboardConfig, default_paid_until, onboard, resolve_token};
use loadgen::registers::Population;
use loadgen::transport::TransportKind;
use rustls::pki_types::CertificateDer;
use tokio_util::sync::CancellationToken;

use super::args::{AdminArgs, ConnArgs};

/// A configuration error: exit code 2.
#[derive(Debug)]
pub(crate) struct Usage(pub(crate) anyhow::Error);

pub(crate) fn usage<E: Into<anyhow::Error>>(e: E) -> Usage {
    Usage(e.into())
}

pub(crate) enum Outcome {
    Usage(Usage),
    Fail(anyhow::Error),
}

impl From<Usage> for Outcome {
    fn from(u: Usage) -> Self {
        Self::Usage(u)
    }
}

impl From<anyhow::Error> for Outcome {
    fn from(e: anyhow::Error) -> Self {
        Self::Fail(e)
    }
}

pub(crate) fn ctrl_c() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: finishing in-flight exchanges and reporting");
            t.cancel();
        }
    });
    token
}

pub(crate) struct Resolved {
    pub(crate) target: SocketAddr,
    pub(crate) ca: Vec<CertificateDer<'static>>,
    pub(crate) ca_source: Option<String>,
    pub(crate) sources: Vec<Ipv4Addr>,
    pub(crate) threads: usize,
}

pub(crate) fn resolve_conn(c: &ConnArgs) -> Result<Resolved, Usage> {
    let target = match &c.target {
        Some(t) => loadgen::net::parse_target(t, "target").map_err(usage)?,
        None => c.transport.default_target(),
    };
    let sources = match &c.source_ips {
        Some(s) => loadgen::net::parse_sources(s).map_err(usage)?,
        None => Vec::new(),
    };
    let (ca, ca_source) = if matches!(c.transport, TransportKind::Tls | TransportKind::Quic) {
        let path = match (&c.ca, &c.gateway_data_dir) {
            (Some(p), _) => p.clone(),
            (None, Some(d)) => d.join("tls").join("dev-cert.pem"),
            (None, None) => {
                return Err(usage(anyhow::anyhow!(
                    "{} needs a certificate to trust: --ca FILE, or --gateway-data-dir DIR \
                     (the gateway's development certificate DIR/tls/dev-cert.pem)",
                    c.transport.name()
                )));
            }
        };
        (loadgen::transport::tls::load_ca(&path).map_err(usage)?, Some(path.display().to_string()))
    } else {
        (Vec::new(), None)
    };
    let threads =
        c.threads.unwrap_or_else(|| std::thread::available_parallelism().map(std::num::NonZeroUsize::get).unwrap_or(1));
    Ok(Resolved { target, ca, ca_source, sources, threads })
}

pub(crate) fn report_limit(transport: TransportKind) {
    if let Ok(l) = loadgen::sys::FileLimit::current() {
        let what = if transport.uses_fd_per_connection() {
            format!("one process can hold about {} {} connections", l.connection_capacity(), transport.name())
        } else {
            "QUIC connections share one UDP socket per source address".to_owned()
        };
        eprintln!("loadgen: file limit {} (hard {}): {what}", l.soft, l.hard);
    }
}

pub(crate) fn parse_range(s: &str) -> Result<(u32, u32), Usage> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u32 = a.trim().parse().map_err(|_| usage(anyhow::anyhow!("bad range {s:?}: use MIN-MAX")))?;
    let b: u32 = b.trim().parse().map_err(|_| usage(anyhow::anyhow!("bad range {s:?}: use MIN-MAX")))?;
    if a > b {
        return Err(usage(anyhow::anyhow!("bad range {s:?}: MIN is above MAX")));
    }
    Ok((a, b))
}

pub(crate) fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")?;
    } else {
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Imports `population` through the admin API.
pub(crate) async fn do_onboard(a: &AdminArgs, data_dir: Option<&Path>, population: &Population) -> Result<(), Outcome> {
    population.validate().map_err(usage)?;
    let admin = loadgen::net::check_admin_url(&a.admin).map_err(usage)?;
    let token = resolve_token(a.admin_token.as_deref(), data_dir).map_err(usage)?;
    let ocfg = OnboardConfig {
        admin,
        token,
        batch: loadgen::onboard::MAX_BATCH,
        tariff: a.tariff.clone(),
        paid_until: Some(a.paid_until.clone().unwrap_or_else(default_paid_until)),
        timeout: Duration::from_secs(120),
    };
    let t = std::time::Instant::now();
    let out = onboard(&ocfg, population).await?;
    eprintln!(
        "loadgen: onboarded {} registers in {:.1}s: {} created, {} updated, {} unchanged",
        population.count,
        t.elapsed().as_secs_f64(),
        out.created,
        out.updated,
        out.unchanged
    );
    Ok(())
}

pub(crate) fn opt_addr(s: Option<&str>, what: &'static str) -> Result<Option<SocketAddr>, Usage> {
    match s {
        None | Some("none") => Ok(None),
        Some(s) => Ok(Some(loadgen::net::parse_target(s, what).map_err(usage)?)),
    }
}
