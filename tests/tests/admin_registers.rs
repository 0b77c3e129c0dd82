//! Register lifecycle through the real gateway and the real `adminctl`: onboarding makes
//! documents accepted, suspension stops acceptance, replace-fn moves acceptance to the new
//! FN (old FN: only documents made before the replacement), the backlog shows unknown FNs,
//! documents can be listed, shown and verified, and every mutating command is audited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use e2e::{GatewayOpts, GatewayProcess, TestRegister, ack_code, assert_exit, fn_number, json_of, stderr, unix_now};

#[test]
fn register_lifecycle_controls_acceptance() {
    let gw = GatewayProcess::start(GatewayOpts::default().env("GATEWAY_INGEST__REPLACED_FN_TOLERANCE", "0s"));
    let tcp = gw.tcp();
    let reg = TestRegister::new(1);
    let t0 = unix_now();

    // unknown FN: refused, and it shows up in the onboarding backlog
    assert_eq!(ack_code(tcp, &reg.receipt(1, t0)), None, "unknown FN is refused");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let out = gw.adminctl(&["registers", "backlog", "-o", "json"]);
        assert_exit(&out, 0);
        let v = json_of(&out);
        let item = v["items"].as_array().unwrap().iter().find(|u| u["fn_number"] == reg.fn_number.to_string()).cloned();
        if let Some(u) = item {
            assert!(u["attempts"].as_u64().unwrap() >= 1, "{u}");
            assert!(u["first_seen"].is_string() && u["last_seen"].is_string(), "{u}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "FN never reached the backlog: {v}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // onboarding: accepted at once
    let add: Vec<String> = reg.add_args();
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    let out = gw.adminctl(&add);
    assert_exit(&out, 0);
    assert_eq!(ack_code(tcp, &reg.receipt(1, t0)), Some(0), "onboarded register is accepted");
    assert_eq!(ack_code(tcp, &reg.receipt(2, t0 + 1)), Some(0));
    let out = gw.adminctl(&["registers", "backlog", "-o", "json"]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&reg.fn_number.to_string()),
        "onboarded FN left the backlog"
    );
    // adding it again is a conflict (exit 1), not a change
    assert_exit(&gw.adminctl(&add), 1);

    // suspend (needs --yes off a terminal) stops acceptance; resume restores it
    let rnm = reg.rnm.to_string();
    let out = gw.adminctl(&["registers", "suspend", &rnm]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert_exit(&gw.adminctl(&["registers", "suspend", &rnm, "--yes", "--reason", "unpaid"]), 0);
    assert_eq!(ack_code(tcp, &reg.receipt(3, t0 + 2)), None, "suspended register is refused");
    assert_exit(&gw.adminctl(&["registers", "resume", &rnm]), 0);
    assert_eq!(ack_code(tcp, &reg.receipt(3, t0 + 2)), Some(0), "resumed register is accepted");

    // replace-fn: the new FN is accepted; the old one only for documents made before
    let new_fn = fn_number(5_000_001);
    let replaced = reg.with_fn(new_fn);
    let before_replacement = unix_now() - 5;
    assert_exit(&gw.adminctl(&["registers", "replace-fn", &rnm, "--fn", &new_fn.to_string(), "--yes"]), 0);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let after = unix_now() + 1;
    assert_eq!(ack_code(tcp, &replaced.receipt(1, after)), Some(0), "new FN accepted");
    assert_eq!(
        ack_code(tcp, &reg.receipt(4, before_replacement)),
        Some(0),
        "old FN, document made before the replacement"
    );
    assert_eq!(ack_code(tcp, &reg.receipt(5, after)), None, "old FN, document made after the replacement");

    // show: FN history, last seen, last FD, counts
    let out = gw.adminctl(&["registers", "show", &rnm, "-o", "json"]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    assert_eq!(v["register"]["fn_number"], new_fn.to_string(), "{v}");
    assert_eq!(v["register"]["fn_history"][0]["fn_number"], reg.fn_number.to_string(), "{v}");
    assert_eq!(v["activity"]["documents"], 5, "{v}");
    assert!(v["activity"]["last_seen"].is_string(), "{v}");
    assert_eq!(v["acceptance"], "accepted");
    let table = gw.adminctl(&["registers", "show", &rnm]);
    assert_exit(&table, 0);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("FN history") && text.contains(&reg.fn_number.to_string()), "{text}");

    // documents: list by register and by FN, show, verify
    let out = gw.adminctl(&["documents", "list", "--rnm", &rnm, "-o", "json"]);
    assert_exit(&out, 0);
    assert_eq!(json_of(&out)["items"].as_array().unwrap().len(), 5);
    let out = gw.adminctl(&["documents", "list", "--fn", &reg.fn_number.to_string(), "--limit", "2", "-o", "json"]);
    let v = json_of(&out);
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    assert!(v["next"].is_string(), "paginated: {v}");
    let out = gw.adminctl(&["documents", "list", "--fn", &reg.fn_number.to_string(), "--all", "-o", "json"]);
    assert_eq!(json_of(&out)["items"].as_array().unwrap().len(), 4);
    let out = gw.adminctl(&["documents", "show", &reg.fn_number.to_string(), "1", "-o", "json"]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    assert!(v["fns_json"]["receipt"].is_object(), "{v}");
    assert_eq!(v["fns_json"]["receipt"]["fiscalDocumentNumber"], 1, "{v}");
    // as forwarded to the FNS: with the message sign from the trailer
    assert!(v["fns_json"]["receipt"]["messageFiscalSign"].is_u64(), "{v}");
    // VAT per rate, named by the FFD table (one item of 2 × 55.00 at 10 %: 10/110 of 110.00)
    assert_eq!(v["vat"][0]["code"], 2, "{v}");
    assert_eq!(v["vat"][0]["name"], "НДС 10%", "{v}");
    assert_eq!(v["vat"][0]["amount_kopecks"], 1000, "{v}");
    let shown = gw.adminctl(&["documents", "show", &reg.fn_number.to_string(), "1"]);
    assert_exit(&shown, 0);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("НДС 10% (VAT, code 2)") && text.contains("10.00"), "{text}");
    let raw = gw.adminctl(&["documents", "show", &reg.fn_number.to_string(), "1", "-o", "raw"]);
    assert_exit(&raw, 0);
    let hex_text = String::from_utf8_lossy(&raw.stdout).trim().to_owned();
    assert_eq!(hex_text, v["raw_hex"].as_str().unwrap());
    let msg = reg.receipt(1, t0);
    assert_eq!(hex_text, hex::encode(&msg[30..]), "raw container bytes as received");
    let sign = reg.fiscal_sign(1, t0).to_string();
    let fnn = reg.fn_number.to_string();
    assert_exit(&gw.adminctl(&["documents", "verify", "--fn", &fnn, "--fd", "1", "--fiscal-sign", &sign]), 0);
    let wrong =
        gw.adminctl(&["documents", "verify", "--fn", &fnn, "--fd", "1", "--fiscal-sign", "12345", "-o", "json"]);
    assert_exit(&wrong, 4);
    assert_eq!(json_of(&wrong)["result"], "fiscal_sign_mismatch");
    assert_exit(&gw.adminctl(&["documents", "verify", "--fn", &fnn, "--fd", "99", "--fiscal-sign", &sign]), 4);
    assert_exit(&gw.adminctl(&["documents", "show", &fnn, "99"]), 4);

    // every mutating command is in the audit log, with who and before/after
    let out = gw.adminctl(&["audit", "list", "--all", "-o", "json"]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    let items = v["items"].as_array().unwrap();
    let actions: Vec<&str> = items.iter().map(|a| a["action"].as_str().unwrap()).collect();
    for a in ["register.create", "register.suspend", "register.resume", "register.replace_fn"] {
        assert!(actions.contains(&a), "{a} missing: {actions:?}");
    }
    assert!(items.iter().all(|a| a["actor"] == "dev"), "{v}");
    let suspend = items.iter().find(|a| a["action"] == "register.suspend").unwrap();
    assert_eq!(suspend["target"], rnm.as_str());
    assert_eq!(suspend["before"]["status"], "active");
    assert_eq!(suspend["after"]["status"], "suspended");
    assert_eq!(suspend["after"]["reason"], "unpaid");
    assert!(suspend["source"].as_str().unwrap().starts_with("127.0.0.1:"), "{suspend}");
}
