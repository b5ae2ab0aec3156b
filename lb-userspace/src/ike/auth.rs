//! The encrypted exchanges of an IKE SA: IKE_AUTH with PSK or certificates (EAP in
//! [`super::eap`]) and the redirect (RFC 5685 §5, §6), the client's INFORMATIONAL
//! requests (DELETE, liveness), our own INFORMATIONAL requests with their
//! retransmission (RFC 7296 §2.1), and the cached response for retransmitted requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use lb_common::wire::ike as wire;
use rand_core::RngCore;

use super::cert::{CertError, Credentials, cert_has_identity, identity_eq, our_identity};
use super::crypto::{Secret, psk_auth, signed_octets, verify_psk_auth};
use super::frag::{Reassembly, Step};
use super::message::{Header, Message, Payload, parse_chain};
use super::payload::{Auth, Delete, Identification, Notify};
use super::proposal::select_esp;
use super::responder::{
    AuthMethod, AuthRedirect, DeleteReason, Event, GatewayIdentity, RedirectHow, Responder,
};
use super::sa::{Cached, IkeSa, OurRequest, Outstanding, SaState, digest};
use super::sk::{OpenFragment, SkError};

fn status(kind: u16, data: Vec<u8>) -> Payload {
    Payload::Notify(Notify {
        protocol: 0,
        spi: Vec::new(),
        kind,
        data,
    })
}

/// N(REDIRECT) without nonce data, as IKE_AUTH and INFORMATIONAL carry it (RFC 5685
/// §9.2; libreswan rejects extra bytes there).
fn redirect_notify(t: &GatewayIdentity) -> Payload {
    let mut data = vec![t.ident_type, t.ident_len];
    data.extend_from_slice(t.ident());
    status(wire::NOTIFY_REDIRECT, data)
}

/// The request's first payload of each kind the IKE_AUTH answer needs.
#[derive(Default)]
pub(super) struct AuthRequest<'a> {
    pub(super) idi: Option<&'a Identification>,
    pub(super) auth: Option<&'a Auth>,
    /// The client's X.509 certificates, its own first (§3.6).
    pub(super) certs: Vec<&'a [u8]>,
    pub(super) sa: Option<&'a [super::payload::Proposal]>,
    pub(super) tsi: Option<&'a [super::payload::TrafficSelector]>,
    pub(super) tsr: Option<&'a [super::payload::TrafficSelector]>,
    pub(super) transport: bool,
    /// The EAP payload's body: one EAP packet (§3.16).
    pub(super) eap: Option<&'a [u8]>,
}

impl<'a> AuthRequest<'a> {
    fn read(msg: &'a Message) -> Self {
        let mut r = AuthRequest::default();
        for p in &msg.payloads {
            match p {
                Payload::IdI(x) => r.idi = r.idi.or(Some(x)),
                Payload::Auth(x) => r.auth = r.auth.or(Some(x)),
                Payload::Cert(c)
                    if c.encoding == wire::CERT_X509_SIGNATURE && r.certs.len() < 8 =>
                {
                    r.certs.push(&c.data);
                }
                Payload::Sa(x) => r.sa = r.sa.or(Some(x)),
                Payload::TsI(x) => r.tsi = r.tsi.or(Some(x)),
                Payload::TsR(x) => r.tsr = r.tsr.or(Some(x)),
                Payload::Notify(n) if n.kind == wire::NOTIFY_USE_TRANSPORT_MODE => {
                    r.transport = true
                }
                Payload::Other { kind, body } if *kind == wire::PAYLOAD_EAP => {
                    r.eap = r.eap.or(Some(body));
                }
                _ => {}
            }
        }
        r
    }
}

/// How we prove ourselves to a client that authenticated.
enum Ours {
    Psk(Secret),
    Cert(Arc<Credentials>),
}

/// A certificate client's AUTH: its chain leads to one of our CAs (valid now), its
/// certificate proves the IDi, its signature covers the signed octets.
fn verify_cert_auth(
    creds: &Credentials,
    req: &AuthRequest<'_>,
    idi: &Identification,
    auth: &Auth,
    octets: &[u8],
    allow_sha1: bool,
) -> Result<(), CertError> {
    let Some((ee, rest)) = req.certs.split_first() else {
        return Err(CertError::NoCertificate);
    };
    // The wall clock, for certificate validity: the one input the sans-IO responder
    // takes from outside its arguments.
    let (cert, key) = creds.verify_chain(ee, rest, SystemTime::now())?;
    if !cert_has_identity(&cert, idi) {
        return Err(CertError::IdentityMismatch);
    }
    key.verify_auth(auth, octets, allow_sha1)
}

impl Responder {
    /// Anything but an IKE_SA_INIT request to an auth-mode VIP: find the SA by our SPI
    /// (unknown SPIs are ignored, §2.21.4 allows no answer to unauthenticated input).
    pub(super) fn handle_encrypted(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        ike: &[u8],
        header: &Header,
    ) {
        let Some(mut sa) = self.sas.remove(&header.spi_r) else {
            return;
        };
        // We are always the original responder, so everything the client sends has I.
        if sa.spi_i == header.spi_i && header.initiator {
            if header.response {
                self.handle_response(now, &mut sa, ike, header);
            } else {
                self.handle_request(now, local, remote, &mut sa, ike, header);
            }
        }
        self.put_back(sa);
    }

    fn handle_request(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        sa: &mut IkeSa,
        ike: &[u8],
        header: &Header,
    ) {
        if let Some(c) = &sa.cached
            && c.message_id == header.message_id
        {
            // §2.1: the same request again gets the same response; anything else with
            // that Message ID is ignored.
            if c.request == digest(ike) {
                let resp = c.ike.clone();
                self.send(local, remote, &resp);
            }
            return;
        }
        let allowed = match sa.state {
            SaState::HalfOpen => header.exchange == wire::EXCHANGE_IKE_AUTH,
            SaState::Established => matches!(
                header.exchange,
                wire::EXCHANGE_INFORMATIONAL | wire::EXCHANGE_CREATE_CHILD_SA
            ),
            SaState::Closed | SaState::Gone => false,
        };
        if !allowed || header.message_id != sa.peer_next {
            return;
        }
        let opened =
            if sa.fragmentation && ike.get(wire::field::NEXT_PAYLOAD) == Some(&wire::PAYLOAD_SKF) {
                match sa.open.open_fragment(ike) {
                    Ok(f) => match self.reassemble(sa, f, digest(ike)) {
                        Step::Done {
                            first,
                            plain,
                            first_digest,
                        } => parse_chain(first, &plain)
                            .map(|payloads| {
                                let header = *header;
                                (Message { header, payloads }, first_digest)
                            })
                            .map_err(|e| (e, first_digest)),
                        Step::Pending | Step::Drop => return,
                    },
                    Err(_) => return,
                }
            } else {
                match sa.open.open(ike) {
                    Ok(m) => Ok((m, digest(ike))),
                    Err(SkError::Inner(e)) => Err((e, digest(ike))),
                    // Integrity failure, SKF without negotiation, garbage: drop.
                    Err(_) => return,
                }
            };
        let (msg, req) = match opened {
            Ok(x) => x,
            Err((e, req)) => {
                // Authentic but malformed: answer (§2.21.2); an IKE_AUTH that fails so
                // creates no SA.
                sa.peer_next = sa.peer_next.wrapping_add(1);
                let (kind, data) = e.notify();
                self.respond(sa, local, remote, header, req, vec![status(kind, data)]);
                if sa.state == SaState::HalfOpen {
                    self.close(now, sa, DeleteReason::InvalidSyntax);
                }
                return;
            }
        };
        sa.peer_next = sa.peer_next.wrapping_add(1);
        // §2.23: follow the client to port 4500 or to a new NAT mapping, but only on an
        // authenticated request.
        if sa.nat || local.port() == wire::PORT_NATT {
            sa.local = local;
            sa.remote = remote;
        }
        match header.exchange {
            wire::EXCHANGE_IKE_AUTH => self.ike_auth(now, local, remote, sa, header, req, &msg),
            wire::EXCHANGE_CREATE_CHILD_SA => {
                // §3.10.1: we create no CHILD SA, so every request gets this.
                let answer = vec![status(wire::NOTIFY_NO_ADDITIONAL_SAS, Vec::new())];
                self.respond(sa, local, remote, header, req, answer);
            }
            _ => self.informational(now, local, remote, sa, header, req, &msg),
        }
    }

    #[expect(clippy::too_many_arguments, reason = "one request's whole context")]
    fn ike_auth(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        sa: &mut IkeSa,
        header: &Header,
        req_digest: [u8; 32],
        msg: &Message,
    ) {
        let req = AuthRequest::read(msg);
        if sa.eap.is_some() {
            // The EAP rounds and the AUTH exchange after them (§2.16).
            self.eap_continue(now, local, remote, sa, header, req_digest, &req);
            return;
        }
        let Some(idi) = req.idi else {
            let answer = vec![status(wire::NOTIFY_INVALID_SYNTAX, Vec::new())];
            self.respond(sa, local, remote, header, req_digest, answer);
            self.close(now, sa, DeleteReason::InvalidSyntax);
            return;
        };
        let prf = sa.suite.prf;
        let peer = self.config.peers.iter().find(|p| identity_eq(&p.id, idi));
        let eap = match peer {
            Some(p) => matches!(p.auth, AuthMethod::Eap),
            None => self.config.eap_any,
        };
        if eap && req.auth.is_none() {
            self.eap_start(now, local, remote, sa, header, req_digest, &req, idi);
            return;
        }
        // No AUTH (EAP), another method, an unknown identity, a wrong MAC or signature,
        // a certificate that does not chain or name the IDi all fail the same way, so a
        // probe learns nothing about which identities exist; only our log learns why a
        // certificate was refused.
        let octets = || signed_octets(prf, &sa.init_req, &sa.nr, &sa.keys.sk_pi, &idi.body());
        let mut refused = None;
        let ours = match (peer, req.auth) {
            (Some(p), Some(a)) => match &p.auth {
                AuthMethod::Psk(k) if a.method == wire::AUTH_PSK => {
                    verify_psk_auth(prf, k, &octets(), &a.data).then(|| Ours::Psk(k.clone()))
                }
                AuthMethod::Psk(_) => None,
                AuthMethod::Certificate => {
                    let sha1 = self.config.allow_sha1;
                    self.config.credentials.as_ref().and_then(|c| {
                        match verify_cert_auth(c, &req, idi, a, &octets(), sha1) {
                            Ok(()) => Some(Ours::Cert(c.clone())),
                            Err(e) => {
                                refused = Some(e);
                                None
                            }
                        }
                    })
                }
                // An EAP client that sent AUTH in its first IKE_AUTH: not EAP.
                AuthMethod::Eap => None,
            },
            _ => None,
        };
        let answer = ours.and_then(|ours| match ours {
            Ours::Psk(psk) => {
                let idr = self.config.local_id.to_payload();
                let octets = signed_octets(prf, &sa.init_resp, &sa.ni, &sa.keys.sk_pr, &idr.body());
                let auth = Auth {
                    method: wire::AUTH_PSK,
                    data: psk_auth(prf, &psk, &octets).to_vec(),
                };
                Some(vec![Payload::IdR(idr), Payload::Auth(auth)])
            }
            Ours::Cert(creds) => {
                let idr = our_identity(&creds, &self.config.local_id);
                let octets = signed_octets(prf, &sa.init_resp, &sa.ni, &sa.keys.sk_pr, &idr.body());
                let auth = creds.sign_auth(&octets).ok()?;
                Some(vec![
                    Payload::IdR(idr),
                    Payload::Cert(creds.cert_payload()),
                    Payload::Auth(auth),
                ])
            }
        });
        let Some(answer) = answer else {
            let extra = Vec::new();
            self.auth_failed(
                now, local, remote, sa, header, req_digest, idi, refused, extra,
            );
            return;
        };
        self.finish_auth(
            now, local, remote, sa, header, req_digest, idi, answer, &req,
        );
    }

    /// Answers AUTHENTICATION_FAILED (after `extra`, e.g. an EAP-Failure) and ends the SA;
    /// `certificate` says why a client certificate was refused, for the log.
    #[expect(clippy::too_many_arguments, reason = "one request's whole context")]
    pub(super) fn auth_failed(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        sa: &mut IkeSa,
        header: &Header,
        req_digest: [u8; 32],
        idi: &Identification,
        certificate: Option<CertError>,
        extra: Vec<Payload>,
    ) {
        let mut answer = vec![status(wire::NOTIFY_AUTHENTICATION_FAILED, Vec::new())];
        answer.extend(extra);
        self.respond(sa, local, remote, header, req_digest, answer);
        self.event(Event::AuthFailed {
            client: remote,
            peer: Some(idi.clone()),
            certificate,
        });
        self.close(now, sa, DeleteReason::AuthFailed);
    }

    /// The client authenticated and `answer` proves us to it: the SA is established and
    /// the client redirected by the VIP's method (the CHILD SA from `req`).
    #[expect(clippy::too_many_arguments, reason = "one request's whole context")]
    pub(super) fn finish_auth(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        sa: &mut IkeSa,
        header: &Header,
        req_digest: [u8; 32],
        idi: &Identification,
        mut answer: Vec<Payload>,
        req: &AuthRequest<'_>,
    ) {
        self.leave_half_open(sa);
        sa.state = SaState::Established;
        sa.deadline = now + self.config.redirect_linger;
        sa.peer_id = Some(idi.clone());
        self.event(Event::Established {
            client: remote,
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
            peer: idi.clone(),
        });

        let target = self.choose(remote, &sa.spi_i);
        match (target, sa.method) {
            (Some(t), AuthRedirect::IkeAuth) => {
                // RFC 5685 §6: no CHILD SA with a redirect.
                answer.push(redirect_notify(&t));
                self.respond(sa, local, remote, header, req_digest, answer);
                self.redirected(sa, t, RedirectHow::IkeAuth);
            }
            (Some(t), AuthRedirect::Informational) => {
                self.answer_child(sa, req, &mut answer);
                self.respond(sa, local, remote, header, req_digest, answer);
                self.request(now, sa, OurRequest::Redirect, vec![redirect_notify(&t)]);
                self.redirected(sa, t, RedirectHow::Informational);
            }
            (None, _) => {
                // Nowhere to send the client: finish IKE_AUTH without a CHILD SA and
                // delete the IKE SA at once, so the client retries later.
                if req.sa.is_some() {
                    answer.push(status(wire::NOTIFY_NO_PROPOSAL_CHOSEN, Vec::new()));
                }
                self.respond(sa, local, remote, header, req_digest, answer);
                self.event(Event::NoTarget {
                    client: remote,
                    spi_i: sa.spi_i,
                });
                self.request(
                    now,
                    sa,
                    OurRequest::Delete,
                    vec![Payload::Delete(Delete::Ike)],
                );
            }
        }
    }

    /// [`Reassembly::add`] with the SA's fragments charged against the state bound.
    fn reassemble(&mut self, sa: &mut IkeSa, f: OpenFragment, raw_digest: [u8; 32]) -> Step {
        let before = sa.reassembly.as_ref().map_or(0, Reassembly::held);
        let step = Reassembly::add(&mut sa.reassembly, f, raw_digest, self.state_room());
        let after = sa.reassembly.as_ref().map_or(0, Reassembly::held);
        self.state_bytes = (self.state_bytes + after).saturating_sub(before);
        step
    }

    fn redirected(&mut self, sa: &IkeSa, target: GatewayIdentity, how: RedirectHow) {
        self.config.chooser.redirected(&target);
        self.event(Event::Redirected {
            client: sa.remote,
            spi_i: sa.spi_i,
            target,
            how,
        });
    }

    /// The CHILD SA part of a normal IKE_AUTH answer (negotiated, never installed): the
    /// client's first acceptable ESP proposal with an SPI of ours, and its traffic
    /// selectors as proposed (a responder may answer a subset; the whole set is one).
    fn answer_child(&mut self, sa: &mut IkeSa, req: &AuthRequest<'_>, answer: &mut Vec<Payload>) {
        let (Some(proposals), Some(tsi), Some(tsr)) = (req.sa, req.tsi, req.tsr) else {
            // A childless IKE_AUTH (RFC 6023): nothing to answer.
            return;
        };
        let Some(esp) = select_esp(proposals) else {
            answer.push(status(wire::NOTIFY_NO_PROPOSAL_CHOSEN, Vec::new()));
            return;
        };
        let mut spi = [0; 4];
        while spi == [0; 4] {
            self.rng.fill_bytes(&mut spi);
        }
        if req.transport {
            answer.push(status(wire::NOTIFY_USE_TRANSPORT_MODE, Vec::new()));
        }
        answer.push(Payload::Sa(vec![esp.to_proposal(spi)]));
        answer.push(Payload::TsI(tsi.to_vec()));
        answer.push(Payload::TsR(tsr.to_vec()));
        sa.child = Some((esp, spi));
    }

    #[expect(clippy::too_many_arguments, reason = "one request's whole context")]
    fn informational(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        sa: &mut IkeSa,
        header: &Header,
        req_digest: [u8; 32],
        msg: &Message,
    ) {
        let mut answer = Vec::new();
        for p in &msg.payloads {
            match p {
                Payload::Delete(Delete::Ike) => {
                    // §1.4.1: the answer to deleting the IKE SA is empty.
                    self.respond(sa, local, remote, header, req_digest, Vec::new());
                    self.close(now, sa, DeleteReason::PeerDelete);
                    return;
                }
                Payload::Delete(Delete::Child { protocol, spis }) => {
                    // §1.4.1: answer with our side of each deleted pair.
                    if let Some((esp, ours)) = &sa.child
                        && *protocol == wire::PROTO_ESP
                        && spis.contains(&esp.peer_spi)
                    {
                        answer.push(Payload::Delete(Delete::Child {
                            protocol: wire::PROTO_ESP,
                            spis: vec![*ours],
                        }));
                        sa.child = None;
                    }
                }
                _ => {}
            }
        }
        self.respond(sa, local, remote, header, req_digest, answer);
    }

    /// Seals and sends the response to the client's request, and caches it.
    pub(super) fn respond(
        &mut self,
        sa: &mut IkeSa,
        local: SocketAddr,
        remote: SocketAddr,
        request: &Header,
        request_digest: [u8; 32],
        payloads: Vec<Payload>,
    ) {
        let header = Header {
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
            exchange: request.exchange,
            initiator: false,
            response: true,
            message_id: request.message_id,
        };
        let Ok(ike) = sa.seal.seal(&header, &payloads, &mut self.rng) else {
            return;
        };
        self.send(local, remote, &ike);
        sa.cached = Some(Cached {
            message_id: request.message_id,
            request: request_digest,
            ike,
        });
    }

    /// Sends an INFORMATIONAL request of ours; it is retransmitted until answered.
    fn request(&mut self, now: Instant, sa: &mut IkeSa, what: OurRequest, payloads: Vec<Payload>) {
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

    /// The client's answer to our request.
    fn handle_response(&mut self, now: Instant, sa: &mut IkeSa, ike: &[u8], header: &Header) {
        let Some(o) = &sa.outstanding else { return };
        if header.message_id != o.message_id || header.exchange != wire::EXCHANGE_INFORMATIONAL {
            return;
        }
        // An authentic answer ends the request, even one that does not parse inside.
        match sa.open.open(ike) {
            Ok(_) | Err(SkError::Inner(_)) => {}
            Err(_) => return,
        }
        let what = o.what;
        sa.outstanding = None;
        match what {
            // The client follows the redirect and deletes this SA when it is done
            // (strongSwan: after its new SA is up; libreswan: before). Wait for that.
            OurRequest::Redirect => sa.deadline = now + self.config.redirect_linger,
            OurRequest::Delete => self.close(now, sa, DeleteReason::NoTarget),
        }
    }

    /// Retransmits our request if its time has come, or gives up on the SA.
    pub(super) fn retransmit_due(&mut self, now: Instant, sa: &mut IkeSa) {
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
