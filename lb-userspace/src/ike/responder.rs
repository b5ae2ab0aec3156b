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
//! What it does, per VIP ([`VipConfig`]):
//! - [`VipMode::Init`]: the slow path of the XDP program. An IKE_SA_INIT that the fast
//!   path would have answered gets the same bytes, from the one builder both share
//!   ([`lb_common::wire::redirect::emit_ike`]); everything else is dropped.
//! - [`VipMode::Auth`]: a real responder (RFC 7296). IKE_SA_INIT with proposal choice,
//!   INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN, COOKIE under load and NAT detection; then
//!   IKE_AUTH with PSK, certificates ([`super::cert`]) or EAP through RADIUS
//!   ([`super::eap`]), and a redirect (RFC 5685) after the client authenticated us, by
//!   one of the two [`AuthRedirect`] methods.
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
//! ([`super::frag`], bounded, one message at a time); our own messages are small and go
//! unfragmented. Without the notify, SKF is dropped.
//!
//! Robustness: every parse is bounded ([`super::message`]); unauthenticated malformed
//! input is dropped, never answered, except INVALID_MAJOR_VERSION and
//! UNSUPPORTED_CRITICAL_PAYLOAD to an IKE_SA_INIT, each answered only when not longer
//! than the request; unknown SPIs and out-of-window Message IDs are ignored;
//! retransmitted requests get the cached response; half-open SAs are limited per source
//! (an IPv4 address, an IPv6 /64: one host owns a whole /64, RFC 4291 §2.5.1, and can
//! change addresses in it at will) and in all, and expire. What unauthenticated clients
//! make us hold, half-open SAs and fragments being reassembled, has one global byte
//! bound ([`ResponderConfig::state_memory_max`]); an SA that authenticated keeps no copy
//! of IKE_SA_INIT. Keys live in zeroizing buffers.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use lb_common::wire::ike as wire;
use rand_core::{CryptoRng, CryptoRngCore, OsRng, RngCore};

use super::cookie::Cookies;
use super::crypto::Secret;
use super::message::Header;
use super::payload::Identification;
use super::proposal::{Encr, Integ};
use super::sa::{IkeSa, SaState};
use super::{NattPayload, classify_natt};

/// A gateway identity for N(REDIRECT) (RFC 5685 §9.2), as the fast path's target table
/// holds it: IPv4, IPv6 or FQDN.
pub type GatewayIdentity = lb_common::maps::Target;

/// Picks the gateway a client is redirected to. The fast path's target choice (the slot
/// table of the cluster) plugs in here; a closure works too. `None`: no target now.
/// The answer must serve the client's address family (an FQDN serves both); one that
/// does not is treated as `None`.
pub trait TargetChooser: Send {
    fn choose(&mut self, client: IpAddr) -> Option<GatewayIdentity>;

    /// The choice for one IKE SA: `client` is the request's source address and port,
    /// `spi_i` the initiator's SPI, the inputs of the fast path's flow hash
    /// (`lb_common::wire::request::flow_hash`), so a chooser over the fast path's slot
    /// table answers exactly what the XDP program would. Defaults to
    /// [`TargetChooser::choose`] on the address.
    fn choose_flow(&mut self, client: SocketAddr, spi_i: &[u8; 8]) -> Option<GatewayIdentity> {
        let _ = spi_i;
        self.choose(client.ip())
    }

    /// Called when a REDIRECT to `target`, the latest choice, was sent: count it.
    fn redirected(&mut self, target: &GatewayIdentity) {
        let _ = target;
    }
}

impl<F: FnMut(IpAddr) -> Option<GatewayIdentity> + Send> TargetChooser for F {
    fn choose(&mut self, client: IpAddr) -> Option<GatewayIdentity> {
        self(client)
    }
}

/// An IKE identity (RFC 7296 §3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// ID_IPV4_ADDR or ID_IPV6_ADDR.
    Ip(IpAddr),
    /// ID_FQDN, e.g. `gw.example`.
    Fqdn(String),
    /// ID_RFC822_ADDR, e.g. `alice@example`.
    Rfc822(String),
    /// ID_DER_ASN1_DN: the DER encoding of the distinguished name.
    DerDn(Vec<u8>),
}

impl Identity {
    /// The IDi/IDr payload for this identity.
    pub fn to_payload(&self) -> Identification {
        let (kind, data) = match self {
            Identity::Ip(IpAddr::V4(a)) => (wire::ID_IPV4_ADDR, a.octets().to_vec()),
            Identity::Ip(IpAddr::V6(a)) => (wire::ID_IPV6_ADDR, a.octets().to_vec()),
            Identity::Fqdn(s) => (wire::ID_FQDN, s.as_bytes().to_vec()),
            Identity::Rfc822(s) => (wire::ID_RFC822_ADDR, s.as_bytes().to_vec()),
            Identity::DerDn(d) => (wire::ID_DER_ASN1_DN, d.clone()),
        };
        Identification { kind, data }
    }
}

/// How a peer authenticates, and we to it.
pub enum AuthMethod {
    /// Shared key message integrity code (RFC 7296 §2.15), the same key both ways.
    Psk(Secret),
    /// Certificates ([`ResponderConfig::credentials`]): the client's chain must lead
    /// to one of our CAs and prove its IDi, its AUTH is a signature (RFC 7427 method
    /// 14, or 9, 10, and 1 with [`ResponderConfig::allow_sha1`]); we answer with our
    /// certificate and an RFC 7427 signature.
    Certificate,
    /// EAP, relayed to a RADIUS server ([`super::eap`]): we prove ourselves with our
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
    /// Most half-open SAs from one source (IPv4 address or IPv6 /64, [`source_key`]);
    /// more IKE_SA_INIT are dropped.
    pub half_open_per_source: usize,
    /// Most half-open SAs in all.
    pub half_open_max: usize,
    /// Most SAs of any state in all (established ones wait for the client's DELETE).
    pub sa_max: usize,
    /// Most bytes held in all for half-open SAs (their IKE_SA_INIT request and response
    /// plus [`HALF_OPEN_OVERHEAD`] each) and for fragments being reassembled; a request
    /// that would need more is dropped.
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
    pub credentials: Option<std::sync::Arc<super::cert::Credentials>>,
    /// Accept AUTH method 1 (RSA with SHA-1) from certificate clients; off by default,
    /// SHA-1 signatures being forgeable in practice (SHAttered, 2017).
    pub allow_sha1: bool,
    /// Identities no peer lists authenticate by EAP (a `%any` peer with `auth = "eap"`).
    pub eap_any: bool,
    /// Emit [`Event::Keys`] for each SA: a debug/test aid for decrypting captures
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

/// A datagram to send: UDP payload (non-ESP marker included when `local` is port
/// 4500), from `local` to `remote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub payload: Vec<u8>,
}

/// Where a redirect was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectHow {
    /// IKE_SA_INIT REDIRECT of a [`VipMode::Init`] VIP (the fast path's answer).
    Init,
    /// Inside the IKE_AUTH response.
    IkeAuth,
    /// In an INFORMATIONAL request after IKE_AUTH.
    Informational,
}

/// Why an SA ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// The client deleted it (the normal end after a redirect).
    PeerDelete,
    /// No IKE_AUTH in time.
    HalfOpenExpired,
    /// No DELETE in time after the redirect.
    Expired,
    /// The client never answered our request.
    RetransmitTimeout,
    /// The client's AUTH failed, or it asked for something we do not do.
    AuthFailed,
    /// An authenticated request was malformed (INVALID_SYNTAX).
    InvalidSyntax,
    /// No target to redirect to: we deleted the SA ourselves.
    NoTarget,
}

/// SPIs and SK_e*/SK_a* of one IKE SA, for decrypting captures.
pub struct KeyLog {
    pub spi_i: [u8; 8],
    pub spi_r: [u8; 8],
    pub encr: Encr,
    pub integ: Option<Integ>,
    pub sk_ei: Secret,
    pub sk_er: Secret,
    pub sk_ai: Secret,
    pub sk_ar: Secret,
}

impl fmt::Debug for KeyLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyLog")
            .field("spi_i", &hex(&self.spi_i))
            .field("spi_r", &hex(&self.spi_r))
            .finish_non_exhaustive()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl KeyLog {
    /// One row of tshark's `ikev2_decryption_table` UAT: SPIi, SPIr, SK_ei, SK_er,
    /// encryption algorithm, SK_ai, SK_ar, integrity algorithm (the names are the ones
    /// tshark's ISAKMP dissector lists). Byte fields are bare hex and the algorithm
    /// names quoted, as in the UAT file and for `tshark -o
    /// uat:ikev2_decryption_table:<row>` (checked against tshark 4.0.17: quoted hex is
    /// read as a string and refused, "Length of Initiator's SPI must be 8 octets").
    pub fn tshark_uat_row(&self) -> String {
        let encr = match self.encr {
            Encr::AesCbc128 => "AES-CBC-128 [RFC3602]",
            Encr::AesCbc256 => "AES-CBC-256 [RFC3602]",
            Encr::AesGcm16_128 => "AES-GCM-128 with 16 octet ICV [RFC5282]",
            Encr::AesGcm16_256 => "AES-GCM-256 with 16 octet ICV [RFC5282]",
        };
        let integ = match self.integ {
            None => "NONE [RFC4306]",
            Some(Integ::HmacSha256_128) => "HMAC_SHA2_256_128 [RFC4868]",
            Some(Integ::HmacSha384_192) => "HMAC_SHA2_384_192 [RFC4868]",
            Some(Integ::HmacSha512_256) => "HMAC_SHA2_512_256 [RFC4868]",
        };
        format!(
            "{},{},{},{},\"{encr}\",{},{},\"{integ}\"",
            hex(&self.spi_i),
            hex(&self.spi_r),
            hex(&self.sk_ei),
            hex(&self.sk_er),
            hex(&self.sk_ai),
            hex(&self.sk_ar),
        )
    }
}

/// What happened, for counters and logs.
#[derive(Debug)]
pub enum Event {
    /// The client's AUTH checked out.
    Established {
        client: SocketAddr,
        spi_i: [u8; 8],
        spi_r: [u8; 8],
        peer: Identification,
    },
    /// A REDIRECT was sent (in the INFORMATIONAL case, the first transmission of it).
    Redirected {
        client: SocketAddr,
        spi_i: [u8; 8],
        target: GatewayIdentity,
        how: RedirectHow,
    },
    /// The client sent a wrong AUTH, an unknown identity or an unsupported method.
    AuthFailed {
        client: SocketAddr,
        peer: Option<Identification>,
        /// Why a certificate peer's chain, identity or signature was refused.
        certificate: Option<super::cert::CertError>,
    },
    /// IKE_SA_INIT without REDIRECT_SUPPORTED, or with REDIRECTED_FROM, refused.
    RedirectUnsupported {
        client: SocketAddr,
        spi_i: [u8; 8],
        /// The client sent REDIRECTED_FROM: it was redirected already.
        redirected_from: bool,
    },
    /// The chooser had no target for an authenticated client; its SA is deleted.
    NoTarget { client: SocketAddr, spi_i: [u8; 8] },
    /// An SA ended.
    SaDeleted {
        client: SocketAddr,
        spi_i: [u8; 8],
        spi_r: [u8; 8],
        reason: DeleteReason,
    },
    /// Only with [`ResponderConfig::log_keys`].
    Keys(KeyLog),
}

/// What one half-open SA is charged beyond its two IKE_SA_INIT messages: the SA itself,
/// its keys, nonces and table entries, rounded up.
pub const HALF_OPEN_OVERHEAD: usize = 1024;

/// The key of the per-source half-open limit: an IPv4 address as it is (an IPv4-mapped
/// IPv6 address too), an IPv6 address cut to its /64.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(a) & !u128::from(u64::MAX),
            )),
        },
    }
}

/// Randomness for SPIs, nonces, DH secrets and IVs. Tests pass a seeded one.
pub(super) struct Rng(Box<dyn CryptoRngCore + Send>);

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

/// The responder: all IKE SAs of all auth-mode VIPs of this node.
pub struct Responder {
    pub(super) config: ResponderConfig,
    pub(super) rng: Rng,
    pub(super) cookies: Cookies,
    /// By our SPI (SPIr).
    pub(super) sas: HashMap<[u8; 8], IkeSa>,
    /// (client address, SPIi) → SPIr, to spot retransmitted IKE_SA_INIT requests.
    pub(super) by_init: HashMap<(SocketAddr, [u8; 8]), [u8; 8]>,
    pub(super) half_open: usize,
    /// Half-open SAs by [`source_key`].
    pub(super) half_open_by_source: HashMap<IpAddr, usize>,
    /// Bytes charged against [`ResponderConfig::state_memory_max`].
    pub(super) state_bytes: usize,
    /// (wake-up time, SPIr) of every SA.
    timers: BTreeSet<(Instant, [u8; 8])>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// EAP messages for the RADIUS client ([`Responder::poll_eap`]).
    pub(super) eap_out: VecDeque<(crate::radius::Ticket, crate::radius::Relay)>,
}

impl Responder {
    /// A responder drawing randomness from the OS.
    pub fn new(config: ResponderConfig) -> Self {
        Self::with_rng(config, Box::new(OsRng))
    }

    /// A responder with the given randomness: seeded in tests, so runs repeat exactly.
    pub fn with_rng(config: ResponderConfig, rng: Box<dyn CryptoRngCore + Send>) -> Self {
        let mut rng = Rng(rng);
        let cookies = Cookies::new(config.cookie_rotation, &mut rng);
        Responder {
            config,
            rng,
            cookies,
            sas: HashMap::new(),
            by_init: HashMap::new(),
            half_open: 0,
            half_open_by_source: HashMap::new(),
            state_bytes: 0,
            timers: BTreeSet::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            eap_out: VecDeque::new(),
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
            .config
            .vips
            .iter()
            .find(|v| v.addr == local.ip())
            .copied()
        else {
            return;
        };
        let header = match Header::parse(ike) {
            Ok((h, _)) => h,
            Err(e) => {
                self.answer_bad_header(local, remote, ike, &e);
                return;
            }
        };
        match vip.mode {
            VipMode::Init => self.handle_init_mode(local, remote, ike, &header),
            VipMode::Auth(method) => {
                if header.exchange == wire::EXCHANGE_IKE_SA_INIT && !header.response {
                    self.handle_sa_init(now, local, remote, ike, &header, method);
                } else {
                    self.handle_encrypted(now, local, remote, ike, &header);
                }
            }
        }
    }

    /// Expires half-open and lingering SAs and retransmits our requests whose time has
    /// come. Call it when the clock reaches [`Responder::poll_timeout`] (earlier or
    /// more often is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, spi)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, spi));
            if let Some(mut sa) = self.sas.remove(&spi) {
                sa.scheduled = None;
                self.on_sa_timer(now, &mut sa);
                self.put_back(sa);
            }
        }
    }

    /// When [`Responder::handle_timeout`] should be called next; `None` while no SA
    /// exists. Ask again after every `handle_*` call.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|&(at, _)| at)
    }

    /// The next datagram to send. Drain it after every `handle_*` call.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event. Drain it after every `handle_*` call.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// SAs held, of any state.
    pub fn sa_count(&self) -> usize {
        self.sas.len()
    }

    /// SAs waiting for IKE_AUTH.
    pub fn half_open_count(&self) -> usize {
        self.half_open
    }

    /// Bytes held for half-open SAs and reassembly, as bounded by
    /// [`ResponderConfig::state_memory_max`].
    pub fn state_bytes(&self) -> usize {
        self.state_bytes
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

    /// Stores an SA taken out of the table back, or forgets it if it is gone, and
    /// (re)schedules its timer.
    pub(super) fn put_back(&mut self, mut sa: IkeSa) {
        if let Some(at) = sa.scheduled.take() {
            self.timers.remove(&(at, sa.spi_r));
        }
        if sa.state == SaState::Gone {
            self.by_init.remove(&(sa.init_remote, sa.spi_i));
            return;
        }
        let at = sa.wake_at();
        self.timers.insert((at, sa.spi_r));
        sa.scheduled = Some(at);
        self.sas.insert(sa.spi_r, sa);
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

    fn on_sa_timer(&mut self, now: Instant, sa: &mut IkeSa) {
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
}
