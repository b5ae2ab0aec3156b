//! The tokio edge of the RADIUS [`Client`]: one unbound UDP socket per address family
//! the servers use (the kernel picks the source address and port; answers are matched
//! by the server's address and the packet's identifier), a reader task per socket, and
//! the log lines for what the client counts: a server that stopped answering, a client
//! that got no verdict, an answer dropped by a check.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::client::{Client, ClientConfig, Outcome, Relay, Stats, Ticket};

pub struct RadiusEdge {
    client: Client,
    v4: Option<Arc<UdpSocket>>,
    v6: Option<Arc<UdpSocket>>,
    rx: mpsc::Receiver<(SocketAddr, Vec<u8>)>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// The client of each outstanding ticket, for the log line of its verdict.
    clients: HashMap<Ticket, SocketAddr>,
}

impl RadiusEdge {
    /// Opens the sockets; call it inside the runtime that drives it.
    pub fn new(config: ClientConfig) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel(1024);
        let mut readers = Vec::new();
        let mut open = |want: bool, any: SocketAddr| -> io::Result<Option<Arc<UdpSocket>>> {
            if !want {
                return Ok(None);
            }
            let std = std::net::UdpSocket::bind(any)?;
            std.set_nonblocking(true)?;
            let sock = Arc::new(UdpSocket::from_std(std)?);
            let (s, tx) = (sock.clone(), tx.clone());
            readers.push(tokio::spawn(async move {
                let mut buf = vec![0u8; super::packet::MAX_LEN + 1];
                loop {
                    match s.recv_from(&mut buf).await {
                        Ok((n, from)) => {
                            if tx.send((from, buf[..n].to_vec())).await.is_err() {
                                return;
                            }
                        }
                        // ICMP port unreachable from a server that is down: the
                        // retransmission timer handles it.
                        Err(e) => debug!(error = %e, "RADIUS recv"),
                    }
                }
            }));
            Ok(Some(sock))
        };
        let v4 = open(
            config.servers.iter().any(|s| s.addr.is_ipv4()),
            (Ipv4Addr::UNSPECIFIED, 0).into(),
        )?;
        let v6 = open(
            config.servers.iter().any(|s| s.addr.is_ipv6()),
            (Ipv6Addr::UNSPECIFIED, 0).into(),
        )?;
        Ok(RadiusEdge {
            client: Client::new(config),
            v4,
            v6,
            rx,
            readers,
            clients: HashMap::new(),
        })
    }

    /// The next datagram from a server's direction (pending forever once the readers
    /// are gone).
    pub async fn recv(&mut self) -> (SocketAddr, Vec<u8>) {
        match self.rx.recv().await {
            Some(d) => d,
            None => std::future::pending().await,
        }
    }

    pub fn handle_datagram(&mut self, from: SocketAddr, packet: &[u8]) {
        if let Some(e) = self.client.handle_datagram(from, packet) {
            let s = self.client.stats();
            warn!(
                server = %from,
                error = %e,
                dropped_bad_response_authenticator = s.dropped_bad_response_authenticator,
                dropped_bad_message_authenticator = s.dropped_bad_message_authenticator,
                "RADIUS answer dropped"
            );
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.client.handle_timeout(now);
        while let Some(i) = self.client.poll_went_down() {
            warn!(
                server = %self.client.servers()[i].addr,
                server_down = self.client.stats().server_down,
                "RADIUS server not answering: failing over"
            );
        }
    }

    pub fn start(&mut self, now: Instant, ticket: Ticket, relay: Relay) {
        self.clients.insert(ticket, relay.client);
        self.client.start(now, ticket, relay);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.client.poll_timeout()
    }

    /// The next verdict, logged when no server gave one.
    pub fn poll_outcome(&mut self) -> Option<(Ticket, Outcome)> {
        let (ticket, outcome) = self.client.poll_outcome()?;
        let client = self.clients.remove(&ticket);
        if outcome == Outcome::Unreachable {
            warn!(
                client = %client.map_or("-".into(), |c| c.to_string()),
                unreachable = self.client.stats().unreachable,
                "no RADIUS server answered: authentication failed"
            );
        }
        Some((ticket, outcome))
    }

    /// Sends what the client queued.
    pub async fn flush(&mut self) {
        while let Some(t) = self.client.poll_transmit() {
            let sock = if t.server.is_ipv4() {
                &self.v4
            } else {
                &self.v6
            };
            let Some(sock) = sock else { continue };
            if let Err(e) = sock.send_to(&t.payload, t.server).await {
                // The retransmission timer covers a failed send like a lost one.
                debug!(server = %t.server, error = %e, "RADIUS send");
            }
        }
    }

    pub fn stats(&self) -> Stats {
        self.client.stats().clone()
    }
}

impl Drop for RadiusEdge {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
    }
}
