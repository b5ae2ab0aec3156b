//! The test gateway: a responder on a virtual clock ([`Gw`]) with the configuration
//! most tests use, the addresses they talk between, and the accepted IKE_SA_INIT every
//! exchange starts with.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use lb_common::maps::Target;
use lb_common::wire::ike::{self as wire};
use zeroize::Zeroizing;

use super::initiator::{InitAnswer, Initiator, TestRng, ike_proposal};
use crate::ike::responder::Responder;
use crate::ike::types::config::{
    AuthMethod, AuthRedirect, PeerConfig, ResponderConfig, VipConfig, VipMode,
};
use crate::ike::types::event::Event;
use crate::ike::types::identity::Identity;
use crate::ike::types::proposal::DhGroup;
pub(super) const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub(super) const TARGET: [u8; 4] = [198, 51, 100, 3];
pub(super) const VIP6: std::net::Ipv6Addr =
    std::net::Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
pub(super) const PSK: &[u8] = b"ikelb test psk";

pub(super) fn client(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(192, 0, 2, last), port))
}

pub(super) fn gw(port: u16) -> SocketAddr {
    SocketAddr::from((VIP, port))
}

/// A gateway `gw.example` that accepts `client.example` with [`PSK`] and redirects
/// everyone to [`TARGET`].
pub(super) fn config(method: AuthRedirect) -> ResponderConfig {
    let chooser = Box::new(|_: IpAddr| Some(Target::ipv4(TARGET)));
    let mut c = ResponderConfig::new(Identity::Fqdn("gw.example".into()), chooser);
    c.peers.push(PeerConfig {
        id: Identity::Fqdn("client.example".into()),
        auth: AuthMethod::Psk(Zeroizing::new(PSK.to_vec())),
    });
    c.vips.push(VipConfig {
        addr: IpAddr::V4(VIP),
        mode: VipMode::Auth(method),
    });
    c.log_keys = true;
    c
}

/// The responder on a virtual clock.
pub(super) struct Gw {
    pub(super) r: Responder,
    pub(super) now: Instant,
}

impl Gw {
    pub(super) fn new(cfg: ResponderConfig) -> Self {
        Gw {
            r: Responder::with_rng(cfg, Box::new(TestRng::new(0x9a7e))),
            now: Instant::now(),
        }
    }

    /// Sends `ike` from `from` to `to` (with the marker on 4500) and returns every IKE
    /// message the responder sent, checking each goes back from `to` to `from`.
    pub(super) fn deliver(&mut self, from: SocketAddr, to: SocketAddr, ike: &[u8]) -> Vec<Vec<u8>> {
        let mut payload = Vec::new();
        if to.port() == wire::PORT_NATT {
            payload.extend_from_slice(&[0; 4]);
        }
        payload.extend_from_slice(ike);
        self.r.handle_datagram(self.now, to, from, &payload);
        self.drain(to, from)
    }

    /// Every transmit queued, as IKE messages; each must go from `local` to `remote`.
    pub(super) fn drain(&mut self, local: SocketAddr, remote: SocketAddr) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(t) = self.r.poll_transmit() {
            assert_eq!((t.local, t.remote), (local, remote));
            let ike = if local.port() == wire::PORT_NATT {
                assert_eq!(&t.payload[..4], &[0; 4], "non-ESP marker");
                t.payload[4..].to_vec()
            } else {
                t.payload
            };
            out.push(ike);
        }
        out
    }

    pub(super) fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.r.poll_event()).collect()
    }

    /// Jumps to the next timer and runs it.
    pub(super) fn step(&mut self) -> Option<Instant> {
        let t = self.r.poll_timeout()?;
        self.now = self.now.max(t);
        self.r.handle_timeout(self.now);
        Some(t)
    }
}

pub(super) fn x25519_gcm() -> (crate::ike::types::payload::Proposal, DhGroup) {
    (ike_proposal((20, 256), None, 5, &[31]), DhGroup::Curve25519)
}

/// IKE_SA_INIT from `c`, which must be accepted.
pub(super) fn init(g: &mut Gw, c: &mut Initiator) {
    let out = g.deliver(c.addr, c.gw, &c.sa_init());
    assert_eq!(out.len(), 1);
    assert_eq!(c.on_sa_init_response(&out[0]), InitAnswer::Accepted);
}
/// The client floats to 4500 for IKE_AUTH, as strongSwan does with NAT-T support.
pub(super) fn float(c: &mut Initiator) {
    c.addr.set_port(4500);
    c.gw.set_port(4500);
}
