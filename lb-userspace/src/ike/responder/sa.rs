//! One IKE SA of the responder: keys, Message ID windows, the cached response and our
//! own outstanding request (RFC 7296 §2.1–§2.3).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::eap_state::EapState;
use super::frag::Reassembly;
use crate::ike::crypto::prf::IkeSaKeys;
use crate::ike::crypto::sk::SkCipher;
use crate::ike::types::config::AuthRedirect;
use crate::ike::types::payload::Identification;
use crate::ike::types::proposal::{EspSuite, IkeSuite};

/// What one half-open SA is charged beyond its two IKE_SA_INIT messages: the SA itself,
/// its keys, nonces and table entries, rounded up.
pub(in crate::ike) const HALF_OPEN_OVERHEAD: usize = 1024;

/// The key of the per-source half-open limit: an IPv4 address as it is (an IPv4-mapped
/// IPv6 address too), an IPv6 address cut to its /64.
pub(in crate::ike) fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(a) & !u128::from(u64::MAX))),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::ike) enum SaState {
    /// IKE_SA_INIT answered, waiting for IKE_AUTH.
    HalfOpen,
    /// The client authenticated; the redirect is under way or done, and we wait for its
    /// DELETE.
    Established,
    /// Ended; kept only to answer a retransmission of the last request.
    Closed,
    /// To be forgotten now.
    Gone,
}

/// What our one outstanding request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::ike) enum OurRequest {
    /// INFORMATIONAL SK{N(REDIRECT)} (RFC 5685 §5).
    Redirect,
    /// INFORMATIONAL SK{D} of the IKE SA.
    Delete,
}

/// A request of ours waiting for its response (window size 1, §2.3).
pub(in crate::ike) struct Outstanding {
    pub(in crate::ike) what: OurRequest,
    pub(in crate::ike) message_id: u32,
    /// The IKE message as first sent; retransmissions are the same bytes (§2.1).
    pub(in crate::ike) ike: Vec<u8>,
    /// Retransmissions sent so far.
    pub(in crate::ike) tries: u32,
    pub(in crate::ike) next: Instant,
}

/// The response to the client's last request, kept for its retransmissions.
pub(in crate::ike) struct Cached {
    pub(in crate::ike) message_id: u32,
    /// SHA-256 of the request as received: only an identical request is a
    /// retransmission.
    pub(in crate::ike) request: [u8; 32],
    pub(in crate::ike) ike: Vec<u8>,
}

pub(in crate::ike) fn digest(ike: &[u8]) -> [u8; 32] {
    Sha256::digest(ike).into()
}

pub(in crate::ike) struct IkeSa {
    pub(in crate::ike) spi_i: [u8; 8],
    pub(in crate::ike) spi_r: [u8; 8],
    /// Where the IKE_SA_INIT came from: key of the retransmission index and of the
    /// per-source half-open count.
    pub(in crate::ike) init_remote: SocketAddr,
    /// Where the client talks to us now (moved to 4500 on IKE_AUTH, or by a NAT).
    pub(in crate::ike) local: SocketAddr,
    pub(in crate::ike) remote: SocketAddr,
    /// Either side is behind a NAT (NAT_DETECTION_* did not match, §2.23).
    pub(in crate::ike) nat: bool,
    pub(in crate::ike) method: AuthRedirect,
    pub(in crate::ike) suite: IkeSuite,
    pub(in crate::ike) keys: IkeSaKeys,
    /// Opens what the client (the original initiator) sends.
    pub(in crate::ike) open: SkCipher,
    /// Seals what we send.
    pub(in crate::ike) seal: SkCipher,
    /// The IKE_SA_INIT request as received and our response as sent (§2.15); emptied
    /// when the SA leaves half-open.
    pub(in crate::ike) init_req: Vec<u8>,
    pub(in crate::ike) init_resp: Vec<u8>,
    pub(in crate::ike) ni: Vec<u8>,
    pub(in crate::ike) nr: Vec<u8>,
    pub(in crate::ike) state: SaState,
    /// When the current state ends (half-open timeout, linger, closed linger).
    pub(in crate::ike) deadline: Instant,
    /// The Message ID the client's next request must carry.
    pub(in crate::ike) peer_next: u32,
    pub(in crate::ike) cached: Option<Cached>,
    /// The Message ID of our next request.
    pub(in crate::ike) our_next: u32,
    pub(in crate::ike) outstanding: Option<Outstanding>,
    pub(in crate::ike) peer_id: Option<Identification>,
    /// The CHILD SA answered in IKE_AUTH, and our SPI for it (nothing installed).
    pub(in crate::ike) child: Option<(EspSuite, [u8; 4])>,
    /// Both sides sent IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383 §2.3).
    pub(in crate::ike) fragmentation: bool,
    /// The fragments of the client's current request.
    pub(in crate::ike) reassembly: Option<Reassembly>,
    /// The EAP conversation of an [`crate::ike::types::config::AuthMethod::Eap`] client
    /// (RFC 7296 §2.16).
    pub(in crate::ike) eap: Option<Box<EapState>>,
    /// The time this SA is filed under in the responder's timer set.
    pub(in crate::ike) scheduled: Option<Instant>,
}

impl IkeSa {
    /// What this SA is charged against the state bound while half-open.
    pub(in crate::ike) fn half_open_bytes(&self) -> usize {
        HALF_OPEN_OVERHEAD + self.init_req.len() + self.init_resp.len()
    }

    /// The next time something happens to this SA: while a request of ours is out,
    /// its retransmission (the state's deadline waits for the answer or the give-up).
    pub(in crate::ike) fn wake_at(&self) -> Instant {
        match &self.outstanding {
            Some(o) => o.next,
            None => self.deadline,
        }
    }
}
