//! Heap bytes per idle TLS connection on the server side, counted exactly (not RSS): the
//! gateway's `TlsConn` (rustls's unbuffered API, buffers released when empty) against
//! tokio-rustls's buffered stream (what the gateway used before), with plain TCP beside them.
//!
//! The servers run in this process, whose allocations are counted (`stats_alloc`); the
//! clients run in a child process (this binary with `--clients`), so that none of theirs
//! are. `CONNS` clients connect, then each exchanges one message; the live heap is read with
//! every connection idle after the handshake and again after the message.
//!
//!   cargo bench -p gateway --bench tls_memory            # CONNS=2000 MESSAGE=600 REPLY=150

use std::alloc::System;
use std::io::{BufRead, Write};
use std::sync::Arc;

use gateway::data::session::Conn;
use gateway::data::tls_conn::TlsConn;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Live heap bytes allocated since `region` began.
fn live(region: &Region<'_, System>) -> isize {
    let c = region.change();
    c.bytes_allocated as isize - c.bytes_deallocated as isize + c.bytes_reallocated
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tcp,
    Buffered,
    Unbuffered,
}

/// The old gateway's idle wait on tokio-rustls: plaintext already decrypted, or the socket.
async fn buffered_wait(s: &mut tokio_rustls::server::TlsStream<TcpStream>) -> std::io::Result<()> {
    let (tcp, tls) = s.get_mut();
    match tls.process_new_packets() {
        Ok(st) if st.plaintext_bytes_to_read() > 0 || st.peer_has_closed() => return Ok(()),
        Ok(_) => {}
        Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
    }
    tcp.readable().await
}

/// Like the gateway's session: wait with no buffer, read one message into a buffer that
/// is dropped after the reply, answer, wait again.
async fn serve<C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    io: &mut C,
    wait: impl AsyncFn(&mut C) -> std::io::Result<()>,
    message: usize,
    reply: usize,
) {
    loop {
        if wait(io).await.is_err() {
            return;
        }
        let mut buf = vec![0u8; message];
        if io.read_exact(&mut buf).await.is_err() {
            return;
        }
        drop(buf);
        if io.write_all(&vec![7u8; reply]).await.is_err() || io.flush().await.is_err() {
            return;
        }
    }
}

async fn server(listener: TcpListener, kind: Kind, config: Arc<rustls::ServerConfig>, message: usize, reply: usize) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
    loop {
        let Ok((tcp, _)) = listener.accept().await else { return };
        let (acceptor, config) = (acceptor.clone(), config.clone());
        // one task type per transport, so that each is only as large as its own state
        match kind {
            Kind::Tcp => {
                tokio::spawn(async move {
                    let mut tcp = tcp;
                    serve(&mut tcp, async |s: &mut TcpStream| s.readable().await, message, reply).await;
                });
            }
            Kind::Buffered => {
                tokio::spawn(async move {
                    if let Ok(mut s) = acceptor.accept(tcp).await {
                        serve(&mut s, buffered_wait, message, reply).await;
                    }
                });
            }
            Kind::Unbuffered => {
                tokio::spawn(async move {
                    if let Ok(mut s) = TlsConn::accept(tcp, config).await {
                        serve(&mut s, async |s: &mut TlsConn| s.wait_readable().await, message, reply).await;
                    }
                });
            }
        }
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
}

/// The child: `--clients ADDR tls|tcp CONNS MESSAGE REPLY CA_DER_HEX`. Connects, says
/// `connected`, waits for a line, exchanges one message per connection, says `done`, and
/// holds the connections until its stdin closes.
fn clients(args: &[String]) {
    let [addr, kind, conns, message, reply, ca] = args else { panic!("--clients ADDR KIND CONNS MESSAGE REPLY CA") };
    let addr: std::net::SocketAddr = addr.parse().expect("addr");
    let (conns, message, reply): (usize, usize, usize) =
        (conns.parse().expect("conns"), message.parse().expect("message"), reply.parse().expect("reply"));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(hex::decode(ca).expect("hex"))).expect("root");
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("version")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    rt.block_on(async {
        let connector = tokio_rustls::TlsConnector::from(config);
        let mut plain = Vec::new();
        let mut tls = Vec::new();
        for _ in 0..conns {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            if kind == "tcp" {
                plain.push(tcp);
            } else {
                tls.push(
                    connector.connect(ServerName::try_from("localhost").expect("name"), tcp).await.expect("handshake"),
                );
            }
        }
        println!("connected");
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).expect("go");
        let msg = vec![1u8; message];
        let mut answer = vec![0u8; reply];
        for c in &mut plain {
            c.write_all(&msg).await.expect("send");
            c.read_exact(&mut answer).await.expect("reply");
        }
        for c in &mut tls {
            c.write_all(&msg).await.expect("send");
            c.flush().await.expect("flush");
            c.read_exact(&mut answer).await.expect("reply");
        }
        println!("done");
        let _ = std::io::stdin().lock().read_line(&mut line);
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--clients") {
        return clients(&args[i + 1..]);
    }
    let conns = env("CONNS", 2000);
    let message = env("MESSAGE", 600);
    let reply = env("REPLY", 150);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let ca = hex::encode(cert.as_ref());
    let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der()).expect("key");
    let mut sc = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
    // as the gateway: stateless tickets, one per connection
    sc.ticketer = rustls::crypto::ring::Ticketer::new().expect("ticketer");
    sc.send_tls13_tickets = 1;
    let server_config = Arc::new(sc);

    println!(
        "heap bytes per idle server-side connection, {conns} connections, {message}-byte message, {reply}-byte reply"
    );
    println!("| transport | after the handshake | after one message |");
    println!("|---|---:|---:|");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
    for kind in [Kind::Tcp, Kind::Buffered, Kind::Unbuffered] {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let server = tokio::spawn(server(listener, kind, server_config.clone(), message, reply));
            settle().await;
            let region = Region::new(GLOBAL);
            let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
                .args(["--clients", &addr.to_string(), if kind == Kind::Tcp { "tcp" } else { "tls" }])
                .args([conns.to_string(), message.to_string(), reply.to_string(), ca.clone()])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("clients");
            let mut stdin = child.stdin.take().expect("stdin");
            let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
            let mut line = String::new();
            let mut expect = |what: &str, line: &mut String| {
                line.clear();
                out.read_line(line).expect("child");
                assert_eq!(line.trim(), what, "the clients failed");
            };
            expect("connected", &mut line);
            settle().await;
            let connected = live(&region);
            writeln!(stdin, "go").expect("go");
            expect("done", &mut line);
            settle().await;
            let after = live(&region);
            let per = |b: isize| format!("{:.2} KiB", b as f64 / conns as f64 / 1024.0);
            println!("| {kind:?} | {} | {} |", per(connected), per(after));
            drop(stdin);
            child.wait().expect("child exit");
            server.abort();
        });
    }
}
