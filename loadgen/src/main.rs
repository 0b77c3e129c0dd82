//! `loadgen` — register simulator and benchmark driver for the OFD gateway.
//!
//! Subcommands: `run` (load), `registers` (CSV for `adminctl registers import`),
//! `baseline` (the trivial responder), `idle` (hold many connections).
//!
//! Exit codes: 0 ok; 1 runtime error; 2 usage or refused configuration (non-loopback
//! address, file limit); 3 verification failures (mismatches, changed acks); 99 a
//! `--threshold` was breached.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::args::{Cli, Cmd};
use cli::commands::{cmd_baseline, cmd_cql_baseline, cmd_idle, cmd_onboard, cmd_registers, cmd_run};
use cli::common::{Outcome, Usage};

fn main() -> ExitCode {
    let cli = Cli::parse();
    loadgen::install_crypto_provider();
    let threads = match &cli.cmd {
        Cmd::Run(a) => a.conn.threads,
        Cmd::Idle(a) => a.conn.threads,
        Cmd::Baseline(a) => a.threads,
        Cmd::Registers(_) => Some(1),
        Cmd::Onboard(_) => Some(1),
        Cmd::CqlBaseline(_) => None,
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = threads {
        rt.worker_threads(n.max(1));
    }
    let rt = match rt.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(async move {
        match cli.cmd {
            Cmd::Run(a) => cmd_run(*a).await,
            Cmd::Registers(a) => cmd_registers(&a),
            Cmd::Baseline(a) => cmd_baseline(a).await,
            Cmd::Idle(a) => cmd_idle(*a).await,
            Cmd::Onboard(a) => cmd_onboard(a).await,
            Cmd::CqlBaseline(a) => cmd_cql_baseline(a).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(Outcome::Usage(Usage(e))) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Outcome::Fail(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
