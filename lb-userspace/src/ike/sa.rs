//! One IKE SA of the responder: keys, Message ID windows, the cached response and our
//! own outstanding request (RFC 7296 §2.1–§2.3).

use std::net::SocketAddr;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::crypto::IkeSaKeys;
use super::payload::Identification;
use super::proposal::{EspSuite, IkeSuite};
use super::responder::AuthRedirect;
use super::sk::SkCipher;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SaState {
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
pub(super) enum OurRequest {
    /// INFORMATIONAL SK{N(REDIRECT)} (RFC 5685 §5).
    Redirect,
    /// INFORMATIONAL SK{D} of the IKE SA.
    Delete,
}

/// A request of ours waiting for its response (window size 1, §2.3).
pub(super) struct Outstanding {
    pub(super) what: OurRequest,
    pub(super) message_id: u32,
    /// The IKE message as first sent; retransmissions are the same bytes (§2.1).
    pub(super) ike: Vec<u8>,
    /// Retransmissions sent so far.
    pub(super) tries: u32,
    pub(super) next: Instant,
}

/// The response to the client's last request, kept for its retransmissions.
pub(super) struct Cached {
    pub(super) message_id: u32,
    /// SHA-256 of the request as received: only an identical request is a
    /// retransmission.
    pub(super) request: [u8; 32],
    pub(super) ike: Vec<u8>,
}

pub(super) fn digest(ike: &[u8]) -> [u8; 32] {
    Sha256::digest(ike).into()
}

pub(super) struct IkeSa {
    pub(super) spi_i: [u8; 8],
    pub(super) spi_r: [u8; 8],
    /// Where the IKE_SA_INIT came from: key of the retransmission index and of the
    /// per-source half-open count.
    pub(super) init_remote: SocketAddr,
    /// Where the client talks to us now (moved to 4500 on IKE_AUTH, or by a NAT).
    pub(super) local: SocketAddr,
    pub(super) remote: SocketAddr,
    /// Either side is behind a NAT (NAT_DETECTION_* did not match, §2.23).
    pub(super) nat: bool,
    pub(super) method: AuthRedirect,
    pub(super) suite: IkeSuite,
    pub(super) keys: IkeSaKeys,
    /// Opens what the client (the original initiator) sends.
    pub(super) open: SkCipher,
    /// Seals what we send.
    pub(super) seal: SkCipher,
    /// The IKE_SA_INIT request as received and our response as sent (§2.15); emptied
    /// when the SA leaves half-open.
    pub(super) init_req: Vec<u8>,
    pub(super) init_resp: Vec<u8>,
    pub(super) ni: Vec<u8>,
    pub(super) nr: Vec<u8>,
    pub(super) state: SaState,
    /// When the current state ends (half-open timeout, linger, closed linger).
    pub(super) deadline: Instant,
    /// The Message ID the client's next request must carry.
    pub(super) peer_next: u32,
    pub(super) cached: Option<Cached>,
    /// The Message ID of our next request.
    pub(super) our_next: u32,
    pub(super) outstanding: Option<Outstanding>,
    pub(super) peer_id: Option<Identification>,
    /// The CHILD SA answered in IKE_AUTH, and our SPI for it (nothing installed).
    pub(super) child: Option<(EspSuite, [u8; 4])>,
    /// Both sides sent IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383 §2.3).
    pub(super) fragmentation: bool,
    /// The fragments of the client's current request.
    pub(super) reassembly: Option<super::frag::Reassembly>,
    /// The EAP conversation of an [`super::AuthMethod::Eap`] client (RFC 7296 §2.16).
    pub(super) eap: Option<Box<super::eap::EapState>>,
    /// The time this SA is filed under in the responder's timer set.
    pub(super) scheduled: Option<Instant>,
}

impl IkeSa {
    /// What this SA is charged against the state bound while half-open.
    pub(super) fn half_open_bytes(&self) -> usize {
        super::responder::HALF_OPEN_OVERHEAD + self.init_req.len() + self.init_resp.len()
    }

    /// The next time something happens to this SA: while a request of ours is out,
    /// its retransmission (the state's deadline waits for the answer or the give-up).
    pub(super) fn wake_at(&self) -> Instant {
        match &self.outstanding {
            Some(o) => o.next,
            None => self.deadline,
        }
    }
}
