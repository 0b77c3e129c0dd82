//! Transports behind one client interface: a [`Connector`] makes connections, a [`Conn`]
//! carries exchanges (one message out, one reply back; never pipelined).
//!
//! * [`tcp`] — plain TCP, with source addresses bound round-robin;
//! * [`tls`] — rustls over TCP (ALPN `ofd` offered, full handshakes unless resumption is
//!   asked for);
//! * [`quic`] — quinn: one bidirectional stream per exchange, many exchanges per
//!   connection, many connections per UDP socket (one endpoint per source address);
//! * [`connect_stats`] — what connecting produced (failure kinds, per-source counts, TLS
//!   handshakes by kind), a leaf that `stats` reads without importing the transports.
//!
//! Replies are framed by the session header: 30 bytes, then the body length they declare.
//! Reading is cancel-safe (bytes already read stay in the connection's buffer), so when an
//! exchange times out the connection can be handed to a *late reader* that waits for the
//! reply that did not come in time — needed to check that a resend is answered with the
//! same acknowledgment as the original.

pub mod connect_stats;
pub mod quic;
pub mod tcp;
pub mod tls;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use connect_stats::{ConnectErrorKind, HandshakeStats, SourceStat};

/// Session header length.
pub const HEADER: usize = ffd::session::SESSION_HEADER_LEN;
/// Largest reply accepted: a header and the largest body a u16 can declare.
pub const MAX_REPLY: usize = HEADER + u16::MAX as usize;

/// Which transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// Plain TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// QUIC (UDP).
    Quic,
}

impl TransportKind {
    /// The gateway's default listener for this transport.
    pub fn default_target(self) -> SocketAddr {
        let port = match self {
            Self::Tcp => 7777,
            Self::Tls | Self::Quic => 7778,
        };
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    /// Name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Quic => "quic",
        }
    }

    /// Whether each connection costs a file descriptor.
    pub fn uses_fd_per_connection(self) -> bool {
        !matches!(self, Self::Quic)
    }
}

/// Why an exchange produced no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeError {
    /// The gateway closed or reset the connection (or stream) before any reply byte.
    Refused,
    /// The connection ended after `n` bytes of a reply.
    Truncated(usize),
    /// No complete reply before the deadline.
    Timeout,
    /// A reply larger than any valid one, or a stream that kept going.
    TooLarge,
    /// Another I/O error.
    Io(String),
}

/// Why a connection could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    /// Kind, for counters.
    pub kind: ConnectErrorKind,
    /// Detail, for logs.
    pub detail: String,
}

impl ConnectError {
    /// From an I/O error.
    pub fn io(e: &std::io::Error) -> Self {
        Self { kind: ConnectErrorKind::from_io(e), detail: e.to_string() }
    }

    /// A timeout.
    pub fn timeout() -> Self {
        Self { kind: ConnectErrorKind::Timeout, detail: "connect timed out".into() }
    }
}

/// A future that resolves to the late reply of a timed-out exchange (or `None`).
pub type LateReply = Pin<Box<dyn Future<Output = Option<Bytes>> + Send>>;

/// Makes connections to one target.
pub trait Connector: Send + Sync + 'static {
    /// The connection type.
    type Conn: Conn;

    /// Connects (and handshakes) before `deadline`.
    fn connect(&self, deadline: Instant) -> impl Future<Output = Result<Self::Conn, ConnectError>> + Send;

    /// Connects per source address.
    fn sources(&self) -> Vec<SourceStat>;

    /// TLS handshakes by kind (full, resumed); `None` for transports without TLS over TCP.
    fn handshakes(&self) -> Option<HandshakeStats> {
        None
    }
}

/// One connection.
pub trait Conn: Send + Sized + 'static {
    /// Sends `msg` and returns the reply (header + body) if it completes before
    /// `deadline`.
    fn exchange(&mut self, msg: &Bytes, deadline: Instant)
    -> impl Future<Output = Result<Bytes, ExchangeError>> + Send;

    /// After a timeout: the connection if it can still carry exchanges (QUIC: yes, the
    /// timed-out stream is separate; TCP: no, the late reply would arrive in the middle
    /// of the next exchange) and a future for the late reply, bounded by `deadline`.
    fn split_late(self, deadline: Instant) -> (Option<Self>, LateReply);

    /// Closes gracefully (TCP FIN / TLS close_notify / QUIC CONNECTION_CLOSE), bounded.
    fn close(self) -> impl Future<Output = ()> + Send;

    /// Waits until the gateway closes the connection (idle hold); returns when it did.
    fn closed(&mut self) -> impl Future<Output = ()> + Send;
}

/// Source addresses, chosen round-robin, with per-address counts.
#[derive(Debug)]
pub struct SourcePool {
    ips: Vec<Ipv4Addr>,
    next: AtomicUsize,
    ok: Vec<AtomicU64>,
    failed: Vec<AtomicU64>,
}

impl SourcePool {
    /// An empty list means "let the kernel choose".
    pub fn new(ips: Vec<Ipv4Addr>) -> Self {
        let n = ips.len().max(1);
        Self {
            ips,
            next: AtomicUsize::new(0),
            ok: (0..n).map(|_| AtomicU64::new(0)).collect(),
            failed: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The next source (slot index, address or `None` for automatic).
    pub fn pick(&self) -> (usize, Option<Ipv4Addr>) {
        if self.ips.is_empty() {
            return (0, None);
        }
        let i = self.next.fetch_add(1, Relaxed) % self.ips.len();
        (i, Some(self.ips[i]))
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.ips.len()
    }

    /// True when the kernel chooses.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
    }

    /// Address of slot `i` (`None` = automatic).
    pub fn ip(&self, i: usize) -> Option<Ipv4Addr> {
        self.ips.get(i).copied()
    }

    /// Counts an outcome for slot `i`.
    pub fn count(&self, i: usize, ok: bool) {
        let v = if ok { &self.ok } else { &self.failed };
        if let Some(a) = v.get(i) {
            a.fetch_add(1, Relaxed);
        }
    }

    /// Per-address counts.
    pub fn stats(&self) -> Vec<SourceStat> {
        (0..self.ok.len())
            .map(|i| SourceStat {
                ip: self.ips.get(i).map_or_else(|| "auto".to_owned(), Ipv4Addr::to_string),
                connects: self.ok[i].load(Relaxed),
                failures: self.failed[i].load(Relaxed),
            })
            .collect()
    }
}

/// A byte stream (TCP or TLS) carrying sequential exchanges.
#[derive(Debug)]
pub struct StreamConn<S> {
    io: S,
    buf: BytesMut,
}

fn io_to_exchange(e: &std::io::Error, got: usize) -> ExchangeError {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            if got == 0 {
                ExchangeError::Refused
            } else {
                ExchangeError::Truncated(got)
            }
        }
        _ => ExchangeError::Io(e.to_string()),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> StreamConn<S> {
    /// Wraps a connected stream.
    pub fn new(io: S) -> Self {
        Self { io, buf: BytesMut::with_capacity(512) }
    }

    /// Reads one reply (cancel-safe: partial bytes stay in the buffer).
    pub async fn read_reply(&mut self) -> Result<Bytes, ExchangeError> {
        loop {
            if self.buf.len() >= HEADER {
                let body = usize::from(u16::from_le_bytes([self.buf[24], self.buf[25]]));
                let total = HEADER + body;
                if self.buf.len() >= total {
                    return Ok(self.buf.split_to(total).freeze());
                }
                self.buf.reserve(total - self.buf.len());
            } else {
                self.buf.reserve(512);
            }
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) => {
                    return Err(if self.buf.is_empty() {
                        ExchangeError::Refused
                    } else {
                        ExchangeError::Truncated(self.buf.len())
                    });
                }
                Ok(_) => {}
                Err(e) => return Err(io_to_exchange(&e, self.buf.len())),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Conn for StreamConn<S> {
    async fn exchange(&mut self, msg: &Bytes, deadline: Instant) -> Result<Bytes, ExchangeError> {
        let work = async {
            self.io.write_all(msg).await.map_err(|e| io_to_exchange(&e, 0))?;
            self.io.flush().await.map_err(|e| io_to_exchange(&e, 0))?;
            self.read_reply().await
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(ExchangeError::Timeout),
        }
    }

    fn split_late(mut self, deadline: Instant) -> (Option<Self>, LateReply) {
        let fut = async move {
            match tokio::time::timeout_at(deadline, self.read_reply()).await {
                Ok(Ok(b)) => Some(b),
                _ => None,
            }
        };
        (None, Box::pin(fut))
    }

    async fn close(mut self) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.io.shutdown()).await;
    }

    async fn closed(&mut self) {
        let mut scratch = [0u8; 64];
        loop {
            match self.io.read(&mut scratch).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

/// Connects a TCP socket to `target` from `source` (if any), with
/// `IP_BIND_ADDRESS_NO_PORT` so that the port is chosen per destination.
pub async fn tcp_connect(
    target: SocketAddr,
    source: Option<Ipv4Addr>,
    deadline: Instant,
) -> Result<tokio::net::TcpStream, ConnectError> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| ConnectError::io(&e))?;
    if let Some(ip) = source {
        use std::os::fd::AsFd;
        // best effort: older kernels lack the option, and then bind picks a port
        let _ = crate::sys::set_bind_address_no_port(socket.as_fd());
        socket.bind(SocketAddr::from((ip, 0))).map_err(|e| ConnectError::io(&e))?;
    }
    let stream = match tokio::time::timeout_at(deadline, socket.connect(target)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(ConnectError::io(&e)),
        Err(_) => return Err(ConnectError::timeout()),
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_round_robin() {
        let p = SourcePool::new(vec![Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)]);
        assert_eq!(p.pick().1, Some(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(p.pick().1, Some(Ipv4Addr::new(127, 0, 0, 3)));
        assert_eq!(p.pick().1, Some(Ipv4Addr::new(127, 0, 0, 2)));
        p.count(1, true);
        p.count(1, false);
        let s = p.stats();
        assert_eq!((s[1].connects, s[1].failures), (1, 1));
        let auto = SourcePool::new(vec![]);
        assert_eq!(auto.pick(), (0, None));
        assert_eq!(auto.stats()[0].ip, "auto");
    }

    #[tokio::test]
    async fn frames_replies_across_reads_and_keeps_partial_bytes() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut c = StreamConn::new(b);
        let mut reply = vec![0u8; HEADER + 5];
        reply[24] = 5;
        let r2 = reply.clone();
        let w = tokio::spawn(async move {
            a.write_all(&r2[..10]).await.expect("w");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            a.write_all(&r2[10..]).await.expect("w");
            a
        });
        // a deadline that expires mid-reply: the 10 bytes must stay buffered
        let early = Instant::now() + std::time::Duration::from_millis(5);
        let r = tokio::time::timeout_at(early, c.read_reply()).await;
        assert!(r.is_err());
        let got = c.read_reply().await.expect("reply");
        assert_eq!(&got[..], &reply[..]);
        drop(w.await.expect("writer"));
        assert_eq!(c.read_reply().await, Err(ExchangeError::Refused));
    }
}
