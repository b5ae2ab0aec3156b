//! The fallback IKEv2 responder, which redirects clients after they authenticate, as a
//! deterministic sans-IO state machine in quinn's shape: no sockets, no clock reads, no
//! threads.
//!
//! The driver owns the UDP sockets on ports 500 and 4500 of the VIPs and, in a loop:
//! - calls [`Responder::handle_datagram`] for every datagram received (the UDP payload
//!   as it arrived, the non-ESP marker included on 4500), with the local address it
//!   arrived on (`IP_PKTINFO`) and its source;
//! - calls [`Responder::handle_timeout`] when the clock reaches
//!   [`Responder::poll_timeout`];
//!
//! and after each call drains [`Responder::poll_transmit`] (send `payload` from `local`
//! to `remote`) and [`Responder::poll_event`] (count, log, and account redirects to the
//! target the way the fast path does).
//!
//! What it does, per VIP ([`VipConfig`](crate::ike::types::config::VipConfig)):
//! - [`VipMode::Init`]: the slow path of the XDP program. An IKE_SA_INIT that the fast
//!   path would have answered gets the same bytes, from the one builder both share
//!   ([`lb_common::wire::redirect::emit_ike`]); everything else is dropped.
//! - [`VipMode::Auth`]: a real responder (RFC 7296). IKE_SA_INIT with proposal choice,
//!   INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN, COOKIE under load and NAT detection; then
//!   IKE_AUTH with PSK, certificates ([`crate::ike::cert`]) or EAP through RADIUS
//!   (`eap`), and a redirect (RFC 5685) after the client authenticated us, by
//!   one of the two [`AuthRedirect`](crate::ike::types::config::AuthRedirect) methods.
//!
//! **Clients that cannot be redirected.** RFC 5685 §3 forbids sending REDIRECT to a
//! client that did not send REDIRECT_SUPPORTED in IKE_SA_INIT, and ikelb carries no
//! ESP, so completing the exchange would hand the client a tunnel that goes nowhere.
//! A client that sent REDIRECTED_FROM was redirected already: redirecting it again
//! could loop between gateways (§10), so, as on the fast path (which passes it up
//! instead of answering), ikelb never redirects it again, REDIRECT_SUPPORTED or not.
//! Either request is refused at once with N(NO_PROPOSAL_CHOSEN) (no state kept, 36
//! bytes, never larger than the request) and reported as [`Event::RedirectUnsupported`]:
//! the client fails fast and visibly instead of black-holing its traffic.
//!
//! **IKE fragmentation** (RFC 7383): to a client that sends
//! IKEV2_FRAGMENTATION_SUPPORTED we answer it too, and reassemble its SKF requests
//! (`frag`, bounded, one message at a time); our own messages are small and go
//! unfragmented. Without the notify, SKF is dropped.
//!
//! Robustness: every parse is bounded ([`crate::ike::types::message`]); unauthenticated
//! malformed input is dropped, never answered, except INVALID_MAJOR_VERSION and
//! UNSUPPORTED_CRITICAL_PAYLOAD to an IKE_SA_INIT, each answered only when not longer
//! than the request; unknown SPIs and out-of-window Message IDs are ignored;
//! retransmitted requests get the cached response; half-open SAs are limited per source
//! (an IPv4 address, an IPv6 /64: one host owns a whole /64, RFC 4291 §2.5.1, and can
//! change addresses in it at will) and in all, and expire. What unauthenticated clients
//! make us hold, half-open SAs and fragments being reassembled, has one global byte
//! bound ([`ResponderConfig::state_memory_max`]); an SA that authenticated keeps no copy
//! of IKE_SA_INIT. Keys live in zeroizing buffers.
//!
//! **Layout.** [`Responder`] (here, its only `impl`) owns the SA table (`table`) and
//! the shared `core`, and hands each datagram to its handler: `init` (IKE_SA_INIT),
//! `encrypted` (everything after it), which passes IKE_AUTH to `auth` and `eap`; both
//! end in `outcome`. A handler of an authenticated request gets one context (`ctx::Ctx`:
//! core, SA, time and request). `sa` is one IKE SA, `eap_state` its EAP conversation,
//! `cookie` the stateless COOKIE and `frag` SKF reassembly. Handlers call down this
//! list, never back up.

mod auth;
mod cookie;
mod core;
mod ctx;
pub(super) mod eap;
mod eap_state;
mod encrypted;
pub(in crate::ike) mod frag;
mod init;
mod outcome;
mod request;
pub(in crate::ike) mod sa;
mod table;

use std::net::SocketAddr;
use std::time::Instant;

use lb_common::wire::ike as wire;
use rand_core::{CryptoRngCore, OsRng};

use self::core::Core;
use self::request::Datagram;
use self::table::Table;
use super::types::config::{ResponderConfig, VipMode};
use super::types::event::{Event, Transmit};
use super::types::message::Header;
use super::types::natt::{NattPayload, classify_natt};
use crate::radius::{Outcome, Relay, Ticket};

/// The responder: all IKE SAs of all auth-mode VIPs of this node.
pub struct Responder {
    pub(in crate::ike) core: Core,
    pub(in crate::ike) table: Table,
}

impl Responder {
    /// A responder drawing randomness from the OS.
    pub fn new(config: ResponderConfig) -> Self {
        Self::with_rng(config, Box::new(OsRng))
    }

    /// A responder with the given randomness: seeded in tests, so runs repeat exactly.
    pub fn with_rng(config: ResponderConfig, rng: Box<dyn CryptoRngCore + Send>) -> Self {
        Responder {
            core: Core::new(config, rng),
            table: Table::default(),
        }
    }

    /// Handles one received UDP payload. `local` is the address and port it arrived on
    /// (500 or 4500; on 4500 `payload` starts with the non-ESP marker), `remote` its
    /// source. Poll transmits and events afterwards.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        payload: &[u8],
    ) {
        let ike = if local.port() == wire::PORT_NATT {
            match classify_natt(payload) {
                NattPayload::Ike(m) => m,
                NattPayload::Keepalive | NattPayload::Esp => return,
            }
        } else {
            payload
        };
        let Some(vip) = self
            .core
            .config
            .vips
            .iter()
            .find(|v| v.addr == local.ip())
            .copied()
        else {
            return;
        };
        let d = Datagram {
            now,
            local,
            remote,
            ike,
        };
        let header = match Header::parse(ike) {
            Ok((h, _)) => h,
            Err(e) => {
                init::answer_bad_header(&mut self.core, &d, &e);
                return;
            }
        };
        let core = &mut self.core;
        match vip.mode {
            VipMode::Init => init::init_mode(core, &d),
            VipMode::Auth(method) => {
                if header.exchange == wire::EXCHANGE_IKE_SA_INIT && !header.response {
                    init::sa_init(core, &mut self.table, &d, &header, method);
                    return;
                }
                // Anything else is for an SA we hold, found by our SPI (unknown SPIs
                // are ignored, §2.21.4 allows no answer to unauthenticated input).
                let Some(mut sa) = self.table.take(&header.spi_r) else {
                    return;
                };
                // We are always the original responder, so everything the client sends
                // has I.
                if sa.spi_i == header.spi_i && header.initiator {
                    if header.response {
                        encrypted::response(core, &mut sa, &d, &header);
                    } else {
                        encrypted::request(core, &mut sa, &d, &header);
                    }
                }
                self.table.put_back(sa);
            }
        }
    }

    /// New settings: the SAs stay and finish under them; the cookie secret stays, so
    /// cookies handed out stay valid.
    pub fn reconfigure(&mut self, config: ResponderConfig) {
        self.core.config = config;
    }

    /// Expires half-open and lingering SAs and retransmits our requests whose time has
    /// come. Call it when the clock reaches [`Responder::poll_timeout`] (earlier or
    /// more often is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(mut sa) = self.table.take_due(now) {
            self.core.on_sa_timer(now, &mut sa);
            self.table.put_back(sa);
        }
    }

    /// The RADIUS client's verdict on the EAP message of `ticket` (module `eap`). Outcomes
    /// for SAs that are gone (expired, deleted) are ignored.
    pub fn handle_eap_outcome(&mut self, now: Instant, ticket: Ticket, outcome: Outcome) {
        let Some(mut sa) = self.table.take(&ticket.to_be_bytes()) else {
            return;
        };
        eap::backend_answered(&mut self.core, &mut sa, now, outcome);
        self.table.put_back(sa);
    }

    /// When [`Responder::handle_timeout`] should be called next; `None` while no SA
    /// exists. Ask again after every `handle_*` call.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.table.next_wake()
    }

    /// The next datagram to send. Drain it after every `handle_*` call.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.core.transmits.pop_front()
    }

    /// The next event. Drain it after every `handle_*` call.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.events.pop_front()
    }

    /// The next EAP message for the RADIUS client. Drain it after every `handle_*`
    /// call; hand each outcome back with [`Responder::handle_eap_outcome`].
    pub fn poll_eap(&mut self) -> Option<(Ticket, Relay)> {
        self.core.eap_out.pop_front()
    }

    /// SAs held, of any state.
    pub fn sa_count(&self) -> usize {
        self.table.len()
    }

    /// SAs waiting for IKE_AUTH.
    pub fn half_open_count(&self) -> usize {
        self.core.half_open
    }

    /// Bytes held for half-open SAs and reassembly, as bounded by
    /// [`ResponderConfig::state_memory_max`].
    pub fn state_bytes(&self) -> usize {
        self.core.state_bytes
    }
}
