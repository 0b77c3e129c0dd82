//! Serving the admin API: plain HTTP (loopback), or TLS with the registers' certificate
//! machinery (`tls::load`, `tls::admin_server_config`) and optional client certificates.
//!
//! With TLS the accept loop only accepts: each handshake runs in its own task under
//! `limits.handshake_timeout` (at most [`MAX_HANDSHAKES`] at once), and finished streams
//! are handed to axum through a channel, so one slow client never stalls the others.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::{Listener, ListenerExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::state::Shared;

/// TLS handshakes of the admin listener in progress at once.
pub const MAX_HANDSHAKES: usize = 256;

/// Prepares the admin API on a bound listener; the future serves it until `stop`. Errors
/// (an unreadable certificate or client CA) come out before anything is served.
pub fn serve(
    listener: TcpListener,
    shared: Shared,
    stop: CancellationToken,
) -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    let tls = if shared.config.admin.tls {
        let material = crate::tls::load(&shared.config)?;
        Some(crate::tls::admin_server_config(&shared.config, &material)?)
    } else {
        None
    };
    let timeout = shared.config.limits.handshake_timeout;
    let app = super::router(shared);
    Ok(async move {
        let shutdown = {
            let stop = stop.clone();
            async move { stop.cancelled().await }
        };
        match tls {
            None => {
                let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                    .with_graceful_shutdown(shutdown)
                    .await;
            }
            Some(config) => {
                let local = listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
                let (tx, rx) = mpsc::channel(64);
                tokio::spawn(accept_loop(listener, TlsAcceptor::from(config), timeout, tx, stop.clone()));
                let incoming = TlsIncoming { rx, local }.tap_io(|_| {});
                let _ = axum::serve(incoming, app.into_make_service_with_connect_info::<SocketAddr>())
                    .with_graceful_shutdown(shutdown)
                    .await;
            }
        }
    })
}

/// Accepts TCP connections and hands each to its own handshake task.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    timeout: std::time::Duration,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "admin API: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "admin API: too many TLS handshakes in progress; connection closed");
            continue;
        };
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::info!(%peer, error = %e, "admin API: TLS handshake failed"),
                Err(_) => tracing::info!(%peer, "admin API: TLS handshake timed out"),
            }
        });
    }
}

/// Finished TLS connections, as an axum listener.
struct TlsIncoming {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl Listener for TlsIncoming {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // the accept loop stopped: wait for the graceful shutdown that stopped it
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
