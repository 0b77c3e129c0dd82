//! `adminctl` as scripts see it, against the real gateway: each invalid field of
//! `registers add` gives a message naming the field and the rule, a non-zero exit and no
//! change in storage; exit codes 2 (usage) and 4 (not found); `-o json` parses and is
//! stable (the same state prints the same bytes); `-o yaml` works; completions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use e2e::{GatewayOpts, GatewayProcess, TestRegister, adminctl_command, assert_exit, json_of, stderr};

#[test]
fn bad_admin_input_names_the_field_and_changes_nothing() {
    let gw = GatewayProcess::start(GatewayOpts::default());
    let good = TestRegister::new(7);
    let base = good.add_args();
    let with = |flag: &str, value: &str| -> Vec<String> {
        let mut args = base.clone();
        let i = args.iter().position(|a| a == flag).unwrap();
        args[i + 1] = value.to_owned();
        args
    };
    let inn = good.inn.to_string();
    let bad_inn = format!("{}{}", &inn[..9], (inn.as_bytes()[9] - b'0' + 1) % 10);
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (with("--owner-inn", &bad_inn), "owner_inn", "checksum"),
        (with("--owner-inn", "12345"), "owner_inn", "10 or 12"),
        (with("--fn", "123456789012345"), "fn_number", "16 digits"),
        (with("--fn", "99990000000000AB"), "fn_number", "digits only"),
        (with("--rnm", "123"), "rnm", "16"),
        (with("--kkt-serial", "000000999999"), "rnm", "check code"),
        (with("--kkt-serial", "012345678901234567890123"), "kkt_serial", "1 to 20"),
        (with("--name", " "), "name", "required"),
        (
            {
                let mut a = base.clone();
                a.extend(["--tariff".into(), "no-such-plan".into()]);
                a
            },
            "tariff",
            "unknown tariff plan",
        ),
        (
            {
                let mut a = base.clone();
                a.extend(["--paid-until".into(), "next week".into()]);
                a
            },
            "paid_until",
            "RFC 3339",
        ),
    ];
    for (args, field, rule) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = gw.adminctl(&args);
        assert_exit(&out, 1);
        let err = stderr(&out);
        assert!(err.contains(field) && err.contains(rule), "{field}/{rule}: {err}");
        let out = gw.adminctl(&[&args[..], &["-o", "json"]].concat());
        assert_exit(&out, 1);
        let v = json_of(&out);
        assert_eq!(v["error"]["field"], *field, "{v}");
        assert_eq!(v["error"]["code"], "invalid_field");
    }
    // several bad fields at once: all listed
    let mut args = with("--owner-inn", "1");
    let i = args.iter().position(|a| a == "--fn").unwrap();
    args[i + 1] = "1".into();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = gw.adminctl(&args);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("owner_inn") && stderr(&out).contains("fn_number"), "{}", stderr(&out));
    // a missing required flag is a usage error
    let out = gw.adminctl(&["registers", "add", "--rnm", good.rnm.as_str()]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--kkt-serial"), "{}", stderr(&out));

    // nothing was stored or audited
    let out = gw.adminctl(&["registers", "list", "-o", "json"]);
    assert_eq!(json_of(&out)["items"].as_array().unwrap().len(), 0);
    let out = gw.adminctl(&["audit", "list", "-o", "json"]);
    assert_eq!(json_of(&out)["items"].as_array().unwrap().len(), 0);

    // bad CSV: unknown column is a usage error naming it
    let path = gw.data_dir().join("bad.csv");
    std::fs::write(&path, "rnm,serial\n1,2\n").unwrap();
    let out = gw.adminctl(&["registers", "import", path.to_str().unwrap()]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("\"serial\""), "{}", stderr(&out));
}

#[test]
fn exit_codes_and_stable_json() {
    let gw = GatewayProcess::start(GatewayOpts::default());
    let regs: Vec<TestRegister> = (1..=3).map(TestRegister::new).collect();
    for r in &regs {
        let args = r.add_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_exit(&gw.adminctl(&args), 0);
    }
    // -o json parses and is byte-for-byte stable for the same state
    for args in [
        &["registers", "list", "-o", "json"][..],
        &["registers", "show", regs[0].rnm.as_str(), "-o", "json"][..],
        &["tariffs", "list", "-o", "json"][..],
        &["audit", "list", "-o", "json"][..],
    ] {
        let a = gw.adminctl(args);
        assert_exit(&a, 0);
        let v = json_of(&a);
        let b = gw.adminctl(args);
        if args[1] != "show" {
            assert_eq!(a.stdout, b.stdout, "{args:?} is not stable");
        } else {
            // show includes acceptance computed now: still identical for the same state
            assert_eq!(json_of(&b), v, "{args:?}");
        }
    }
    let v = json_of(&gw.adminctl(&["registers", "list", "-o", "json"]));
    let first = &v["items"][0];
    for key in ["rnm", "owner_inn", "fn_number", "status", "acceptance", "last_seen", "documents", "fn_history"] {
        assert!(first.get(key).is_some(), "{key} missing in {first}");
    }
    assert!(v.get("next").is_some());
    // paginated: --limit 2 gives a cursor, --all gives everything
    let page = json_of(&gw.adminctl(&["registers", "list", "--limit", "2", "-o", "json"]));
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next"].as_str().unwrap().to_owned();
    let rest = json_of(&gw.adminctl(&["registers", "list", "--limit", "2", "--cursor", &cursor, "-o", "json"]));
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    // yaml
    let out = gw.adminctl(&["registers", "list", "-o", "yaml"]);
    assert_exit(&out, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("items:"));
    // table
    let out = gw.adminctl(&["registers", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(regs[2].rnm.as_str()));

    // exit codes
    assert_exit(&gw.adminctl(&["registers", "show", "0000000099123456"]), 4);
    assert_exit(&gw.adminctl(&["registers", "frobnicate"]), 2);
    assert_exit(&gw.adminctl(&["registers", "list", "-o", "raw"]), 2);
    assert_exit(&gw.adminctl(&["registers", "list", "--silent-for", "soon"]), 2);
    assert_exit(&gw.adminctl(&["registers", "list", "--status", "frozen"]), 1);
    let out = adminctl_command()
        .args(["--server", "http://127.0.0.1:9", "--token", "x", "registers", "list"])
        .output()
        .unwrap();
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
    let out = adminctl_command().args(["completions", "bash"]).output().unwrap();
    assert_exit(&out, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("adminctl"));

    // silent-for: nothing was ever received
    let out = gw.adminctl(&["registers", "list", "--silent-for", "0s", "-o", "json"]);
    assert_eq!(json_of(&out)["items"].as_array().unwrap().len(), 3);
    let out = gw.adminctl(&["registers", "list", "--silent-for", "24h", "-o", "json"]);
    assert_eq!(json_of(&out)["items"].as_array().unwrap().len(), 0);
}
