//! IKE_AUTH (RFC 7296 §1.2, §2.15): the client's identity and AUTH, by PSK or
//! certificate (RFC 7427 signatures); EAP clients are [`super::eap`]'s. How the exchange
//! ends is [`super::outcome`]'s.

use std::sync::Arc;
use std::time::SystemTime;

use lb_common::wire::ike as wire;

use super::ctx::{Ctx, status};
use super::eap;
use super::outcome;
use super::request::AuthRequest;
use crate::ike::cert::CertError;
use crate::ike::cert::identity::{cert_has_identity, identity_eq, our_identity};
use crate::ike::cert::validate::Credentials;
use crate::ike::crypto::Secret;
use crate::ike::crypto::prf::{psk_auth, signed_octets, verify_psk_auth};
use crate::ike::types::config::AuthMethod;
use crate::ike::types::event::DeleteReason;
use crate::ike::types::message::{Message, Payload};
use crate::ike::types::payload::{Auth, Identification};

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

/// An IKE_AUTH request of a half-open SA, or of one in EAP.
pub(super) fn ike_auth(cx: &mut Ctx<'_>, msg: &Message) {
    let req = AuthRequest::read(msg);
    if cx.sa.eap.is_some() {
        // The EAP rounds and the AUTH exchange after them (§2.16).
        eap::next(cx, &req);
        return;
    }
    let Some(idi) = req.idi else {
        cx.respond(vec![status(wire::NOTIFY_INVALID_SYNTAX, Vec::new())]);
        cx.close(DeleteReason::InvalidSyntax);
        return;
    };
    let (sa, config) = (&*cx.sa, &cx.core.config);
    let prf = sa.suite.prf;
    let peer = config.peers.iter().find(|p| identity_eq(&p.id, idi));
    let eap = match peer {
        Some(p) => matches!(p.auth, AuthMethod::Eap),
        None => config.eap_any,
    };
    if eap && req.auth.is_none() {
        eap::start(cx, &req, idi);
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
                let sha1 = config.allow_sha1;
                config.credentials.as_ref().and_then(|c| {
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
            let idr = config.local_id.to_payload();
            let octets = signed_octets(prf, &sa.init_resp, &sa.ni, &sa.keys.sk_pr, &idr.body());
            let auth = Auth {
                method: wire::AUTH_PSK,
                data: psk_auth(prf, &psk, &octets).to_vec(),
            };
            Some(vec![Payload::IdR(idr), Payload::Auth(auth)])
        }
        Ours::Cert(creds) => {
            let idr = our_identity(&creds, &config.local_id);
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
        outcome::failed(cx, idi, refused, Vec::new());
        return;
    };
    outcome::established(cx, idi, answer, &req);
}
