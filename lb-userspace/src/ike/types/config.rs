//! What the responder is configured with: our identity and the clients we accept
//! ([`PeerConfig`]), the VIPs and how each redirects ([`VipConfig`]), the target
//! choice ([`TargetChooser`]), and the limits on what unauthenticated clients make it
//! hold ([`ResponderConfig`]).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::identity::Identity;
use crate::ike::cert::validate::Credentials;
use crate::ike::crypto::Secret;

pub use crate::target::{GatewayIdentity, TargetChooser};

/// How a peer authenticates, and we to it.
pub enum AuthMethod {
    /// Shared key message integrity code (RFC 7296 §2.15), the same key both ways.
    Psk(Secret),
    /// Certificates ([`ResponderConfig::credentials`]): the client's chain must lead
    /// to one of our CAs and prove its IDi, its AUTH is a signature (RFC 7427 method
    /// 14, or 9, 10, and 1 with [`ResponderConfig::allow_sha1`]); we answer with our
    /// certificate and an RFC 7427 signature.
    Certificate,
    /// EAP, relayed to a RADIUS server (the responder's `eap` module): we prove ourselves with our
    /// certificate first, the AUTH exchange after EAP uses the MSK.
    Eap,
}

impl fmt::Debug for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthMethod::Psk(_) => f.write_str("Psk(<redacted>)"),
            AuthMethod::Certificate => f.write_str("Certificate"),
            AuthMethod::Eap => f.write_str("Eap"),
        }
    }
}

/// One client identity we accept, and how it authenticates.
#[derive(Debug)]
pub struct PeerConfig {
    pub id: Identity,
    pub auth: AuthMethod,
}

/// How an authenticated client is redirected (docs/protocol.md §2.5, §2.6, §2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthRedirect {
    /// Finish IKE_AUTH normally (the CHILD SA is negotiated, never installed), then send
    /// an INFORMATIONAL request SK{N(REDIRECT)} (RFC 5685 §5). Works with strongSwan
    /// 5.9.8 and libreswan 4.10.
    #[default]
    Informational,
    /// N(REDIRECT) in the IKE_AUTH response with IDr and AUTH, no CHILD SA (RFC 5685
    /// §6). libreswan 4.10 follows it; strongSwan 5.9.8–5.9.11 abort on it.
    IkeAuth,
}

/// What a VIP does with IKE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VipMode {
    /// Redirect in IKE_SA_INIT, as the fast path does; here only what it passed up.
    Init,
    /// Authenticate the client, then redirect it.
    Auth(AuthRedirect),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VipConfig {
    pub addr: IpAddr,
    pub mode: VipMode,
}

/// Everything the responder needs. [`ResponderConfig::new`] gives the defaults.
pub struct ResponderConfig {
    /// Our IDr.
    pub local_id: Identity,
    /// The clients we accept; the first whose identity equals the IDi is used.
    pub peers: Vec<PeerConfig>,
    /// Datagrams to other local addresses are dropped.
    pub vips: Vec<VipConfig>,
    pub chooser: Box<dyn TargetChooser>,
    /// Half-open SAs (all sources) from which on IKE_SA_INIT must carry a valid COOKIE.
    pub cookie_threshold: usize,
    /// How long a cookie secret is used (a cookie stays valid up to twice this).
    pub cookie_rotation: Duration,
    /// Most half-open SAs from one source (an IPv4 address or an IPv6 /64, the
    /// responder's `sa::source_key`); more IKE_SA_INIT are dropped.
    pub half_open_per_source: usize,
    /// Most half-open SAs in all.
    pub half_open_max: usize,
    /// Most SAs of any state in all (established ones wait for the client's DELETE).
    pub sa_max: usize,
    /// Most bytes held in all for half-open SAs (their IKE_SA_INIT request and response
    /// plus the responder's `sa::HALF_OPEN_OVERHEAD` each) and for fragments being
    /// reassembled; a request that would need more is dropped.
    pub state_memory_max: usize,
    /// How long an SA waits for IKE_AUTH after IKE_SA_INIT.
    pub half_open_timeout: Duration,
    /// How long an authenticated SA lives after the redirect, waiting for the client's
    /// DELETE, before it is dropped silently.
    pub redirect_linger: Duration,
    /// How long a closed SA keeps its last response for retransmitted requests.
    pub closed_linger: Duration,
    /// First retransmission interval of our own requests; it doubles on each try.
    pub retransmit_timeout: Duration,
    /// Retransmissions before we give up on a request of ours and drop the SA.
    pub retransmit_tries: u32,
    /// Our certificate and key and the CAs for [`AuthMethod::Certificate`] peers; with
    /// it, IKE_SA_INIT answers carry CERTREQ and SIGNATURE_HASH_ALGORITHMS.
    pub credentials: Option<Arc<Credentials>>,
    /// Accept AUTH method 1 (RSA with SHA-1) from certificate clients; off by default,
    /// SHA-1 signatures being forgeable in practice (SHAttered, 2017).
    pub allow_sha1: bool,
    /// Identities no peer lists authenticate by EAP (a `%any` peer with `auth = "eap"`).
    pub eap_any: bool,
    /// Emit [`Event::Keys`](super::event::Event::Keys) for each SA: a debug/test aid for decrypting captures
    /// (tshark's `ikev2_decryption_table`). Never enable in production.
    pub log_keys: bool,
}

impl ResponderConfig {
    /// Defaults: cookies from 1000 half-open SAs, 20 half-open per source, 10 000 in
    /// all, 64 MiB for half-open and reassembly state, 30 s half-open timeout
    /// (strongSwan's `half_open_timeout`), 30 s linger after a redirect, retransmissions
    /// at 0.5 s doubling, 5 tries (libreswan's start, about 31 s in all); SHA-1
    /// signatures refused.
    pub fn new(local_id: Identity, chooser: Box<dyn TargetChooser>) -> Self {
        ResponderConfig {
            local_id,
            peers: Vec::new(),
            vips: Vec::new(),
            chooser,
            cookie_threshold: 1000,
            cookie_rotation: Duration::from_secs(60),
            half_open_per_source: 20,
            half_open_max: 10_000,
            sa_max: 50_000,
            // 10 000 half-open SAs of a few KiB each fit, with room for reassembly.
            state_memory_max: 64 << 20,
            half_open_timeout: Duration::from_secs(30),
            redirect_linger: Duration::from_secs(30),
            closed_linger: Duration::from_secs(10),
            retransmit_timeout: Duration::from_millis(500),
            retransmit_tries: 5,
            credentials: None,
            allow_sha1: false,
            eap_any: false,
            log_keys: false,
        }
    }
}
