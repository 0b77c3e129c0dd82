//! # e2e — the harness of the end-to-end tests
//!
//! Drives the **real binaries** (`gateway`, `adminctl`, `loadgen`) as child processes:
//!
//! * [`bin`] finds a binary next to the test executable (`target/<profile>/`), building it
//!   once with `cargo build -p <pkg> --bin <name>` if it is missing;
//! * [`GatewayProcess`] starts a gateway on a temporary data directory with every listener
//!   on `127.0.0.1:0`, waits (bounded) for its `gateway.addrs.json`, exposes the bound
//!   addresses and the development admin token, and can `kill_9`, `terminate` (SIGTERM)
//!   and `restart` on the same data directory; the child is killed on drop;
//! * [`GatewayProcess::adminctl`] runs `adminctl` against it with `--server` and the token;
//! * [`TestRegister`] is a register with a valid RNM (check code over INN and serial),
//!   a valid INN and an FN, that builds its documents with `ffd::build`; [`exchange`] sends
//!   one message over TCP and reads the reply under a timeout.
//!
//! Everything is bounded in time and talks to 127.0.0.1 only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ffd::FnNumber;
use ffd::build::{Identity, Item, Receipt};
use ffd::tlv::{FfdVersion, Fvln};
use serde_json::Value;
use storage::{Inn, Rnm};

/// How long a gateway may take to start.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one register exchange may take.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- binaries

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Path of a workspace binary (`gateway`, `adminctl`, `loadgen`).
///
/// `cargo test --workspace` builds every binary first, because each of those packages has
/// integration tests (Cargo builds a package's binaries for its integration tests). When
/// only this package's tests are built (`cargo test -p e2e`) a binary may be missing or
/// stale-free-but-absent: then it is built once here with `cargo build -p <pkg> --bin
/// <name>` into the same target directory and profile.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/
    let dir = exe.parent().and_then(Path::parent).expect("test executable in target/<profile>/deps").to_path_buf();
    let path = dir.join(name);
    if path.exists() {
        return path;
    }
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let pkg = name; // each binary lives in the package of the same name
        let release = dir.file_name().is_some_and(|p| p == "release");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "-p", pkg, "--bin", name]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build");
        assert!(status.success(), "cargo build -p {pkg} --bin {name} failed");
    }
    assert!(path.exists(), "{} not found after building it", path.display());
    path
}

// ---------------------------------------------------------------- gateway

/// How to start a gateway.
#[derive(Debug, Clone, Default)]
pub struct GatewayOpts {
    /// Extra environment variables (e.g. `GATEWAY_INGEST__TARIFF_GRACE=0s`).
    pub env: Vec<(String, String)>,
    /// Extra command-line flags.
    pub args: Vec<String>,
    /// A TOML configuration written to `<data_dir>/gateway.toml` and passed with `--config`.
    pub config: Option<String>,
}

impl GatewayOpts {
    /// Adds an environment variable.
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    /// Sets the TOML configuration.
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_owned());
        self
    }
}

/// Addresses a gateway bound (from `gateway.addrs.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addrs {
    /// Plain TCP.
    pub tcp: Option<SocketAddr>,
    /// TLS.
    pub tls: Option<SocketAddr>,
    /// QUIC.
    pub quic: Option<SocketAddr>,
    /// Admin API.
    pub admin: Option<SocketAddr>,
    /// Metrics.
    pub metrics: Option<SocketAddr>,
    /// Process id.
    pub pid: u32,
}

fn addr(v: &Value, k: &str) -> Option<SocketAddr> {
    v.get(k).and_then(Value::as_str).and_then(|s| s.parse().ok())
}

/// A gateway child process on its own data directory.
pub struct GatewayProcess {
    child: Option<Child>,
    dir: PathBuf,
    /// The temporary data directory when the gateway owns it (removed on drop).
    _owned: Option<tempfile::TempDir>,
    opts: GatewayOpts,
    addrs: Addrs,
}

impl std::fmt::Debug for GatewayProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayProcess").field("dir", &self.dir).field("addrs", &self.addrs).finish()
    }
}

impl GatewayProcess {
    /// Starts a gateway with every listener on 127.0.0.1:0 and waits until it is up.
    pub fn start(opts: GatewayOpts) -> Self {
        let dir = tempfile::Builder::new().prefix("e2e-gateway-").tempdir().expect("temp dir");
        Self::spawned(dir.path().to_path_buf(), Some(dir), opts)
    }

    /// Like [`GatewayProcess::start`], on a data directory the test prepared and removes
    /// itself (e.g. with a small file system mounted at `<dir>/store`, where the store is).
    pub fn start_in(dir: &Path, opts: GatewayOpts) -> Self {
        Self::spawned(dir.to_path_buf(), None, opts)
    }

    fn spawned(dir: PathBuf, owned: Option<tempfile::TempDir>, opts: GatewayOpts) -> Self {
        let addrs = Addrs { tcp: None, tls: None, quic: None, admin: None, metrics: None, pid: 0 };
        let mut g = Self { child: None, dir, _owned: owned, opts, addrs };
        g.spawn();
        g
    }

    fn spawn(&mut self) {
        let data = self.dir.clone();
        let addrs_file = data.join("gateway.addrs.json");
        let _ = std::fs::remove_file(&addrs_file);
        let log =
            |name: &str| std::fs::OpenOptions::new().create(true).append(true).open(data.join(name)).expect("log file");
        let mut cmd = Command::new(bin("gateway"));
        for (k, _) in std::env::vars() {
            if k.starts_with("GATEWAY_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.env("RUST_LOG", "info").env("GATEWAY_SHUTDOWN__DRAIN_PERIOD", "200ms").arg("--data-dir").arg(&data);
        for flag in ["--tcp-listen", "--tls-listen", "--quic-listen", "--admin-listen", "--metrics-listen"] {
            cmd.args([flag, "127.0.0.1:0"]);
        }
        if let Some(toml) = &self.opts.config {
            let path = data.join("gateway.toml");
            std::fs::write(&path, toml).expect("write config");
            cmd.arg("--config").arg(path);
        }
        cmd.args(&self.opts.args);
        for (k, v) in &self.opts.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(log("gateway.stdout.log")).stderr(log("gateway.stderr.log"));
        let mut child = cmd.spawn().expect("spawn gateway");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(text) = std::fs::read_to_string(&addrs_file)
                && let Ok(v) = serde_json::from_str::<Value>(&text)
                && v.get("pid").and_then(Value::as_u64) == Some(u64::from(child.id()))
            {
                self.addrs = Addrs {
                    tcp: addr(&v, "tcp"),
                    tls: addr(&v, "tls"),
                    quic: addr(&v, "quic"),
                    admin: addr(&v, "admin"),
                    metrics: addr(&v, "metrics"),
                    pid: child.id(),
                };
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("gateway exited during start-up ({status}); stderr:\n{}", self.stderr_log());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "gateway did not write {} within {START_TIMEOUT:?}; stderr:\n{}",
                    addrs_file.display(),
                    self.stderr_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Bound addresses.
    pub fn addrs(&self) -> Addrs {
        self.addrs
    }

    /// The plain-TCP register address.
    pub fn tcp(&self) -> SocketAddr {
        self.addrs.tcp.expect("tcp listener")
    }

    /// The admin API base URL.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.addrs.admin.expect("admin listener"))
    }

    /// The development admin token (`<data_dir>/admin-token`), if the gateway created one.
    pub fn dev_token(&self) -> Option<String> {
        std::fs::read_to_string(self.data_dir().join("admin-token"))
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
    }

    /// Everything the gateway wrote to stderr so far (all runs).
    pub fn stderr_log(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("gateway.stderr.log")).unwrap_or_default()
    }

    /// Whether the process still runs (it has not exited by itself).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits (bounded) for a graceful exit; returns whether it exited 0.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        // no libc (unsafe) here: the kill(1) utility sends the signal
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the gateway (gracefully) if it runs, and starts it again on the same data
    /// directory (new ports).
    pub fn restart(&mut self) {
        self.terminate();
        self.spawn();
    }

    /// Runs `adminctl` with `--server` set to this gateway and the development token.
    pub fn adminctl(&self, args: &[&str]) -> Output {
        let token = self.dev_token().expect("the gateway created a development token");
        self.adminctl_as(Some(&token), args)
    }

    /// Runs `adminctl` against this gateway with a given token (or none: then adminctl
    /// looks for a development token in its `--data-dir`, which is not set here).
    pub fn adminctl_as(&self, token: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = adminctl_command();
        cmd.env("ADMINCTL_SERVER", self.admin_url());
        cmd.env("ADMINCTL_DATA_DIR", self.data_dir().join("no-such-dir"));
        if let Some(t) = token {
            cmd.env("ADMINCTL_TOKEN", t);
        }
        cmd.args(args);
        cmd.output().expect("run adminctl")
    }

    /// One HTTP request to the admin API (`Connection: close`); returns the status and the
    /// body (JSON, or a JSON string when not JSON).
    pub fn http(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        http_request(self.addrs.admin.expect("admin"), method, path, token, body)
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// An `adminctl` command with a clean environment (no ADMINCTL_*/GATEWAY_* from outside,
/// and no contexts file of the user's: `ADMINCTL_CONFIG` names a file that does not exist).
pub fn adminctl_command() -> Command {
    let mut cmd = Command::new(bin("adminctl"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ADMINCTL_") || k.starts_with("GATEWAY_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("ADMINCTL_CONFIG", "/nonexistent/e2e-adminctl/config.toml");
    cmd.stdin(Stdio::null());
    cmd
}

/// A minimal HTTP/1.1 client for the admin API (status and body; bounded in time).
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut s = TcpStream::connect_timeout(&addr, EXCHANGE_TIMEOUT).expect("connect admin");
    s.set_read_timeout(Some(EXCHANGE_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(EXCHANGE_TIMEOUT)).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).expect("send request");
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let payload = if chunked { dechunk(rest) } else { rest.to_owned() };
    let v = serde_json::from_str(&payload).unwrap_or(Value::String(payload));
    (status, v)
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

// ---------------------------------------------------------------- adminctl output

/// stdout of a command as JSON; panics with both streams when it is not.
pub fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}); exit {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Asserts an exit code, showing both streams on failure.
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// ---------------------------------------------------------------- registers

/// A valid 10-digit organisation INN derived from `n` (control digit computed).
pub fn valid_inn(n: u64) -> Inn {
    let body = format!("{:09}", 770_000_000 + (n % 100_000_000));
    let weights = [2u32, 4, 10, 3, 5, 9, 4, 6, 8];
    let sum: u32 = body.bytes().zip(weights).map(|(b, w)| u32::from(b - b'0') * w).sum();
    Inn::parse(&format!("{body}{}", sum % 11 % 10)).expect("valid INN")
}

/// Unix time now, seconds (for tag 1012).
pub fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

/// An FN number derived from `n`.
pub fn fn_number(n: u64) -> FnNumber {
    FnNumber::parse_strict(&format!("9999{:012}", n)).expect("16 digits")
}

/// A register under test: valid identifiers and documents built for it.
#[derive(Debug, Clone)]
pub struct TestRegister {
    /// Sequence number it was derived from.
    pub n: u64,
    /// RNM (check code valid for `inn` and `serial`).
    pub rnm: Rnm,
    /// Owner INN.
    pub inn: Inn,
    /// KKT serial.
    pub serial: String,
    /// Current FN.
    pub fn_number: FnNumber,
    /// Group.
    pub group: String,
}

impl TestRegister {
    /// Register number `n` (distinct `n` give distinct RNMs, serials and FNs).
    pub fn new(n: u64) -> Self {
        let inn = valid_inn(n / 100);
        let serial = format!("{:012}", 100_000 + n);
        Self {
            n,
            rnm: Rnm::compose(n, &inn, &serial),
            inn,
            serial,
            fn_number: fn_number(n),
            group: format!("shop-{}", n % 10),
        }
    }

    /// The same register with another current FN.
    pub fn with_fn(&self, fn_number: FnNumber) -> Self {
        Self { fn_number, ..self.clone() }
    }

    /// `adminctl registers add` arguments.
    pub fn add_args(&self) -> Vec<String> {
        [
            "registers",
            "add",
            "--rnm",
            self.rnm.as_str(),
            "--kkt-serial",
            &self.serial,
            "--owner-inn",
            self.inn.as_str(),
            "--name",
            &format!("till {}", self.n),
            "--group",
            &self.group,
            "--fn",
            &self.fn_number.to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    /// One CSV line (header [`CSV_HEADER`]).
    pub fn csv_row(&self, tariff: Option<&str>, paid_until: Option<&str>) -> String {
        format!(
            "{},{},{},till {},\"Moscow, Lenina {}\",{},{},{},{}",
            self.rnm,
            self.serial,
            self.inn,
            self.n,
            self.n,
            self.group,
            self.fn_number,
            tariff.unwrap_or(""),
            paid_until.unwrap_or("")
        )
    }

    /// Who the documents say they are from.
    pub fn identity(&self) -> Identity {
        Identity {
            fn_number: self.fn_number,
            rnm: self.rnm.to_string(),
            user_inn: self.inn.to_string(),
            kkt_serial: self.serial.clone(),
            ofd_inn: "7700000009".into(),
            user_name: "ООО Тест".into(),
            address: "Москва".into(),
            place: "Магазин".into(),
            cashier: "Кассир".into(),
            ffd: FfdVersion::V1_05,
        }
    }

    fn receipt_body(&self) -> Receipt {
        Receipt {
            operation: ffd::build::operation::INCOME,
            items: vec![Item {
                name: "Хлеб".into(),
                price: 5_500,
                quantity: Fvln { scale: 0, mantissa: 2 },
                vat: ffd::build::vat::VAT10,
                subject: 1,
                method: 4,
            }],
            cash: 11_000,
            shift: 1,
            number: 1,
            taxation: 1,
        }
    }

    /// A whole receipt message (session header + container) with FD `fd` made at `time`.
    pub fn receipt(&self, fd: u32, time: u32) -> Bytes {
        let id = self.identity();
        let tlv = ffd::build::receipt(&id, fd, time, &self.receipt_body());
        ffd::build::message(&id, fd, &tlv)
    }

    /// The fiscal sign printed on that receipt.
    pub fn fiscal_sign(&self, fd: u32, time: u32) -> u32 {
        let sign = ffd::build::fake_fiscal_sign(&self.fn_number, fd, time, self.receipt_body().total());
        ffd::tlv::printed_fiscal_sign(&sign).expect("6-byte sign")
    }
}

/// Header of the import CSV.
pub const CSV_HEADER: &str = "rnm,kkt_serial,owner_inn,name,address,group,fn_number,tariff,paid_until";

// ---------------------------------------------------------------- register client

/// Sends one message on a fresh TCP connection and reads one reply; `None` when the
/// gateway closed the connection without answering (a refusal). Bounded by
/// [`EXCHANGE_TIMEOUT`].
pub fn exchange(addr: SocketAddr, msg: &[u8]) -> Option<Bytes> {
    let mut s = TcpStream::connect_timeout(&addr, EXCHANGE_TIMEOUT).expect("connect");
    s.set_read_timeout(Some(EXCHANGE_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(EXCHANGE_TIMEOUT)).unwrap();
    s.write_all(msg).expect("send");
    let mut head = [0u8; 30];
    match s.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
            panic!("no reply and no close within {EXCHANGE_TIMEOUT:?}")
        }
        Err(_) => return None,
    }
    let len = usize::from(u16::from_le_bytes([head[24], head[25]]));
    let mut out = head.to_vec();
    out.resize(30 + len, 0);
    s.read_exact(&mut out[30..]).ok()?;
    Some(Bytes::from(out))
}

/// The response code of the acknowledgment a message gets, or `None` when it is refused
/// (no acknowledgment, connection closed).
pub fn ack_code(addr: SocketAddr, msg: &[u8]) -> Option<u8> {
    let reply = exchange(addr, msg)?;
    let (_, ack) = ffd::AckView::parse_reply(reply).expect("a well-formed acknowledgment");
    Some(ack.code.map_or(u8::MAX, ffd::ResponseCode::value))
}
