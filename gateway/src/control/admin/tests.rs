//! In-process tests of the admin API over the real router and the embedded store: the
//! route inventory and RBAC matrix (from the route table), JSON errors, validation,
//! import semantics, audit, and that the register index follows every change at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use ffd::FnNumber;
use serde_json::{Value, json};
use storage::{AuditFilter, Inn, PageRequest, Rnm, Timestamp};
use tower::ServiceExt;

use super::*;
use crate::config::{Config, Listen};
use crate::data::registry::Refusal;

const ADMIN: &str = "admin-secret-token";
const VIEWER: &str = "viewer-secret-token";

struct Env {
    app: Router,
    running: Option<crate::Running>,
    _dir: tempfile::TempDir,
}

impl Env {
    fn shared(&self) -> &Shared {
        &self.running.as_ref().unwrap().shared
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown_signal().trigger();
        }
    }
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
    let off = Listen(None);
    cfg.listen.tcp = off;
    cfg.listen.tls = off;
    cfg.listen.quic = off;
    cfg.listen.admin = off;
    cfg.listen.metrics = off;
    cfg.ingest.tariff_grace = std::time::Duration::ZERO;
    cfg.ingest.replaced_fn_tolerance = std::time::Duration::ZERO;
    let running = crate::start(cfg).await.expect("gateway starts");
    let ctx = Ctx::new(
        running.shared.clone(),
        Arc::new(Auth::from_tokens(&[("ops", ADMIN, Role::Admin), ("auditor", VIEWER, Role::Viewer)])),
    );
    Env { app: build(ctx, route_table()), running: Some(running), _dir: dir }
}

async fn call(
    app: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    let v =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, v)
}

fn inn() -> Inn {
    Inn::parse("7702203276").unwrap()
}

fn row(n: u64) -> Value {
    let serial = format!("{n:012}");
    json!({
        "rnm": Rnm::compose(n, &inn(), &serial).as_str(),
        "kkt_serial": serial,
        "owner_inn": inn().as_str(),
        "name": format!("till {n}"),
        "address": "Moscow",
        "group": "shop-1",
        "fn_number": format!("99990789{n:08}"),
        "tariff": null,
        "paid_until": null,
    })
}

fn rnm_of(n: u64) -> String {
    Rnm::compose(n, &inn(), &format!("{n:012}")).to_string()
}

fn fn_of(n: u64) -> FnNumber {
    FnNumber::parse_strict(&format!("99990789{n:08}")).unwrap()
}

fn concrete(path: &str) -> String {
    path.replace("{rnm}", &rnm_of(1))
        .replace("{name}", "plan")
        .replace("{fn_number}", "9999078900000001")
        .replace("{fd}", "1")
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[test]
fn route_table_is_consistent() {
    let routes = route_table();
    assert!(routes.len() >= 16, "{routes:?}");
    let mut seen = HashSet::new();
    let mut actions = HashSet::new();
    for r in &routes {
        assert!(r.path.starts_with("/v1/") || r.path == "/openapi.json", "versioned paths, and the document: {r:?}");
        assert!(seen.insert((r.method.clone(), r.path)), "duplicate {r:?}");
        if r.method == Method::GET {
            assert!(!r.is_write(), "GET routes are reads: {r:?}");
        }
        if r.is_write() {
            assert_eq!(r.role, Role::Admin, "writes need admin: {r:?}");
            assert!(actions.insert(r.action), "audit action reused: {r:?}");
        } else {
            assert_eq!(r.role, Role::Viewer, "reads are for viewers: {r:?}");
        }
    }
}

#[tokio::test]
async fn every_route_needs_a_token_and_viewers_cannot_write() {
    let e = env().await;
    for r in route_table() {
        let path = concrete(r.path);
        let body = (r.method != Method::GET).then(|| json!({}));
        for token in [None, Some("wrong-token"), Some("")] {
            let (s, v) = call(&e.app, r.method.clone(), &path, token, body.clone()).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{} {path} with {token:?}: {v}", r.method);
            assert_eq!(error_code(&v), "unauthenticated");
        }
        let (s, v) = call(&e.app, r.method.clone(), &path, Some(VIEWER), body.clone()).await;
        if r.role == Role::Admin {
            assert_eq!(s, StatusCode::FORBIDDEN, "viewer {} {path}: {v}", r.method);
            assert_eq!(error_code(&v), "forbidden");
        } else {
            assert!(
                !matches!(s, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
                "viewer {} {path}: {s} {v}",
                r.method
            );
        }
        let (s, v) = call(&e.app, r.method.clone(), &path, Some(ADMIN), body).await;
        assert!(!matches!(s, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), "admin {} {path}: {s} {v}", r.method);
        if !s.is_success() {
            assert!(v["error"]["code"].is_string(), "errors are JSON: {} {path}: {v}", r.method);
        }
    }
    // nothing the viewer or the unauthenticated calls did was recorded or changed
    let audit = e.shared().store.list_audit(&AuditFilter::default(), PageRequest::first(1000)).await.unwrap();
    assert!(audit.items.iter().all(|a| a.actor == "ops"), "{:?}", audit.items);
}

#[tokio::test]
async fn unknown_paths_and_methods_authenticate_first() {
    let e = env().await;
    let (s, _) = call(&e.app, Method::GET, "/v1/nothing-here", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = call(&e.app, Method::GET, "/v1/nothing-here", Some(VIEWER), None).await;
    assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, _) = call(&e.app, Method::DELETE, "/v1/registers", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = call(&e.app, Method::DELETE, "/v1/registers", Some(ADMIN), None).await;
    assert_eq!((s, error_code(&v)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
}

#[tokio::test]
async fn invalid_fields_are_named_and_nothing_is_stored() {
    let e = env().await;
    let mut bad = row(1);
    bad["owner_inn"] = json!("7702203277");
    bad["fn_number"] = json!("123");
    bad["name"] = json!("");
    bad["tariff"] = json!("no-such-plan");
    bad["paid_until"] = json!("tomorrow");
    let (s, v) = call(&e.app, Method::POST, "/v1/registers", Some(ADMIN), Some(bad)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(error_code(&v), "invalid_field");
    let fields: Vec<&str> = v["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for f in ["owner_inn", "fn_number", "name", "tariff", "paid_until"] {
        assert!(fields.contains(&f), "{f} missing in {v}");
    }
    assert!(v.to_string().contains("checksum"), "{v}");
    // a wrong RNM check code alone
    let mut bad = row(1);
    bad["kkt_serial"] = json!("000000000999");
    let (s, v) = call(&e.app, Method::POST, "/v1/registers", Some(ADMIN), Some(bad)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "rnm", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("check code"), "{v}");
    let (_, list) = call(&e.app, Method::GET, "/v1/registers", Some(ADMIN), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    let (_, audit) = call(&e.app, Method::GET, "/v1/audit", Some(ADMIN), None).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 0, "{audit}");
    // malformed JSON is a JSON error too
    let (s, v) = call(&e.app, Method::POST, "/v1/registers", Some(ADMIN), Some(json!([1]))).await;
    assert_eq!((s, error_code(&v)), (StatusCode::BAD_REQUEST, "bad_json"));
}

#[tokio::test]
async fn import_is_all_or_nothing_unless_partial_and_idempotent() {
    let e = env().await;
    let mut rows: Vec<Value> = (1..=5).map(row).collect();
    rows[3]["owner_inn"] = json!("12345");
    let body = |rows: &Vec<Value>, partial: bool, dry_run: bool| json!({"registers": rows.clone(), "partial": partial, "dry_run": dry_run});
    let (s, v) = call(&e.app, Method::POST, "/v1/registers/import", Some(ADMIN), Some(body(&rows, false, false))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errors"][0]["line"], 4, "{v}");
    assert_eq!(v["errors"][0]["field"], "owner_inn", "{v}");
    let (_, list) = call(&e.app, Method::GET, "/v1/registers", Some(ADMIN), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "nothing applied");

    let (s, v) = call(&e.app, Method::POST, "/v1/registers/import", Some(ADMIN), Some(body(&rows, true, true))).await;
    assert_eq!((s, v["created"].as_u64()), (StatusCode::OK, Some(4)), "{v}");
    let (_, list) = call(&e.app, Method::GET, "/v1/registers", Some(ADMIN), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "dry run applies nothing");

    let (s, v) = call(&e.app, Method::POST, "/v1/registers/import", Some(ADMIN), Some(body(&rows, true, false))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["created"].as_u64(), v["errors"].as_array().unwrap().len()), (Some(4), 1));
    let (_, v) = call(&e.app, Method::POST, "/v1/registers/import", Some(ADMIN), Some(body(&rows, true, false))).await;
    assert_eq!(
        (v["created"].as_u64(), v["updated"].as_u64(), v["unchanged"].as_u64()),
        (Some(0), Some(0), Some(4)),
        "idempotent: {v}"
    );
    // a changed name is an update; a new FN is a replacement
    rows[0]["name"] = json!("renamed");
    rows[1]["fn_number"] = json!("9999078999999999");
    let (_, v) = call(&e.app, Method::POST, "/v1/registers/import", Some(ADMIN), Some(body(&rows, true, false))).await;
    assert_eq!((v["updated"].as_u64(), v["unchanged"].as_u64()), (Some(2), Some(2)), "{v}");
    let (_, shown) = call(&e.app, Method::GET, &format!("/v1/registers/{}", rnm_of(2)), Some(ADMIN), None).await;
    assert_eq!(shown["register"]["fn_history"][0]["fn_number"], fn_of(2).to_string(), "{shown}");
    // an FN owned by another register is refused with its field
    let mut clash = row(9);
    clash["fn_number"] = json!(fn_of(1).to_string());
    let (s, v) = call(&e.app, Method::POST, "/v1/registers", Some(ADMIN), Some(clash)).await;
    assert_eq!((s, v["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("fn_number")), "{v}");
    // 5,001 rows are refused whole
    let many: Vec<Value> = (0..=super::registers::MAX_IMPORT_ROWS as u64).map(row).collect();
    let (s, v) =
        call(&e.app, Method::POST, "/v1/registers/import", Some(ADMIN), Some(json!({"registers": many}))).await;
    assert_eq!((s, error_code(&v)), (StatusCode::PAYLOAD_TOO_LARGE, "too_many_rows"));
}

#[tokio::test]
async fn changes_reach_the_index_at_once_and_are_audited() {
    let e = env().await;
    let now = Timestamp::now();
    let reg = e.running.as_ref().unwrap().registry();
    assert_eq!(reg.check(&fn_of(1), Some(now), now), Err(Refusal::UnknownFn));
    let (s, v) = call(&e.app, Method::POST, "/v1/registers", Some(ADMIN), Some(row(1))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(reg.check(&fn_of(1), Some(now), now).is_ok());

    let path = format!("/v1/registers/{}", rnm_of(1));
    let (s, v) = call(&e.app, Method::POST, &format!("{path}/suspend"), Some(ADMIN), None).await;
    assert_eq!((s, v["acceptance"].as_str()), (StatusCode::OK, Some("suspended")), "{v}");
    assert_eq!(reg.check(&fn_of(1), Some(now), now), Err(Refusal::Suspended));
    let (s, _) =
        call(&e.app, Method::POST, &format!("{path}/resume"), Some(ADMIN), Some(json!({"reason": "paid"}))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(reg.check(&fn_of(1), Some(now), now).is_ok());

    let new_fn = fn_of(501);
    let (s, v) = call(
        &e.app,
        Method::POST,
        &format!("{path}/replace-fn"),
        Some(ADMIN),
        Some(json!({"fn_number": new_fn.to_string()})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let later = Timestamp::now().plus(std::time::Duration::from_secs(5));
    assert!(reg.check(&new_fn, Some(later), later).is_ok());
    assert!(
        reg.check(&fn_of(1), Some(now.minus(std::time::Duration::from_secs(60))), later).is_ok(),
        "old FN, old document"
    );
    assert_eq!(reg.check(&fn_of(1), Some(later), later), Err(Refusal::FnReplaced));
    let (s, v) = call(
        &e.app,
        Method::POST,
        &format!("{path}/replace-fn"),
        Some(ADMIN),
        Some(json!({"fn_number": fn_of(1).to_string()})),
    )
    .await;
    assert_eq!((s, v["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("fn_number")), "{v}");

    // tariffs: create, assign (first period starts now), expire, renew
    let plan = json!({"name": "OFD-15", "period_days": 450, "price_kopecks": 300000});
    let (s, v) = call(&e.app, Method::POST, "/v1/tariffs", Some(ADMIN), Some(plan.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = call(&e.app, Method::POST, "/v1/tariffs", Some(ADMIN), Some(plan)).await;
    assert_eq!((s, error_code(&v)), (StatusCode::CONFLICT, "already_exists"));
    let (s, v) =
        call(&e.app, Method::POST, "/v1/tariffs", Some(ADMIN), Some(json!({"name": "bad name!", "period_days": "x"})))
            .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let fields: Vec<&str> = v["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "period_days", "price_kopecks"], "{v}");
    let (s, v) = call(
        &e.app,
        Method::POST,
        "/v1/tariffs/assign",
        Some(ADMIN),
        Some(json!({"plan": "OFD-15", "filter": {"group": "shop-1"}})),
    )
    .await;
    assert_eq!((s, v["changed"].as_u64()), (StatusCode::OK, Some(1)), "{v}");
    let (_, shown) = call(&e.app, Method::GET, &path, Some(ADMIN), None).await;
    assert_eq!(shown["register"]["tariff"], "OFD-15");
    let (s, v) =
        call(&e.app, Method::POST, "/v1/tariffs/assign", Some(ADMIN), Some(json!({"plan": "OFD-15", "filter": {}})))
            .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("filter")),
        "empty filter refused: {v}"
    );

    // an expired paid period stops acceptance; renewal restores it
    let expired = Timestamp::now().minus(std::time::Duration::from_secs(3600));
    let mut r1 = row(1);
    r1["fn_number"] = json!(new_fn.to_string());
    r1["paid_until"] = json!(expired.to_rfc3339());
    let (s, v) =
        call(&e.app, Method::POST, "/v1/registers/import", Some(ADMIN), Some(json!({"registers": [r1]}))).await;
    assert_eq!((s, v["updated"].as_u64()), (StatusCode::OK, Some(1)), "{v}");
    let t = Timestamp::now();
    assert_eq!(reg.check(&new_fn, Some(t), t), Err(Refusal::TariffExpired));
    let (s, v) = call(
        &e.app,
        Method::POST,
        "/v1/tariffs/renew",
        Some(ADMIN),
        Some(json!({"rnms": [rnm_of(1)], "dry_run": true})),
    )
    .await;
    assert_eq!((s, v["changed"].as_u64()), (StatusCode::OK, Some(1)), "{v}");
    assert_eq!(reg.check(&new_fn, Some(t), t), Err(Refusal::TariffExpired), "dry run");
    let (s, v) = call(&e.app, Method::POST, "/v1/tariffs/renew", Some(ADMIN), Some(json!({"rnms": [rnm_of(1)]}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let t = Timestamp::now();
    assert!(reg.check(&new_fn, Some(t), t).is_ok());
    let paid = Timestamp::parse_rfc3339(v["registers"][0]["paid_until"].as_str().unwrap()).unwrap();
    assert!(paid > t.plus(std::time::Duration::from_secs(449 * 86_400)), "{v}");
    let (s, v) =
        call(&e.app, Method::POST, "/v1/tariffs/renew", Some(ADMIN), Some(json!({"rnms": [rnm_of(1), rnm_of(77)]})))
            .await;
    assert_eq!((s, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_registers"), "{v}");

    // every write is in the audit log, newest first, with before/after
    let (_, audit) = call(&e.app, Method::GET, "/v1/audit?limit=1000", Some(VIEWER), None).await;
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    for a in [
        "register.create",
        "register.suspend",
        "register.resume",
        "register.replace_fn",
        "tariff.create",
        "tariff.assign",
        "register.import",
        "tariff.renew",
    ] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
    assert_eq!(actions[0], "tariff.renew", "newest first: {actions:?}");
    let suspend = audit["items"].as_array().unwrap().iter().find(|a| a["action"] == "register.suspend").unwrap();
    assert_eq!(
        (suspend["before"]["status"].as_str(), suspend["after"]["status"].as_str()),
        (Some("active"), Some("suspended"))
    );
    assert_eq!(suspend["actor"], "ops");
    let (_, filtered) = call(&e.app, Method::GET, "/v1/audit?action=tariff.", Some(VIEWER), None).await;
    assert!(filtered["items"].as_array().unwrap().iter().all(|a| a["action"].as_str().unwrap().starts_with("tariff.")));
}

#[tokio::test]
async fn lists_filter_and_paginate() {
    let e = env().await;
    let rows: Vec<Value> = (1..=25).map(row).collect();
    let (s, _) =
        call(&e.app, Method::POST, "/v1/registers/import", Some(ADMIN), Some(json!({"registers": rows}))).await;
    assert_eq!(s, StatusCode::OK);
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/registers?limit=10&cursor={c}"),
            None => "/v1/registers?limit=10".to_owned(),
        };
        let (s, v) = call(&e.app, Method::GET, &path, Some(VIEWER), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        seen += v["items"].as_array().unwrap().len();
        match v["next"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, 25);
    let (_, v) = call(&e.app, Method::GET, "/v1/registers?silent_for=1h", Some(VIEWER), None).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 0, "just created: not silent");
    let (_, v) = call(&e.app, Method::GET, "/v1/registers?silent_for=0s&limit=7", Some(VIEWER), None).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 7);
    for (q, field) in [
        ("status=frozen", "status"),
        ("owner_inn=123", "owner_inn"),
        ("silent_for=soon", "silent_for"),
        ("paid_until_before=someday", "paid_until_before"),
        ("limit=0", "limit"),
    ] {
        let (s, v) = call(&e.app, Method::GET, &format!("/v1/registers?{q}"), Some(VIEWER), None).await;
        assert_eq!((s, v["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{q}: {v}");
    }
    let (s, v) = call(&e.app, Method::GET, "/v1/registers/123", Some(VIEWER), None).await;
    assert_eq!((s, v["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("rnm")));
    let (s, v) = call(&e.app, Method::GET, &format!("/v1/registers/{}", rnm_of(999)), Some(VIEWER), None).await;
    assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, v) =
        call(&e.app, Method::GET, "/v1/documents/verify?fn=9999078900000001&fd=1&fiscal_sign=123", Some(VIEWER), None)
            .await;
    assert_eq!((s, v["result"].as_str()), (StatusCode::OK, Some("not_found")), "{v}");
    let (s, _) = call(&e.app, Method::GET, "/v1/documents", Some(VIEWER), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_unwritable_audit_log_refuses_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
    let off = Listen(None);
    cfg.listen.tcp = off;
    cfg.listen.tls = off;
    cfg.listen.quic = off;
    cfg.listen.admin = off;
    cfg.listen.metrics = off;
    let inner = crate::server::open_store(&cfg).await.unwrap();
    let store = Arc::new(storage::faulty::FaultyStore::new(inner));
    let running = crate::start_with_store(cfg, store.clone(), crate::metrics::install()).await.unwrap();
    let ctx = Ctx::new(running.shared.clone(), Arc::new(Auth::from_tokens(&[("ops", ADMIN, Role::Admin)])));
    let app = build(ctx, route_table());
    let (s, _) = call(&app, Method::POST, "/v1/registers", Some(ADMIN), Some(row(1))).await;
    assert_eq!(s, StatusCode::CREATED);

    store.set_failing_audit(true);
    let path = format!("/v1/registers/{}/suspend", rnm_of(1));
    let (s, v) = call(&app, Method::POST, &path, Some(ADMIN), None).await;
    assert_eq!((s, error_code(&v)), (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable"), "{v}");
    let (s, v) = call(&app, Method::POST, "/v1/registers", Some(ADMIN), Some(row(2))).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    let (s, _) =
        call(&app, Method::POST, "/v1/registers/import", Some(ADMIN), Some(json!({"registers": [row(3)]}))).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    // nothing changed: still active, not created, and ingestion still accepts register 1
    let (_, v) = call(&app, Method::GET, &format!("/v1/registers/{}", rnm_of(1)), Some(ADMIN), None).await;
    assert_eq!(v["register"]["status"], "active", "{v}");
    for n in [2, 3] {
        let (s, _) = call(&app, Method::GET, &format!("/v1/registers/{}", rnm_of(n)), Some(ADMIN), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    let now = Timestamp::now();
    assert!(running.registry().check(&fn_of(1), Some(now), now).is_ok());
    running.shutdown_signal().trigger();
}
