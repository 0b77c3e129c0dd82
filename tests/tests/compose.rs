//! Validation of the full-stack compose file (`config/docker-compose.cluster.yml`) on a
//! machine that cannot run it (no Docker engine, no ScyllaDB, no Grafana here):
//!
//! * the YAML parses (anchors and merge keys resolved) and, when `docker-compose` or
//!   `docker compose` is usable (its `version` subcommand exits 0), `config -q` accepts it;
//! * the stack has 3 ScyllaDB nodes, 2 gateways, the FNS receiver, Prometheus and Grafana;
//! * the ScyllaDB services are exactly those of `config/docker-compose.scylla.yml`;
//! * every bind-mounted file or directory and the build context/Dockerfile exist;
//! * no two services publish the same host address, port and protocol;
//! * every `depends_on`, network and named volume is defined;
//! * the gateway configs parse and validate, use the ScyllaDB backend with the compose
//!   nodes as contact points, differ only in `node_id`, and listen where the compose file
//!   and Prometheus expect them; the FNS URL names the receiver service and its port;
//! * Prometheus' targets and Grafana's data source and dashboard path match the services
//!   and mounts.
//!
//! What it cannot show: that the images build and the stack starts (see docs/cluster.md).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_norway::Value;

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut v: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    v.apply_merge().unwrap_or_else(|e| panic!("{}: merge keys: {e}", path.display()));
    v
}

fn cluster() -> Value {
    load(&config_dir().join("docker-compose.cluster.yml"))
}

fn services(doc: &Value) -> BTreeMap<String, Value> {
    doc["services"]
        .as_mapping()
        .expect("services")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone()))
        .collect()
}

fn str_list(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(s) => s.iter().map(|x| x.as_str().expect("string item").to_owned()).collect(),
        Value::Mapping(m) => m.keys().map(|k| k.as_str().unwrap().to_owned()).collect(),
        Value::Null => Vec::new(),
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(), // `command: a b c`
        other => panic!("expected a list, got {other:?}"),
    }
}

/// Services whose image is ScyllaDB / that run a gateway.
fn scylla_services(s: &BTreeMap<String, Value>) -> Vec<String> {
    s.iter()
        .filter(|(_, v)| v["image"].as_str().is_some_and(|i| i.starts_with("scylladb/scylla:")))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Services that run a gateway node (mount a gateway config and serve; not the one-shot
/// `migrate`).
fn gateway_services(s: &BTreeMap<String, Value>) -> Vec<String> {
    s.iter()
        .filter(|(_, v)| !str_list(&v["command"]).iter().any(|c| c == "migrate"))
        .filter(|(_, v)| {
            v["volumes"]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|m| m.as_str().is_some_and(|m| m.contains("gateway.toml")))
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// `(source, target)` of each bind mount (a source starting with `.` or `/`).
fn bind_mounts(svc: &Value) -> Vec<(String, String)> {
    svc["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let m = m.as_str().expect("short volume syntax");
            let mut parts = m.split(':');
            let (src, dst) = (parts.next().unwrap(), parts.next().expect("target"));
            (src.starts_with('.') || src.starts_with('/')).then(|| (src.to_owned(), dst.to_owned()))
        })
        .collect()
}

#[test]
fn the_stack_has_every_service_the_issue_asks_for() {
    let s = services(&cluster());
    assert_eq!(scylla_services(&s).len(), 3, "3 ScyllaDB nodes: {:?}", s.keys());
    assert_eq!(gateway_services(&s).len(), 2, "2 gateways: {:?}", s.keys());
    for name in ["prometheus", "grafana", "fns-receiver"] {
        assert!(s.contains_key(name), "service {name} missing");
    }
    assert!(s["prometheus"]["image"].as_str().unwrap().starts_with("prom/prometheus:v"), "pinned Prometheus");
    assert!(s["grafana"]["image"].as_str().unwrap().starts_with("grafana/grafana:1"), "pinned Grafana");
    for (name, svc) in &s {
        if let Some(img) = svc["image"].as_str() {
            assert!(!img.ends_with(":latest") && img.contains(':'), "{name}: pin the image ({img})");
        }
    }
}

#[test]
fn scylla_nodes_are_those_of_the_scylla_compose_file() {
    let ours = services(&cluster());
    let theirs = services(&load(&config_dir().join("docker-compose.scylla.yml")));
    let names = scylla_services(&theirs);
    assert_eq!(scylla_services(&ours), names);
    for n in &names {
        assert_eq!(ours[n], theirs[n], "{n} differs from config/docker-compose.scylla.yml");
    }
    // and the same network, so the contact points of docs/scylla.md work for both
    assert_eq!(
        cluster()["networks"]["scylla"],
        load(&config_dir().join("docker-compose.scylla.yml"))["networks"]["scylla"]
    );
}

#[test]
fn every_referenced_file_exists() {
    let dir = config_dir();
    let mut checked = 0;
    for (name, svc) in services(&cluster()) {
        for (src, _) in bind_mounts(&svc) {
            let p = dir.join(&src);
            assert!(p.exists(), "{name}: mounted {src} does not exist ({})", p.display());
            checked += 1;
        }
        if let Some(b) = svc.get("build") {
            let ctx = dir.join(b["context"].as_str().expect("build.context"));
            assert!(ctx.join("Cargo.toml").is_file(), "{name}: build context {} is not the workspace", ctx.display());
            let df = ctx.join(b["dockerfile"].as_str().expect("build.dockerfile"));
            assert!(df.is_file(), "{name}: Dockerfile {} missing", df.display());
            let ignore = PathBuf::from(format!("{}.dockerignore", df.display()));
            let ignore = std::fs::read_to_string(&ignore)
                .unwrap_or_else(|_| panic!("{name}: {} missing (target/ would be sent)", ignore.display()));
            assert!(ignore.lines().any(|l| l.trim().trim_end_matches('/') == "target"), "{name}: ignore target/");
            let text = std::fs::read_to_string(&df).unwrap();
            assert!(text.contains("--features scylla"), "{name}: the image needs the ScyllaDB backend");
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} references checked");
}

#[test]
fn no_two_services_publish_the_same_host_port() {
    let mut seen: BTreeMap<(String, u16, String), String> = BTreeMap::new();
    for (name, svc) in services(&cluster()) {
        for p in str_list(&svc["ports"]) {
            let (spec, proto) = p.split_once('/').map_or((p.as_str(), "tcp"), |(a, b)| (a, b));
            let parts: Vec<&str> = spec.split(':').collect();
            let (ip, host) = match parts.as_slice() {
                [ip, host, _container] => (ip.to_string(), host.parse::<u16>().expect("host port")),
                [host, _container] => ("0.0.0.0".to_owned(), host.parse::<u16>().expect("host port")),
                _ => panic!("{name}: publish a fixed host port: {p}"),
            };
            assert_eq!(
                ip, "127.0.0.1",
                "{name}: publish on 127.0.0.1 only ({p}): the admin API and metrics have no auth"
            );
            if let Some(other) = seen.insert((ip.clone(), host, proto.to_owned()), name.clone()) {
                panic!("host port {ip}:{host}/{proto} published by both {other} and {name}");
            }
        }
    }
    assert!(seen.len() >= 15, "{seen:?}");
}

#[test]
fn dependencies_networks_and_volumes_are_defined() {
    let doc = cluster();
    let s = services(&doc);
    let networks: BTreeSet<String> = str_list(&doc["networks"]).into_iter().collect();
    let volumes: BTreeSet<String> = str_list(&doc["volumes"]).into_iter().collect();
    for (name, svc) in &s {
        for d in str_list(&svc["depends_on"]) {
            assert!(s.contains_key(&d), "{name} depends on undefined service {d}");
        }
        for n in str_list(&svc["networks"]) {
            assert!(networks.contains(&n), "{name}: network {n} undefined");
        }
        for m in svc["volumes"].as_sequence().into_iter().flatten() {
            let src = m.as_str().unwrap().split(':').next().unwrap();
            if !(src.starts_with('.') || src.starts_with('/')) {
                assert!(volumes.contains(src), "{name}: volume {src} undefined");
            }
        }
    }
    for g in gateway_services(&s) {
        let deps = str_list(&s[&g]["depends_on"]);
        for n in scylla_services(&s) {
            assert!(deps.contains(&n), "{g} must wait for {n}");
        }
        assert!(s[&g]["healthcheck"]["test"].as_sequence().is_some(), "{g}: healthcheck on /readyz");
    }
}

#[test]
fn the_schema_is_applied_before_the_gateways_start() {
    let s = services(&cluster());
    let (name, svc) = s
        .iter()
        .find(|(_, v)| str_list(&v["command"]).iter().any(|c| c == "migrate"))
        .expect("a one-shot service running `gateway migrate`");
    assert_eq!(svc["restart"].as_str(), Some("no"), "{name} runs once");
    let cfg = gateway_config(svc);
    assert_eq!(cfg.storage.backend, "scylla");
    for n in scylla_services(&s) {
        assert_eq!(
            svc["depends_on"][n.as_str()]["condition"].as_str(),
            Some("service_healthy"),
            "{name} waits for {n}"
        );
    }
    for g in gateway_services(&s) {
        assert_eq!(
            s[&g]["depends_on"][name.as_str()]["condition"].as_str(),
            Some("service_completed_successfully"),
            "{g} starts after the schema is applied"
        );
        let gc = gateway_config(&s[&g]);
        assert_eq!((&gc.storage.nodes, &gc.storage.keyspace), (&cfg.storage.nodes, &cfg.storage.keyspace), "{g}");
    }
}

fn gateway_config(svc: &Value) -> gateway::Config {
    let (src, _) = bind_mounts(svc).into_iter().find(|(_, dst)| dst.ends_with("gateway.toml")).expect("config mount");
    let path = config_dir().join(src);
    let cfg = gateway::Config::load(Some(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    cfg.validate().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    cfg
}

/// The container port a service publishes for `host:port` given its published list.
fn container_ports(svc: &Value) -> BTreeSet<u16> {
    str_list(&svc["ports"])
        .iter()
        .map(|p| p.split('/').next().unwrap().rsplit(':').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn gateway_configs_match_the_stack() {
    let s = services(&cluster());
    let scylla: BTreeSet<String> = scylla_services(&s).into_iter().collect();
    let gateways = gateway_services(&s);
    let mut normalised = Vec::new();
    for g in &gateways {
        let svc = &s[g];
        let cfg = gateway_config(svc);
        assert_eq!(cfg.storage.backend, "scylla", "{g}: ScyllaDB backend");
        assert_eq!(cfg.storage.consistency, "local_quorum", "{g}");
        assert_eq!(cfg.storage.local_dc, "dc1", "{g}: the compose datacenter");
        let hosts: BTreeSet<String> =
            cfg.storage.nodes.iter().map(|n| n.split(':').next().unwrap().to_owned()).collect();
        assert_eq!(hosts, scylla, "{g}: contact points are the ScyllaDB services");
        assert_eq!(cfg.node_id, *g, "{g}: node_id names the node (leases)");
        assert!(cfg.signer.key_hex.is_some(), "{g}: the nodes share one signer key");
        assert!(!cfg.admin.tokens.is_empty(), "{g}: a configured admin token (valid on every node)");
        // every listener on the container's interfaces, on the ports the compose file publishes
        let published = container_ports(svc);
        for (what, l) in [
            ("tcp", &cfg.listen.tcp),
            ("tls", &cfg.listen.tls),
            ("quic", &cfg.listen.quic),
            ("admin", &cfg.listen.admin),
            ("metrics", &cfg.listen.metrics),
        ] {
            let a = l.0.unwrap_or_else(|| panic!("{g}: {what} listener off"));
            assert!(a.ip().is_unspecified(), "{g}: {what} must listen on 0.0.0.0 in a container ({a})");
            assert!(published.contains(&a.port()), "{g}: {what} port {} not published", a.port());
        }
        let metrics = cfg.listen.metrics.0.unwrap().port();
        let hc = s[g]["healthcheck"]["test"].as_sequence().unwrap();
        assert!(
            hc.iter().any(|t| t.as_str().is_some_and(|t| t.contains(&format!(":{metrics}/readyz")))),
            "{g}: healthcheck asks /readyz on the metrics port"
        );
        // FNS: the receiver service, on the port it listens on
        let url = cfg.fns.url.clone().expect("fns.url");
        let rest = url.strip_prefix("http://").expect("http URL");
        let hostport = rest.split('/').next().unwrap();
        let (host, port) = hostport.split_once(':').unwrap();
        assert!(s.contains_key(host), "{g}: FNS host {host} is not a service");
        let cmd = str_list(&s[host]["command"]).join(" ");
        assert!(cmd.contains(&format!(":{port}")), "{g}: {host} does not listen on {port} ({cmd})");
        let mut c = cfg.clone();
        c.node_id = String::new();
        normalised.push(c);
    }
    assert_eq!(normalised[0], normalised[1], "the gateway configs differ in more than node_id");
}

#[test]
fn prometheus_and_grafana_point_at_the_stack() {
    let s = services(&cluster());
    let root = config_dir().join("..");
    // Prometheus mounts grafana/prometheus and scrapes every gateway's metrics port
    let prom = &s["prometheus"];
    let mounts = bind_mounts(prom);
    let (src, dst) = mounts.iter().find(|(_, d)| d == "/etc/prometheus").expect("prometheus config mount");
    assert_eq!(config_dir().join(src).canonicalize().unwrap(), root.join("grafana/prometheus").canonicalize().unwrap());
    let cmd = str_list(&prom["command"]).join(" ");
    assert!(cmd.contains(&format!("--config.file={dst}/prometheus.yml")), "{cmd}");
    let cfg = load(&root.join("grafana/prometheus/prometheus.yml"));
    let targets = |job: &str| -> BTreeSet<String> {
        let j = cfg["scrape_configs"].as_sequence().unwrap().iter().find(|j| j["job_name"].as_str() == Some(job));
        let j = j.unwrap_or_else(|| panic!("scrape job {job} missing"));
        j["static_configs"].as_sequence().unwrap().iter().flat_map(|sc| str_list(&sc["targets"])).collect()
    };
    let expected: BTreeSet<String> = gateway_services(&s)
        .iter()
        .map(|g| format!("{g}:{}", gateway_config(&s[g]).listen.metrics.0.unwrap().port()))
        .collect();
    assert_eq!(targets("ofd-gateway"), expected, "Prometheus scrapes every gateway on its metrics port");
    let scylla: BTreeSet<String> = scylla_services(&s).iter().map(|n| format!("{n}:9180")).collect();
    assert_eq!(targets("scylla"), scylla);
    // Grafana: provisioning directories, the data source URL, the dashboards path
    let graf = &s["grafana"];
    let mounts = bind_mounts(graf);
    let mount_of = |rel: &str| -> String {
        let want = root.join(rel).canonicalize().unwrap();
        mounts
            .iter()
            .find(|(src, _)| config_dir().join(src).canonicalize().ok() == Some(want.clone()))
            .unwrap_or_else(|| panic!("grafana does not mount {rel}"))
            .1
            .clone()
    };
    assert_eq!(mount_of("grafana/provisioning/datasources"), "/etc/grafana/provisioning/datasources");
    assert_eq!(mount_of("grafana/provisioning/dashboards"), "/etc/grafana/provisioning/dashboards");
    let dashboards = mount_of("grafana/dashboards");
    let provider = load(&root.join("grafana/provisioning/dashboards/ofd.yml"));
    assert_eq!(provider["providers"][0]["options"]["path"].as_str(), Some(dashboards.as_str()));
    let home = graf["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].as_str().unwrap();
    let home_file = home.strip_prefix(&format!("{dashboards}/")).expect("home dashboard is provisioned");
    assert!(root.join("grafana/dashboards").join(home_file).is_file(), "{home}");
    let ds = load(&root.join("grafana/provisioning/datasources/prometheus.yml"));
    let url = ds["datasources"][0]["url"].as_str().unwrap();
    let hostport = url.strip_prefix("http://").unwrap().trim_end_matches('/');
    let (host, port) = hostport.split_once(':').unwrap();
    assert!(s.contains_key(host), "data source host {host} is not a service");
    assert!(container_ports(&s[host]).contains(&port.parse().unwrap()), "{host} does not serve {port}");
}

/// The first compose implementation that is usable here: one whose `version` subcommand
/// exits 0. Asking for the capability, not guessing from error wording: a `docker` client
/// without the compose plugin answers differently from one version to the next.
fn usable_compose() -> Result<(&'static str, &'static [&'static str]), String> {
    let candidates: [(&'static str, &'static [&'static str]); 2] = [("docker", &["compose"]), ("docker-compose", &[])];
    let mut tried = Vec::new();
    for (exe, pre) in candidates {
        match Command::new(exe).args(pre).arg("version").output() {
            Ok(out) if out.status.success() => return Ok((exe, pre)),
            Ok(out) => tried.push(format!(
                "`{exe} {}version` exits {:?}",
                pre.iter().map(|p| format!("{p} ")).collect::<String>(),
                out.status.code()
            )),
            Err(e) => tried.push(format!("`{exe}`: {e}")),
        }
    }
    Err(tried.join("; "))
}

#[test]
fn docker_compose_accepts_the_file_when_installed() {
    let file = config_dir().join("docker-compose.cluster.yml");
    let (exe, pre) = match usable_compose() {
        Ok(found) => found,
        Err(why) => {
            eprintln!("skipped: no usable docker compose ({why}); only the static checks above ran");
            return;
        }
    };
    let out = Command::new(exe).args(pre).arg("-f").arg(&file).args(["config", "-q"]).output().expect("run compose");
    assert!(
        out.status.success(),
        "{exe} {pre:?} config -q rejects the file:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{exe} {} config: ok", pre.join(" "));
}
