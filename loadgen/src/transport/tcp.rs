//! Plain TCP.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::connect_stats::SourceStat;
use super::{ConnectError, Connector, SourcePool, StreamConn, tcp_connect};

/// Connects over plain TCP.
#[derive(Debug, Clone)]
pub struct TcpConnector {
    target: SocketAddr,
    sources: Arc<SourcePool>,
}

impl TcpConnector {
    /// To `target`, from `sources`.
    pub fn new(target: SocketAddr, sources: Arc<SourcePool>) -> Self {
        Self { target, sources }
    }
}

impl Connector for TcpConnector {
    type Conn = StreamConn<TcpStream>;

    async fn connect(&self, deadline: Instant) -> Result<Self::Conn, ConnectError> {
        let (slot, ip) = self.sources.pick();
        let r = tcp_connect(self.target, ip, deadline).await;
        self.sources.count(slot, r.is_ok());
        r.map(StreamConn::new)
    }

    fn sources(&self) -> Vec<SourceStat> {
        self.sources.stats()
    }
}
