//! Everything after IKE_SA_INIT, which arrives encrypted: the client's requests (the
//! cached response for a retransmission, the Message ID window, SK or reassembled SKF,
//! the answer to an authentic but malformed request, then IKE_AUTH, CREATE_CHILD_SA or
//! INFORMATIONAL), and the client's answers to our own requests (RFC 7296 §2.1–§2.3).

use lb_common::wire::ike as wire;

use super::auth;
use super::core::Core;
use super::ctx::{Ctx, status};
use super::frag::{Reassembly, Step};
use super::request::{Datagram, Request};
use super::sa::{IkeSa, OurRequest, SaState, digest};
use crate::ike::crypto::sk::{OpenFragment, SkError};
use crate::ike::types::event::DeleteReason;
use crate::ike::types::message::{Header, Message, Payload, parse_chain};
use crate::ike::types::payload::Delete;

/// A request of the client on its SA.
pub(super) fn request(core: &mut Core, sa: &mut IkeSa, d: &Datagram<'_>, header: &Header) {
    let ike = d.ike;
    if let Some(c) = &sa.cached
        && c.message_id == header.message_id
    {
        // §2.1: the same request again gets the same response; anything else with
        // that Message ID is ignored.
        if c.request == digest(ike) {
            let resp = c.ike.clone();
            core.send(d.local, d.remote, &resp);
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
                Ok(f) => match reassemble(core, sa, f, digest(ike)) {
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
    let request = |digest| Request {
        local: d.local,
        remote: d.remote,
        header: *header,
        digest,
    };
    let (msg, digest) = match opened {
        Ok(x) => x,
        Err((e, digest)) => {
            // Authentic but malformed: answer (§2.21.2); an IKE_AUTH that fails so
            // creates no SA.
            sa.peer_next = sa.peer_next.wrapping_add(1);
            let (kind, data) = e.notify();
            let half_open = sa.state == SaState::HalfOpen;
            let mut cx = Ctx {
                core,
                sa,
                now: d.now,
                req: request(digest),
            };
            cx.respond(vec![status(kind, data)]);
            if half_open {
                cx.close(DeleteReason::InvalidSyntax);
            }
            return;
        }
    };
    sa.peer_next = sa.peer_next.wrapping_add(1);
    // §2.23: follow the client to port 4500 or to a new NAT mapping, but only on an
    // authenticated request.
    if sa.nat || d.local.port() == wire::PORT_NATT {
        sa.local = d.local;
        sa.remote = d.remote;
    }
    let mut cx = Ctx {
        core,
        sa,
        now: d.now,
        req: request(digest),
    };
    match header.exchange {
        wire::EXCHANGE_IKE_AUTH => auth::ike_auth(&mut cx, &msg),
        wire::EXCHANGE_CREATE_CHILD_SA => {
            // §3.10.1: we create no CHILD SA, so every request gets this.
            cx.respond(vec![status(wire::NOTIFY_NO_ADDITIONAL_SAS, Vec::new())]);
        }
        _ => informational(&mut cx, &msg),
    }
}

/// [`Reassembly::add`] with the SA's fragments charged against the state bound.
fn reassemble(core: &mut Core, sa: &mut IkeSa, f: OpenFragment, raw_digest: [u8; 32]) -> Step {
    let before = sa.reassembly.as_ref().map_or(0, Reassembly::held);
    let step = Reassembly::add(&mut sa.reassembly, f, raw_digest, core.state_room());
    let after = sa.reassembly.as_ref().map_or(0, Reassembly::held);
    core.state_bytes = (core.state_bytes + after).saturating_sub(before);
    step
}

/// The client's INFORMATIONAL request: DELETE of the IKE SA or of the CHILD SA, or an
/// empty liveness check.
fn informational(cx: &mut Ctx<'_>, msg: &Message) {
    let mut answer = Vec::new();
    for p in &msg.payloads {
        match p {
            Payload::Delete(Delete::Ike) => {
                // §1.4.1: the answer to deleting the IKE SA is empty.
                cx.respond(Vec::new());
                cx.close(DeleteReason::PeerDelete);
                return;
            }
            Payload::Delete(Delete::Child { protocol, spis }) => {
                // §1.4.1: answer with our side of each deleted pair.
                if let Some((esp, ours)) = &cx.sa.child
                    && *protocol == wire::PROTO_ESP
                    && spis.contains(&esp.peer_spi)
                {
                    answer.push(Payload::Delete(Delete::Child {
                        protocol: wire::PROTO_ESP,
                        spis: vec![*ours],
                    }));
                    cx.sa.child = None;
                }
            }
            _ => {}
        }
    }
    cx.respond(answer);
}

/// The client's answer to our request.
pub(super) fn response(core: &mut Core, sa: &mut IkeSa, d: &Datagram<'_>, header: &Header) {
    let Some(o) = &sa.outstanding else { return };
    if header.message_id != o.message_id || header.exchange != wire::EXCHANGE_INFORMATIONAL {
        return;
    }
    // An authentic answer ends the request, even one that does not parse inside.
    match sa.open.open(d.ike) {
        Ok(_) | Err(SkError::Inner(_)) => {}
        Err(_) => return,
    }
    let what = o.what;
    sa.outstanding = None;
    match what {
        // The client follows the redirect and deletes this SA when it is done
        // (strongSwan: after its new SA is up; libreswan: before). Wait for that.
        OurRequest::Redirect => sa.deadline = d.now + core.config.redirect_linger,
        OurRequest::Delete => core.close(d.now, sa, DeleteReason::NoTarget),
    }
}
