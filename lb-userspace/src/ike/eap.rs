//! EAP in IKE_AUTH with ikelb as a pass-through authenticator (RFC 7296 §2.16, RFC
//! 3748 §2.3; docs/protocol.md §2.11). The EAP method runs between the client and a
//! RADIUS server; the responder only frames it:
//!
//! 1. The first IKE_AUTH request has IDi and no AUTH: we answer with IDr, CERT and a
//!    signature AUTH (the client authenticates us first) and EAP-Request/Identity.
//! 2. Each EAP-Response goes to the RADIUS client ([`Responder::poll_eap`]); its outcome
//!    ([`Responder::handle_eap_outcome`]) becomes the IKE_AUTH response: the next
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
//! bound ([`super::ResponderConfig::state_memory_max`]) like its copy of IKE_SA_INIT:
//! with `%any` EAP peers anyone who completes IKE_SA_INIT gets this far.

use std::net::SocketAddr;
use std::time::Instant;

use lb_common::wire::ike as wire;
use rand_core::RngCore;

use super::auth::AuthRequest;
use super::cert::our_identity;
use super::crypto::{Secret, psk_auth, signed_octets, verify_psk_auth};
use super::message::{Header, Payload};
use super::payload::{Auth, Identification, Proposal, TrafficSelector};
use super::responder::Responder;
use super::sa::{IkeSa, SaState};
use crate::radius::{Continuation, Outcome, Relay, Ticket};

/// EAP codes and the Identity type (RFC 3748 §4, §5.1).
const EAP_REQUEST: u8 = 1;
const EAP_RESPONSE: u8 = 2;
const EAP_SUCCESS: u8 = 3;
const EAP_FAILURE: u8 = 4;
const EAP_IDENTITY: u8 = 1;

/// What an EAP state holds besides its variable parts: the state itself, boxed, and
/// the allocations' own overhead.
const EAP_OVERHEAD: usize = 512;

/// The CHILD SA part of the first IKE_AUTH request, kept for the last response.
#[derive(Default)]
struct ChildRequest {
    sa: Option<Vec<Proposal>>,
    tsi: Option<Vec<TrafficSelector>>,
    tsr: Option<Vec<TrafficSelector>>,
    transport: bool,
}

impl ChildRequest {
    /// The bytes these copies hold, near enough for the state bound.
    fn held(&self) -> usize {
        use std::mem::size_of;
        let proposals = self.sa.iter().flatten().map(|p| {
            let attrs: usize = p
                .transforms
                .iter()
                .flat_map(|t| &t.attributes)
                .map(|a| size_of::<super::payload::Attribute>() + attr_len(a))
                .sum();
            size_of::<Proposal>()
                + p.spi.len()
                + p.transforms.len() * size_of::<super::payload::Transform>()
                + attrs
        });
        let ts = [&self.tsi, &self.tsr]
            .into_iter()
            .flatten()
            .map(|t| t.len() * size_of::<TrafficSelector>());
        proposals.sum::<usize>() + ts.sum::<usize>()
    }
}

fn attr_len(a: &super::payload::Attribute) -> usize {
    match a {
        super::payload::Attribute::Tv { .. } => 0,
        super::payload::Attribute::Tlv { value, .. } => value.len(),
    }
}

enum Stage {
    /// Our last response carried an EAP-Request: the client's EAP-Response comes next.
    AwaitClient,
    /// The client's EAP-Response is with RADIUS; the IKE_AUTH response waits for it.
    AwaitBackend {
        local: SocketAddr,
        remote: SocketAddr,
        header: Header,
        req_digest: [u8; 32],
    },
    /// EAP-Success sent: the client's AUTH comes next, keyed with the MSK.
    Succeeded { msk: Option<Secret> },
}

/// One SA's EAP conversation.
pub(super) struct EapState {
    /// The IDi of the first IKE_AUTH request and the IDr we answered it with: the AUTH
    /// exchange after EAP signs those (§2.16).
    idi: Identification,
    idr: Identification,
    child: ChildRequest,
    /// The EAP identity the client gave, the RADIUS User-Name.
    user_name: Option<Vec<u8>>,
    cont: Option<Continuation>,
    /// The Identifier of the last EAP packet we sent (for a made-up Success/Failure).
    last_id: u8,
    stage: Stage,
    /// Bytes charged against the state bound for this state now.
    charged: usize,
}

impl EapState {
    fn held(&self) -> usize {
        EAP_OVERHEAD
            + self.idi.data.len()
            + self.idr.data.len()
            + self.child.held()
            + self.user_name.as_ref().map_or(0, Vec::len)
            + self
                .cont
                .as_ref()
                .and_then(|c| c.state.as_ref())
                .map_or(0, Vec::len)
            + match &self.stage {
                Stage::Succeeded { msk: Some(m) } => m.len(),
                _ => 0,
            }
    }
}

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

impl Responder {
    /// The next EAP message for the RADIUS client. Drain it after every `handle_*`
    /// call; hand each outcome back with [`Responder::handle_eap_outcome`].
    pub fn poll_eap(&mut self) -> Option<(Ticket, Relay)> {
        self.eap_out.pop_front()
    }

    /// Step 1: a client of an EAP peer sent IDi without AUTH.
    #[expect(clippy::too_many_arguments, reason = "one request's whole context")]
    pub(super) fn eap_start(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        sa: &mut IkeSa,
        header: &Header,
        req_digest: [u8; 32],
        req: &AuthRequest<'_>,
        idi: &Identification,
    ) {
        let Some((answer, st)) = self.eap_first_answer(sa, req, idi) else {
            self.auth_failed(
                now,
                local,
                remote,
                sa,
                header,
                req_digest,
                idi,
                None,
                Vec::new(),
            );
            return;
        };
        self.respond(sa, local, remote, header, req_digest, answer);
        self.put_eap(sa, st);
    }

    /// The answer to step 1 (IDr, CERT, a signature AUTH, EAP-Request/Identity) and the
    /// EAP state to keep; `None` without our certificate (EAP authenticates only the
    /// client, so we prove ourselves by certificate, §2.16) or without room for the state
    /// under the bound (checked before the costly signature).
    fn eap_first_answer(
        &mut self,
        sa: &IkeSa,
        req: &AuthRequest<'_>,
        idi: &Identification,
    ) -> Option<(Vec<Payload>, Box<EapState>)> {
        let creds = self.config.credentials.clone()?;
        let idr = our_identity(&creds, &self.config.local_id);
        let id = (self.rng.next_u32() & 0xff) as u8;
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
        if st.held() > self.state_room() {
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

    /// Stores an SA's EAP state back, charging what it holds now against the state bound.
    fn put_eap(&mut self, sa: &mut IkeSa, mut st: Box<EapState>) {
        let held = st.held();
        self.state_bytes = (self.state_bytes + held).saturating_sub(st.charged);
        st.charged = held;
        sa.eap = Some(st);
    }

    /// Ends an SA's EAP state (taken out of it) and gives its bytes back.
    pub(super) fn drop_eap(&mut self, st: Box<EapState>) {
        self.state_bytes = self.state_bytes.saturating_sub(st.charged);
    }

    /// Steps 2 and 3: an IKE_AUTH request of an SA in EAP.
    #[expect(clippy::too_many_arguments, reason = "one request's whole context")]
    pub(super) fn eap_continue(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        sa: &mut IkeSa,
        header: &Header,
        req_digest: [u8; 32],
        req: &AuthRequest<'_>,
    ) {
        let Some(mut st) = sa.eap.take() else { return };
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
                        client: remote,
                        vip: local.ip(),
                    };
                    self.eap_out.push_back((ticket(&sa.spi_r), relay));
                    st.stage = Stage::AwaitBackend {
                        local,
                        remote,
                        header: *header,
                        req_digest,
                    };
                    self.put_eap(sa, st);
                    return;
                }
            }
            (Stage::Succeeded { msk }, None, Some(auth)) if auth.method == wire::AUTH_PSK => {
                let prf = sa.suite.prf;
                let key_i: &[u8] = msk.as_deref().unwrap_or(&sa.keys.sk_pi);
                let octets =
                    signed_octets(prf, &sa.init_req, &sa.nr, &sa.keys.sk_pi, &st.idi.body());
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
                    self.finish_auth(
                        now, local, remote, sa, header, req_digest, &idi, answer, &child,
                    );
                    self.drop_eap(st);
                    return;
                }
            }
            _ => {}
        }
        // Out of order, not an EAP-Response, or a wrong AUTH after EAP.
        let extra = vec![eap_payload(vec![EAP_FAILURE, st.last_id, 0, 4])];
        self.auth_failed(
            now, local, remote, sa, header, req_digest, &st.idi, None, extra,
        );
        self.drop_eap(st);
    }

    /// The RADIUS client's verdict on the EAP message of `ticket`. Outcomes for SAs
    /// that are gone (expired, deleted) are ignored.
    pub fn handle_eap_outcome(&mut self, now: Instant, ticket: Ticket, outcome: Outcome) {
        let spi = ticket.to_be_bytes();
        let Some(mut sa) = self.sas.remove(&spi) else {
            return;
        };
        self.eap_outcome(now, &mut sa, outcome);
        self.put_back(sa);
    }

    fn eap_outcome(&mut self, now: Instant, sa: &mut IkeSa, outcome: Outcome) {
        if sa.state != SaState::HalfOpen {
            return;
        }
        let Some(mut st) = sa.eap.take() else { return };
        let Stage::AwaitBackend {
            local,
            remote,
            header,
            req_digest,
        } = st.stage
        else {
            // Not waiting for RADIUS: nothing changed, the charge stands.
            sa.eap = Some(st);
            return;
        };
        // What the server sent must be an EAP packet of the kind its verdict says;
        // anything else ends the conversation as a failure.
        let expect = |eap: &[u8], code: u8| parse_eap(eap).is_some_and(|(c, ..)| c == code);
        match outcome {
            Outcome::Challenge { eap, cont } if expect(&eap, EAP_REQUEST) => {
                st.last_id = eap[1];
                st.cont = Some(cont);
                st.stage = Stage::AwaitClient;
                self.put_eap(sa, st);
                self.respond(
                    sa,
                    local,
                    remote,
                    &header,
                    req_digest,
                    vec![eap_payload(eap)],
                );
            }
            Outcome::Accept { eap, msk } if expect(&eap, EAP_SUCCESS) => {
                st.stage = Stage::Succeeded { msk };
                self.put_eap(sa, st);
                self.respond(
                    sa,
                    local,
                    remote,
                    &header,
                    req_digest,
                    vec![eap_payload(eap)],
                );
            }
            outcome => {
                let failure = match outcome {
                    Outcome::Reject { eap } if expect(&eap, EAP_FAILURE) => eap,
                    _ => vec![EAP_FAILURE, st.last_id, 0, 4],
                };
                let extra = vec![eap_payload(failure)];
                let idi = &st.idi;
                self.auth_failed(
                    now, local, remote, sa, &header, req_digest, idi, None, extra,
                );
                self.drop_eap(st);
            }
        }
    }
}
