//! Liveness, readiness and `/metrics` on the metrics listener.
//!
//! * `/livez` — the process runs (never checks dependencies: restarting would not help).
//! * `/readyz` — this node should get traffic: started, not draining, storage healthy
//!   (not poisoned, reachable). `?verbose` lists the checks.
//! * `/metrics` — Prometheus text.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use storage::{Health, Store};

use crate::metrics as m;
use crate::shutdown::Shutdown;

/// Readiness inputs.
pub struct Readiness {
    started: AtomicBool,
    store: Arc<dyn Store>,
    shutdown: Shutdown,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness").field("started", &self.started).finish_non_exhaustive()
    }
}

impl Readiness {
    /// Not ready until [`Readiness::set_started`].
    pub fn new(store: Arc<dyn Store>, shutdown: Shutdown) -> Self {
        Self { started: AtomicBool::new(false), store, shutdown }
    }

    /// Listeners are up.
    pub fn set_started(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    /// The checks, each `Ok` or a reason.
    pub fn checks(&self) -> Vec<(&'static str, Result<(), String>)> {
        let started = if self.started.load(Ordering::SeqCst) { Ok(()) } else { Err("starting".into()) };
        let draining = if self.shutdown.is_triggered() { Err("draining for shutdown".into()) } else { Ok(()) };
        let storage = match self.store.health() {
            Health::Ok => Ok(()),
            Health::Poisoned(r) => Err(format!("storage poisoned: {r}")),
            Health::Degraded(r) => Err(format!("storage degraded: {r}")),
        };
        vec![("started", started), ("not_draining", draining), ("storage", storage)]
    }

    /// All checks pass.
    pub fn is_ready(&self) -> bool {
        self.checks().iter().all(|(_, r)| r.is_ok())
    }
}

#[derive(Clone)]
struct HealthState {
    readiness: Arc<Readiness>,
    prometheus: PrometheusHandle,
}

/// The router of the metrics listener.
pub fn router(readiness: Arc<Readiness>, prometheus: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(HealthState { readiness, prometheus })
}

async fn metrics_text(State(s): State<HealthState>) -> impl IntoResponse {
    crate::process::update_metrics();
    metrics::gauge!(m::READY).set(if s.readiness.is_ready() { 1.0 } else { 0.0 });
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.prometheus.render())
}

async fn readyz(
    State(s): State<HealthState>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> impl IntoResponse {
    let checks = s.readiness.checks();
    let ok = checks.iter().all(|(_, r)| r.is_ok());
    let body = if q.contains_key("verbose") {
        let mut out = String::new();
        for (name, r) in &checks {
            match r {
                Ok(()) => out.push_str(&format!("[+]{name} ok\n")),
                Err(e) => out.push_str(&format!("[-]{name} failed: {e}\n")),
            }
        }
        out
    } else if ok {
        "ready\n".to_owned()
    } else {
        let reasons: Vec<String> = checks.into_iter().filter_map(|(_, r)| r.err()).collect();
        format!("not ready: {}\n", reasons.join("; "))
    };
    (if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, body)
}
