//! The connection handler, written once for every transport (plain TCP, TLS, a QUIC
//! stream) over `AsyncRead + AsyncWrite`.
//!
//! Per message: wait for the first byte (idle timeout; no buffer is held while idle), read
//! until the session header and then the declared body are complete (frame timeout from the
//! first byte; the body size is checked against the limit *before* reserving memory, and
//! the bytes are taken from a global buffer budget), split the frame off the read buffer
//! as `Bytes` (no copy), hand it to ingest, and write the answer as ONE buffer (write
//! timeout). Messages are handled strictly one at a time: registers wait for each reply.
//!
//! During graceful shutdown an idle connection closes at its own random moment within the
//! drain period; a message being read or handled is finished and answered first.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ffd::{FrameStatus, Message, check_frame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::data::close::{CloseReason, Transport};
use crate::data::ingest::{Answer, Ingest};
use crate::data::meters::meters;
use crate::metrics as m;
use crate::shutdown::Shutdown;

/// First read size for a message: covers typical documents in one read.
const FIRST_READ: usize = 2048;

/// A connection that can tell when it has something to read without a buffer, so idle
/// connections hold no read buffer.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send {
    /// Resolves when a read would make progress (or may; a spurious wake-up is fine).
    fn wait_readable(&mut self) -> impl Future<Output = std::io::Result<()>> + Send {
        async { Ok(()) }
    }
}

impl Conn for tokio::net::TcpStream {
    async fn wait_readable(&mut self) -> std::io::Result<()> {
        self.readable().await
    }
}

/// Per-connection settings shared by all connections.
#[derive(Debug)]
pub struct SessionConfig {
    /// Wait for the first byte of a message.
    pub idle_timeout: Duration,
    /// Whole message after its first byte.
    pub frame_timeout: Duration,
    /// Writing a reply.
    pub write_timeout: Duration,
}

/// Everything a connection needs.
#[derive(Debug, Clone)]
pub struct SessionCtx {
    /// The pipeline.
    pub ingest: Arc<Ingest>,
    /// Timeouts.
    pub config: Arc<SessionConfig>,
    /// Global budget of message-buffer bytes.
    pub buffers: Arc<Semaphore>,
    /// Graceful shutdown.
    pub shutdown: Shutdown,
}

/// Serves messages until the connection ends; returns why it ended. The caller counts the
/// reason and closes the transport.
pub async fn serve<C: Conn>(
    io: &mut C,
    ctx: &SessionCtx,
    transport: Transport,
    peer: Option<SocketAddr>,
) -> CloseReason {
    let limits = *ctx.ingest.limits();
    let cfg = &ctx.config;
    let drain_offset = ctx.shutdown.random_offset();
    let mut buf = BytesMut::new();
    let mut served: u64 = 0;
    loop {
        // ---- idle: wait for the first byte of the next message, holding no buffer
        if buf.is_empty() {
            let idle = tokio::time::sleep(cfg.idle_timeout);
            tokio::select! {
                biased;
                r = io.wait_readable() => {
                    if r.is_err() {
                        return CloseReason::IoError;
                    }
                }
                () = idle => return CloseReason::IdleTimeout,
                () = ctx.shutdown.close_at(drain_offset) => return CloseReason::Shutdown,
            }
        }

        // ---- read one whole frame, bounded in size and time
        let mut deadline: Option<tokio::time::Instant> =
            (!buf.is_empty()).then(|| tokio::time::Instant::now() + cfg.frame_timeout);
        let mut budget = None;
        let (header, len) = loop {
            match check_frame(&buf, &limits) {
                Ok(FrameStatus::Complete { header, len }) => break (header, len),
                Ok(FrameStatus::Incomplete(_)) => {}
                Err(e) => {
                    metrics::counter!(m::PROTOCOL_ERRORS, "code" => e.code()).increment(1);
                    tracing::debug!(error = %e, ?peer, "unframeable input, closing");
                    return CloseReason::Protocol;
                }
            }
            // size the buffer: a first chunk, then exactly the declared frame (whose size
            // check_frame has already bounded), taken from the global budget
            if buf.len() >= ffd::session::SESSION_HEADER_LEN && budget.is_none() {
                let total = ffd::session::SESSION_HEADER_LEN + usize::from(u16::from_le_bytes([buf[24], buf[25]]));
                let permits = u32::try_from(total).unwrap_or(u32::MAX);
                match ctx.buffers.clone().acquire_many_owned(permits).await {
                    Ok(p) => budget = Some(p),
                    Err(_) => return CloseReason::Shutdown,
                }
                meters().buffered_bytes.increment(total as f64);
                if buf.capacity() < total {
                    buf.reserve(total - buf.len());
                }
            } else if buf.capacity() == buf.len() {
                buf.reserve(FIRST_READ);
            }
            let read = io.read_buf(&mut buf);
            let n = match deadline {
                Some(d) => match tokio::time::timeout_at(d, read).await {
                    Ok(r) => r,
                    Err(_) => return release(budget, CloseReason::FrameTimeout),
                },
                None => {
                    // first bytes of this message: also bounded by the idle timeout
                    match tokio::time::timeout(cfg.idle_timeout, read).await {
                        Ok(r) => r,
                        Err(_) => return CloseReason::IdleTimeout,
                    }
                }
            };
            match n {
                Ok(0) => {
                    let reason = if !buf.is_empty() {
                        CloseReason::Truncated
                    } else if served == 0 {
                        CloseReason::Probe
                    } else {
                        CloseReason::ClientClosed
                    };
                    return release(budget, reason);
                }
                Ok(n) => {
                    meters().transport(transport).bytes_received.increment(n as u64);
                    if deadline.is_none() {
                        deadline = Some(tokio::time::Instant::now() + cfg.frame_timeout);
                    }
                }
                Err(_) => return release(budget, CloseReason::IoError),
            }
        };

        // ---- handle it
        let frame = buf.split_to(len).freeze();
        if buf.is_empty() {
            buf = BytesMut::new(); // hold nothing while idle
        }
        let msg = Message::new(header, frame);
        let started = Instant::now();
        let reply = if header.is_ping() {
            if let Err(e) = msg.verify_session_crc() {
                metrics::counter!(m::PROTOCOL_ERRORS, "code" => e.code()).increment(1);
                return release(budget, CloseReason::Protocol);
            }
            metrics::counter!(m::PINGS, "transport" => transport.as_str()).increment(1);
            ffd::ack::ping_reply(&header)
        } else {
            // boxed: the ingest/storage future is ~1 KB, and an idle connection's task is
            // sized for its largest state — allocating it per message keeps idle
            // connections small
            match Box::pin(ctx.ingest.handle(&msg, transport, peer)).await {
                Answer::Reply(r) => r,
                Answer::Close(reason) => return release(budget, reason),
            }
        };
        drop(msg);
        release_budget(budget.take());

        // ---- answer with one write
        match tokio::time::timeout(cfg.write_timeout, async {
            io.write_all(&reply).await?;
            io.flush().await
        })
        .await
        {
            Ok(Ok(())) => {
                meters().transport(transport).bytes_sent.increment(reply.len() as u64);
            }
            Ok(Err(_)) => return CloseReason::IoError,
            Err(_) => return CloseReason::WriteTimeout,
        }
        tracing::trace!(elapsed = ?started.elapsed(), "message answered");
        served += 1;
    }
}

fn release_budget(permit: Option<tokio::sync::OwnedSemaphorePermit>) {
    if let Some(p) = permit {
        meters().buffered_bytes.decrement(p.num_permits() as f64);
    }
}

fn release(permit: Option<tokio::sync::OwnedSemaphorePermit>, reason: CloseReason) -> CloseReason {
    release_budget(permit);
    reason
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    /// Every idle connection holds one `serve` future; its size is per-connection memory.
    /// The ingest/storage future must not be part of it (it is boxed per message).
    #[tokio::test]
    async fn the_idle_connection_state_stays_small() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = crate::Config { data_dir: dir.path().to_path_buf(), ..crate::Config::default() };
        let store = crate::server::open_store(&cfg).await.expect("store");
        let rules =
            crate::data::registry::Rules { tariff_grace: Duration::ZERO, replaced_fn_tolerance: Duration::ZERO };
        let ingest = Arc::new(crate::data::ingest::Ingest::new(crate::data::ingest::IngestParts {
            store,
            registry: Arc::new(crate::data::registry::Registry::new(rules)),
            signer: Arc::new(ffd::SoftwareSigner::new(b"key")),
            backlog: Arc::new(crate::data::backlog::Backlog::new()),
            limits: ffd::Limits::default(),
            ofd_inn: "7700000009".into(),
            accept_opaque: true,
            unknown_tags: Default::default(),
            max_inflight: 1,
            ack_timeout: Duration::from_secs(1),
        }));
        let ctx = super::SessionCtx {
            ingest,
            config: Arc::new(super::SessionConfig {
                idle_timeout: Duration::from_secs(1),
                frame_timeout: Duration::from_secs(1),
                write_timeout: Duration::from_secs(1),
            }),
            buffers: Arc::new(tokio::sync::Semaphore::new(1 << 20)),
            shutdown: crate::shutdown::Shutdown::new(Duration::ZERO),
        };
        let mut conn = tokio::net::TcpStream::connect(
            tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr"),
        )
        .await;
        if let Ok(stream) = conn.as_mut() {
            let fut = super::serve(stream, &ctx, crate::data::close::Transport::Tcp, None);
            let size = std::mem::size_of_val(&fut);
            // 800 bytes today; with the ingest future inline it was 1,272
            assert!(size <= 1024, "the per-connection handler state grew to {size} bytes");
        }
    }
}
