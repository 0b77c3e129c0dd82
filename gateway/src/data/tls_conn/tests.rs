//! The unbuffered TLS connection against rustls's own (buffered) client, driven by hand so
//! that the TCP stream can be cut into arbitrary pieces: handshakes in both TLS versions,
//! records split across reads, several records in one read, messages larger than a record,
//! a key update, orderly and unorderly closes, garbage instead of a handshake — and no
//! buffer held once a connection is idle.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::TlsConn;

struct Pki {
    server: Arc<rustls::ServerConfig>,
    client13: Arc<rustls::ClientConfig>,
    client12: Arc<rustls::ClientConfig>,
}

fn pki() -> Pki {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der()).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("root");
    let client = |v: &'static rustls::SupportedProtocolVersion| {
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[v])
                .expect("version")
                .with_root_certificates(roots.clone())
                .with_no_client_auth(),
        )
    };
    Pki {
        server: Arc::new(server),
        client13: client(&rustls::version::TLS13),
        client12: client(&rustls::version::TLS12),
    }
}

/// A blocking rustls client on its own thread's socket, writing its TLS bytes in pieces
/// of `piece` bytes with a pause between them.
struct Client {
    tls: rustls::ClientConnection,
    sock: std::net::TcpStream,
    piece: usize,
}

impl Client {
    fn connect(addr: std::net::SocketAddr, config: Arc<rustls::ClientConfig>, piece: usize) -> Self {
        let sock = std::net::TcpStream::connect(addr).expect("connect");
        sock.set_nodelay(true).expect("nodelay");
        sock.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let tls =
            rustls::ClientConnection::new(config, ServerName::try_from("localhost").expect("name")).expect("client");
        let mut c = Self { tls, sock, piece };
        while c.tls.is_handshaking() {
            c.flush();
            if c.tls.is_handshaking() && !c.tls.wants_write() {
                c.receive();
            }
        }
        c.flush();
        c
    }

    fn flush(&mut self) {
        let mut out = Vec::new();
        while self.tls.wants_write() {
            self.tls.write_tls(&mut out).expect("write_tls");
        }
        for chunk in out.chunks(self.piece) {
            self.sock.write_all(chunk).expect("send");
            if self.piece < out.len() {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }

    fn receive(&mut self) {
        let n = self.tls.read_tls(&mut self.sock).expect("read_tls");
        assert!(n > 0, "server closed during the exchange");
        self.tls.process_new_packets().expect("server's TLS is valid");
    }

    fn send(&mut self, data: &[u8]) {
        self.tls.writer().write_all(data).expect("plaintext");
        self.flush();
    }

    fn expect(&mut self, len: usize) -> Vec<u8> {
        let mut got = Vec::new();
        while got.len() < len {
            let mut buf = [0u8; 4096];
            match self.tls.reader().read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.receive(),
                Err(e) => panic!("reading: {e}"),
            }
        }
        got
    }
}

/// An echo server: reads `len` bytes, writes them back reversed, `rounds` times, then
/// reads once more and returns what the last read gave.
async fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    len: usize,
    rounds: usize,
) -> std::io::Result<usize> {
    let (tcp, _) = listener.accept().await?;
    let mut conn = TlsConn::accept(tcp, config).await?;
    for _ in 0..rounds {
        let mut buf = vec![0u8; len];
        conn.read_exact(&mut buf).await?;
        buf.reverse();
        conn.write_all(&buf).await?;
        conn.flush().await?;
        assert_eq!(
            (conn.incoming.capacity(), conn.outgoing.capacity(), conn.plaintext.capacity()),
            (0, 0, 0),
            "an idle connection holds buffers"
        );
    }
    let mut one = [0u8; 1];
    let n = conn.read(&mut one).await?;
    conn.shutdown().await?;
    Ok(n)
}

async fn exchange(tls12: bool, piece: usize, len: usize, rounds: usize, orderly: bool) -> std::io::Result<usize> {
    let p = pki();
    let client = if tls12 { p.client12 } else { p.client13 };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(serve(listener, p.server, len, rounds));
    tokio::task::spawn_blocking(move || {
        let mut c = Client::connect(addr, client, piece);
        // round 1 follows a TLS 1.3 key update by the client
        for round in 0..rounds {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7 + round) as u8).collect();
            if round == 1 && !tls12 {
                c.tls.refresh_traffic_keys().expect("key update");
            }
            c.send(&msg);
            let mut want = msg.clone();
            want.reverse();
            assert_eq!(c.expect(len), want, "round {round}");
        }
        if orderly {
            c.tls.send_close_notify();
            c.flush();
        }
        drop(c);
    })
    .await
    .expect("client");
    server.await.expect("server task")
}

#[tokio::test]
async fn tls13_exchanges_in_whole_and_split_records_end_with_close_notify() {
    // whole flights, then one byte at a time, then a message of several records
    assert_eq!(exchange(false, 1 << 20, 600, 3, true).await.expect("served"), 0);
    assert_eq!(exchange(false, 1, 300, 2, true).await.expect("served"), 0);
    assert_eq!(exchange(false, 1000, 40_000, 2, true).await.expect("served"), 0);
}

#[tokio::test]
async fn tls12_exchanges_work_too() {
    assert_eq!(exchange(true, 1 << 20, 600, 2, true).await.expect("served"), 0);
    assert_eq!(exchange(true, 7, 20_000, 2, true).await.expect("served"), 0);
}

#[tokio::test]
async fn a_tcp_end_without_close_notify_is_an_error_not_an_end_of_stream() {
    let e = exchange(false, 1 << 20, 100, 1, false).await.expect_err("truncated");
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
}

/// A handshake that is sent `bytes` instead of a ClientHello: the server's result and the
/// raw socket (to read what the server answered).
async fn raw_handshake(bytes: &[u8]) -> (std::io::Result<()>, TcpStream) {
    let p = pki();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        TlsConn::accept(tcp, p.server).await.map(|_| ())
    });
    let mut sock = TcpStream::connect(addr).await.expect("connect");
    sock.write_all(bytes).await.expect("send");
    let result = tokio::time::timeout(Duration::from_secs(5), server).await.expect("answered at once").expect("task");
    (result, sock)
}

#[tokio::test]
async fn garbage_instead_of_a_client_hello_fails_the_handshake_with_an_alert() {
    // a handshake record header announcing a ClientHello, then nonsense
    let (result, mut sock) =
        raw_handshake(&[0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef]).await;
    let err = result.expect_err("not a handshake");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), sock.read_to_end(&mut reply)).await;
    assert_eq!(reply.first(), Some(&0x15), "a TLS alert record is sent before closing: {reply:02x?}");
}

#[tokio::test]
async fn a_record_larger_than_tls_allows_is_refused_without_buffering_it() {
    // a record header announcing 65,535 bytes: refused from the header alone
    let (result, _) = raw_handshake(&[0x16, 0x03, 0x01, 0xff, 0xff, 0x01]).await;
    assert_eq!(result.expect_err("refused").kind(), std::io::ErrorKind::InvalidData);
}
