//! TLS over TCP for registers, on rustls's *unbuffered* connection API: this module owns
//! every byte buffer, so an idle connection holds none.
//!
//! rustls's buffered connection keeps a receive buffer of at least 4 KiB for the life of
//! every connection (its deframer buffer), which was half of an idle TLS register's memory.
//! Here the received TLS bytes, the decrypted bytes not yet read and the encrypted bytes
//! not yet sent live in three vectors that are released as soon as they are empty, the
//! way [`crate::data::session`] releases its frame buffer. What stays per connection is
//! rustls's state machine and keys.
//!
//! Bounds: received TLS bytes are read in 4 KiB steps and never held beyond one largest
//! record or handshake flight ([`MAX_INCOMING`]); decrypted bytes never exceed the TLS
//! bytes they came from; a write encrypts what it is given and sends it before it accepts
//! more.
//!
//! Closing: a peer's `close_notify` reads as end of stream; a TCP end without one is an
//! `UnexpectedEof` error (a truncation attack cannot pass for an orderly close), as with
//! rustls's buffered API.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::data::session::Conn;

/// One read from the socket.
const READ_STEP: usize = 4096;

/// Received bytes held at most: a handshake message may span records up to 64 KiB (rustls's
/// own limit), plus one whole largest record behind it.
pub const MAX_INCOMING: usize = 0x1_0000 + 5 + 16_384 + 256;

/// A server-side TLS connection over TCP whose buffers exist only while in use.
pub struct TlsConn {
    tcp: TcpStream,
    tls: UnbufferedServerConnection,
    /// Received TLS bytes not yet processed.
    incoming: Vec<u8>,
    /// Encrypted bytes to send, from `sent` on.
    outgoing: Vec<u8>,
    sent: usize,
    /// Decrypted bytes not yet read, from `taken` on.
    plaintext: Vec<u8>,
    taken: usize,
    /// The peer's close_notify has been processed.
    peer_closed: bool,
    /// Our close_notify is queued.
    close_sent: bool,
}

/// What one round of processing ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The handshake needs more bytes from the peer.
    Handshaking,
    /// Established: application data may be sent; more may be read.
    Established,
    /// Both sides have closed.
    Closed,
}

/// What to encrypt when the connection can send application data.
#[derive(Clone, Copy)]
enum Out<'a> {
    Nothing,
    Data(&'a [u8]),
    CloseNotify,
}

fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Appends what `write` produces to `out`, growing it to the size the encoder asks for.
fn append(out: &mut Vec<u8>, guess: usize, mut write: impl FnMut(&mut [u8]) -> Result<usize, usize>) -> usize {
    let start = out.len();
    let mut want = guess;
    loop {
        out.resize(start + want, 0);
        match write(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return n;
            }
            Err(required) if required > want => want = required,
            Err(_) => {
                // the encoder refused a buffer of the size it asked for: cannot happen
                out.truncate(start);
                return 0;
            }
        }
    }
}

fn encode_needs(e: EncodeError) -> Result<usize, io::Error> {
    match e {
        EncodeError::InsufficientSize(s) => Ok(s.required_size),
        other => Err(invalid(other)),
    }
}

fn encrypt_needs(e: EncryptError) -> Result<usize, io::Error> {
    match e {
        EncryptError::InsufficientSize(s) => Ok(s.required_size),
        other => Err(invalid(other)),
    }
}

impl TlsConn {
    /// Runs the server handshake on `tcp` (the caller bounds it in time).
    pub async fn accept(tcp: TcpStream, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let tls = UnbufferedServerConnection::new(config).map_err(invalid)?;
        let mut conn = Self {
            tcp,
            tls,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            sent: 0,
            plaintext: Vec::new(),
            taken: 0,
            peer_closed: false,
            close_sent: false,
        };
        std::future::poll_fn(|cx| conn.poll_handshake(cx)).await?;
        Ok(conn)
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_send(cx))?;
            match self.process(Out::Nothing) {
                // what rustls queued goes out first (the loop's head sends it)
                _ if !self.outgoing.is_empty() => continue,
                Ok(Step::Established) => return Poll::Ready(Ok(())),
                Ok(Step::Closed) => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
                Ok(Step::Handshaking) => {}
                Err(e) => return Poll::Ready(Err(self.fail(cx, e))),
            }
            if ready!(self.poll_fill(cx))? == 0 {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "TLS handshake cut short")));
            }
        }
    }

    /// After a TLS error: queue the alert rustls prepared, try once to send it, and return
    /// the error.
    fn fail(&mut self, cx: &mut Context<'_>, e: io::Error) -> io::Error {
        // rustls hands a queued alert out before it looks at the received bytes again, and
        // those must be the buffer it saw fail (its handshake joiner points into it). One
        // call only: a second would re-read the failing record.
        let UnbufferedStatus { state, .. } = self.tls.process_tls_records(&mut self.incoming);
        if let Ok(ConnectionState::EncodeTlsData(mut enc)) = state {
            append(&mut self.outgoing, 64, |b| enc.encode(b).map_err(|e| encode_needs(e).unwrap_or(0)));
        }
        self.incoming = Vec::new();
        let _ = self.poll_send(cx);
        self.outgoing = Vec::new();
        e
    }

    /// Processes the received TLS bytes until rustls needs more of them or can send
    /// application data, queueing what it wants sent and collecting what it decrypted;
    /// `send` is encrypted once it may be.
    fn process(&mut self, send: Out<'_>) -> io::Result<Step> {
        let mut send = send;
        loop {
            let UnbufferedStatus { mut discard, state } = self.tls.process_tls_records(&mut self.incoming);
            let step = match state.map_err(invalid) {
                Err(e) => Err(e),
                Ok(ConnectionState::ReadTraffic(mut records)) => {
                    let mut failed = None;
                    while let Some(record) = records.next_record() {
                        match record {
                            Ok(r) => {
                                discard += r.discard;
                                self.plaintext.extend_from_slice(r.payload);
                            }
                            Err(e) => {
                                failed = Some(invalid(e));
                                break;
                            }
                        }
                    }
                    failed.map_or(Ok(None), Err)
                }
                Ok(ConnectionState::EncodeTlsData(mut enc)) => {
                    let mut needs = Ok(0);
                    append(&mut self.outgoing, 512, |b| {
                        enc.encode(b).map_err(|e| match encode_needs(e) {
                            Ok(n) => n,
                            Err(e) => {
                                needs = Err(e);
                                0
                            }
                        })
                    });
                    needs.map(|_| None)
                }
                // the encoded bytes are queued in `outgoing`, which is sent before anything
                // else is read or written
                Ok(ConnectionState::TransmitTlsData(t)) => {
                    t.done();
                    Ok(None)
                }
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    Ok(None)
                }
                Ok(ConnectionState::Closed) => {
                    self.peer_closed = true;
                    Ok(Some(Step::Closed))
                }
                Ok(ConnectionState::BlockedHandshake) => Ok(Some(Step::Handshaking)),
                Ok(ConnectionState::WriteTraffic(mut w)) => match send {
                    Out::Nothing => Ok(Some(Step::Established)),
                    Out::Data(data) => {
                        send = Out::Nothing;
                        let guess = data.len() + (data.len() / 16_384 + 1) * 64;
                        let mut needs = Ok(0);
                        append(&mut self.outgoing, guess, |b| {
                            w.encrypt(data, b).map_err(|e| match encrypt_needs(e) {
                                Ok(n) => n,
                                Err(e) => {
                                    needs = Err(e);
                                    0
                                }
                            })
                        });
                        needs.map(|_| None)
                    }
                    Out::CloseNotify => {
                        send = Out::Nothing;
                        self.close_sent = true;
                        append(&mut self.outgoing, 64, |b| {
                            w.queue_close_notify(b).map_err(|e| encrypt_needs(e).unwrap_or(0))
                        });
                        Ok(None)
                    }
                },
                // early data is not enabled on this listener, so it cannot arrive
                Ok(other) => Err(io::Error::new(io::ErrorKind::InvalidData, format!("unexpected TLS state {other:?}"))),
            };
            self.incoming.drain(..discard.min(self.incoming.len()));
            if self.incoming.is_empty() {
                self.incoming = Vec::new();
            }
            if let Some(step) = step? {
                return Ok(step);
            }
        }
    }

    /// Reads what the socket has into `incoming`; `Ok(0)` is the end of the TCP stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.incoming.len() >= MAX_INCOMING {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, "TLS record or flight too large")));
        }
        loop {
            ready!(self.tcp.poll_read_ready(cx))?;
            self.incoming.reserve(READ_STEP.min(MAX_INCOMING - self.incoming.len()));
            match self.tcp.try_read_buf(&mut self.incoming) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.incoming.is_empty() {
                        self.incoming = Vec::new();
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Sends everything queued in `outgoing`, then releases it.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.outgoing.len() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.outgoing[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.outgoing = Vec::new();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    fn has_plaintext(&self) -> bool {
        self.taken < self.plaintext.len()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.has_plaintext() {
                let n = buf.remaining().min(this.plaintext.len() - this.taken);
                buf.put_slice(&this.plaintext[this.taken..this.taken + n]);
                this.taken += n;
                if !this.has_plaintext() {
                    this.plaintext = Vec::new();
                    this.taken = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.peer_closed {
                return Poll::Ready(Ok(()));
            }
            // answers rustls owes the peer (a key update) go out before we wait for more
            ready!(this.poll_send(cx))?;
            match this.process(Out::Nothing) {
                Ok(Step::Closed) => return Poll::Ready(Ok(())),
                Ok(_) if this.has_plaintext() || this.peer_closed || !this.outgoing.is_empty() => continue,
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(this.fail(cx, e))),
            }
            if ready!(this.poll_fill(cx))? == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed the TCP connection without a TLS close_notify",
                )));
            }
        }
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        if this.close_sent {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let data = &data[..data.len().min(4 * 16_384)];
        match this.process(Out::Data(data)) {
            // `Established` is only returned once `data` has been encrypted into `outgoing`
            Ok(Step::Established) => {}
            Ok(Step::Closed) => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            Ok(Step::Handshaking) => return Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
            Err(e) => return Poll::Ready(Err(this.fail(cx, e))),
        }
        // accepted: start sending now; the rest goes on the next write or flush
        if let Poll::Ready(Err(e)) = this.poll_send(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        if !this.close_sent {
            this.close_sent = true;
            // a broken session ends without close_notify
            if this.process(Out::CloseNotify).is_ok() {
                ready!(this.poll_send(cx))?;
            }
        }
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

impl Conn for TlsConn {
    async fn wait_readable(&mut self) -> io::Result<()> {
        // decrypted bytes, unprocessed records or a close are readable now
        if self.has_plaintext() || !self.incoming.is_empty() || self.peer_closed {
            return Ok(());
        }
        self.tcp.readable().await
    }
}

#[cfg(test)]
#[path = "tls_conn/tests.rs"]
mod tests;
