//! `documents export`: streams `GET /v1/documents/export` to stdout or a file, line by
//! line as it arrives (never the whole set in memory), with a progress line on stderr when
//! stderr is a terminal. Only complete lines are written, and the position of the last
//! one (its FN and FD) is kept: an interrupted export says how to go on
//! (`--after FN:FD`), and `--out FILE --resume` goes on from the file's own last line.

use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Instant;

use crate::client::{CliError, CliResult, exit};
use crate::cmd::Ctx;
use crate::output::{self, Format};

/// `documents export` arguments.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Register.
    #[arg(long, required_unless_present = "owner_inn", conflicts_with = "owner_inn")]
    rnm: Option<String>,
    /// Every register of this owner INN.
    #[arg(long)]
    owner_inn: Option<String>,
    /// Received at or after (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Received before (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    to: Option<String>,
    /// Start after this document (FN:FD), as printed by an interrupted export.
    #[arg(long, value_name = "FN:FD", conflicts_with = "resume")]
    after: Option<String>,
    /// Write to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// With --out: go on after the last complete line of FILE (a partial last line is cut).
    #[arg(long, requires = "out")]
    resume: bool,
}

/// FN:FD of one exported line (JSON lines: `fn_number` and `fd`; CSV: the first two columns).
fn position(line: &[u8], format: Format) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?;
    match format {
        Format::Csv => {
            let mut cols = text.splitn(3, ',');
            let (f, fd) = (cols.next()?, cols.next()?);
            (f.len() == 16 && f.bytes().all(|b| b.is_ascii_digit()) && fd.parse::<u32>().is_ok())
                .then(|| format!("{f}:{fd}"))
        }
        _ => {
            let v: serde_json::Value = serde_json::from_str(text).ok()?;
            Some(format!("{}:{}", v.get("fn_number")?.as_str()?, v.get("fd")?.as_u64()?))
        }
    }
}

/// The position of the last complete line of a file, and its length up to that line.
fn resume_point(path: &std::path::Path, format: Format) -> CliResult<(Option<String>, u64, bool)> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, 0, false)),
        Err(e) => return Err(CliError::usage(format!("--out {}: {e}", path.display()))),
    };
    let len = f.metadata().map_err(|e| CliError::usage(format!("--out {}: {e}", path.display())))?.len();
    // read the tail (lines are at most a few hundred KB: a document is at most 64 KB)
    let tail_len = len.min(1 << 20);
    f.seek(SeekFrom::Start(len - tail_len)).map_err(|e| CliError::usage(format!("--out {}: {e}", path.display())))?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    f.read_to_end(&mut tail).map_err(|e| CliError::usage(format!("--out {}: {e}", path.display())))?;
    let Some(end) = tail.iter().rposition(|b| *b == b'\n') else {
        return Ok((None, 0, false)); // not one complete line: start over
    };
    let keep = len - tail_len + end as u64 + 1;
    let start = tail[..end].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let pos = position(&tail[start..end], format);
    let header_only = pos.is_none() && format == Format::Csv;
    Ok((pos, keep, header_only))
}

fn progress(total: u64, bytes: u64, started: Instant, last: &str) -> String {
    let secs = started.elapsed().as_secs_f64().max(0.001);
    format!(
        "\r{total} documents, {:.1} MB, {:.0} documents/s, last {last}   ",
        bytes as f64 / 1e6,
        total as f64 / secs
    )
}

/// Runs the export.
pub async fn run(ctx: &Ctx, a: ExportArgs) -> CliResult<()> {
    let format = match ctx.format {
        Format::Table | Format::Jsonl => Format::Jsonl,
        Format::Csv => Format::Csv,
        other => {
            return Err(CliError::usage(format!(
                "documents export writes -o jsonl (default) or -o csv, not {other:?}"
            )));
        }
    };
    let mut after = a.after.clone();
    let mut skip_header = false;
    let mut sink: Box<dyn Write> = match &a.out {
        Some(path) => {
            let mut keep = 0;
            if a.resume {
                let (pos, len, header_only) = resume_point(path, format)?;
                keep = len;
                after = pos;
                skip_header = format == Format::Csv && (after.is_some() || header_only);
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(path)
                .map_err(|e| CliError::usage(format!("--out {}: {e}", path.display())))?;
            f.set_len(keep).map_err(|e| CliError::usage(format!("--out {}: {e}", path.display())))?;
            let mut f = f;
            f.seek(SeekFrom::End(0)).map_err(|e| CliError::usage(format!("--out {}: {e}", path.display())))?;
            Box::new(std::io::BufWriter::new(f))
        }
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let q = vec![
        ("rnm", a.rnm.clone().unwrap_or_default()),
        ("owner_inn", a.owner_inn.clone().unwrap_or_default()),
        ("from", a.from.clone().unwrap_or_default()),
        ("to", a.to.clone().unwrap_or_default()),
        ("format", if format == Format::Csv { "csv" } else { "jsonl" }.to_owned()),
        ("after", after.clone().unwrap_or_default()),
    ];
    let mut resp = ctx.client.get_stream("/v1/documents/export", &q).await?;
    let show = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut pending: Vec<u8> = Vec::new();
    let (mut total, mut bytes) = (0u64, 0u64);
    let mut last = after.clone().unwrap_or_else(|| "-".to_owned());
    let mut first_line = true;
    let write_err = |e: std::io::Error| CliError::new(exit::SERVER, format!("writing the export: {e}"));
    let outcome: Result<(), String> = loop {
        let chunk = match tokio::time::timeout(ctx.client.timeout(), resp.chunk()).await {
            Err(_) => break Err(format!("no data for {:?}", ctx.client.timeout())),
            Ok(Err(e)) => break Err(format!("the transfer broke off: {e}")),
            Ok(Ok(None)) => break Ok(()),
            Ok(Ok(Some(c))) => c,
        };
        pending.extend_from_slice(&chunk);
        let Some(end) = pending.iter().rposition(|b| *b == b'\n') else {
            continue;
        };
        let complete: Vec<u8> = pending.drain(..=end).collect();
        for line in complete.split_inclusive(|b| *b == b'\n') {
            let is_header = first_line && format == Format::Csv;
            first_line = false;
            if is_header && skip_header {
                continue;
            }
            sink.write_all(line).map_err(write_err)?;
            bytes += line.len() as u64;
            if !is_header && let Some(p) = position(&line[..line.len() - 1], format) {
                total += 1;
                last = p;
            }
        }
        if show {
            output::note_inline(&progress(total, bytes, started, &last));
        }
    };
    sink.flush().map_err(write_err)?;
    if show {
        output::note_inline(&format!("{}\n", progress(total, bytes, started, &last)));
    }
    match outcome {
        Ok(()) if pending.is_empty() => Ok(()),
        Ok(()) => Err(CliError::new(exit::SERVER, "the export ended inside a line".to_owned())),
        Err(why) => {
            let how = match &a.out {
                Some(p) => format!("run the same command with --resume to continue in {}", p.display()),
                None => format!("continue with --after {last}"),
            };
            Err(CliError::new(exit::SERVER, format!("{why}; {total} documents written, the last {last}; {how}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_lines_and_files() {
        let j = br#"{"fd":7,"fn_number":"9999078900005488","rnm":"x"}"#;
        assert_eq!(position(j, Format::Jsonl).as_deref(), Some("9999078900005488:7"));
        assert_eq!(position(b"9999078900005488,12,0000000001012345,3", Format::Csv).as_deref(), Some("9999078900005488:12"));
        assert_eq!(position(b"fn_number,fd,rnm", Format::Csv), None);
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("out.csv");
        std::fs::write(&p, "fn_number,fd\n9999078900005488,1,a\n9999078900005488,2,a\n9999078900").expect("write");
        let (pos, keep, _) = resume_point(&p, Format::Csv).expect("read");
        assert_eq!((pos.as_deref(), keep), (Some("9999078900005488:2"), 55));
        std::fs::write(&p, "fn_number,fd\n").expect("write");
        assert_eq!(resume_point(&p, Format::Csv).expect("read"), (None, 13, true));
    }
}
