//! What every part of the responder shares: its configuration, randomness and cookie
//! secrets, the accounting of what unauthenticated clients make it hold, and the queues
//! of what it sends and reports; and the steps every exchange takes on an SA: sending,
//! choosing a target, leaving half-open, closing, and our own requests with their
//! retransmission (RFC 7296 §2.1).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use lb_common::wire::ike as wire;
use rand_core::{CryptoRng, CryptoRngCore, RngCore};

use super::cookie::Cookies;
use super::eap_state::EapState;
use super::sa::{IkeSa, OurRequest, Outstanding, SaState, source_key};
use crate::ike::types::config::{GatewayIdentity, ResponderConfig};
use crate::ike::types::event::{DeleteReason, Event, RedirectHow, Transmit};
use crate::ike::types::message::{Header, Payload};
use crate::radius::{Relay, Ticket};

/// Randomness for SPIs, nonces, DH secrets and IVs. Tests pass a seeded one.
pub(super) struct Rng(pub(super) Box<dyn CryptoRngCore + Send>);

impl RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.try_fill_bytes(dest)
    }
}

impl CryptoRng for Rng {}

/// The responder's state apart from its SA table.
pub(in crate::ike) struct Core {
    pub(in crate::ike) config: ResponderConfig,
    pub(super) rng: Rng,
    pub(super) cookies: Cookies,
    pub(super) half_open: usize,
    /// Half-open SAs by [`source_key`].
    pub(super) half_open_by_source: HashMap<IpAddr, usize>,
    /// Bytes charged against [`ResponderConfig::state_memory_max`].
    pub(super) state_bytes: usize,
    pub(super) transmits: VecDeque<Transmit>,
    pub(super) events: VecDeque<Event>,
    /// EAP messages for the RADIUS client.
    pub(super) eap_out: VecDeque<(Ticket, Relay)>,
}

impl Core {
    pub(super) fn new(config: ResponderConfig, rng: Box<dyn CryptoRngCore + Send>) -> Self {
        let mut rng = Rng(rng);
        let cookies = Cookies::new(config.cookie_rotation, &mut rng);
        Core {
            config,
            rng,
            cookies,
            half_open: 0,
            half_open_by_source: HashMap::new(),
            state_bytes: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            eap_out: VecDeque::new(),
        }
    }

    /// Room left under [`ResponderConfig::state_memory_max`].
    pub(super) fn state_room(&self) -> usize {
        self.config
            .state_memory_max
            .saturating_sub(self.state_bytes)
    }

    pub(super) fn event(&mut self, e: Event) {
        self.events.push_back(e);
    }

    /// Queues `ike` (an IKE message) from `local` to `remote`, with the non-ESP marker
    /// on port 4500.
    pub(super) fn send(&mut self, local: SocketAddr, remote: SocketAddr, ike: &[u8]) {
        let mut payload = Vec::with_capacity(ike.len() + wire::NON_ESP_MARKER_LEN);
        if local.port() == wire::PORT_NATT {
            payload.extend_from_slice(&[0; wire::NON_ESP_MARKER_LEN]);
        }
        payload.extend_from_slice(ike);
        self.transmits.push_back(Transmit {
            local,
            remote,
            payload,
        });
    }

    /// The target for `client` (source address and port) and its SPIi, if the chooser
    /// has one of the client's family.
    pub(super) fn choose(
        &mut self,
        client: SocketAddr,
        spi_i: &[u8; 8],
    ) -> Option<GatewayIdentity> {
        crate::target::choice::choose(&mut *self.config.chooser, client, spi_i)
    }

    /// A REDIRECT to `target` was sent to `client`: count it and report it.
    pub(super) fn redirected(
        &mut self,
        client: SocketAddr,
        spi_i: [u8; 8],
        target: GatewayIdentity,
        how: RedirectHow,
    ) {
        self.config.chooser.redirected(&target);
        self.event(Event::Redirected {
            client,
            spi_i,
            target,
            how,
        });
    }

    /// Counts a new half-open SA against the limits and the state bound.
    pub(super) fn enter_half_open(&mut self, sa: &IkeSa) {
        self.half_open += 1;
        self.state_bytes += sa.half_open_bytes();
        *self
            .half_open_by_source
            .entry(source_key(sa.init_remote.ip()))
            .or_insert(0) += 1;
    }

    /// Moves an SA out of the half-open count (on IKE_AUTH, or when it ends). Its copy of
    /// IKE_SA_INIT is needed no more (only IKE_AUTH signs it, and a retransmitted
    /// IKE_SA_INIT is answered only while half-open): it is freed.
    pub(super) fn leave_half_open(&mut self, sa: &mut IkeSa) {
        if sa.state != SaState::HalfOpen {
            return;
        }
        self.half_open = self.half_open.saturating_sub(1);
        self.state_bytes = self.state_bytes.saturating_sub(sa.half_open_bytes());
        sa.init_req = Vec::new();
        sa.init_resp = Vec::new();
        let key = source_key(sa.init_remote.ip());
        if let Some(n) = self.half_open_by_source.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.half_open_by_source.remove(&key);
            }
        }
    }

    /// Stores an SA's EAP state back, charging what it holds now against the state bound.
    pub(super) fn put_eap(&mut self, sa: &mut IkeSa, mut st: Box<EapState>) {
        let held = st.held();
        self.state_bytes = (self.state_bytes + held).saturating_sub(st.charged);
        st.charged = held;
        sa.eap = Some(st);
    }

    /// Ends an SA's EAP state (taken out of it) and gives its bytes back.
    pub(super) fn drop_eap(&mut self, st: Box<EapState>) {
        self.state_bytes = self.state_bytes.saturating_sub(st.charged);
    }

    /// Ends an SA: it keeps only its last response, for `closed_linger`.
    pub(super) fn close(&mut self, now: Instant, sa: &mut IkeSa, reason: DeleteReason) {
        if matches!(sa.state, SaState::Closed | SaState::Gone) {
            return;
        }
        self.leave_half_open(sa);
        self.state_bytes = self
            .state_bytes
            .saturating_sub(sa.reassembly.take().map_or(0, |r| r.held()));
        sa.state = SaState::Closed;
        sa.outstanding = None;
        // An EAP conversation (and its MSK) ends with the SA, not after the linger.
        if let Some(st) = sa.eap.take() {
            self.drop_eap(st);
        }
        sa.deadline = now + self.config.closed_linger;
        self.event(Event::SaDeleted {
            client: sa.remote,
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
            reason,
        });
    }

    /// Sends an INFORMATIONAL request of ours; it is retransmitted until answered.
    pub(super) fn request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        what: OurRequest,
        payloads: Vec<Payload>,
    ) {
        let header = Header {
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
            exchange: wire::EXCHANGE_INFORMATIONAL,
            initiator: false,
            response: false,
            message_id: sa.our_next,
        };
        let Ok(ike) = sa.seal.seal(&header, &payloads, &mut self.rng) else {
            return;
        };
        self.send(sa.local, sa.remote, &ike);
        sa.outstanding = Some(Outstanding {
            what,
            message_id: sa.our_next,
            ike,
            tries: 0,
            next: now + self.config.retransmit_timeout,
        });
        sa.our_next = sa.our_next.wrapping_add(1);
    }

    /// An SA's timer went off: retransmit our request, or end the state that expired.
    pub(super) fn on_sa_timer(&mut self, now: Instant, sa: &mut IkeSa) {
        if sa.outstanding.is_some() {
            self.retransmit_due(now, sa);
        } else if sa.deadline <= now {
            match sa.state {
                SaState::HalfOpen => {
                    self.close(now, sa, DeleteReason::HalfOpenExpired);
                    sa.state = SaState::Gone;
                }
                SaState::Established => {
                    self.close(now, sa, DeleteReason::Expired);
                    sa.state = SaState::Gone;
                }
                SaState::Closed | SaState::Gone => sa.state = SaState::Gone,
            }
        }
    }

    /// Retransmits our request if its time has come, or gives up on the SA.
    fn retransmit_due(&mut self, now: Instant, sa: &mut IkeSa) {
        let Some(o) = &mut sa.outstanding else { return };
        if o.next > now {
            return;
        }
        if o.tries >= self.config.retransmit_tries {
            self.close(now, sa, DeleteReason::RetransmitTimeout);
            return;
        }
        o.tries += 1;
        // 0.5 s, 1 s, 2 s, … (§2.1: exponential back-off); the cap keeps the shift sane.
        let backoff = 1u32 << o.tries.min(16);
        o.next = now + self.config.retransmit_timeout.saturating_mul(backoff);
        let ike = o.ike.clone();
        self.send(sa.local, sa.remote, &ike);
    }
}
