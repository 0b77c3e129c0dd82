//! One function per subcommand: turn the arguments into the library's configuration,
//! run it, print or write the result, and return the exit code.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use loadgen::baseline::{Baseline, BaselineConfig, ServerTls};
use loadgen::docs::{Clock, DocPlan, Fault};
use loadgen::idle::{IdleConfig, Reconnect};
use loadgen::onboard::default_paid_until;
use loadgen::registers::{FfdMix, Population};
use loadgen::run::{LoadModel, RunConfig};
use loadgen::transport::quic::QuicOptions;

use super::args::{BaselineArgs, CqlBaselineArgs, IdleArgs, OnboardArgs, RegistersArgs, RunArgs};
use super::common::{
    Outcome, ctrl_c, do_onboard, opt_addr, parse_range, report_limit, resolve_conn, usage, write_json,
};

pub(crate) async fn cmd_run(a: RunArgs) -> Result<i32, Outcome> {
    let r = resolve_conn(&a.conn)?;
    let load = match (a.rate, a.closed) {
        (Some(rate), false) => LoadModel::Open { rate },
        (None, true) => LoadModel::Closed,
        (None, false) => LoadModel::Open { rate: 1000.0 },
        (Some(_), true) => return Err(usage(anyhow::anyhow!("--rate and --closed exclude each other")).into()),
    };
    let faults = a
        .faults
        .iter()
        .map(|f| {
            Fault::from_name(f.trim()).ok_or_else(|| {
                usage(anyhow::anyhow!("unknown fault {f:?} (fd_mismatch, truncated, unknown_form, bad_container_crc)"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let population =
        Population { seed: a.pop.seed, first: a.pop.first_register, count: a.pop.count, mix: a.pop.ffd_mix.clone() };
    let plan = DocPlan {
        receipts_per_shift: parse_range(&a.receipts_per_shift)?,
        malformed_share: a.malformed,
        faults,
        fd_start: a.fd_start,
        clock: a.fixed_time.map_or(Clock::Wall, Clock::Fixed),
        ..DocPlan::default()
    };
    let mut cfg = RunConfig::new(r.target, a.conn.transport, population.clone());
    cfg.ca = r.ca;
    cfg.ca_source = r.ca_source;
    cfg.server_name = a.conn.server_name.clone();
    cfg.tls_resumption = a.tls_resume;
    cfg.sources = r.sources;
    cfg.plan = plan;
    cfg.behaviour = a.behaviour;
    cfg.load = load;
    cfg.duration = a.duration;
    cfg.warmup = a.warmup;
    cfg.docs_per_register = a.docs_per_register;
    cfg.timeout = a.timeout;
    cfg.connect_timeout = a.conn.connect_timeout;
    cfg.late_threshold = a.late_threshold;
    cfg.late_window = a.late_window.unwrap_or(a.timeout);
    cfg.max_resends = a.max_resends;
    cfg.retry_refused = a.retry_refused;
    cfg.acked_out = a.acked_out.clone();
    cfg.duplicates = a.duplicates;
    cfg.ramp_rate = a.ramp_rate;
    cfg.think_time = a.think_time;
    cfg.quic = QuicOptions {
        keep_alive: a.conn.quic_keep_alive.filter(|d| !d.is_zero()),
        idle_timeout: a.conn.quic_idle_timeout,
    };
    cfg.threads = r.threads;
    cfg.shards = (r.threads * 4).max(4);
    cfg.progress = !a.no_progress;
    cfg.thresholds = a.thresholds.clone();
    cfg.max_mismatches = a.max_mismatches;
    cfg.validate().map_err(usage)?;
    report_limit(a.conn.transport);

    if a.onboard {
        do_onboard(&a.admin, a.conn.gateway_data_dir.as_deref(), &population).await?;
    }

    let report = loadgen::run::run(cfg, ctrl_c()).await?;
    let to_stdout = a.json.as_deref() == Some(Path::new("-"));
    if let Some(p) = &a.json {
        write_json(p, &report)?;
    }
    if !a.quiet {
        if to_stdout {
            eprint!("{}", report.summary());
        } else {
            print!("{}", report.summary());
        }
    }
    Ok(report.verdict.exit_code)
}

pub(crate) async fn cmd_onboard(a: OnboardArgs) -> Result<i32, Outcome> {
    let population =
        Population { seed: a.pop.seed, first: a.pop.first_register, count: a.pop.count, mix: a.pop.ffd_mix.clone() };
    do_onboard(&a.admin, a.gateway_data_dir.as_deref(), &population).await?;
    Ok(0)
}

pub(crate) fn cmd_registers(a: &RegistersArgs) -> Result<i32, Outcome> {
    let population =
        Population { seed: a.pop.seed, first: a.pop.first_register, count: a.pop.count, mix: a.pop.ffd_mix.clone() };
    population.validate().map_err(usage)?;
    let paid_until = match a.paid_until.as_deref() {
        Some("none" | "") => None,
        Some(p) => {
            time::OffsetDateTime::parse(p, &time::format_description::well_known::Rfc3339)
                .map_err(|_| usage(anyhow::anyhow!("--paid-until {p:?} is not RFC 3339")))?;
            Some(p.to_owned())
        }
        None => Some(default_paid_until()),
    };
    let n = if a.out == Path::new("-") {
        let out = std::io::stdout().lock();
        loadgen::registers::write_csv(out, &population, a.tariff.as_deref(), paid_until.as_deref())?
    } else {
        loadgen::registers::write_csv_file(&a.out, &population, a.tariff.as_deref(), paid_until.as_deref())?
    };
    if a.out != Path::new("-") {
        eprintln!(
            "loadgen: wrote {n} registers to {} (import with `adminctl registers import {}`)",
            a.out.display(),
            a.out.display()
        );
    }
    Ok(0)
}

pub(crate) async fn cmd_baseline(a: BaselineArgs) -> Result<i32, Outcome> {
    let cfg = BaselineConfig {
        tcp: opt_addr(Some(&a.listen), "listen address")?,
        tls: opt_addr(a.tls_listen.as_deref(), "TLS listen address")?,
        quic: opt_addr(a.quic_listen.as_deref(), "QUIC listen address")?,
        tls_material: match (&a.cert, &a.key) {
            (Some(c), Some(k)) => Some(ServerTls::from_files(c, k).map_err(usage)?),
            _ => None,
        },
        backlog: 4096,
    };
    let b = Baseline::start(cfg).await?;
    for (name, addr) in [("tcp", b.tcp_addr), ("tls", b.tls_addr), ("quic", b.quic_addr)] {
        if let Some(addr) = addr {
            eprintln!("baseline: {name} on {addr}");
        }
    }
    if let (Some(p), Some(pem)) = (&a.cert_out, &b.cert_pem) {
        std::fs::write(p, pem).with_context(|| format!("writing {}", p.display()))?;
        eprintln!("baseline: certificate written to {} (loadgen --ca {})", p.display(), p.display());
    }
    let cancel = ctrl_c();
    let start = tokio::time::Instant::now();
    let stop_at = a.duration.map(|d| start + d);
    let mut last = (start, 0u64);
    loop {
        let tick = if a.stats_interval.is_zero() { Duration::from_secs(3600) } else { a.stats_interval };
        let sleep_until =
            stop_at.map_or(tokio::time::Instant::now() + tick, |s| s.min(tokio::time::Instant::now() + tick));
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep_until(sleep_until) => {}
        }
        if stop_at.is_some_and(|s| tokio::time::Instant::now() >= s) {
            break;
        }
        let now = tokio::time::Instant::now();
        let m = b.messages();
        eprintln!(
            "baseline: {:.0} messages/s, {} connections, {} rejected",
            (m - last.1) as f64 / now.duration_since(last.0).as_secs_f64(),
            b.counters.connections.load(std::sync::atomic::Ordering::Relaxed),
            b.counters.rejected.load(std::sync::atomic::Ordering::Relaxed),
        );
        last = (now, m);
    }
    eprintln!(
        "baseline: answered {} messages on {} connections in {:.1}s",
        b.messages(),
        b.counters.connections.load(std::sync::atomic::Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
    b.stop().await;
    Ok(0)
}

pub(crate) async fn cmd_idle(a: IdleArgs) -> Result<i32, Outcome> {
    let r = resolve_conn(&a.conn)?;
    if a.conn.transport.uses_fd_per_connection() {
        let l = loadgen::sys::FileLimit::current().context("reading RLIMIT_NOFILE")?;
        l.check_connections(a.connections, "connections").map_err(|e| usage(anyhow::Error::msg(e)))?;
    }
    report_limit(a.conn.transport);
    let reconnect = if a.reconnect {
        let (lo, hi) = a.reconnect_backoff.split_once('-').unwrap_or((&a.reconnect_backoff, &a.reconnect_backoff));
        let parse = |v: &str| {
            humantime::parse_duration(v.trim())
                .map_err(|e| usage(anyhow::anyhow!("--reconnect-backoff {:?}: {e}", a.reconnect_backoff)))
        };
        Some(Reconnect { backoff_min: parse(lo)?, backoff_max: parse(hi)? })
    } else {
        None
    };
    let population = Population { seed: a.seed, first: a.first_register, count: a.connections, mix: FfdMix::default() };
    if a.onboard {
        do_onboard(&a.admin, a.conn.gateway_data_dir.as_deref(), &population).await?;
    }
    let cfg = IdleConfig {
        target: r.target,
        transport: a.conn.transport,
        ca: r.ca,
        server_name: a.conn.server_name.clone(),
        sources: r.sources,
        connections: a.connections,
        population,
        fd_start: a.fd_start,
        ramp_rate: a.ramp_rate,
        hold: a.hold,
        connect_timeout: a.conn.connect_timeout,
        send_first: a.send_first,
        timeout: a.timeout,
        quic: QuicOptions {
            keep_alive: Some(a.conn.quic_keep_alive.unwrap_or(Duration::from_secs(10))).filter(|d| !d.is_zero()),
            idle_timeout: a.conn.quic_idle_timeout,
        },
        ready_file: a.ready_file.clone(),
        wait_file: a.wait_file.clone(),
        reconnect,
        storm_csv: a.storm_csv.clone(),
        progress: !a.no_progress,
    };
    let report = loadgen::idle::idle(cfg, ctrl_c()).await?;
    if let Some(p) = &a.json {
        write_json(p, &report)?;
    }
    if a.json.as_deref() == Some(Path::new("-")) {
        eprint!("{}", report.summary());
    } else {
        print!("{}", report.summary());
    }
    let storm_failed = report.storm.as_ref().is_some_and(|st| !st.complete);
    Ok(if report.failed > 0 || report.first_documents_failed > 0 || storm_failed {
        loadgen::stats::EXIT_VERIFY
    } else {
        0
    })
}

pub(crate) async fn cmd_cql_baseline(a: CqlBaselineArgs) -> Result<i32, Outcome> {
    let nodes: Vec<String> = a.nodes.split(',').map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect();
    for n in &nodes {
        let host = n.rsplit_once(':').map_or(n.as_str(), |(h, _)| h);
        let ip: std::net::IpAddr = host.parse().map_err(|_| usage(anyhow::anyhow!("--nodes: {n:?} is not IP:PORT")))?;
        if !ip.is_loopback() {
            return Err(usage(anyhow::anyhow!("--nodes: {n} is not a loopback address")).into());
        }
    }
    let rf = a.rf.unwrap_or_else(|| u32::try_from(nodes.len().min(3)).unwrap_or(1));
    let cfg = loadgen::cql_baseline::CqlBaselineConfig {
        nodes,
        dc: a.dc,
        keyspace: a.keyspace,
        rf,
        mode: a.mode,
        size: a.size,
        concurrency: a.concurrency.max(1),
        duration: a.duration,
        warmup: a.warmup,
        timeout: a.timeout,
        keep: a.keep,
    };
    let r = loadgen::cql_baseline::run(cfg).await?;
    eprintln!(
        "cql-baseline {:?}: {} nodes, RF {}, {} in flight, {} B: {:.0} documents/s ({} in {:.0} s, {} errors), p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.1} ms",
        r.mode,
        r.nodes,
        r.rf,
        r.concurrency,
        r.size,
        r.rate,
        r.documents,
        r.seconds,
        r.errors,
        r.p50_ms,
        r.p99_ms,
        r.p999_ms,
        r.max_ms
    );
    if let Some(p) = &a.json {
        write_json(p, &r)?;
    }
    Ok(0)
}
