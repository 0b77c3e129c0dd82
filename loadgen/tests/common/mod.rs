//! Test doubles: a TCP responder that answers like a gateway (correct acknowledgments
//! built with `ffd`) or deliberately wrong in one chosen way.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ffd::ack::{AckFields, build_ack_container, wrap_reply};
use ffd::container::ContainerHeader;
use ffd::frame::{FrameStatus, Limits, Message, check_frame};
use ffd::session::SessionHeader;
use ffd::{FnNumber, ResponseCode, SoftwareSigner};
use loadgen::registers::{FfdMix, Population};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the double answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A correct acknowledgment, code 0.
    Correct,
    /// Like a gateway: inspects with `ffd`; close-class errors close, others get 11/14.
    Judge,
    /// FD + 1.
    WrongFd,
    /// Another FN.
    WrongFn,
    /// Container check code broken.
    BadCrc,
    /// Response code 14 for everything.
    Code14,
    /// Close the connection without replying.
    Close,
    /// Never reply.
    Silent,
    /// Half a reply, then close.
    Truncate,
    /// The message with this ordinal (0-based, whole server) waits this long.
    StallOnce { nth: u64, ms: u64 },
    /// The very first message is answered after `ms` (beyond the client's timeout).
    LateOnce { ms: u64 },
    /// A repeated (FN, FD) gets a valid acknowledgment with another operator time.
    ChangeOnRepeat,
}

/// A running double.
pub struct Double {
    pub addr: SocketAddr,
    pub messages: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Double {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn signer() -> SoftwareSigner {
    SoftwareSigner::new(b"test-double")
}

/// The acknowledgment a correct gateway would send (deterministic: fixed time).
pub fn ack_for(
    header: &SessionHeader,
    c: &ContainerHeader,
    code: u8,
    fd: u32,
    fn_number: FnNumber,
    time: u32,
) -> Bytes {
    let fields = AckFields {
        fn_number,
        fd,
        code: ResponseCode::from_value(code),
        time,
        ofd_inn: AckFields::pad_inn("7704358518"),
        service1: c.service1,
    };
    wrap_reply(header, &build_ack_container(&fields, &signer()))
}

pub async fn start(mode: Mode) -> Double {
    start_on("127.0.0.1:0".parse().expect("addr"), mode).await
}

pub async fn start_on(at: SocketAddr, mode: Mode) -> Double {
    let l = TcpListener::bind(at).await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let messages = Arc::new(AtomicU64::new(0));
    let seen: Arc<Mutex<HashMap<(FnNumber, u32), u32>>> = Arc::default();
    let m2 = messages.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = l.accept().await else { return };
            let (messages, seen) = (m2.clone(), seen.clone());
            tokio::spawn(async move { serve(sock, mode, messages, seen).await });
        }
    });
    Double { addr, messages, task }
}

async fn serve(
    mut sock: tokio::net::TcpStream,
    mode: Mode,
    messages: Arc<AtomicU64>,
    seen: Arc<Mutex<HashMap<(FnNumber, u32), u32>>>,
) {
    let limits = Limits::default();
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let (header, len) = loop {
            match check_frame(&buf, &limits) {
                Ok(FrameStatus::Complete { header, len }) => break (header, len),
                Ok(FrameStatus::Incomplete(_)) => {}
                Err(_) => return,
            }
            match sock.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let frame = buf.split_to(len).freeze();
        let n = messages.fetch_add(1, Ordering::SeqCst);
        let body = frame.slice(30..);
        let Ok(c) = ContainerHeader::parse(&body) else { return };
        let time = 1_750_000_000;
        let reply = match mode {
            Mode::Correct | Mode::StallOnce { .. } | Mode::LateOnce { .. } => {
                ack_for(&header, &c, 0, c.fd, c.fn_number, time)
            }
            Mode::Judge => {
                let msg = Message::new(header, frame.clone());
                match ffd::inspect(&msg, &limits) {
                    Ok(i) => ack_for(&header, &c, i.response_code().value(), c.fd, c.fn_number, time),
                    Err(_) => return,
                }
            }
            Mode::WrongFd => ack_for(&header, &c, 0, c.fd + 1, c.fn_number, time),
            Mode::WrongFn => {
                let other = FnNumber::parse_strict("9999999999999999").expect("fn");
                ack_for(&header, &c, 0, c.fd, other, time)
            }
            Mode::BadCrc => {
                let mut v = ack_for(&header, &c, 0, c.fd, c.fn_number, time).to_vec();
                v[32] ^= 0xFF;
                Bytes::from(v)
            }
            Mode::Code14 => ack_for(&header, &c, 14, c.fd, c.fn_number, time),
            Mode::Close => return,
            Mode::Silent => {
                let mut scratch = [0u8; 256];
                while let Ok(k) = sock.read(&mut scratch).await {
                    if k == 0 {
                        return;
                    }
                }
                return;
            }
            Mode::Truncate => {
                let r = ack_for(&header, &c, 0, c.fd, c.fn_number, time);
                let _ = sock.write_all(&r[..r.len() / 2]).await;
                return;
            }
            Mode::ChangeOnRepeat => {
                let k = {
                    let mut g = seen.lock().expect("lock");
                    let e = g.entry((c.fn_number, c.fd)).or_insert(0);
                    *e += 1;
                    *e
                };
                ack_for(&header, &c, 0, c.fd, c.fn_number, time + k)
            }
        };
        match mode {
            Mode::StallOnce { nth, ms } if n == nth => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Mode::LateOnce { ms } if n == 0 => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            _ => {}
        }
        if sock.write_all(&reply).await.is_err() {
            return;
        }
    }
}

pub fn population(count: u64) -> Population {
    Population { seed: 42, first: 0, count, mix: FfdMix::default() }
}
