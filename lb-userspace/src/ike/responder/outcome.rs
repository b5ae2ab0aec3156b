//! How IKE_AUTH ends, whatever the method: the client authenticated, so the SA is
//! established and the client redirected (RFC 5685 §5, §6) or, with no target, the SA
//! deleted; or it did not, and gets AUTHENTICATION_FAILED.

use lb_common::wire::ike as wire;
use rand_core::RngCore;

use super::ctx::{Ctx, status};
use super::request::AuthRequest;
use super::sa::{OurRequest, SaState};
use crate::ike::cert::CertError;
use crate::ike::types::config::{AuthRedirect, GatewayIdentity};
use crate::ike::types::event::{DeleteReason, Event, RedirectHow};
use crate::ike::types::message::Payload;
use crate::ike::types::payload::{Delete, Identification};
use crate::ike::types::proposal::select_esp;

/// N(REDIRECT) without nonce data, as IKE_AUTH and INFORMATIONAL carry it (RFC 5685
/// §9.2; libreswan rejects extra bytes there).
fn redirect_notify(t: &GatewayIdentity) -> Payload {
    let mut data = vec![t.ident_type, t.ident_len];
    data.extend_from_slice(t.ident());
    status(wire::NOTIFY_REDIRECT, data)
}

/// Answers AUTHENTICATION_FAILED (after `extra`, e.g. an EAP-Failure) and ends the SA;
/// `certificate` says why a client certificate was refused, for the log.
pub(super) fn failed(
    cx: &mut Ctx<'_>,
    idi: &Identification,
    certificate: Option<CertError>,
    extra: Vec<Payload>,
) {
    let mut answer = vec![status(wire::NOTIFY_AUTHENTICATION_FAILED, Vec::new())];
    answer.extend(extra);
    cx.respond(answer);
    cx.core.event(Event::AuthFailed {
        client: cx.req.remote,
        peer: Some(idi.clone()),
        certificate,
    });
    cx.close(DeleteReason::AuthFailed);
}

/// The client authenticated and `answer` proves us to it: the SA is established and
/// the client redirected by the VIP's method (the CHILD SA from `req`).
pub(super) fn established(
    cx: &mut Ctx<'_>,
    idi: &Identification,
    mut answer: Vec<Payload>,
    req: &AuthRequest<'_>,
) {
    let (now, remote) = (cx.now, cx.req.remote);
    cx.core.leave_half_open(cx.sa);
    cx.sa.state = SaState::Established;
    cx.sa.deadline = now + cx.core.config.redirect_linger;
    cx.sa.peer_id = Some(idi.clone());
    cx.core.event(Event::Established {
        client: remote,
        spi_i: cx.sa.spi_i,
        spi_r: cx.sa.spi_r,
        peer: idi.clone(),
    });

    let target = cx.core.choose(remote, &cx.sa.spi_i);
    let (client, spi_i) = (cx.sa.remote, cx.sa.spi_i);
    match (target, cx.sa.method) {
        (Some(t), AuthRedirect::IkeAuth) => {
            // RFC 5685 §6: no CHILD SA with a redirect.
            answer.push(redirect_notify(&t));
            cx.respond(answer);
            cx.core.redirected(client, spi_i, t, RedirectHow::IkeAuth);
        }
        (Some(t), AuthRedirect::Informational) => {
            answer_child(cx, req, &mut answer);
            cx.respond(answer);
            let redirect = vec![redirect_notify(&t)];
            cx.core.request(now, cx.sa, OurRequest::Redirect, redirect);
            cx.core
                .redirected(client, spi_i, t, RedirectHow::Informational);
        }
        (None, _) => {
            // Nowhere to send the client: finish IKE_AUTH without a CHILD SA and
            // delete the IKE SA at once, so the client retries later.
            if req.sa.is_some() {
                answer.push(status(wire::NOTIFY_NO_PROPOSAL_CHOSEN, Vec::new()));
            }
            cx.respond(answer);
            cx.core.event(Event::NoTarget {
                client: remote,
                spi_i,
            });
            let delete = vec![Payload::Delete(Delete::Ike)];
            cx.core.request(now, cx.sa, OurRequest::Delete, delete);
        }
    }
}

/// The CHILD SA part of a normal IKE_AUTH answer (negotiated, never installed): the
/// client's first acceptable ESP proposal with an SPI of ours, and its traffic
/// selectors as proposed (a responder may answer a subset; the whole set is one).
fn answer_child(cx: &mut Ctx<'_>, req: &AuthRequest<'_>, answer: &mut Vec<Payload>) {
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
        cx.core.rng.fill_bytes(&mut spi);
    }
    if req.transport {
        answer.push(status(wire::NOTIFY_USE_TRANSPORT_MODE, Vec::new()));
    }
    answer.push(Payload::Sa(vec![esp.to_proposal(spi)]));
    answer.push(Payload::TsI(tsi.to_vec()));
    answer.push(Payload::TsR(tsr.to_vec()));
    cx.sa.child = Some((esp, spi));
}
