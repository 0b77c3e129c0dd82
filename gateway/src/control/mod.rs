//! **The control plane**: what operators talk to and what runs beside ingest — the admin
//! API, alert evaluation and notification, FNS forwarding, resend jobs, revenue reports.
//!
//! May import the shared pieces (`config`, `metrics`, `state`, `health`, `tls`), `ffd`
//! and `storage`; of the data plane only [`crate::data::LiveView`] (through
//! [`crate::state::Shared`]). Background work here is leased through the store, so a
//! cluster runs each piece once.

pub mod admin;
pub mod alerts;
pub mod fns;
pub mod reports;
pub mod resend;

use crate::metrics as m;

/// Creates the control plane's series at zero for every known value of their bounded
/// labels (admin routes with their success status and 401, FNS delivery results and request kinds, resend
/// results and final states, alert severities and notification results), so that panels
/// and rules over them have data before the first event. Alert series carry no `rule`
/// label until a rule exists (an empty label is no label in Prometheus).
pub fn prime_metrics() {
    for r in admin::route_table() {
        let ok = match r.ok.as_u16() {
            201 => "201",
            204 => "204",
            _ => "200",
        };
        for status in [ok, "401"] {
            m::prime(m::ADMIN_REQUESTS, &[("route", r.path), ("status", status)]);
        }
        m::prime(m::ADMIN_REQUEST_SECONDS, &[("route", r.path)]);
    }
    for status in ["401", "404"] {
        m::prime(m::ADMIN_REQUESTS, &[("route", "unmatched"), ("status", status)]);
    }
    m::prime(m::ADMIN_REQUEST_SECONDS, &[("route", "unmatched")]);
    for result in ["unauthenticated", "limited"] {
        m::prime(m::ADMIN_AUTH_FAILURES, &[("result", result)]);
    }
    for result in ["delivered", "timeout", "connect", "rejected", "unavailable", "error"] {
        m::prime(m::FNS_DELIVERIES, &[("result", result)]);
    }
    for kind in ["forward", "resend"] {
        m::prime(m::FNS_REQUEST_SECONDS, &[("kind", kind)]);
    }
    for result in ["delivered", "failed"] {
        m::prime(m::RESEND_DOCUMENTS, &[("result", result)]);
    }
    for state in ["completed", "cancelled", "failed"] {
        m::prime(m::RESEND_JOBS, &[("state", state)]);
    }
    for severity in ["info", "warning", "critical"] {
        m::prime(m::ALERTS_FIRING, &[("severity", severity)]);
        for status in ["firing", "resolved"] {
            m::prime(m::ALERT_TRANSITIONS, &[("severity", severity), ("status", status)]);
        }
    }
    for result in ["delivered", "failed", "abandoned"] {
        m::prime(m::ALERT_NOTIFICATIONS, &[("result", result)]);
    }
    for result in ["ok", "error"] {
        m::prime(m::ALERT_EVALUATIONS, &[("result", result)]);
        m::prime(m::ALERTMANAGER_PUSHES, &[("result", result)]);
    }
}
