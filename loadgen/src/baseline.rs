//! The baseline: a trivial responder that answers every message with a canned
//! acknowledgment — no parsing, no validation, no storage. Whatever loadgen measures
//! against it is the practical limit of this machine for the transport, to be reported
//! beside every gateway figure.
//!
//! The canned acknowledgment is built once with `ffd` (a real form-7 container). Per
//! message only these bytes change, at fixed offsets: the session header's first 24
//! bytes (signature, versions, FN) and its flags' check-code mode are copied from the
//! request; the container's BCD FN and FD bytes are copied from the request container
//! (offsets 9–19); the values of tags 1041 (FN) and 1040 (FD) are patched; the container
//! check code is recomputed. loadgen's verification therefore works against it exactly as
//! against the gateway, while the responder does no more work than a memcpy and a CRC.
//! (Its operator sign and trailer are canned, so they do not "sign" the patched fields.)

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::Context as _;
use bytes::BytesMut;
use ffd::FnNumber;
use ffd::ack::{AckFields, build_ack_container, wrap_reply};
use ffd::session::SessionHeader;
use ffd::{ResponseCode, SoftwareSigner};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::transport::tls::ALPN;

const HEADER: usize = 30;
/// Offset of the FD (u24 BE) in a container.
const C_FD: usize = 17;
/// Offset of the BCD FN in a container.
const C_FN: usize = 9;

/// A pre-built acknowledgment and where to patch it.
#[derive(Debug, Clone)]
pub struct CannedAck {
    template: Vec<u8>,
    fn_value: usize,
    fd_value: usize,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl CannedAck {
    /// Builds the template (code 0) and locates the FN and FD values of its TLV.
    pub fn new() -> anyhow::Result<Self> {
        let placeholder_fn =
            FnNumber::parse_strict("9876543210987654").map_err(|e| anyhow::anyhow!("placeholder FN: {e:?}"))?;
        let fields = AckFields {
            fn_number: placeholder_fn,
            fd: 0x00AB_CDEF,
            code: ResponseCode::Accepted,
            time: 1_750_000_000,
            ofd_inn: AckFields::pad_inn(crate::registers::DEFAULT_OFD_INN),
            service1: [0x10, 0x09],
        };
        let container = build_ack_container(&fields, &SoftwareSigner::new(b"loadgen-baseline"));
        let header = SessionHeader::for_register(&placeholder_fn, [0x01, 0x20], 0);
        let template = wrap_reply(&header, &container).to_vec();
        let mut fn_tlv = vec![0x11, 0x04, 0x10, 0x00];
        fn_tlv.extend_from_slice(placeholder_fn.as_bytes());
        let mut fd_tlv = vec![0x10, 0x04, 0x04, 0x00];
        fd_tlv.extend_from_slice(&fields.fd.to_le_bytes());
        let body = HEADER + 32;
        let fn_value = find(&template[body..], &fn_tlv)
            .map(|p| body + p + 4)
            .context("tag 1041 not found in the canned acknowledgment")?;
        let fd_value = find(&template[body..], &fd_tlv)
            .map(|p| body + p + 4)
            .context("tag 1040 not found in the canned acknowledgment")?;
        Ok(Self { template, fn_value, fd_value })
    }

    /// Length of every reply.
    pub fn len(&self) -> usize {
        self.template.len()
    }

    /// Never empty.
    pub fn is_empty(&self) -> bool {
        self.template.is_empty()
    }

    /// Writes the reply to `request` (one whole message) into `out`. `false` if the
    /// request is too short to carry a container header's FN and FD.
    pub fn answer(&self, request: &[u8], out: &mut Vec<u8>) -> bool {
        if request.len() < HEADER + C_FD + 3 {
            return false;
        }
        out.clear();
        out.extend_from_slice(&self.template);
        out[..24].copy_from_slice(&request[..24]);
        let mode = u16::from_le_bytes([request[26], request[27]]) & 0x3;
        let mode = if mode == 3 { 0 } else { mode };
        out[26..28].copy_from_slice(&(0x0014 | mode).to_le_bytes());
        let (rq, c) = (&request[HEADER..], HEADER);
        out[c + C_FN..c + C_FD + 3].copy_from_slice(&rq[C_FN..C_FD + 3]);
        out[self.fn_value..self.fn_value + 16].copy_from_slice(&request[8..24]);
        let fd = u32::from_be_bytes([0, rq[C_FD], rq[C_FD + 1], rq[C_FD + 2]]);
        out[self.fd_value..self.fd_value + 4].copy_from_slice(&fd.to_le_bytes());
        let crc = ffd::crc::container_crc(&out[c..]);
        out[c + 2..c + 4].copy_from_slice(&crc.to_le_bytes());
        let session_crc = match mode {
            1 => ffd::crc::crc16(&out[..28]),
            2 => ffd::crc::crc16_parts(&[&out[..28], &out[HEADER..]]),
            _ => 0,
        };
        out[28..30].copy_from_slice(&session_crc.to_le_bytes());
        true
    }
}

/// A certificate and key for the TLS and QUIC listeners.
#[derive(Debug)]
pub struct ServerTls {
    /// Chain, leaf first.
    pub certs: Vec<CertificateDer<'static>>,
    /// Private key.
    pub key: PrivateKeyDer<'static>,
    /// The leaf as PEM (what clients trust, for a self-signed certificate).
    pub cert_pem: String,
}

impl Clone for ServerTls {
    fn clone(&self) -> Self {
        Self { certs: self.certs.clone(), key: self.key.clone_key(), cert_pem: self.cert_pem.clone() }
    }
}

impl ServerTls {
    /// A self-signed ECDSA P-256 certificate for localhost, 127.0.0.1 and ::1.
    pub fn self_signed() -> anyhow::Result<Self> {
        let ck =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()])
                .context("generating a self-signed certificate")?;
        Ok(Self {
            certs: vec![ck.cert.der().clone()],
            key: PrivateKeyDer::from(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der())),
            cert_pem: ck.cert.pem(),
        })
    }

    /// From PEM files.
    pub fn from_files(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let cert_pem = std::fs::read_to_string(cert).with_context(|| format!("reading {}", cert.display()))?;
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing certificates in {}", cert.display()))?;
        anyhow::ensure!(!certs.is_empty(), "no certificate in {}", cert.display());
        let key =
            PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading the private key {}", key.display()))?;
        Ok(Self { certs, key, cert_pem })
    }

    /// A rustls server configuration (ALPN `ofd` offered, not required; stateless
    /// resumption tickets, as the gateway).
    pub fn server_config(&self, tls13_only: bool) -> anyhow::Result<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let b = rustls::ServerConfig::builder_with_provider(provider);
        let b = if tls13_only {
            b.with_protocol_versions(&[&rustls::version::TLS13])
        } else {
            b.with_safe_default_protocol_versions()
        }
        .context("TLS versions")?;
        let mut cfg = b
            .with_no_client_auth()
            .with_single_cert(self.certs.clone(), self.key.clone_key())
            .context("certificate and key do not match")?;
        cfg.alpn_protocols = vec![ALPN.to_vec()];
        // resumption as the gateway offers it (stateless tickets, one per handshake), so
        // that resumed-handshake figures compare like with like
        cfg.ticketer = rustls::crypto::ring::Ticketer::new().context("creating the ticketer")?;
        cfg.send_tls13_tickets = 1;
        Ok(cfg)
    }
}

/// What to listen on.
#[derive(Debug, Clone, Default)]
pub struct BaselineConfig {
    /// Plain TCP.
    pub tcp: Option<SocketAddr>,
    /// TLS over TCP.
    pub tls: Option<SocketAddr>,
    /// QUIC.
    pub quic: Option<SocketAddr>,
    /// Certificate for TLS and QUIC (self-signed if absent).
    pub tls_material: Option<ServerTls>,
    /// Listen backlog of the TCP listeners.
    pub backlog: u32,
}

/// Counts of a running baseline.
#[derive(Debug, Default)]
pub struct BaselineCounters {
    /// Messages answered.
    pub messages: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections closed because a message was too short to answer, or a handshake
    /// failed.
    pub rejected: AtomicU64,
}

/// A running baseline.
#[derive(Debug)]
pub struct Baseline {
    /// Bound TCP address.
    pub tcp_addr: Option<SocketAddr>,
    /// Bound TLS address.
    pub tls_addr: Option<SocketAddr>,
    /// Bound QUIC address.
    pub quic_addr: Option<SocketAddr>,
    /// The certificate clients must trust (TLS/QUIC), PEM.
    pub cert_pem: Option<String>,
    /// Counters.
    pub counters: Arc<BaselineCounters>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    quic: Option<quinn::Endpoint>,
}

fn loopback_only(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    crate::net::check_target(addr)
        .map_err(|_| anyhow::anyhow!("the baseline listens on loopback only (127.0.0.0/8), not {addr}"))
}

fn tcp_listener(addr: SocketAddr, backlog: u32) -> anyhow::Result<tokio::net::TcpListener> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.set_reuseaddr(true)?;
    s.bind(addr).with_context(|| format!("binding {addr}"))?;
    Ok(s.listen(backlog.max(128))?)
}

impl Baseline {
    /// Binds every configured listener and starts serving.
    pub async fn start(cfg: BaselineConfig) -> anyhow::Result<Self> {
        let ack = Arc::new(CannedAck::new()?);
        let counters = Arc::new(BaselineCounters::default());
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let backlog = if cfg.backlog == 0 { 4096 } else { cfg.backlog };
        let tls_material = if cfg.tls.is_some() || cfg.quic.is_some() {
            Some(match cfg.tls_material {
                Some(m) => m,
                None => ServerTls::self_signed()?,
            })
        } else {
            None
        };
        let mut me = Self {
            tcp_addr: None,
            tls_addr: None,
            quic_addr: None,
            cert_pem: tls_material.as_ref().map(|m| m.cert_pem.clone()),
            counters: counters.clone(),
            cancel: cancel.clone(),
            tracker: tracker.clone(),
            quic: None,
        };
        if let Some(addr) = cfg.tcp {
            let l = tcp_listener(loopback_only(addr)?, backlog)?;
            me.tcp_addr = Some(l.local_addr()?);
            tracker.spawn(accept_tcp(l, None, ack.clone(), counters.clone(), cancel.clone(), tracker.clone()));
        }
        if let (Some(addr), Some(m)) = (cfg.tls, &tls_material) {
            let l = tcp_listener(loopback_only(addr)?, backlog)?;
            me.tls_addr = Some(l.local_addr()?);
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(m.server_config(false)?));
            tracker.spawn(accept_tcp(
                l,
                Some(acceptor),
                ack.clone(),
                counters.clone(),
                cancel.clone(),
                tracker.clone(),
            ));
        }
        if let (Some(addr), Some(m)) = (cfg.quic, &tls_material) {
            let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(m.server_config(true)?)
                .context("QUIC server TLS configuration")?;
            let mut sc = quinn::ServerConfig::with_crypto(Arc::new(crypto));
            let mut transport = quinn::TransportConfig::default();
            transport.max_concurrent_bidi_streams(256u32.into());
            transport.max_idle_timeout(Some(quinn::IdleTimeout::from(quinn::VarInt::from_u32(120_000))));
            sc.transport_config(Arc::new(transport));
            let ep = crate::transport::quic::endpoint(loopback_only(addr)?, Some(sc))
                .with_context(|| format!("binding UDP {addr}"))?;
            me.quic_addr = Some(ep.local_addr()?);
            tracker.spawn(accept_quic(ep.clone(), ack, counters, cancel, tracker.clone()));
            me.quic = Some(ep);
        }
        Ok(me)
    }

    /// Messages answered so far.
    pub fn messages(&self) -> u64 {
        self.counters.messages.load(Relaxed)
    }

    /// Stops accepting and closes every connection.
    pub async fn stop(self) {
        self.cancel.cancel();
        if let Some(ep) = &self.quic {
            ep.close(0u32.into(), b"stop");
        }
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.tracker.wait()).await;
        // let the endpoint send every CONNECTION_CLOSE before the process exits: a client
        // that misses it only notices at its idle timeout (a restart would look slow)
        if let Some(ep) = &self.quic {
            let _ = tokio::time::timeout(Duration::from_secs(2), ep.wait_idle()).await;
        }
    }
}

async fn accept_tcp(
    l: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ack: Arc<CannedAck>,
    counters: Arc<BaselineCounters>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let (sock, _) = tokio::select! {
            r = l.accept() => match r {
                Ok(x) => x,
                // EMFILE and the like: back off instead of spinning
                Err(_) => { tokio::time::sleep(Duration::from_millis(10)).await; continue }
            },
            () = cancel.cancelled() => return,
        };
        counters.connections.fetch_add(1, Relaxed);
        let _ = sock.set_nodelay(true);
        let (ack, counters, cancel, tls) = (ack.clone(), counters.clone(), cancel.clone(), tls.clone());
        tracker.spawn(async move {
            match tls {
                None => serve_stream(sock, &ack, &counters, &cancel).await,
                Some(acceptor) => match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(sock)).await {
                    Ok(Ok(s)) => serve_stream(s, &ack, &counters, &cancel).await,
                    _ => {
                        counters.rejected.fetch_add(1, Relaxed);
                    }
                },
            }
        });
    }
}

async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    ack: &CannedAck,
    counters: &BaselineCounters,
    cancel: &CancellationToken,
) {
    let mut buf = BytesMut::with_capacity(2048);
    let mut out = Vec::with_capacity(ack.len());
    loop {
        while buf.len() >= HEADER {
            let total = HEADER + usize::from(u16::from_le_bytes([buf[24], buf[25]]));
            if buf.len() < total {
                break;
            }
            let req = buf.split_to(total);
            if !ack.answer(&req, &mut out) {
                counters.rejected.fetch_add(1, Relaxed);
                return;
            }
            if io.write_all(&out).await.is_err() {
                return;
            }
            counters.messages.fetch_add(1, Relaxed);
        }
        buf.reserve(2048);
        let n = tokio::select! {
            r = io.read_buf(&mut buf) => r,
            () = cancel.cancelled() => return,
        };
        match n {
            Ok(0) | Err(_) => {
                let _ = io.shutdown().await;
                return;
            }
            Ok(_) => {}
        }
    }
}

async fn accept_quic(
    ep: quinn::Endpoint,
    ack: Arc<CannedAck>,
    counters: Arc<BaselineCounters>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let incoming = tokio::select! {
            i = ep.accept() => match i { Some(i) => i, None => return },
            () = cancel.cancelled() => return,
        };
        let (ack, counters, cancel, t2) = (ack.clone(), counters.clone(), cancel.clone(), tracker.clone());
        tracker.spawn(async move {
            let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_secs(10), incoming).await else {
                counters.rejected.fetch_add(1, Relaxed);
                return;
            };
            counters.connections.fetch_add(1, Relaxed);
            loop {
                let (mut send, mut recv) = tokio::select! {
                    s = conn.accept_bi() => match s { Ok(s) => s, Err(_) => return },
                    () = cancel.cancelled() => return,
                };
                let (ack, counters) = (ack.clone(), counters.clone());
                t2.spawn(async move {
                    let mut req = Vec::with_capacity(1024);
                    loop {
                        if req.len() >= HEADER {
                            let total = HEADER + usize::from(u16::from_le_bytes([req[24], req[25]]));
                            if req.len() >= total {
                                req.truncate(total);
                                break;
                            }
                        }
                        match recv.read_chunk(crate::transport::MAX_REPLY, true).await {
                            Ok(Some(c)) if req.len() + c.bytes.len() <= crate::transport::MAX_REPLY => {
                                req.extend_from_slice(&c.bytes);
                            }
                            _ => {
                                counters.rejected.fetch_add(1, Relaxed);
                                return;
                            }
                        }
                    }
                    let mut out = Vec::with_capacity(ack.len());
                    if !ack.answer(&req, &mut out) {
                        counters.rejected.fetch_add(1, Relaxed);
                        return;
                    }
                    if send.write_all(&out).await.is_ok() {
                        let _ = send.finish();
                        counters.messages.fetch_add(1, Relaxed);
                    }
                });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registers::{FfdMix, RegisterIdentity};
    use crate::verify::{Expected, verify_reply};

    #[test]
    fn canned_ack_verifies_for_any_register_and_fd() {
        let ack = CannedAck::new().expect("template");
        let mut out = Vec::new();
        for (index, fd) in [(0u64, 1u32), (77, 0x00FF_FFFF), (5, 123_456)] {
            let reg = RegisterIdentity::derive(3, index, &FfdMix::default()).expect("reg");
            let id = reg.identity(crate::registers::DEFAULT_OFD_INN);
            let msg = ffd::build::message(&id, fd, &ffd::build::open_shift(&id, fd, 1, 1));
            assert!(ack.answer(&msg, &mut out));
            assert_eq!(out.len(), ack.len());
            let want = Expected { fn_number: reg.fn_number, fd, code: 0 };
            verify_reply(bytes::Bytes::from(out.clone()), &want).expect("verifies");
        }
        assert!(!ack.answer(&[0u8; 40], &mut out));
    }

    #[test]
    fn session_crc_mode_is_honoured() {
        let ack = CannedAck::new().expect("template");
        let reg = RegisterIdentity::derive(3, 1, &FfdMix::default()).expect("reg");
        let id = reg.identity(crate::registers::DEFAULT_OFD_INN);
        let mut msg = ffd::build::message(&id, 9, &ffd::build::open_shift(&id, 9, 1, 1)).to_vec();
        msg[26] |= 2; // header + body CRC requested
        let mut out = Vec::new();
        assert!(ack.answer(&msg, &mut out));
        let want = Expected { fn_number: reg.fn_number, fd: 9, code: 0 };
        verify_reply(bytes::Bytes::from(out.clone()), &want).expect("verifies with CRC");
        out[29] ^= 1;
        assert!(verify_reply(bytes::Bytes::from(out), &want).is_err());
    }
}
