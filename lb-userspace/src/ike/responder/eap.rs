//! EAP in IKE_AUTH with ikelb as a pass-through authenticator (RFC 7296 §2.16, RFC
//! 3748 §2.3; docs/protocol.md §2.11). The EAP method runs between the client and a
//! RADIUS server; the responder only frames it:
//!
//! 1. The first IKE_AUTH request has IDi and no AUTH: we answer with IDr, CERT and a
//!    signature AUTH (the client authenticates us first) and EAP-Request/Identity.
//! 2. Each EAP-Response goes to the RADIUS client ([`super::Responder::poll_eap`]); its outcome
//!    ([`super::Responder::handle_eap_outcome`]) becomes the IKE_AUTH response: the next
//!    EAP-Request (Access-Challenge), EAP-Success (Access-Accept, with the MSK), or
//!    EAP-Failure with AUTHENTICATION_FAILED (Access-Reject, or no server answered).
//!    Retransmissions of a request whose answer is still with RADIUS are ignored (its
//!    Message ID is already consumed); the client retransmits until the answer comes.
//! 3. After EAP-Success the client sends AUTH, a MAC keyed with the MSK over its signed
//!    octets from step 1 (the IDi of the first request); we answer with ours over the
//!    IDr of step 1, and the exchange ends as any other: CHILD SA and redirect, by the
//!    VIP's method. A method without keys leaves SK_pi/SK_pr as the keys (§2.16).
//!
//! The whole conversation is bounded by the half-open timeout, and each RADIUS round
//! trip by the RADIUS client's timeout, retries and failover. The SA stays half-open
//! until the AUTH after EAP, and what it keeps for EAP is charged against the state
//! bound ([`crate::ike::types::config::ResponderConfig::state_memory_max`]) like its copy of IKE_SA_INIT:
//! with `%any` EAP peers anyone who completes IKE_SA_INIT gets this far.

use std::time::Instant;

use lb_common::wire::ike as wire;
use rand_core::RngCore;

use super::core::Core;
use super::ctx::Ctx;
use super::eap_state::{ChildRequest, EapState, Stage};
use super::outcome;
use super::request::AuthRequest;
use super::sa::{IkeSa, SaState};
use crate::ike::cert::identity::our_identity;
use crate::ike::crypto::prf::{psk_auth, signed_octets, verify_psk_auth};
use crate::ike::types::message::Payload;
use crate::ike::types::payload::{Auth, Identification};
use crate::radius::{Outcome, Relay, Ticket};

/// EAP codes and the Identity type (RFC 3748 §4, §5.1).
const EAP_REQUEST: u8 = 1;
const EAP_RESPONSE: u8 = 2;
const EAP_SUCCESS: u8 = 3;
const EAP_FAILURE: u8 = 4;
const EAP_IDENTITY: u8 = 1;

/// A ticket names the SA whose round trip it is: at most one is out per SA.
fn ticket(spi_r: &[u8; 8]) -> Ticket {
    u64::from_be_bytes(*spi_r)
}

fn eap_payload(packet: Vec<u8>) -> Payload {
    Payload::Other {
        kind: wire::PAYLOAD_EAP,
        body: packet,
    }
}

/// An EAP packet whose Length matches: (code, identifier, type-and-data).
fn parse_eap(p: &[u8]) -> Option<(u8, u8, &[u8])> {
    let [code, id, l0, l1, rest @ ..] = p else {
        return None;
    };
    (usize::from(u16::from_be_bytes([*l0, *l1])) == p.len()).then_some((*code, *id, rest))
}

/// Step 1: a client of an EAP peer sent IDi without AUTH.
pub(super) fn start(cx: &mut Ctx<'_>, req: &AuthRequest<'_>, idi: &Identification) {
    let Some((answer, st)) = first_answer(cx.core, cx.sa, req, idi) else {
        outcome::failed(cx, idi, None, Vec::new());
        return;
    };
    cx.respond(answer);
    cx.core.put_eap(cx.sa, st);
}

/// The answer to step 1 (IDr, CERT, a signature AUTH, EAP-Request/Identity) and the
/// EAP state to keep; `None` without our certificate (EAP authenticates only the
/// client, so we prove ourselves by certificate, §2.16) or without room for the state
/// under the bound (checked before the costly signature).
fn first_answer(
    core: &mut Core,
    sa: &IkeSa,
    req: &AuthRequest<'_>,
    idi: &Identification,
) -> Option<(Vec<Payload>, Box<EapState>)> {
    let creds = core.config.credentials.clone()?;
    let idr = our_identity(&creds, &core.config.local_id);
    let id = (core.rng.next_u32() & 0xff) as u8;
    let st = Box::new(EapState {
        idi: idi.clone(),
        idr: idr.clone(),
        child: ChildRequest {
            sa: req.sa.map(<[_]>::to_vec),
            tsi: req.tsi.map(<[_]>::to_vec),
            tsr: req.tsr.map(<[_]>::to_vec),
            transport: req.transport,
        },
        user_name: None,
        cont: None,
        last_id: id,
        stage: Stage::AwaitClient,
        charged: 0,
    });
    if st.held() > core.state_room() {
        return None;
    }
    let octets = signed_octets(
        sa.suite.prf,
        &sa.init_resp,
        &sa.ni,
        &sa.keys.sk_pr,
        &idr.body(),
    );
    let auth = creds.sign_auth(&octets).ok()?;
    let answer = vec![
        Payload::IdR(idr),
        Payload::Cert(creds.cert_payload()),
        Payload::Auth(auth),
        eap_payload(vec![EAP_REQUEST, id, 0, 5, EAP_IDENTITY]),
    ];
    Some((answer, st))
}

/// Steps 2 and 3: an IKE_AUTH request of an SA in EAP.
pub(super) fn next(cx: &mut Ctx<'_>, req: &AuthRequest<'_>) {
    let Some(mut st) = cx.sa.eap.take() else {
        return;
    };
    match (&st.stage, req.eap, req.auth) {
        (Stage::AwaitClient, Some(packet), None) => {
            if let Some((EAP_RESPONSE, _, rest)) = parse_eap(packet) {
                if st.user_name.is_none() {
                    // The identity the client answered with; a client that skipped
                    // the Identity round is known by its IDi.
                    st.user_name = Some(match rest {
                        [EAP_IDENTITY, name @ ..] if !name.is_empty() => name.to_vec(),
                        _ => st.idi.data.clone(),
                    });
                }
                let relay = Relay {
                    user_name: st.user_name.clone().unwrap_or_default(),
                    eap: packet.to_vec(),
                    cont: st.cont.take(),
                    client: cx.req.remote,
                    vip: cx.req.local.ip(),
                };
                cx.core.eap_out.push_back((ticket(&cx.sa.spi_r), relay));
                st.stage = Stage::AwaitBackend(cx.req);
                cx.core.put_eap(cx.sa, st);
                return;
            }
        }
        (Stage::Succeeded { msk }, None, Some(auth)) if auth.method == wire::AUTH_PSK => {
            let sa = &*cx.sa;
            let prf = sa.suite.prf;
            let key_i: &[u8] = msk.as_deref().unwrap_or(&sa.keys.sk_pi);
            let octets = signed_octets(prf, &sa.init_req, &sa.nr, &sa.keys.sk_pi, &st.idi.body());
            if verify_psk_auth(prf, key_i, &octets, &auth.data) {
                let key_r: &[u8] = msk.as_deref().unwrap_or(&sa.keys.sk_pr);
                let octets =
                    signed_octets(prf, &sa.init_resp, &sa.ni, &sa.keys.sk_pr, &st.idr.body());
                let ours = Auth {
                    method: wire::AUTH_PSK,
                    data: psk_auth(prf, key_r, &octets).to_vec(),
                };
                let c = &st.child;
                let child = AuthRequest {
                    sa: c.sa.as_deref(),
                    tsi: c.tsi.as_deref(),
                    tsr: c.tsr.as_deref(),
                    transport: c.transport,
                    ..AuthRequest::default()
                };
                let answer = vec![Payload::Auth(ours)];
                let idi = st.idi.clone();
                outcome::established(cx, &idi, answer, &child);
                cx.core.drop_eap(st);
                return;
            }
        }
        _ => {}
    }
    // Out of order, not an EAP-Response, or a wrong AUTH after EAP.
    let extra = vec![eap_payload(vec![EAP_FAILURE, st.last_id, 0, 4])];
    outcome::failed(cx, &st.idi, None, extra);
    cx.core.drop_eap(st);
}

/// The RADIUS client's verdict on the EAP message an SA sent it: the IKE_AUTH response
/// that waited for it.
pub(super) fn backend_answered(core: &mut Core, sa: &mut IkeSa, now: Instant, verdict: Outcome) {
    if sa.state != SaState::HalfOpen {
        return;
    }
    let Some(mut st) = sa.eap.take() else { return };
    let Stage::AwaitBackend(req) = st.stage else {
        // Not waiting for RADIUS: nothing changed, the charge stands.
        sa.eap = Some(st);
        return;
    };
    let mut cx = Ctx { core, sa, now, req };
    // What the server sent must be an EAP packet of the kind its verdict says;
    // anything else ends the conversation as a failure.
    let expect = |eap: &[u8], code: u8| parse_eap(eap).is_some_and(|(c, ..)| c == code);
    match verdict {
        Outcome::Challenge { eap, cont } if expect(&eap, EAP_REQUEST) => {
            st.last_id = eap[1];
            st.cont = Some(cont);
            st.stage = Stage::AwaitClient;
            cx.core.put_eap(cx.sa, st);
            cx.respond(vec![eap_payload(eap)]);
        }
        Outcome::Accept { eap, msk } if expect(&eap, EAP_SUCCESS) => {
            st.stage = Stage::Succeeded { msk };
            cx.core.put_eap(cx.sa, st);
            cx.respond(vec![eap_payload(eap)]);
        }
        other => {
            let failure = match other {
                Outcome::Reject { eap } if expect(&eap, EAP_FAILURE) => eap,
                _ => vec![EAP_FAILURE, st.last_id, 0, 4],
            };
            outcome::failed(&mut cx, &st.idi, None, vec![eap_payload(failure)]);
            cx.core.drop_eap(st);
        }
    }
}
