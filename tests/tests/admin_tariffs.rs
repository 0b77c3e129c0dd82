//! Tariffs through the real gateway and `adminctl`: an expired paid period stops
//! acceptance (grace 0s here), renewal restores it; plans are created, listed, shown and
//! assigned to registers by list, CSV or filter (with --dry-run and --yes).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use e2e::{CSV_HEADER, GatewayOpts, GatewayProcess, TestRegister, ack_code, assert_exit, json_of, stderr, unix_now};

#[test]
fn expired_tariff_stops_acceptance_and_renewal_restores_it() {
    let gw = GatewayProcess::start(GatewayOpts::default().env("GATEWAY_INGEST__TARIFF_GRACE", "0s"));
    let tcp = gw.tcp();

    let out = gw.adminctl(&["tariffs", "create", "OFD-15", "--period-days", "450", "--price", "3000", "-o", "json"]);
    assert_exit(&out, 0);
    assert_eq!(json_of(&out)["price_kopecks"], 300_000);
    assert_exit(&gw.adminctl(&["tariffs", "create", "OFD-15", "--period-days", "450", "--price", "3000"]), 1);
    let out = gw.adminctl(&["tariffs", "create", "bad name", "--period-days", "0", "--price", "1"]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("name") && stderr(&out).contains("letters"), "{}", stderr(&out));
    assert_exit(&gw.adminctl(&["tariffs", "create", "X", "--period-days", "30", "--price", "12.345"]), 2);
    let out = gw.adminctl(&["tariffs", "list", "-o", "json"]);
    assert_eq!(json_of(&out)["items"][0]["name"], "OFD-15");
    assert_exit(&gw.adminctl(&["tariffs", "show", "OFD-15"]), 0);
    assert_exit(&gw.adminctl(&["tariffs", "show", "nope"]), 4);

    // a register whose paid period ended a minute ago
    let reg = TestRegister::new(1);
    let expired = "2020-01-01T00:00:00Z";
    let csv = format!("{CSV_HEADER}\n{}\n", reg.csv_row(Some("OFD-15"), Some(expired)));
    let path = gw.data_dir().join("one.csv");
    std::fs::write(&path, csv).unwrap();
    assert_exit(&gw.adminctl(&["registers", "import", path.to_str().unwrap()]), 0);
    let rnm = reg.rnm.to_string();
    let t = unix_now();
    assert_eq!(ack_code(tcp, &reg.receipt(1, t)), None, "expired tariff: refused");
    let out = gw.adminctl(&["registers", "show", &rnm, "-o", "json"]);
    assert_eq!(json_of(&out)["acceptance"], "tariff_expired");

    // renew --dry-run changes nothing; renew restores acceptance
    let out = gw.adminctl(&["tariffs", "renew", "--rnm", &rnm, "--dry-run", "-o", "json"]);
    assert_exit(&out, 0);
    assert_eq!(json_of(&out)["changed"], 1);
    assert_eq!(ack_code(tcp, &reg.receipt(1, t)), None, "still refused after a dry run");
    let out = gw.adminctl(&["tariffs", "renew", "--rnm", &rnm, "-o", "json"]);
    assert_exit(&out, 0);
    let paid = json_of(&out)["registers"][0]["paid_until"].as_str().unwrap().to_owned();
    assert!(paid.as_str() > "2027-01-01", "a new period from today: {paid}");
    assert_eq!(ack_code(tcp, &reg.receipt(1, t)), Some(0), "renewed: accepted");

    // bulk assign by filter: refused off a terminal without --yes, dry run, then applied
    let others: Vec<TestRegister> = (2..=4).map(TestRegister::new).collect();
    let mut csv = format!("{CSV_HEADER}\n");
    for r in &others {
        csv.push_str(&r.csv_row(None, None));
        csv.push('\n');
    }
    std::fs::write(&path, csv).unwrap();
    assert_exit(&gw.adminctl(&["registers", "import", path.to_str().unwrap()]), 0);
    assert_exit(&gw.adminctl(&["tariffs", "create", "OFD-36", "--period-days", "1095", "--price", "7000"]), 0);
    let out = gw.adminctl(&["tariffs", "assign", "OFD-36", "--all-registers"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--yes"));
    let out = gw.adminctl(&["tariffs", "assign", "OFD-36", "--all-registers", "--dry-run", "-o", "json"]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    assert_eq!((v["matched"].as_u64(), v["changed"].as_u64()), (Some(4), Some(4)), "{v}");
    let out = gw.adminctl(&["tariffs", "assign", "OFD-36", "--csv", path.to_str().unwrap(), "--yes", "-o", "json"]);
    assert_exit(&out, 0);
    assert_eq!(json_of(&out)["changed"], 3);
    let out = gw.adminctl(&["registers", "list", "--tariff", "OFD-36", "-o", "json"]);
    assert_eq!(json_of(&out)["items"].as_array().unwrap().len(), 3);
    // at the end of the paid period: recorded as next_tariff, applied by the next renewal
    let out = gw.adminctl(&["tariffs", "assign", "OFD-36", "--rnm", &rnm, "--at-period-end", "-o", "json"]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    assert_eq!(
        (v["registers"][0]["tariff"].as_str(), v["registers"][0]["next_tariff"].as_str()),
        (Some("OFD-15"), Some("OFD-36")),
        "{v}"
    );
    let out = gw.adminctl(&["tariffs", "renew", "--rnm", &rnm, "-o", "json"]);
    let v = json_of(&out);
    assert_eq!(
        (v["registers"][0]["tariff"].as_str(), v["registers"][0]["next_tariff"].as_str()),
        (Some("OFD-36"), None),
        "{v}"
    );
    // a bulk renewal that includes a register without a plan is refused whole
    let lone = TestRegister::new(5);
    std::fs::write(&path, format!("{CSV_HEADER}\n{}\n", lone.csv_row(None, None))).unwrap();
    assert_exit(&gw.adminctl(&["registers", "import", path.to_str().unwrap()]), 0);
    let paid_of = |gw: &GatewayProcess| {
        json_of(&gw.adminctl(&["registers", "show", &rnm, "-o", "json"]))["register"]["paid_until"].clone()
    };
    let before = paid_of(&gw);
    let out = gw.adminctl(&["tariffs", "renew", "--all-registers", "--yes"]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("has no tariff plan"), "{}", stderr(&out));
    assert_eq!(paid_of(&gw), before, "nothing applied");
    assert_exit(&gw.adminctl(&["tariffs", "assign", "nope", "--rnm", &rnm]), 1);

    let out = gw.adminctl(&["audit", "list", "--action", "tariff.", "--all", "-o", "json"]);
    let v = json_of(&out);
    let actions: Vec<&str> = v["items"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    for a in ["tariff.create", "tariff.assign", "tariff.renew"] {
        assert!(actions.contains(&a), "{a}: {actions:?}");
    }
}
