//! The live progress line of a run (stderr, only on a terminal).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ctx::Ctx;
use crate::transport::Connector;

/// The live progress line (stderr, only on a terminal).
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    stop: CancellationToken,
}

impl Progress {
    pub(super) fn start<C: Connector>(ctx: &Arc<Ctx<C>>, cancel: CancellationToken) -> Self {
        use std::io::IsTerminal as _;
        let stop = cancel.child_token();
        if !ctx.cfg.progress || !std::io::stderr().is_terminal() {
            return Self { bar: None, stop };
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
        let b = bar.clone();
        let ctx = ctx.clone();
        let s = stop.clone();
        tokio::spawn(async move {
            let mut last = 0u64;
            let mut last_t = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = s.cancelled() => break,
                }
                let c = &ctx.stats.counters;
                let ok = c.documents_ok.load(Relaxed);
                let now = Instant::now();
                let rate = (ok - last.min(ok)) as f64 / now.duration_since(last_t).as_secs_f64().max(1e-3);
                last = ok;
                last_t = now;
                b.set_message(format!(
                    "{:>6.1}s  ok {ok} ({rate:.0}/s)  mismatches {}  timeouts {}  refusals {}  conns {} (failed {})",
                    ctx.start.elapsed().as_secs_f64(),
                    c.mismatches_total(),
                    c.timeouts.load(Relaxed),
                    c.refusals.load(Relaxed),
                    c.connects_ok.load(Relaxed),
                    c.connects_failed.load(Relaxed),
                ));
                b.tick();
            }
        });
        Self { bar: Some(bar), stop }
    }

    pub(super) fn finish(self) {
        self.stop.cancel();
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}
