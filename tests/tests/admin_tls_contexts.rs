//! The admin API over TLS (the registers' certificate machinery, optional and required
//! client certificates), the limit on failed authentications per source address (429,
//! counted in a metric), and adminctl contexts (`$XDG_CONFIG_HOME/adminctl/config.toml`,
//! `--context`, `config use-context`) — through the real `gateway` and `adminctl`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use e2e::{GatewayOpts, GatewayProcess, adminctl_command, assert_exit, http_request, json_of, stderr};

/// adminctl with `$XDG_CONFIG_HOME` = `xdg` (and no ADMINCTL_CONFIG), no server/token flags.
fn adminctl_in(xdg: &Path, args: &[&str]) -> Output {
    let mut cmd = adminctl_command();
    cmd.env_remove("ADMINCTL_CONFIG").env("XDG_CONFIG_HOME", xdg).env("ADMINCTL_DATA_DIR", xdg.join("none"));
    cmd.args(args);
    cmd.output().unwrap()
}

fn write_config(xdg: &Path, text: &str) -> PathBuf {
    let dir = xdg.join("adminctl");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("config.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn metric(gw: &GatewayProcess, series: &str) -> f64 {
    let (_, body) = http_request(gw.addrs().metrics.unwrap(), "GET", "/metrics", None, None);
    let text = body.as_str().unwrap().to_owned();
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}

#[test]
fn admin_api_over_tls_with_contexts_and_a_failure_limit() {
    let gw = GatewayProcess::start(
        GatewayOpts::default()
            .env("GATEWAY_ADMIN__TLS", "true")
            .env("GATEWAY_ADMIN__MAX_AUTH_FAILURES", "3")
            .env("GATEWAY_ADMIN__AUTH_FAILURE_WINDOW", "1h"),
    );
    let data = gw.data_dir().to_path_buf();
    let https = format!("https://{}", gw.addrs().admin.unwrap());
    let ca = data.join("tls").join("dev-cert.pem");
    let xdg = tempfile::tempdir().unwrap();
    let xdg = xdg.path();
    let cfg = write_config(
        xdg,
        &format!(
            "# gateways\n[contexts.tls]\nserver = \"{https}\"\ntoken_file = \"{}\"\nca = \"{}\"\n\n\
             [contexts.no-ca]\nserver = \"{https}\"\ntoken_file = \"{}\"\n\n\
             [contexts.lost-token]\nserver = \"{https}\"\ntoken_file = \"/nonexistent/token\"\nca = \"{}\"\n",
            data.join("admin-token").display(),
            ca.display(),
            data.join("admin-token").display(),
            ca.display(),
        ),
    );

    // plain HTTP on a TLS port gets nowhere; https with the context's CA and token works
    let out = adminctl_in(xdg, &["--context", "tls", "registers", "list", "-o", "json"]);
    assert_exit(&out, 0);
    assert_eq!(json_of(&out)["items"].as_array().unwrap().len(), 0);
    // no context chosen and no current_context: today's default (127.0.0.1:8080, ./data)
    let out = adminctl_in(xdg, &["config", "current-context"]);
    assert_exit(&out, 4);
    // use-context writes current_context, keeps the rest of the file
    let out = adminctl_in(xdg, &["config", "use-context", "tls"]);
    assert_exit(&out, 0);
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.starts_with("current_context = \"tls\"\n# gateways\n"), "{text}");
    let out = adminctl_in(xdg, &["config", "current-context"]);
    assert_exit(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "tls");
    let out = adminctl_in(xdg, &["registers", "list"]);
    assert_exit(&out, 0);
    let out = adminctl_in(xdg, &["config", "contexts", "-o", "json"]);
    assert_exit(&out, 0);
    let v = json_of(&out);
    let names: Vec<&str> = v["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lost-token", "no-ca", "tls"]);
    assert_eq!(v["items"][2]["current"], true);
    // --server (flag or env) wins over the context
    let out = adminctl_in(xdg, &["--server", "http://127.0.0.1:1", "registers", "list"]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("127.0.0.1:1"), "{}", stderr(&out));

    // bad input: named, usage exit code, nothing changed
    let out = adminctl_in(xdg, &["--context", "nope", "registers", "list"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("\"nope\"") && stderr(&out).contains("lost-token, no-ca, tls"), "{}", stderr(&out));
    let out = adminctl_in(xdg, &["config", "use-context", "nope"]);
    assert_exit(&out, 2);
    assert!(std::fs::read_to_string(&cfg).unwrap().starts_with("current_context = \"tls\""));
    let out = adminctl_in(xdg, &["--context", "lost-token", "registers", "list"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("token_file /nonexistent/token"), "{}", stderr(&out));
    // without the CA the server's certificate is not trusted
    let out = adminctl_in(xdg, &["--context", "no-ca", "registers", "list"]);
    assert_exit(&out, 1);
    let bad = xdg.join("bad");
    std::fs::create_dir_all(bad.join("adminctl")).unwrap();
    std::fs::write(bad.join("adminctl/config.toml"), "[contexts.x]\nserver = 5\n").unwrap();
    let out = adminctl_in(&bad, &["registers", "list"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("config.toml") && stderr(&out).contains("server"), "{}", stderr(&out));

    // with no context, a local gateway's development certificate is trusted like its token
    let mut cmd = adminctl_command();
    cmd.args(["--server", &https, "--data-dir", data.to_str().unwrap(), "registers", "list"]);
    assert_exit(&cmd.output().unwrap(), 0);
    // and without it the message says what to check
    let mut cmd = adminctl_command();
    cmd.args(["--server", &https, "--token", "x", "registers", "list"]);
    let out = cmd.output().unwrap();
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("certificate"), "{}", stderr(&out));

    // the limit on failed authentications per source address
    let token_file = xdg.join("wrong-token");
    std::fs::write(&token_file, "not-the-token").unwrap();
    write_config(
        &xdg.join("wrong"),
        &format!(
            "[contexts.w]\nserver = \"{https}\"\ntoken_file = \"{}\"\nca = \"{}\"\n",
            token_file.display(),
            ca.display()
        ),
    );
    for _ in 0..3 {
        let out = adminctl_in(&xdg.join("wrong"), &["--context", "w", "registers", "list"]);
        assert_exit(&out, 3);
        assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    }
    let out = adminctl_in(&xdg.join("wrong"), &["--context", "w", "registers", "list"]);
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("too many failed authentications"), "{}", stderr(&out));
    // ... and then even the right token from that address waits for the window
    let out = adminctl_in(xdg, &["registers", "list"]);
    assert_exit(&out, 3);
    assert!(metric(&gw, "ofd_gateway_admin_auth_failures_total{result=\"unauthenticated\"}") >= 3.0);
    assert!(metric(&gw, "ofd_gateway_admin_auth_failures_total{result=\"limited\"}") >= 2.0);
    assert!(gw.stderr_log().contains("too many failed authentications"));
}

#[test]
fn admin_client_certificates_optional_and_required() {
    // a CA, a client certificate it signed, and one it did not
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client_params = rcgen::CertificateParams::new(vec!["operator".to_owned()]).unwrap();
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &ca).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(d.join("client.pem"), client.pem()).unwrap();
    std::fs::write(d.join("client.key"), client_key.serialize_pem()).unwrap();

    for policy in ["required", "optional"] {
        let gw = GatewayProcess::start(
            GatewayOpts::default()
                .env("GATEWAY_ADMIN__TLS", "true")
                .env("GATEWAY_ADMIN__CLIENT_AUTH", policy)
                .env("GATEWAY_ADMIN__CLIENT_CA", d.join("ca.pem").to_str().unwrap()),
        );
        let https = format!("https://{}", gw.addrs().admin.unwrap());
        let server_ca = gw.data_dir().join("tls").join("dev-cert.pem");
        let token = gw.data_dir().join("admin-token");
        let xdg = d.join(policy);
        write_config(
            &xdg,
            &format!(
                "[contexts.with-cert]\nserver = \"{https}\"\ntoken_file = \"{t}\"\nca = \"{c}\"\nclient_cert = \"{cc}\"\nclient_key = \"{ck}\"\n\n\
                 [contexts.without]\nserver = \"{https}\"\ntoken_file = \"{t}\"\nca = \"{c}\"\n",
                t = token.display(),
                c = server_ca.display(),
                cc = d.join("client.pem").display(),
                ck = d.join("client.key").display(),
            ),
        );
        let out = adminctl_in(&xdg, &["--context", "with-cert", "registers", "list"]);
        assert_exit(&out, 0);
        let out = adminctl_in(&xdg, &["--context", "without", "registers", "list"]);
        assert_exit(&out, if policy == "required" { 1 } else { 0 });
        // a client_cert without its key is a usage error naming both
        std::fs::write(
            xdg.join("adminctl/config.toml"),
            format!("[contexts.half]\nserver = \"{https}\"\nclient_cert = \"x\"\n"),
        )
        .unwrap();
        let out = adminctl_in(&xdg, &["--context", "half", "registers", "list"]);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains("client_cert and client_key"), "{}", stderr(&out));
    }

    // bad configuration: client certificates without TLS, a policy without a CA
    let out = std::process::Command::new(e2e::bin("gateway"))
        .args(["--check-config"])
        .env("GATEWAY_ADMIN__CLIENT_AUTH", "required")
        .env("GATEWAY_ADMIN__CLIENT_CA", d.join("ca.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("admin.client_auth"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
