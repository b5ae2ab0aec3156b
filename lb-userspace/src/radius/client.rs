//! The RADIUS client as a sans-IO state machine (the shape of [`crate::ike::Responder`]):
//! it turns EAP round trips into Access-Requests, retransmits them, fails over between
//! servers and checks every answer; the driver moves its datagrams and calls it when
//! the clock reaches [`Client::poll_timeout`].
//!
//! **Retransmission and failover** (RFC 2865 §2.4, RFC 5080 §2.2.1). A request is sent
//! to a server and, without an answer, sent again after `timeout`, up to `retries`
//! times, always the same bytes (so a late answer to an earlier copy still matches).
//! Then the server counts as down: a conversation that has not reached a server yet
//! moves on to the next server in the list, as a new packet (new identifier and
//! Request Authenticator); new conversations start at the first server that is not
//! down. A server is down for `revive_after`, then new conversations try it again (so
//! traffic returns to the first server once it is back), or at once when every server
//! is down. A conversation that already got an Access-Challenge stays with its server,
//! because the challenge's State means nothing to another one: if that server goes
//! silent, the conversation fails. When every server was tried, the answer is
//! [`Outcome::Unreachable`]; so a client waits at most `servers × (retries + 1) ×
//! timeout` for its verdict.
//!
//! **Checks.** An answer must come from the server's address, match an outstanding
//! identifier, carry the right Response Authenticator and Message-Authenticator
//! ([`super::packet::parse_answer`]); anything else is dropped and counted in
//! [`Stats`].

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand_core::{CryptoRngCore, OsRng};
use zeroize::Zeroizing;

use super::packet::{AccessRequest, RadiusError, code, identifier, parse_answer};

/// One RADIUS server.
#[derive(Clone)]
pub struct Server {
    pub addr: SocketAddr,
    pub secret: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// In order of preference.
    pub servers: Vec<Server>,
    /// How long to wait for an answer before sending again.
    pub timeout: Duration,
    /// Retransmissions to one server before it counts as down.
    pub retries: u32,
    /// How long a server that stopped answering is passed over by new conversations.
    pub revive_after: Duration,
    /// NAS-Identifier (our name at the server) and NAS-IP-Address, if set.
    pub nas_identifier: String,
    pub nas_ip: Option<IpAddr>,
}

/// Who asks: the driver's handle of one EAP round trip, given back with its outcome.
pub type Ticket = u64;

/// One EAP message to relay to the server.
#[derive(Debug, Clone)]
pub struct Relay {
    pub user_name: Vec<u8>,
    pub eap: Vec<u8>,
    /// From the previous [`Outcome::Challenge`] of this conversation; `None` on its
    /// first message.
    pub cont: Option<Continuation>,
    /// The client's address and the VIP it talks to (Calling- and Called-Station-Id).
    pub client: SocketAddr,
    pub vip: IpAddr,
}

/// What a conversation needs for its next message: the server that challenged it and
/// its State.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    pub server: usize,
    pub state: Option<Vec<u8>>,
}

/// The server's verdict on one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Access-Challenge: send `eap` to the client, and `cont` with its answer.
    Challenge { eap: Vec<u8>, cont: Continuation },
    /// Access-Accept: `eap` (EAP-Success) to the client, `msk` from the MPPE keys.
    Accept {
        eap: Vec<u8>,
        msk: Option<Zeroizing<Vec<u8>>>,
    },
    /// Access-Reject: `eap` (EAP-Failure, may be empty).
    Reject { eap: Vec<u8> },
    /// No server answered in time, or the request could not be sent.
    Unreachable,
}

/// Counters: what the client did and what it dropped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub requests: u64,
    pub retransmits: u64,
    pub accepts: u64,
    pub rejects: u64,
    pub challenges: u64,
    /// Requests that ran out of servers: the client got AUTHENTICATION_FAILED.
    pub unreachable: u64,
    /// A server counted as down after its retries.
    pub server_down: u64,
    /// A conversation moved to the next server.
    pub failovers: u64,
    /// No outstanding request has this source and identifier (late or stray).
    pub dropped_unmatched: u64,
    pub dropped_bad_response_authenticator: u64,
    /// Missing or wrong Message-Authenticator.
    pub dropped_bad_message_authenticator: u64,
    pub dropped_malformed: u64,
    /// Every identifier to that server was in use.
    pub busy: u64,
}

struct Pending {
    ticket: Ticket,
    relay: Relay,
    server: usize,
    identifier: u8,
    authenticator: [u8; 16],
    packet: Vec<u8>,
    tries: u32,
    next: Instant,
    /// Servers this conversation may still move to.
    may_fail_over: bool,
}

/// A datagram for a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub server: SocketAddr,
    pub payload: Vec<u8>,
}

pub struct Client {
    config: ClientConfig,
    rng: Box<dyn CryptoRngCore + Send>,
    /// By (server, identifier).
    pending: HashMap<(usize, u8), Pending>,
    timers: BTreeSet<(Instant, usize, u8)>,
    /// Per server: the next identifier to try, and since when it is down.
    next_id: Vec<u8>,
    down: Vec<Option<Instant>>,
    /// Servers that just went down, for the driver's log.
    went_down: VecDeque<usize>,
    transmits: VecDeque<Transmit>,
    outcomes: VecDeque<(Ticket, Outcome)>,
    stats: Stats,
}

impl Client {
    pub fn new(config: ClientConfig) -> Self {
        Self::with_rng(config, Box::new(OsRng))
    }

    /// With the given randomness (Request Authenticators): seeded in tests.
    pub fn with_rng(config: ClientConfig, rng: Box<dyn CryptoRngCore + Send>) -> Self {
        let n = config.servers.len();
        Client {
            config,
            rng,
            pending: HashMap::new(),
            timers: BTreeSet::new(),
            next_id: vec![0; n],
            down: vec![None; n],
            went_down: VecDeque::new(),
            transmits: VecDeque::new(),
            outcomes: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn servers(&self) -> &[Server] {
        &self.config.servers
    }

    /// Relays one EAP message; its outcome comes out of [`Client::poll_outcome`].
    pub fn start(&mut self, now: Instant, ticket: Ticket, relay: Relay) {
        self.stats.requests += 1;
        let (server, may_fail_over) = match &relay.cont {
            Some(c) => (
                Some(c.server).filter(|&s| s < self.config.servers.len()),
                false,
            ),
            None => (self.first_up(now, 0), true),
        };
        match server {
            Some(s) => self.send_new(now, ticket, relay, s, may_fail_over),
            None => self.fail(ticket),
        }
    }

    /// Whether server `s` is down at `now` (it stopped answering less than
    /// `revive_after` ago).
    fn down_at(&self, now: Instant, s: usize) -> bool {
        self.down[s].is_some_and(|t| now < t + self.config.revive_after)
    }

    /// The first server from `from` on that is not down; when all are, the first one
    /// from `from` (down is a guess, and a server may be back).
    fn first_up(&self, now: Instant, from: usize) -> Option<usize> {
        let n = self.config.servers.len();
        (from..n)
            .find(|&s| !self.down_at(now, s))
            .or((from < n).then_some(from))
    }

    fn fail(&mut self, ticket: Ticket) {
        self.stats.unreachable += 1;
        self.outcomes.push_back((ticket, Outcome::Unreachable));
    }

    fn send_new(
        &mut self,
        now: Instant,
        ticket: Ticket,
        relay: Relay,
        server: usize,
        may_fail_over: bool,
    ) {
        let Some(id) = (0..=255u8)
            .map(|i| self.next_id[server].wrapping_add(i))
            .find(|id| !self.pending.contains_key(&(server, *id)))
        else {
            self.stats.busy += 1;
            self.fail(ticket);
            return;
        };
        self.next_id[server] = id.wrapping_add(1);
        let mut authenticator = [0; 16];
        self.rng.fill_bytes(&mut authenticator);
        let called = relay.vip.to_string();
        let calling = relay.client.ip().to_string();
        let req = AccessRequest {
            user_name: &relay.user_name,
            eap: &relay.eap,
            state: relay.cont.as_ref().and_then(|c| c.state.as_deref()),
            nas_ip: self.config.nas_ip,
            nas_identifier: self.config.nas_identifier.as_bytes(),
            called_station: called.as_bytes(),
            calling_station: calling.as_bytes(),
        };
        let srv = &self.config.servers[server];
        let Ok(packet) = req.encode(id, &authenticator, &srv.secret) else {
            self.fail(ticket);
            return;
        };
        let next = now + self.config.timeout;
        self.transmits.push_back(Transmit {
            server: srv.addr,
            payload: packet.clone(),
        });
        self.timers.insert((next, server, id));
        self.pending.insert(
            (server, id),
            Pending {
                ticket,
                relay,
                server,
                identifier: id,
                authenticator,
                packet,
                tries: 0,
                next,
                may_fail_over,
            },
        );
    }

    /// A datagram from `from`. Returns the check it failed, if any (an unmatched one
    /// is dropped and counted without one).
    pub fn handle_datagram(&mut self, from: SocketAddr, packet: &[u8]) -> Option<RadiusError> {
        let found = identifier(packet).and_then(|id| {
            let s = self.config.servers.iter().position(|s| s.addr == from)?;
            self.pending.contains_key(&(s, id)).then_some((s, id))
        });
        let Some(key) = found else {
            self.stats.dropped_unmatched += 1;
            return None;
        };
        let p = &self.pending[&key];
        let secret = &self.config.servers[key.0].secret;
        let answer = match parse_answer(packet, &p.authenticator, secret) {
            Ok(a) => a,
            Err(e) => {
                match e {
                    RadiusError::BadResponseAuthenticator => {
                        self.stats.dropped_bad_response_authenticator += 1;
                    }
                    RadiusError::MissingMessageAuthenticator
                    | RadiusError::BadMessageAuthenticator => {
                        self.stats.dropped_bad_message_authenticator += 1;
                    }
                    _ => self.stats.dropped_malformed += 1,
                }
                return Some(e);
            }
        };
        let p = self.pending.remove(&key)?;
        self.timers.remove(&(p.next, p.server, p.identifier));
        // It answered: whatever it said, it is up.
        self.down[p.server] = None;
        let outcome = match answer.code {
            code::ACCESS_CHALLENGE => {
                self.stats.challenges += 1;
                Outcome::Challenge {
                    eap: answer.eap,
                    cont: Continuation {
                        server: p.server,
                        state: answer.state,
                    },
                }
            }
            code::ACCESS_ACCEPT => {
                self.stats.accepts += 1;
                let msk = answer.msk();
                Outcome::Accept {
                    eap: answer.eap,
                    msk,
                }
            }
            _ => {
                self.stats.rejects += 1;
                Outcome::Reject { eap: answer.eap }
            }
        };
        self.outcomes.push_back((p.ticket, outcome));
        None
    }

    /// Retransmits, fails over or gives up on what is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, server, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, server, id));
            let Some(mut p) = self.pending.remove(&(server, id)) else {
                continue;
            };
            if p.tries < self.config.retries {
                p.tries += 1;
                p.next = now + self.config.timeout;
                self.stats.retransmits += 1;
                self.transmits.push_back(Transmit {
                    server: self.config.servers[server].addr,
                    payload: p.packet.clone(),
                });
                self.timers.insert((p.next, server, id));
                self.pending.insert((server, id), p);
                continue;
            }
            if !self.down_at(now, server) {
                self.stats.server_down += 1;
                self.went_down.push_back(server);
            }
            self.down[server] = Some(now);
            let next = (server + 1 < self.config.servers.len() && p.may_fail_over)
                .then(|| self.first_up(now, server + 1))
                .flatten();
            match next {
                Some(s) => {
                    self.stats.failovers += 1;
                    self.send_new(now, p.ticket, p.relay, s, true);
                }
                None => self.fail(p.ticket),
            }
        }
    }

    /// Whether a server counts as down at `now` (it did not answer its last request, less
    /// than `revive_after` ago).
    pub fn is_down(&self, now: Instant, server: usize) -> bool {
        server < self.down.len() && self.down_at(now, server)
    }

    /// The next server that went down (stopped answering), for a log line.
    pub fn poll_went_down(&mut self) -> Option<usize> {
        self.went_down.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|&(at, ..)| at)
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_outcome(&mut self) -> Option<(Ticket, Outcome)> {
        self.outcomes.pop_front()
    }

    /// Requests waiting for an answer.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}
