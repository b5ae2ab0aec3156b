//! What the handlers are given: a datagram as it arrived ([`Datagram`]), an
//! authenticated request of the client with what its response is filed under
//! ([`Request`]), and what an IKE_AUTH request carries that the answer needs
//! ([`AuthRequest`]).

use std::net::SocketAddr;
use std::time::Instant;

use lb_common::wire::ike as wire;

use crate::ike::types::message::{Header, Message, Payload};
use crate::ike::types::payload::{Auth, Identification, Proposal, TrafficSelector};

/// An IKE message as it arrived: when, on which local address (VIP:500 or VIP:4500)
/// and from where; `ike` is the message without the non-ESP marker.
pub(super) struct Datagram<'a> {
    pub(super) now: Instant,
    pub(super) local: SocketAddr,
    pub(super) remote: SocketAddr,
    pub(super) ike: &'a [u8],
}

/// One authenticated request of the client: the addresses it used, its header, and
/// the digest its cached response is kept under (§2.1).
#[derive(Clone, Copy)]
pub(super) struct Request {
    pub(super) local: SocketAddr,
    pub(super) remote: SocketAddr,
    pub(super) header: Header,
    pub(super) digest: [u8; 32],
}

/// The request's first payload of each kind the IKE_AUTH answer needs.
#[derive(Default)]
pub(super) struct AuthRequest<'a> {
    pub(super) idi: Option<&'a Identification>,
    pub(super) auth: Option<&'a Auth>,
    /// The client's X.509 certificates, its own first (§3.6).
    pub(super) certs: Vec<&'a [u8]>,
    pub(super) sa: Option<&'a [Proposal]>,
    pub(super) tsi: Option<&'a [TrafficSelector]>,
    pub(super) tsr: Option<&'a [TrafficSelector]>,
    pub(super) transport: bool,
    /// The EAP payload's body: one EAP packet (§3.16).
    pub(super) eap: Option<&'a [u8]>,
}

impl<'a> AuthRequest<'a> {
    pub(super) fn read(msg: &'a Message) -> Self {
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
