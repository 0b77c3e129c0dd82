//! Accept loops. They only accept: each connection is spawned at once, and TLS/QUIC
//! handshakes run inside the connection's own task under a deadline, so one slow client
//! never stalls the others. Over the connection limit a new connection is accepted and
//! closed at once (counted as `shed_connections`), before it can cost memory.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use crate::data::close::{CloseReason, Transport};
use crate::data::session::{self, Conn, SessionCtx};
use crate::data::tls_conn::TlsConn;
use crate::metrics as m;

/// Binds a TCP listener with a deep backlog (reconnect storms) and SO_REUSEADDR.
pub fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    TcpListener::from_std(socket.into())
}

fn opened(t: Transport) {
    metrics::counter!(m::CONNECTIONS_ACCEPTED, "transport" => t.as_str()).increment(1);
    metrics::gauge!(m::CONNECTIONS_OPEN, "transport" => t.as_str()).increment(1.0);
}

fn closed(t: Transport, reason: CloseReason) {
    metrics::gauge!(m::CONNECTIONS_OPEN, "transport" => t.as_str()).decrement(1.0);
    metrics::counter!(m::CONNECTIONS_CLOSED, "transport" => t.as_str(), "reason" => reason.as_str()).increment(1);
}

fn shed(t: Transport) {
    metrics::counter!(m::CONNECTIONS_ACCEPTED, "transport" => t.as_str()).increment(1);
    metrics::counter!(m::CONNECTIONS_CLOSED, "transport" => t.as_str(), "reason" => CloseReason::Shed.as_str())
        .increment(1);
}

async fn accept_backoff(e: &std::io::Error) {
    // out of descriptors: back off instead of spinning; anything else is per-connection
    if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)) {
        tracing::warn!(error = %e, "accept failed for lack of resources; backing off");
        tokio::time::sleep(Duration::from_millis(50)).await;
    } else {
        tracing::debug!(error = %e, "accept failed");
    }
}

async fn finish<C: Conn>(io: &mut C) {
    // a bounded, best-effort orderly close (FIN / close_notify)
    let _ = tokio::time::timeout(Duration::from_secs(1), io.shutdown()).await;
}

/// Serves plain TCP.
pub async fn run_tcp(listener: TcpListener, ctx: SessionCtx, slots: Arc<Semaphore>, tracker: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            () = ctx.shutdown.triggered() => return,
            r = listener.accept() => r,
        };
        let (mut stream, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                accept_backoff(&e).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            shed(Transport::Tcp);
            drop(stream);
            continue;
        };
        let ctx = ctx.clone();
        tracker.spawn(async move {
            let _slot = permit;
            let _ = stream.set_nodelay(true);
            opened(Transport::Tcp);
            let reason = session::serve(&mut stream, &ctx, Transport::Tcp, Some(peer)).await;
            finish(&mut stream).await;
            closed(Transport::Tcp, reason);
        });
    }
}

/// Serves TLS over TCP (rustls's unbuffered API: see [`TlsConn`]).
pub async fn run_tls(
    listener: TcpListener,
    tls_config: Arc<rustls::ServerConfig>,
    handshake_timeout: Duration,
    ctx: SessionCtx,
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = ctx.shutdown.triggered() => return,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                accept_backoff(&e).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            shed(Transport::Tls);
            drop(stream);
            continue;
        };
        let ctx = ctx.clone();
        let tls_config = tls_config.clone();
        tracker.spawn(async move {
            let _slot = permit;
            let _ = stream.set_nodelay(true);
            opened(Transport::Tls);
            let started = Instant::now();
            let reason = match tokio::time::timeout(handshake_timeout, TlsConn::accept(stream, tls_config)).await {
                Err(_) => handshake_result(Transport::Tls, "timeout", CloseReason::HandshakeTimeout),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, %peer, "TLS handshake failed");
                    handshake_result(Transport::Tls, "failed", CloseReason::HandshakeFailed)
                }
                Ok(Ok(mut tls)) => {
                    handshake_ok(Transport::Tls, started);
                    let reason = session::serve(&mut tls, &ctx, Transport::Tls, Some(peer)).await;
                    finish(&mut tls).await;
                    reason
                }
            };
            closed(Transport::Tls, reason);
        });
    }
}

fn handshake_result(t: Transport, result: &'static str, reason: CloseReason) -> CloseReason {
    metrics::counter!(m::HANDSHAKES, "transport" => t.as_str(), "result" => result).increment(1);
    reason
}

fn handshake_ok(t: Transport, started: Instant) {
    metrics::counter!(m::HANDSHAKES, "transport" => t.as_str(), "result" => "ok").increment(1);
    metrics::histogram!(m::HANDSHAKE_SECONDS, "transport" => t.as_str()).record(started.elapsed().as_secs_f64());
}

/// One QUIC bidirectional stream as a connection-like object (one exchange per stream).
pub struct QuicStream {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
}

impl AsyncRead for QuicStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        AsyncWrite::poll_write(Pin::new(&mut self.send), cx, buf).map_err(std::io::Error::from)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        AsyncWrite::poll_flush(Pin::new(&mut self.send), cx).map_err(std::io::Error::from)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        AsyncWrite::poll_shutdown(Pin::new(&mut self.send), cx).map_err(std::io::Error::from)
    }
}

impl Conn for QuicStream {}

/// Serves QUIC: one connection per register, one bidirectional stream per exchange.
pub async fn run_quic(
    endpoint: quinn::Endpoint,
    handshake_timeout: Duration,
    retry: bool,
    ctx: SessionCtx,
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
) {
    loop {
        let incoming = tokio::select! {
            () = ctx.shutdown.triggered() => break,
            i = endpoint.accept() => match i {
                Some(i) => i,
                None => break,
            },
        };
        if retry && !incoming.remote_address_validated() {
            if let Err(e) = incoming.retry() {
                tracing::debug!(error = %e, "QUIC retry not possible");
            }
            continue;
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            shed(Transport::Quic);
            incoming.refuse();
            continue;
        };
        // boxed: a task keeps room for what it captured for its whole life, and the
        // `Incoming` (~400 bytes) is needed only until the handshake starts
        let incoming = Box::new(incoming);
        let ctx = ctx.clone();
        let tracker2 = tracker.clone();
        tracker.spawn(async move {
            opened(Transport::Quic);
            let started = Instant::now();
            let accepted = {
                // the box is freed here, not when the connection ends
                let incoming = incoming;
                (*incoming).accept()
            };
            let connecting = match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "QUIC accept failed");
                    closed(Transport::Quic, handshake_result(Transport::Quic, "failed", CloseReason::HandshakeFailed));
                    return;
                }
            };
            let reason = match tokio::time::timeout(handshake_timeout, connecting).await {
                Err(_) => handshake_result(Transport::Quic, "timeout", CloseReason::HandshakeTimeout),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "QUIC handshake failed");
                    handshake_result(Transport::Quic, "failed", CloseReason::HandshakeFailed)
                }
                Ok(Ok(conn)) => {
                    handshake_ok(Transport::Quic, started);
                    serve_quic_connection(conn, &ctx, permit, &tracker2).await
                }
            };
            closed(Transport::Quic, reason);
        });
    }
    endpoint.close(0u32.into(), b"shutdown");
}

async fn serve_quic_connection(
    conn: quinn::Connection,
    ctx: &SessionCtx,
    _slot: OwnedSemaphorePermit,
    tracker: &TaskTracker,
) -> CloseReason {
    let offset = ctx.shutdown.random_offset();
    loop {
        let (send, recv) = tokio::select! {
            r = conn.accept_bi() => match r {
                Ok(s) => s,
                Err(e) => return quic_close_reason(&e),
            },
            () = ctx.shutdown.close_at(offset) => {
                conn.close(0u32.into(), b"shutdown");
                return CloseReason::Shutdown;
            }
        };
        let ctx = ctx.clone();
        let peer = conn.remote_address();
        tracker.spawn(async move {
            let mut stream = QuicStream { send, recv };
            let reason = session::serve(&mut stream, &ctx, Transport::Quic, Some(peer)).await;
            match reason {
                CloseReason::ClientClosed | CloseReason::Probe | CloseReason::Shutdown => {
                    let _ = stream.send.finish();
                }
                _ => {
                    // closed without an answer: reset so the client learns at once
                    let _ = stream.send.reset(1u32.into());
                    let _ = stream.recv.stop(1u32.into());
                }
            }
        });
    }
}

fn quic_close_reason(e: &quinn::ConnectionError) -> CloseReason {
    use quinn::ConnectionError as E;
    match e {
        E::TimedOut => CloseReason::IdleTimeout,
        E::ApplicationClosed(_) | E::ConnectionClosed(_) | E::LocallyClosed | E::Reset => CloseReason::ClientClosed,
        _ => CloseReason::IoError,
    }
}
