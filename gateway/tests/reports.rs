//! Reports, shifts and FD gaps over documents ingested through the real TCP path and
//! read through the real admin API (HTTP on port 0), against a **hand-computed golden
//! set**: every expected number below was worked out by hand from the documents built
//! here, not by the code under test.
//!
//! The set (owner INN 7702203276, days D = today in Vladivostok and D+1):
//! * register A (no zone: the default Europe/Moscow, FFD 1.2 so VAT codes 7–12 are
//!   stated): shift 1 opens at D 23:00 (FD 1), a sale with one item at each VAT code 1–12
//!   at D 23:30 (FD 2), after midnight a sale return (FD 3), an expense (FD 4), a sale
//!   correction (FD 5), the close at D+1 01:00 (FD 6, 1111 = 6, 1118 = 4); shift 2 on D+1:
//!   open (FD 7), sale (FD 8), sale (FD 9, **held back**), close (FD 10, 1118 = 2); shift 3
//!   on D+2: open, sale, close whose 1118 = 2 counts one receipt more than was made;
//! * register B (Asia/Vladivostok, set through the API; FFD 1.05, 1215–1217 stated as 0):
//!   a sale at D 12:00 and an encrypted document (no readable time: placed by its receive
//!   time, now, on today's local day in Vladivostok = D).
//!
//! VAT included in a price p at rate r% is round(p·r/(100+r)); 0 % and "no VAT" count the
//! turnover. Item prices: code 1 12000 (VAT 2000), 2 11000 (1000), 3 12000 (2000),
//! 4 11000 (1000), 5 5000 (turnover 5000), 6 3000 (3000), 7 10500 (500), 8 10700 (700),
//! 9 10500 (500), 10 10700 (700), 11 12200 (2200), 12 12200 (2200): total 120800.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use ffd::build::{self, Correction, DriveReport, Identity, Item, Receipt, ReceiptExtras, operation};
use ffd::tlv::{FfdVersion, Fvln};
use gateway::control::alerts::Evaluator;
use serde_json::{Value, json};
use storage::model::AlertStatus;
use storage::{AlertFilter, PageRequest, Timestamp};

const TOKEN: &str = "reports-test-admin-token";

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    async fn ok(&self, path: &str) -> Value {
        let (s, v) = self.get(path).await;
        assert_eq!(s, 200, "{path}: {v}");
        v
    }
}

fn item(price: u64, vat: u8) -> Item {
    Item { name: format!("item {vat}"), price, quantity: Fvln { scale: 0, mantissa: 1 }, vat, subject: 1, method: 4 }
}

fn receipt(op: u8, shift: u32, items: Vec<Item>, cash: u64) -> Receipt {
    Receipt { operation: op, items, cash, shift, number: 1, taxation: 1 }
}

/// Local wall-clock seconds (1012) of day `day` at `h:m`.
fn at(day: i64, h: i64, m: i64) -> u32 {
    u32::try_from(day * 86_400 + h * 3600 + m * 60).unwrap()
}

fn close(shift: u32, documents: u32, receipts: u32) -> DriveReport {
    DriveReport { shift, documents_in_shift: documents, receipts_in_shift: receipts, ..DriveReport::default() }
}

async fn send(addr: std::net::SocketAddr, id: &Identity, fd: u32, tlv: &[u8]) {
    let reply = common::tcp_exchange(addr, &build::message(id, fd, tlv)).await;
    assert!(reply.is_some(), "FD {fd} acknowledged");
}

/// Days since the epoch of `t` in a zone `offset_h` hours east of UTC (both zones here
/// have kept a fixed offset since 2014).
fn local_day(t: Timestamp, offset_h: i64) -> i64 {
    (t.unix_secs() + offset_h * 3600).div_euclid(86_400)
}

fn date(day: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(day * 86_400).unwrap();
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

fn row<'a>(report: &'a Value, group: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"] == group)
        .unwrap_or_else(|| panic!("row {group}: {report}"))
}

/// reqwest is built without a default TLS provider: install ours before the first client, whichever
/// test of this binary runs first.
fn http_client() -> reqwest::Client {
    gateway::control::fns::client::install_crypto_provider();
    reqwest::Client::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_reports_shifts_gaps_and_the_fd_gaps_alert() {
    // alerts are evaluated by the test (chosen clock), not by the gateway's own loop
    let gw = common::start_with(|c| {
        c.admin_token = Some(TOKEN.into());
        c.alerts.enabled = false;
    })
    .await;
    let api = Api { base: format!("http://{}", gw.running().admin.unwrap()), http: http_client() };
    let store = gw.store();
    let regs = common::registers(2, 71);
    let (reg_a, mut id_a) = regs[0].clone();
    let (reg_b, id_b) = regs[1].clone();
    id_a.ffd = FfdVersion::V1_2;
    gw.onboard(reg_a.clone()).await;
    gw.onboard(reg_b.clone()).await;
    let (a, b) = (reg_a.rnm.to_string(), reg_b.rnm.to_string());

    // B's zone through the API: an unknown zone is refused naming the field, nothing changes
    let tz_path = format!("/v1/registers/{b}/time-zone");
    let (s, v) = api.call(reqwest::Method::POST, &tz_path, Some(json!({"time_zone": "Mars/Olympus"}))).await;
    assert_eq!((s, v["error"]["field"].as_str()), (400, Some("time_zone")), "{v}");
    let (s, v) = api.call(reqwest::Method::POST, &tz_path, Some(json!({"time_zone": "Asia/Vladivostok"}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["register"]["time_zone"], "Asia/Vladivostok");

    let started = Timestamp::now();
    let d = local_day(started, 10); // today in Vladivostok
    let tcp = gw.tcp();
    let (fa, fb) = (id_a.clone(), id_b.clone());
    let vat_items: Vec<Item> = [12000, 11000, 12000, 11000, 5000, 3000, 10500, 10700, 10500, 10700, 12200, 12200]
        .iter()
        .zip(1u8..=12)
        .map(|(p, code)| item(*p, code))
        .collect();
    send(tcp, &fa, 1, &build::open_shift(&fa, 1, at(d, 23, 0), 1)).await;
    send(tcp, &fa, 2, &build::receipt(&fa, 2, at(d, 23, 30), &receipt(operation::INCOME, 1, vat_items, 20_800))).await;
    let r3 = receipt(operation::INCOME_RETURN, 1, vec![item(12200, 11)], 12_200);
    send(tcp, &fa, 3, &build::receipt(&fa, 3, at(d + 1, 0, 30), &r3)).await;
    let r4 = receipt(operation::EXPENSE, 1, vec![item(5000, 6)], 0);
    send(tcp, &fa, 4, &build::receipt(&fa, 4, at(d + 1, 0, 40), &r4)).await;
    let corr = ReceiptExtras {
        correction: Some(Correction { kind: 0, date: at(d, 20, 0), order: String::new() }),
        ..ReceiptExtras::default()
    };
    let r5 = receipt(operation::INCOME, 1, vec![item(11000, 2)], 11_000);
    send(tcp, &fa, 5, &build::receipt_with(&fa, 5, at(d + 1, 0, 50), &r5, &corr)).await;
    send(tcp, &fa, 6, &build::close_shift(&fa, 6, at(d + 1, 1, 0), &close(1, 6, 4))).await;
    send(tcp, &fa, 7, &build::open_shift(&fa, 7, at(d + 1, 9, 0), 2)).await;
    let r8 = receipt(operation::INCOME, 2, vec![item(10000, 1)], 10_000);
    send(tcp, &fa, 8, &build::receipt(&fa, 8, at(d + 1, 10, 0), &r8)).await;
    let r9 = receipt(operation::INCOME, 2, vec![item(5000, 1)], 0);
    let fd9 = build::receipt(&fa, 9, at(d + 1, 11, 0), &r9); // held back
    send(tcp, &fa, 10, &build::close_shift(&fa, 10, at(d + 1, 12, 0), &close(2, 4, 2))).await;
    send(tcp, &fa, 11, &build::open_shift(&fa, 11, at(d + 2, 9, 0), 3)).await;
    let r12 = receipt(operation::INCOME, 3, vec![item(1000, 6)], 1000);
    send(tcp, &fa, 12, &build::receipt(&fa, 12, at(d + 2, 10, 0), &r12)).await;
    send(tcp, &fa, 13, &build::close_shift(&fa, 13, at(d + 2, 11, 0), &close(3, 3, 2))).await;
    let rb = receipt(operation::INCOME, 1, vec![item(10000, 1)], 0);
    send(tcp, &fb, 1, &build::receipt(&fb, 1, at(d, 12, 0), &rb)).await;
    let mut cipher = vec![0x03, 0x5E];
    cipher.extend((0u8..=200).map(|x| x.wrapping_mul(151)));
    send(tcp, &fb, 2, &cipher).await;
    store.settle().await.unwrap();
    assert_eq!(local_day(Timestamp::now(), 10), d, "the test crossed midnight in Vladivostok: run it again");

    // ---- by day: shift 1 is split at local midnight
    let q = format!("/v1/reports?owner_inn=7702203276&from={}&to={}&by=day", date(d), date(d + 1));
    let rep = api.ok(&q).await;
    assert_eq!(rep["time_zones"], json!(["Asia/Vladivostok", "Europe/Moscow"]));
    assert_eq!(rep["registers"], 2);
    let day0 = row(&rep, &date(d));
    assert_eq!((day0["documents"].as_u64(), day0["unreadable"].as_u64()), (Some(4), Some(1)));
    assert_eq!((day0["receipts"].as_u64(), day0["corrections"].as_u64()), (Some(2), Some(0)));
    let sale = &day0["kinds"]["sale"];
    assert_eq!(
        (&sale["count"], &sale["total"], &sale["cash"], &sale["cashless"]),
        (&json!(2), &json!(130_800), &json!(20_800), &json!(110_000))
    );
    assert_eq!((&sale["prepayment"], &sale["credit"], &sale["counter_provision"]), (&json!(0), &json!(0), &json!(0)));
    let vat: Vec<u64> = (1..=12).map(|c| sale["vat"][c.to_string()].as_u64().unwrap()).collect();
    assert_eq!(vat, [3667, 1000, 2000, 1000, 5000, 3000, 500, 700, 500, 700, 2200, 2200]);
    assert_eq!(day0["average_sale"], 65_400);
    assert_eq!(day0["revenue"]["total"], 130_800);
    let day1 = row(&rep, &date(d + 1));
    assert_eq!((day1["documents"].as_u64(), day1["unreadable"].as_u64()), (Some(7), Some(0)));
    assert_eq!((day1["receipts"].as_u64(), day1["corrections"].as_u64()), (Some(3), Some(1)));
    assert_eq!(day1["kinds"]["sale"]["total"], 10_000);
    assert_eq!(day1["kinds"]["sale_return"]["total"], 12_200);
    assert_eq!(day1["kinds"]["sale_return"]["vat"]["11"], 2_200);
    assert_eq!(
        (&day1["kinds"]["expense"]["total"], &day1["kinds"]["expense"]["cashless"]),
        (&json!(5000), &json!(5000))
    );
    assert_eq!(day1["kinds"]["expense"]["vat"]["6"], 5_000);
    assert_eq!(day1["correction_kinds"]["sale"]["count"], 1);
    assert_eq!(day1["correction_kinds"]["sale"]["vat"]["2"], 1_000);
    // revenue: 10000 - 12200 + 11000
    assert_eq!((&day1["revenue"]["total"], &day1["revenue"]["cash"]), (&json!(8_800), &json!(8_800)));
    assert_eq!((&day1["revenue"]["vat"]["11"], &day1["revenue"]["vat"]["2"]), (&json!(-2_200), &json!(1_000)));
    assert_eq!((rep["total"]["documents"].as_u64(), rep["total"]["receipts"].as_u64()), (Some(11), Some(5)));

    // ---- by shift: shift 1 whole (its sale before midnight and its return after)
    let rep = api.ok(&q.replace("by=day", "by=shift")).await;
    let s1 = row(&rep, &format!("{}/1", reg_a.fn_number));
    assert_eq!(
        (s1["documents"].as_u64(), s1["receipts"].as_u64(), s1["corrections"].as_u64()),
        (Some(6), Some(3), Some(1))
    );
    assert_eq!(
        (&s1["kinds"]["sale"]["total"], &s1["kinds"]["sale_return"]["total"]),
        (&json!(120_800), &json!(12_200))
    );
    let s2 = row(&rep, &format!("{}/2", reg_a.fn_number));
    assert_eq!(s2["documents"], 3);
    assert_eq!(rep["rows"].as_array().unwrap().len(), 2, "shift 3 is on D+2: {rep}");
    assert_eq!(rep["undated_shifts"], 1, "B's receipt has no shift reports");

    // ---- by register, week, month; and every register counted in Moscow
    let rep = api.ok(&q.replace("by=day", "by=register")).await;
    assert_eq!((row(&rep, &a)["documents"].as_u64(), row(&rep, &b)["documents"].as_u64()), (Some(9), Some(2)));
    let rep = api.ok(&q.replace("by=day", "by=month")).await;
    let docs: u64 = rep["rows"].as_array().unwrap().iter().map(|r| r["documents"].as_u64().unwrap()).sum();
    assert_eq!(docs, 11);
    let rep = api.ok(&format!("{q}&time_zone=Europe/Moscow")).await;
    assert_eq!(rep["time_zones"], json!(["Europe/Moscow"]));
    // the encrypted document was received at `started`..now: its Moscow day is D or D-1
    let opaque_in_range = local_day(started, 3) == d;
    let expect = if opaque_in_range { (4, 1) } else { (3, 0) };
    let day0 = row(&rep, &date(d));
    assert_eq!((day0["documents"].as_u64().unwrap(), day0["unreadable"].as_u64().unwrap()), expect);

    // ---- CSV: the full matrix, the same numbers
    let resp = api.http.get(format!("{}{q}&format=csv", api.base)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = resp.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "header, two days, total: {csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = |line: &str, name: &str| -> String {
        let i = header.iter().position(|h| *h == name).unwrap();
        line.split(',').nth(i).unwrap().to_owned()
    };
    assert_eq!(col(lines[1], "sale_vat12"), "2200");
    assert_eq!(col(lines[2], "revenue_vat11"), "-2200");
    assert_eq!(col(lines[3], "group"), "total");
    assert_eq!(col(lines[3], "unreadable"), "1");

    // ---- shifts: shift 2 lacks FD 9, shift 3's 1118 counts one receipt more
    let shifts = api.ok(&format!("/v1/registers/{a}/shifts")).await;
    let items = shifts["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["check"]["mismatch"], false, "{}", items[0]);
    assert_eq!((items[0]["opened_fd"].as_u64(), items[0]["closed_fd"].as_u64()), (Some(1), Some(6)));
    assert_eq!(items[0]["reported"]["receipts"], 4);
    assert_eq!(items[1]["check"]["missing_documents"], 1);
    assert_eq!(items[1]["check"]["receipts_difference"], 1);
    assert_eq!(items[1]["check"]["mismatch"], true);
    assert_eq!(
        (&items[2]["check"]["missing_documents"], &items[2]["check"]["receipts_difference"]),
        (&json!(0), &json!(1))
    );
    assert_eq!(shifts["mismatches"], 2);

    // ---- gaps: FD 9 of A's FN
    let g = api.ok(&format!("/v1/registers/{a}/gaps")).await;
    assert_eq!(g["missing"], 1);
    let f = &g["items"][0];
    assert_eq!((f["low"].as_u64(), f["high"].as_u64(), f["received"].as_u64()), (Some(1), Some(13), Some(12)));
    assert_eq!((f["holes"][0]["from"].as_u64(), f["holes"][0]["to"].as_u64()), (Some(9), Some(9)));
    let fleet = api.ok("/v1/gaps").await;
    assert_eq!((fleet["fns"].as_u64(), fleet["missing"].as_u64()), (Some(1), Some(1)));
    assert_eq!(fleet["items"][0]["rnm"], a);

    // ---- the fd_gaps rule fires, then resolves once FD 9 arrives
    let rule = json!({"name": "gaps", "condition": {"kind": "fd_gaps", "missing_above": 0}, "scope": {"type": "all"}, "severity": "critical"});
    let (s, v) = api.call(reqwest::Method::POST, "/v1/alerts/rules", Some(rule)).await;
    assert_eq!(s, 201, "{v}");
    let mut ev = Evaluator::new(store.clone(), gateway::config::AlertsConfig::default(), "n".into());
    assert!(ev.lease().await);
    let now = Timestamp::now();
    ev.evaluate_once(now).await.unwrap();
    let states = |store: std::sync::Arc<dyn storage::Store>| async move {
        let f = AlertFilter { rule: Some("gaps".into()), ..AlertFilter::default() };
        store.list_alert_states(&f, PageRequest::first(100)).await.unwrap().items
    };
    let st = states(store.clone()).await;
    assert_eq!(st.len(), 1, "only A fires: {st:?}");
    assert_eq!((st[0].rnm.to_string(), st[0].status), (a.clone(), AlertStatus::Firing));
    assert!(st[0].detail.contains("1 FDs never received"), "{}", st[0].detail);
    send(tcp, &fa, 9, &fd9).await;
    store.settle().await.unwrap();
    for i in 1..=gateway::config::AlertsConfig::default().resolve_after {
        ev.evaluate_once(now.plus(Duration::from_secs(60 * u64::from(i)))).await.unwrap();
    }
    assert_eq!(states(store.clone()).await[0].status, AlertStatus::Resolved);
    let shifts = api.ok(&format!("/v1/registers/{a}/shifts")).await;
    assert_eq!(shifts["items"][1]["check"]["mismatch"], false);
    assert_eq!(api.ok("/v1/gaps").await["fns"], 0);
    let rep = api.ok(&q).await;
    let day1 = row(&rep, &date(d + 1));
    assert_eq!((&day1["kinds"]["sale"]["total"], &day1["kinds"]["sale"]["vat"]["1"]), (&json!(15_000), &json!(2_500)));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_names_the_field_and_changes_nothing() {
    let gw = common::start_with(|c| c.admin_token = Some(TOKEN.into())).await;
    let api = Api { base: format!("http://{}", gw.running().admin.unwrap()), http: http_client() };
    let (reg, _) = common::registers(1, 90).remove(0);
    gw.onboard(reg.clone()).await;
    let r = reg.rnm.to_string();
    let cases: Vec<(String, u16, &str)> = vec![
        (format!("/v1/reports?rnm={r}&from=2026-11-23&by=year"), 400, "by"),
        (format!("/v1/reports?rnm={r}&from=2026-11-24&to=2026-11-23"), 400, "to"),
        (format!("/v1/reports?rnm={r}&from=2025-01-01&to=2026-11-23"), 400, "to"),
        (format!("/v1/reports?rnm={r}&from=2026-11-23&time_zone=Mars/Olympus"), 400, "time_zone"),
        (format!("/v1/reports?rnm={r}&from=23.11.2026"), 400, "from"),
        (format!("/v1/reports?rnm={r}"), 400, "from"),
        ("/v1/reports?rnm=12ab&from=2026-11-23".to_owned(), 400, "rnm"),
        (format!("/v1/reports?rnm={}&from=2026-11-23", storage::Rnm::compose(5, &reg.owner_inn, "999")), 404, "rnm"),
        ("/v1/reports?owner_inn=7707083893&from=2026-11-23".to_owned(), 404, "owner_inn"),
        ("/v1/reports?tariff=gold&from=2026-11-23".to_owned(), 404, "tariff"),
        ("/v1/registers/0000000005008570/shifts".to_owned(), 404, "rnm"),
        (format!("/v1/registers/{r}/shifts?fn=9999078900000000"), 404, "fn"),
    ];
    for (path, status, field) in cases {
        let (s, v) = api.get(&path).await;
        assert_eq!((s, v["error"]["field"].as_str()), (status, Some(field)), "{path}: {v}");
    }
    // a register with an unknown zone is not created
    let body = json!({"rnm": storage::Rnm::compose(7, &reg.owner_inn, "000000000007").to_string(), "kkt_serial": "000000000007",
        "owner_inn": reg.owner_inn.to_string(), "name": "x", "fn_number": "9999000000000777", "time_zone": "Europe/Atlantis"});
    let (s, v) = api.call(reqwest::Method::POST, "/v1/registers", Some(body)).await;
    assert_eq!((s, v["error"]["field"].as_str()), (422, Some("time_zone")), "{v}");
    let (s, _) = api.get("/v1/registers?limit=10").await;
    assert_eq!(s, 200);
    assert_eq!(gw.store().list_registers(&Default::default(), PageRequest::first(10)).await.unwrap().items.len(), 1);
    // an empty range of a known register is a report of zeros, not an error
    let rep = api.ok(&format!("/v1/reports?rnm={r}&from=2026-11-23&to=2026-11-24")).await;
    assert_eq!((rep["rows"].as_array().unwrap().len(), rep["total"]["documents"].as_u64()), (2, Some(0)));
    gw.stop().await;
}
