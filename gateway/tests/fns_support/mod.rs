//! Helpers of the FNS, alert and resend integration tests: registers with valid
//! identifiers, builder-made documents sent over TCP, an in-process FNS receiver,
//! gateways on a kept data directory (for restarts), and polling with a deadline.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ffd::FnNumber;
use ffd::build::{self, DriveReport, Identity, Item, Receipt};
use ffd::tlv::{FfdVersion, Fvln};
use gateway::Config;
use gateway::control::fns::receiver::{Receiver, ReceiverOptions};
use storage::model::Register;
use storage::{Inn, Rnm, Timestamp};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::common;

/// Owner INNs with valid control digits.
pub const INN_A: &str = "7702203276";
pub const INN_B: &str = "7707083893";

/// Register number `i` (FN 9999066…, serial 066…) of `inn`.
pub fn register(i: u64, inn: &str) -> Register {
    let inn = Inn::parse(inn).unwrap();
    let serial = format!("066{i:09}");
    let now = Timestamp::now();
    Register {
        name: format!("till {i}"),
        group: Some(format!("shop-{}", i % 2)),
        ..Register::new(
            Rnm::compose(66_000_000 + i, &inn, &serial),
            serial,
            inn,
            FnNumber::parse_strict(&format!("9999066{i:09}")).unwrap(),
            now,
        )
    }
}

/// The identity a register stamps on its documents.
pub fn identity(r: &Register) -> Identity {
    Identity {
        fn_number: r.fn_number,
        rnm: r.rnm.as_str().to_owned(),
        user_inn: r.owner_inn.as_str().to_owned(),
        kkt_serial: r.kkt_serial.clone(),
        ofd_inn: "7700000009".into(),
        user_name: "ООО \"Ромашка\"".into(),
        address: "г. Москва, ул. Ленина, д. 1".into(),
        place: "магазин".into(),
        cashier: "Иванова А.С.".into(),
        ffd: FfdVersion::V1_2,
    }
}

fn unix_now() -> u32 {
    u32::try_from(Timestamp::now().unix_secs()).unwrap()
}

/// A shift-open report (form 2) as a whole register message.
pub fn open_shift(r: &Register, fd: u32) -> Bytes {
    let id = identity(r);
    build::message(&id, fd, &build::open_shift(&id, fd, unix_now(), fd))
}

/// A receipt (form 3).
pub fn receipt(r: &Register, fd: u32) -> Bytes {
    let id = identity(r);
    let rc = Receipt {
        operation: 1,
        items: vec![Item {
            name: "Хлеб".into(),
            price: 4_500,
            quantity: Fvln { scale: 0, mantissa: 2 },
            vat: build::vat::VAT10,
            subject: 1,
            method: 4,
        }],
        cash: 9_000,
        shift: 1,
        number: fd,
        taxation: 1,
    };
    build::message(&id, fd, &build::receipt(&id, fd, unix_now(), &rc))
}

/// A shift-close report (form 5) carrying a drive report.
pub fn close_shift(r: &Register, fd: u32, d: DriveReport) -> Bytes {
    let id = identity(r);
    build::message(&id, fd, &build::close_shift(&id, fd, unix_now(), &d))
}

/// Sends one message on a fresh connection and asserts an acknowledgment with code 0.
pub async fn send(addr: SocketAddr, msg: &[u8]) {
    let reply = common::tcp_exchange(addr, msg).await.expect("the document is acknowledged");
    let (_, ack) = ffd::AckView::parse_reply(reply).expect("an acknowledgment");
    assert_eq!(ack.code, Some(ffd::ResponseCode::Accepted), "accepted");
}

/// Sends many messages over `conns` persistent connections, each acknowledged.
pub async fn send_many(addr: SocketAddr, msgs: Vec<Bytes>, conns: usize) {
    let mut chunks: Vec<Vec<Bytes>> = vec![Vec::new(); conns.max(1)];
    for (i, m) in msgs.into_iter().enumerate() {
        chunks[i % conns.max(1)].push(m);
    }
    let mut tasks = Vec::new();
    for chunk in chunks {
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            for m in chunk {
                s.write_all(&m).await.unwrap();
                let reply = tokio::time::timeout(Duration::from_secs(20), common::read_reply(&mut s))
                    .await
                    .expect("reply in time")
                    .expect("acknowledged");
                let (_, ack) = ffd::AckView::parse_reply(reply).expect("an acknowledgment");
                assert_eq!(ack.code, Some(ffd::ResponseCode::Accepted));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// An in-process FNS receiver on a free port.
pub struct TestReceiver {
    pub rx: Receiver,
    pub addr: SocketAddr,
    stop: CancellationToken,
}

impl TestReceiver {
    pub async fn start(opts: ReceiverOptions) -> Self {
        let rx = Receiver::open(opts).unwrap();
        let (addr, stop) = rx.clone().spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
        Self { rx, addr, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}/documents", self.addr)
    }

    pub fn alerts_url(&self) -> String {
        format!("http://{}/alerts", self.addr)
    }
}

impl Drop for TestReceiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A test configuration with fast background loops (alerts off unless a test turns them
/// on: the in-process tests drive the evaluator themselves).
pub fn fast_config(dir: &Path, fns_url: Option<String>) -> Config {
    let mut cfg = common::test_config(dir);
    cfg.fns.url = fns_url;
    cfg.fns.poll_interval = Duration::from_millis(50);
    cfg.fns.retry_initial = Duration::from_millis(50);
    cfg.fns.retry_max = Duration::from_millis(400);
    cfg.fns.backlog_interval = Duration::from_millis(100);
    cfg.alerts.enabled = false;
    cfg.resend.poll_interval = Duration::from_millis(50);
    cfg.resend.retry_initial = Duration::from_millis(20);
    cfg
}

/// Starts a gateway on `dir` (kept by the caller, so that it can be restarted).
pub async fn start_on(cfg: Config) -> gateway::Running {
    gateway::start(cfg).await.expect("gateway starts")
}

/// Onboards registers into a running gateway.
pub async fn onboard(running: &gateway::Running, regs: &[Register]) {
    running.shared.store.put_registers(regs.to_vec(), vec![None; regs.len()]).await.unwrap();
    for r in regs {
        running.shared.data.apply_register(r);
    }
}

/// Polls `f` every 20 ms until it is true; panics with `what` after `limit`.
pub async fn wait_for<F, Fut>(limit: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if f().await {
            return;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
