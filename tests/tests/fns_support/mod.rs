//! Helpers of the FNS, alert and resend end-to-end tests: the real `fns-receiver` binary
//! as a child process (FNS endpoint and webhook sink), a multi-connection register client,
//! onboarding through `adminctl`, and bounded polling.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use e2e::{EXCHANGE_TIMEOUT, GatewayOpts, GatewayProcess, TestRegister, assert_exit, http_request};
use serde_json::Value;

static BUILD: Mutex<()> = Mutex::new(());

/// Path of the `fns-receiver` binary (a binary of the `gateway` package), built once if
/// this test run did not build it.
pub fn receiver_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let path = dir.join("fns-receiver");
    let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "-p", "gateway", "--bin", "fns-receiver"]);
        if dir.file_name().is_some_and(|p| p == "release") {
            cmd.arg("--release");
        }
        assert!(cmd.status().unwrap().success(), "cargo build --bin fns-receiver failed");
    }
    path
}

/// A running `fns-receiver` (killed on drop).
pub struct Receiver {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Receiver {
    /// Starts one on a free port with extra flags (e.g. `--fail-first 2`).
    pub fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addr_file = dir.path().join("addr");
        let child = Command::new(receiver_bin())
            .args(["--listen", "127.0.0.1:0", "--addr-file"])
            .arg(&addr_file)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn fns-receiver");
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            if let Some(a) = std::fs::read_to_string(&addr_file).ok().and_then(|s| s.trim().parse().ok()) {
                break a;
            }
            assert!(Instant::now() < deadline, "fns-receiver did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Self { child, addr, _dir: dir }
    }

    /// The FNS endpoint URL.
    pub fn url(&self) -> String {
        format!("http://{}/documents", self.addr)
    }

    /// The webhook URL.
    pub fn alerts_url(&self) -> String {
        format!("http://{}/alerts", self.addr)
    }

    /// GET a path as JSON.
    pub fn get(&self, path: &str) -> Value {
        let (status, v) = http_request(self.addr, "GET", path, None, None);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    /// `GET /stats`.
    pub fn stats(&self) -> Value {
        self.get("/stats")
    }

    /// One counter of `/stats`.
    pub fn stat(&self, k: &str) -> u64 {
        self.stats()[k].as_u64().unwrap_or(0)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Gateway options with short background intervals and forwarding to `fns_url`.
pub fn opts(fns_url: Option<&str>) -> GatewayOpts {
    let mut o = GatewayOpts::default()
        .env("GATEWAY_FNS__POLL_INTERVAL", "100ms")
        .env("GATEWAY_FNS__RETRY_INITIAL", "100ms")
        .env("GATEWAY_FNS__RETRY_MAX", "1s")
        .env("GATEWAY_FNS__BACKLOG_INTERVAL", "200ms")
        .env("GATEWAY_ALERTS__INTERVAL", "200ms")
        .env("GATEWAY_ALERTS__RESOLVE_AFTER", "2")
        .env("GATEWAY_ALERTS__NOTIFY_INTERVAL", "100ms")
        .env("GATEWAY_ALERTS__WEBHOOK_RETRY_INITIAL", "100ms")
        .env("GATEWAY_ALERTS__WEBHOOK_RETRY_MAX", "500ms")
        .env("GATEWAY_RESEND__POLL_INTERVAL", "100ms");
    if let Some(u) = fns_url {
        o = o.env("GATEWAY_FNS__URL", u);
    }
    o
}

/// Onboards a register with `adminctl registers add`.
pub fn onboard(gw: &GatewayProcess, r: &TestRegister) {
    let args = r.add_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_exit(&gw.adminctl(&args), 0);
}

fn read_reply(s: &mut TcpStream) -> Option<Bytes> {
    let mut head = [0u8; 30];
    s.read_exact(&mut head).ok()?;
    let len = usize::from(u16::from_le_bytes([head[24], head[25]]));
    let mut out = head.to_vec();
    out.resize(30 + len, 0);
    s.read_exact(&mut out[30..]).ok()?;
    Some(Bytes::from(out))
}

/// Sends every message over `conns` persistent connections (several messages per
/// connection, as some registers do) and asserts each is acknowledged with code 0.
pub fn send_all(addr: SocketAddr, msgs: Vec<Bytes>, conns: usize) {
    let conns = conns.max(1);
    let mut chunks: Vec<Vec<Bytes>> = vec![Vec::new(); conns];
    for (i, m) in msgs.into_iter().enumerate() {
        chunks[i % conns].push(m);
    }
    let threads: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect_timeout(&addr, EXCHANGE_TIMEOUT).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                s.set_write_timeout(Some(EXCHANGE_TIMEOUT)).unwrap();
                for m in chunk {
                    s.write_all(&m).unwrap();
                    let reply = read_reply(&mut s).expect("acknowledged");
                    let (_, ack) = ffd::AckView::parse_reply(reply).expect("an acknowledgment");
                    assert_eq!(ack.code, Some(ffd::ResponseCode::Accepted));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("sender thread");
    }
}

/// Polls `f` every 50 ms until it returns `Some`; panics with `what` after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// RFC 3339 of a Unix time.
pub fn rfc3339(unix: u32) -> String {
    storage::Timestamp::from_unix_secs(i64::from(unix)).to_rfc3339()
}
