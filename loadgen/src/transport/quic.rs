//! QUIC (quinn). One bidirectional stream per exchange: the client writes the message and
//! finishes its side, the gateway writes the reply on the same stream and finishes. A
//! connection carries any number of sequential exchanges; all connections from one source
//! address share one UDP socket (one quinn endpoint per address), so QUIC connection
//! counts are not bounded by the file-descriptor limit.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use quinn::{ConnectionError, Endpoint, ReadError, RecvStream, WriteError};
use rustls::pki_types::CertificateDer;
use tokio::time::Instant;

use super::connect_stats::{ConnectErrorKind, SourceStat};
use super::tls::{ALPN, client_config};
use super::{Conn, ConnectError, Connector, ExchangeError, HEADER, LateReply, MAX_REPLY, SourcePool};

/// QUIC client options.
#[derive(Debug, Clone)]
pub struct QuicOptions {
    /// Keep-alive PINGs (needed to hold idle connections past the idle timeout).
    pub keep_alive: Option<Duration>,
    /// Idle timeout proposed to the gateway.
    pub idle_timeout: Duration,
}

impl Default for QuicOptions {
    fn default() -> Self {
        Self { keep_alive: None, idle_timeout: Duration::from_secs(30) }
    }
}

/// UDP socket buffers asked for (the kernel caps them at `net.core.[rw]mem_max`): the
/// 208 KiB default drops datagrams when a thousand connections burst on one socket, and
/// every drop costs a QUIC loss-recovery timeout in the latency tail.
pub const UDP_BUFFER: usize = 4 << 20;

/// A UDP socket bound to `addr` with large buffers (best effort).
pub fn udp_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let s =
        socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(UDP_BUFFER);
    let _ = s.set_send_buffer_size(UDP_BUFFER);
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// A quinn endpoint on `addr` (client if `server` is `None`). Must be called inside a
/// tokio runtime.
pub fn endpoint(addr: SocketAddr, server: Option<quinn::ServerConfig>) -> std::io::Result<Endpoint> {
    Endpoint::new(quinn::EndpointConfig::default(), server, udp_socket(addr)?, Arc::new(quinn::TokioRuntime))
}

/// The quinn client configuration: TLS 1.3, ALPN `ofd`, no resumption.
pub fn quinn_client_config(ca: &[CertificateDer<'static>], opts: &QuicOptions) -> anyhow::Result<quinn::ClientConfig> {
    let tls = client_config(ca, &[ALPN], false, true)?;
    let crypto =
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).context("QUIC needs a TLS 1.3 configuration")?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    // exchanges are a few hundred bytes each way: small windows, no unidirectional
    // streams, no datagrams, no MTU probing — per-connection state is what limits how
    // many connections one process can hold
    transport
        .stream_receive_window(quinn::VarInt::from_u32(64 * 1024))
        .receive_window(quinn::VarInt::from_u32(256 * 1024))
        .send_window(256 * 1024)
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(0))
        .datagram_receive_buffer_size(None)
        .mtu_discovery_config(None);
    transport.keep_alive_interval(opts.keep_alive);
    transport.max_idle_timeout(Some(quinn::IdleTimeout::try_from(opts.idle_timeout).context("QUIC idle timeout")?));
    cfg.transport_config(Arc::new(transport));
    Ok(cfg)
}

/// Connects over QUIC.
#[derive(Debug, Clone)]
pub struct QuicConnector {
    target: SocketAddr,
    server_name: String,
    endpoints: Vec<Endpoint>,
    sources: Arc<SourcePool>,
}

impl QuicConnector {
    /// One endpoint (UDP socket) per source address, or one on 127.0.0.1 when the kernel
    /// chooses. Must be called inside a tokio runtime.
    pub fn new(
        target: SocketAddr,
        sources: Arc<SourcePool>,
        ca: &[CertificateDer<'static>],
        server_name: &str,
        opts: &QuicOptions,
    ) -> anyhow::Result<Self> {
        let cfg = quinn_client_config(ca, opts)?;
        let ips: Vec<Ipv4Addr> = if sources.is_empty() {
            vec![Ipv4Addr::LOCALHOST]
        } else {
            (0..sources.len()).filter_map(|i| sources.ip(i)).collect()
        };
        let mut endpoints = Vec::with_capacity(ips.len());
        for ip in ips {
            // through `endpoint` for the large socket buffers (Endpoint::client keeps the
            // kernel's 208 KiB, and a burst of handshakes overflows it)
            let mut ep =
                endpoint(SocketAddr::from((ip, 0)), None).with_context(|| format!("binding a UDP socket on {ip}"))?;
            ep.set_default_client_config(cfg.clone());
            endpoints.push(ep);
        }
        Ok(Self { target, server_name: server_name.to_owned(), endpoints, sources })
    }

    /// The endpoints (UDP sockets).
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }
}

fn connection_error(e: &ConnectionError) -> ConnectError {
    let kind = match e {
        ConnectionError::TimedOut => ConnectErrorKind::Timeout,
        ConnectionError::TransportError(_)
        | ConnectionError::ConnectionClosed(_)
        | ConnectionError::VersionMismatch => ConnectErrorKind::Handshake,
        ConnectionError::CidsExhausted => ConnectErrorKind::AddrNotAvailable,
        _ => ConnectErrorKind::Other,
    };
    ConnectError { kind, detail: e.to_string() }
}

impl Connector for QuicConnector {
    type Conn = QuicConn;

    async fn connect(&self, deadline: Instant) -> Result<QuicConn, ConnectError> {
        let (slot, _) = self.sources.pick();
        let ep = &self.endpoints[slot % self.endpoints.len()];
        let r = async {
            let connecting = ep
                .connect(self.target, &self.server_name)
                .map_err(|e| ConnectError { kind: ConnectErrorKind::Other, detail: e.to_string() })?;
            match tokio::time::timeout_at(deadline, connecting).await {
                Ok(Ok(conn)) => Ok(QuicConn { conn, pending: None }),
                Ok(Err(e)) => Err(connection_error(&e)),
                Err(_) => Err(ConnectError::timeout()),
            }
        }
        .await;
        self.sources.count(slot, r.is_ok());
        r
    }

    fn sources(&self) -> Vec<SourceStat> {
        self.sources.stats()
    }
}

/// A reply being read from its stream.
#[derive(Debug)]
struct Pending {
    recv: RecvStream,
    buf: Vec<u8>,
}

impl Pending {
    /// Reads until a whole reply (framed by its session header) is in (cancel-safe).
    async fn read_reply(&mut self) -> Result<Bytes, ExchangeError> {
        loop {
            if self.buf.len() >= HEADER {
                let body = usize::from(u16::from_le_bytes([self.buf[24], self.buf[25]]));
                let total = HEADER + body;
                if self.buf.len() >= total {
                    return Ok(Bytes::copy_from_slice(&self.buf[..total]));
                }
            }
            match self.recv.read_chunk(MAX_REPLY, true).await {
                Ok(Some(chunk)) => {
                    if self.buf.len() + chunk.bytes.len() > MAX_REPLY {
                        return Err(ExchangeError::TooLarge);
                    }
                    self.buf.extend_from_slice(&chunk.bytes);
                }
                Ok(None) | Err(ReadError::Reset(_) | ReadError::ConnectionLost(_)) => {
                    return Err(if self.buf.is_empty() {
                        ExchangeError::Refused
                    } else {
                        ExchangeError::Truncated(self.buf.len())
                    });
                }
                Err(e) => return Err(ExchangeError::Io(e.to_string())),
            }
        }
    }
}

/// One QUIC connection.
#[derive(Debug)]
pub struct QuicConn {
    conn: quinn::Connection,
    pending: Option<Pending>,
}

fn write_error(e: &WriteError) -> ExchangeError {
    match e {
        WriteError::Stopped(_) | WriteError::ConnectionLost(_) | WriteError::ClosedStream => ExchangeError::Refused,
        other => ExchangeError::Io(other.to_string()),
    }
}

impl Conn for QuicConn {
    async fn exchange(&mut self, msg: &Bytes, deadline: Instant) -> Result<Bytes, ExchangeError> {
        self.pending = None;
        let open = async {
            let (mut send, recv) = self.conn.open_bi().await.map_err(|_| ExchangeError::Refused)?;
            send.write_all(msg).await.map_err(|e| write_error(&e))?;
            // finishing can only fail if the stream was already closed: the read says how
            let _ = send.finish();
            Ok::<_, ExchangeError>(recv)
        };
        let recv = match tokio::time::timeout_at(deadline, open).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(ExchangeError::Timeout),
        };
        let p = self.pending.insert(Pending { recv, buf: Vec::with_capacity(256) });
        match tokio::time::timeout_at(deadline, p.read_reply()).await {
            Ok(r) => {
                self.pending = None;
                r
            }
            Err(_) => Err(ExchangeError::Timeout),
        }
    }

    fn split_late(mut self, deadline: Instant) -> (Option<Self>, LateReply) {
        let pending = self.pending.take();
        let fut = async move {
            let mut p = pending?;
            match tokio::time::timeout_at(deadline, p.read_reply()).await {
                Ok(Ok(b)) => Some(b),
                _ => None,
            }
        };
        (Some(self), Box::pin(fut))
    }

    async fn close(self) {
        self.conn.close(0u32.into(), b"done");
    }

    async fn closed(&mut self) {
        self.conn.closed().await;
    }
}
