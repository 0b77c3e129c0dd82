//! The QUIC endpoint, with transport parameters sized for small documents: a few
//! bidirectional streams per connection, no unidirectional streams, stream and connection
//! windows just above one largest message instead of quinn's bulk-transfer defaults
//! (~125 MB of possible buffering per connection). No path-MTU discovery: datagrams stay
//! at QUIC's 1200-byte minimum (a document of at most ~33 KiB needs a few more packets),
//! because the first probe grows the connection's transmit buffer, which quinn keeps for
//! the connection's life, from 1200 to 2400 bytes: ~1.2 KiB more per idle connection.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{IdleTimeout, TransportConfig, VarInt};

use crate::config::Config;
use crate::tls::TlsMaterial;

/// Binds the QUIC endpoint.
pub fn endpoint(cfg: &Config, material: &TlsMaterial, addr: SocketAddr) -> anyhow::Result<quinn::Endpoint> {
    let tls = crate::tls::server_config(cfg, material, true)?;
    let crypto = QuicServerConfig::try_from(tls).context("TLS configuration unusable for QUIC")?;
    let mut transport = TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(VarInt::from_u32(cfg.quic.max_streams_per_connection))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .stream_receive_window(VarInt::from_u32(cfg.quic.stream_window))
        .receive_window(VarInt::from_u32(cfg.quic.connection_window))
        .send_window(u64::from(cfg.quic.connection_window))
        .max_idle_timeout(Some(
            IdleTimeout::try_from(cfg.limits.idle_timeout).context("limits.idle_timeout too large for QUIC")?,
        ))
        .keep_alive_interval(None)
        .datagram_receive_buffer_size(None)
        .mtu_discovery_config(None);
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport));
    server.migration(false);

    let socket = {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        // handshake storms: a larger receive buffer keeps Initials from being dropped
        let _ = s.set_recv_buffer_size(8 << 20);
        let _ = s.set_send_buffer_size(8 << 20);
        s.bind(&addr.into())?;
        std::net::UdpSocket::from(s)
    };
    let runtime = quinn::default_runtime().context("no async runtime for QUIC")?;
    let endpoint = quinn::Endpoint::new(quinn::EndpointConfig::default(), Some(server), socket, runtime)?;
    Ok(endpoint)
}
