//! IKE_SA_INIT (RFC 7296 §1.2, §2.6, §2.7, §2.23): the stateless answers (COOKIE,
//! INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN, the init-mode REDIRECT) and the half-open SA.

use lb_common::wire::{ike as wire, redirect, request};
use rand_core::RngCore;

use super::core::Core;
use super::request::Datagram;
use super::sa::{HALF_OPEN_OVERHEAD, IkeSa, SaState, source_key};
use super::table::Table;
use crate::ike::cert::signature::OUR_HASHES;
use crate::ike::crypto::dh::DhSecret;
use crate::ike::crypto::prf::{IkeSaKeys, nat_detection_hash};
use crate::ike::crypto::sk::SkCipher;
use crate::ike::types::codec::MessageError;
use crate::ike::types::config::{AuthRedirect, VipMode};
use crate::ike::types::event::{Event, KeyLog, RedirectHow};
use crate::ike::types::message::{Header, Message, Payload};
use crate::ike::types::payload::{KeyExchange, Notify, Proposal};
use crate::ike::types::proposal::{IkeChoice, select_ike};

/// Length of our Nr: 32 bytes, at least half of the largest PRF key (§2.10), as both
/// real clients send.
const NONCE_LEN: usize = 32;

/// What an IKE_SA_INIT request carries that we act on.
struct InitRequest<'a> {
    sa: &'a [Proposal],
    ke: &'a KeyExchange,
    ni: &'a [u8],
    cookie: Option<&'a [u8]>,
    redirect_supported: bool,
    redirected_from: bool,
    fragmentation: bool,
    natd_src: Vec<&'a [u8]>,
    natd_dst: Vec<&'a [u8]>,
}

impl<'a> InitRequest<'a> {
    /// `None` if SA, KE or Ni is missing or repeated: malformed, dropped unanswered.
    fn read(msg: &'a Message) -> Option<Self> {
        let (mut sa, mut ke, mut ni) = (None, None, None);
        let (mut redirect_supported, mut redirected_from) = (false, false);
        let mut fragmentation = false;
        let (mut natd_src, mut natd_dst) = (Vec::new(), Vec::new());
        for p in &msg.payloads {
            let dup = match p {
                Payload::Sa(x) => sa.replace(x.as_slice()).is_some(),
                Payload::Ke(x) => ke.replace(x).is_some(),
                Payload::Nonce(x) => ni.replace(x.as_slice()).is_some(),
                Payload::Notify(n) => {
                    match n.kind {
                        // RFC 5685 §4's form only, as in the fast path (docs/protocol.md
                        // §2.1): another is malformed.
                        wire::NOTIFY_REDIRECT_SUPPORTED
                            if n.protocol != 0 || !n.spi.is_empty() || !n.data.is_empty() =>
                        {
                            return None;
                        }
                        wire::NOTIFY_REDIRECT_SUPPORTED => redirect_supported = true,
                        wire::NOTIFY_REDIRECTED_FROM => redirected_from = true,
                        wire::NOTIFY_FRAGMENTATION_SUPPORTED => fragmentation = true,
                        wire::NOTIFY_NAT_DETECTION_SOURCE_IP => natd_src.push(n.data.as_slice()),
                        wire::NOTIFY_NAT_DETECTION_DESTINATION_IP => {
                            natd_dst.push(n.data.as_slice())
                        }
                        // Unknown status and error notifies in a request: ignored
                        // (§3.10.1).
                        _ => {}
                    }
                    false
                }
                _ => false,
            };
            if dup {
                return None;
            }
        }
        Some(InitRequest {
            sa: sa?,
            ke: ke?,
            ni: ni?,
            // §2.6: N(COOKIE) is the first payload of the retry.
            cookie: match msg.payloads.first() {
                Some(Payload::Notify(n)) if n.kind == wire::NOTIFY_COOKIE => Some(&n.data),
                _ => None,
            },
            redirect_supported,
            redirected_from,
            fragmentation,
            natd_src,
            natd_dst,
        })
    }
}

/// `HDR(SPIi, 0, R, mid 0), N(kind, data)`: the unauthenticated answers to IKE_SA_INIT.
fn notify_only(spi_i: [u8; 8], kind: u16, data: Vec<u8>) -> Option<Vec<u8>> {
    Message {
        header: Header {
            spi_i,
            spi_r: [0; 8],
            exchange: wire::EXCHANGE_IKE_SA_INIT,
            initiator: false,
            response: true,
            message_id: 0,
        },
        payloads: vec![Payload::Notify(Notify {
            protocol: 0,
            spi: Vec::new(),
            kind,
            data,
        })],
    }
    .to_bytes()
    .ok()
}

/// A plausible first message of an IKE SA: I set, R clear, SPIi set, SPIr and Message
/// ID zero (§3.1, docs/protocol.md §1.9).
fn is_initial_request(h: &Header) -> bool {
    h.exchange == wire::EXCHANGE_IKE_SA_INIT
        && h.initiator
        && !h.response
        && h.spi_i != [0; 8]
        && h.spi_r == [0; 8]
        && h.message_id == 0
}

/// Sends an unauthenticated error answer, but never one longer than the request
/// (no amplification toward a spoofed source).
fn answer_unauthenticated(
    core: &mut Core,
    d: &Datagram<'_>,
    spi_i: [u8; 8],
    kind: u16,
    data: Vec<u8>,
) {
    if let Some(ike) = notify_only(spi_i, kind, data).filter(|m| m.len() <= d.ike.len()) {
        core.send(d.local, d.remote, &ike);
    }
}

/// A header that did not parse: only an IKE_SA_INIT of a higher major version gets
/// an answer, N(INVALID_MAJOR_VERSION) with our version (§2.5); the rest is dropped.
pub(super) fn answer_bad_header(core: &mut Core, d: &Datagram<'_>, err: &MessageError) {
    let MessageError::MajorVersion(v) = *err else {
        return;
    };
    let auth_vip = core
        .config
        .vips
        .iter()
        .any(|x| x.addr == d.local.ip() && x.mode != VipMode::Init);
    let Some(head) = d.ike.get(..wire::HEADER_LEN) else {
        return;
    };
    let spi_i: [u8; 8] = head[wire::field::SPI_I].try_into().unwrap_or([0; 8]);
    let looks_initial = head[wire::field::EXCHANGE] == wire::EXCHANGE_IKE_SA_INIT
        && head[wire::field::FLAGS] & wire::FLAG_RESPONSE == 0
        && spi_i != [0; 8]
        && head[wire::field::SPI_R] == [0; 8];
    if auth_vip && looks_initial && v >> 4 > 2 {
        let (kind, data) = err.notify();
        answer_unauthenticated(core, d, spi_i, kind, data);
    }
}

/// A [`VipMode::Init`] VIP: answer what the fast path would have answered, with its
/// bytes; drop the rest. The decision is the fast path's own
/// (`lb_common::wire::request::decide_ike`, docs/protocol.md §2.4), so a frame the XDP
/// program passes (`--xdp-mode off`, a backup's traffic) meets the same rules here.
pub(super) fn init_mode(core: &mut Core, d: &Datagram<'_>) {
    let (local, remote, ike) = (d.local, d.remote, d.ike);
    let (src, v6) = crate::target::choice::client_key(remote.ip());
    let (dst, _) = crate::target::choice::client_key(local.ip());
    if remote.port() == 0 || !request::unicast_source(v6, &src, &dst) {
        return;
    }
    let Ok(req) = request::decide_ike(ike) else {
        return;
    };
    let Some(target) = core.choose(remote, &req.spi_i) else {
        return;
    };
    let ni = &ike[req.nonce_off..req.nonce_off + req.nonce_len];
    let mut out = vec![0; redirect::ike_len(usize::from(target.ident_len), ni.len())];
    let Some(n) = redirect::emit_ike(&req.spi_i, &target, ni, &mut out) else {
        return;
    };
    // The fast path's rule: the answer is shorter than the request.
    if n >= ike.len() {
        return;
    }
    core.send(local, remote, &out[..n]);
    core.redirected(remote, req.spi_i, target, RedirectHow::Init);
}

/// IKE_SA_INIT to an auth-mode VIP.
pub(super) fn sa_init(
    core: &mut Core,
    table: &mut Table,
    d: &Datagram<'_>,
    header: &Header,
    method: AuthRedirect,
) {
    let (now, local, remote, ike) = (d.now, d.local, d.remote, d.ike);
    if !is_initial_request(header) {
        return;
    }
    let spi_i = header.spi_i;
    // A retransmission gets the same response (§2.1); another request with the
    // same SPIi from the same place while the SA exists is dropped.
    if let Some(sa) = table.by_init(remote, spi_i) {
        if let Some(sa) = sa
            && sa.state == SaState::HalfOpen
            && sa.init_req == ike
        {
            core.send(local, remote, &sa.init_resp);
        }
        return;
    }
    let msg = match Message::parse(ike) {
        Ok(m) => m,
        Err(e @ MessageError::UnsupportedCritical(_)) => {
            let (kind, data) = e.notify();
            answer_unauthenticated(core, d, spi_i, kind, data);
            return;
        }
        Err(_) => return,
    };
    let Some(req) = InitRequest::read(&msg) else {
        return;
    };

    core.cookies.maybe_rotate(now, &mut core.rng);
    if core.half_open >= core.config.cookie_threshold {
        let valid = req
            .cookie
            .is_some_and(|c| core.cookies.check(c, &spi_i, req.ni, remote.ip()));
        if !valid {
            let c = core.cookies.make(&spi_i, req.ni, remote.ip());
            answer_unauthenticated(core, d, spi_i, wire::NOTIFY_COOKIE, c);
            return;
        }
    }
    let source = source_key(remote.ip());
    let from_source = core.half_open_by_source.get(&source).copied().unwrap_or(0);
    if core.half_open >= core.config.half_open_max
        || from_source >= core.config.half_open_per_source
        || table.len() >= core.config.sa_max
    {
        return;
    }
    // RFC 5685 §3: a client without REDIRECT_SUPPORTED may not be redirected at all;
    // one with REDIRECTED_FROM was redirected already and is never redirected again
    // (§10: that could loop), the fast path's rule. Both are refused (module docs).
    if req.redirected_from || !req.redirect_supported {
        answer_unauthenticated(core, d, spi_i, wire::NOTIFY_NO_PROPOSAL_CHOSEN, Vec::new());
        core.event(Event::RedirectUnsupported {
            client: remote,
            spi_i,
            redirected_from: req.redirected_from,
        });
        return;
    }
    let suite = match select_ike(req.sa, req.ke.group) {
        IkeChoice::Accept(s) => s,
        IkeChoice::InvalidKe(g) => {
            let data = g.id().to_be_bytes().to_vec();
            let kind = wire::NOTIFY_INVALID_KE_PAYLOAD;
            answer_unauthenticated(core, d, spi_i, kind, data);
            return;
        }
        IkeChoice::NoProposalChosen => {
            let kind = wire::NOTIFY_NO_PROPOSAL_CHOSEN;
            answer_unauthenticated(core, d, spi_i, kind, Vec::new());
            return;
        }
    };
    let dh = DhSecret::generate(suite.dh, &mut core.rng);
    let Ok(g_ir) = dh.shared_secret(&req.ke.data) else {
        return;
    };
    let spi_r = table.new_spi(&mut core.rng);
    let mut nr = vec![0; NONCE_LEN];
    core.rng.fill_bytes(&mut nr);
    let Ok(keys) = IkeSaKeys::derive(&suite, req.ni, &nr, &g_ir, &spi_i, &spi_r) else {
        return;
    };

    // §2.23: NAT_DETECTION_* only to a client that sent them.
    let natd = !req.natd_src.is_empty() || !req.natd_dst.is_empty();
    let nat = natd && {
        let them = nat_detection_hash(&spi_i, &[0; 8], remote);
        let us = nat_detection_hash(&spi_i, &[0; 8], local);
        !req.natd_src.iter().any(|d| *d == them) || !req.natd_dst.iter().any(|d| *d == us)
    };
    let mut payloads = vec![
        Payload::Sa(vec![suite.to_proposal()]),
        Payload::Ke(KeyExchange {
            group: suite.dh.id(),
            data: dh.public_value(),
        }),
        Payload::Nonce(nr.clone()),
    ];
    if natd {
        for (kind, addr) in [
            (wire::NOTIFY_NAT_DETECTION_SOURCE_IP, local),
            (wire::NOTIFY_NAT_DETECTION_DESTINATION_IP, remote),
        ] {
            payloads.push(Payload::Notify(Notify {
                protocol: 0,
                spi: Vec::new(),
                kind,
                data: nat_detection_hash(&spi_i, &spi_r, addr).to_vec(),
            }));
        }
    }
    // RFC 7383 §2.3: we reassemble SKF, so we say so to a client that can send it.
    if req.fragmentation {
        payloads.push(Payload::Notify(Notify {
            protocol: 0,
            spi: Vec::new(),
            kind: wire::NOTIFY_FRAGMENTATION_SUPPORTED,
            data: Vec::new(),
        }));
    }
    // Certificates configured: ask for the client's (CERTREQ, §3.7, our CAs' key
    // hashes) and say which hashes we verify RFC 7427 signatures with.
    if let Some(creds) = &core.config.credentials {
        payloads.push(Payload::CertReq(creds.certreq_payload()));
        payloads.push(Payload::Notify(Notify {
            protocol: 0,
            spi: Vec::new(),
            kind: wire::NOTIFY_SIGNATURE_HASH_ALGORITHMS,
            data: OUR_HASHES.iter().flat_map(|h| h.to_be_bytes()).collect(),
        }));
    }
    let response = Header {
        spi_i,
        spi_r,
        exchange: wire::EXCHANGE_IKE_SA_INIT,
        initiator: false,
        response: true,
        message_id: 0,
    };
    let Ok(init_resp) = (Message {
        header: response,
        payloads,
    })
    .to_bytes() else {
        return;
    };
    // The global state bound, with the exact charge of this SA: over it, the request
    // is dropped like one over the half-open limits.
    let charge = HALF_OPEN_OVERHEAD + ike.len() + init_resp.len();
    if charge > core.state_room() {
        return;
    }
    core.send(local, remote, &init_resp);

    if core.config.log_keys {
        core.event(Event::Keys(KeyLog {
            spi_i,
            spi_r,
            encr: suite.encr,
            integ: suite.integ,
            sk_ei: keys.sk_ei.clone(),
            sk_er: keys.sk_er.clone(),
            sk_ai: keys.sk_ai.clone(),
            sk_ar: keys.sk_ar.clone(),
        }));
    }
    let sa = IkeSa {
        spi_i,
        spi_r,
        init_remote: remote,
        local,
        remote,
        nat,
        method,
        suite,
        open: SkCipher::initiator(&keys, &suite),
        seal: SkCipher::responder(&keys, &suite),
        keys,
        init_req: ike.to_vec(),
        init_resp,
        ni: req.ni.to_vec(),
        nr,
        state: SaState::HalfOpen,
        deadline: now + core.config.half_open_timeout,
        peer_next: 1,
        cached: None,
        our_next: 0,
        outstanding: None,
        peer_id: None,
        child: None,
        fragmentation: req.fragmentation,
        reassembly: None,
        eap: None,
        scheduled: None,
    };
    table.insert_half_open(core, sa);
}
