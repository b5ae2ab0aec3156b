//! The userspace IKEv2 responder (redirect after authentication): pure building blocks,
//! no sockets.
//!
//! - [`message`] and [`payload`]: bounded parser and serializer of IKEv2 messages.
//! - [`proposal`]: the algorithms we speak and the choice among a client's proposals.
//! - [`dh`]: key exchange for groups 14, 15, 19, 20 and 31.
//! - [`crypto`]: prf, prf+, SKEYSEED and SK_* derivation, PSK AUTH, NAT-D hashes.
//! - [`sk`]: encryption and integrity of the SK and SKF payloads.
//! - [`cert`]: certificates, chain and identity checks, RFC 7427 signatures.
//!
//! - [`io`]: the tokio driver (sockets on VIP:500 and VIP:4500, timers, key log, and
//!   the RADIUS client's socket for EAP, [`crate::radius`]).
//! - [`responder`]: the sans-IO responder state machine on top of them ([`Responder`]),
//!   with [`init`] (IKE_SA_INIT), [`auth`] (IKE_AUTH, INFORMATIONAL, redirect), [`eap`]
//!   (EAP in IKE_AUTH, relayed to RADIUS), [`sa`] (one IKE SA), [`cookie`] (stateless
//!   COOKIE) and [`frag`] (SKF reassembly).

mod auth;
pub mod cert;
mod cookie;
pub mod crypto;
pub mod dh;
mod eap;
mod frag;
mod init;
pub mod io;
pub mod message;
pub mod payload;
pub mod proposal;
pub mod responder;
mod sa;
pub mod sk;

pub use responder::{
    AuthMethod, AuthRedirect, DeleteReason, Event, GatewayIdentity, Identity, KeyLog, PeerConfig,
    RedirectHow, Responder, ResponderConfig, TargetChooser, Transmit, VipConfig, VipMode,
};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cert;
#[cfg(test)]
mod tests_corpus;
#[cfg(test)]
mod tests_eap;
#[cfg(test)]
mod tests_initiator;
#[cfg(test)]
mod tests_io;
#[cfg(test)]
mod tests_responder;
#[cfg(test)]
mod tests_robust;
#[cfg(test)]
mod tests_strongswan;
#[cfg(test)]
mod tests_wire;

/// What a UDP payload on port 4500 is (RFC 3948 §2.2, RFC 7296 §2.23).
#[derive(Debug, PartialEq, Eq)]
pub enum NattPayload<'a> {
    /// A one-byte `0xff` NAT keepalive: ignore it.
    Keepalive,
    /// ESP (the first four bytes are a non-zero SPI): not ours, ikelb carries no ESP.
    Esp,
    /// IKE after the four-byte non-ESP marker, ready for [`message::Header::parse`].
    Ike(&'a [u8]),
}

/// Splits what arrived on port 4500 by its first bytes. The responder calls it on every
/// datagram from that port; on port 500 the payload is IKE as it is.
pub fn classify_natt(udp: &[u8]) -> NattPayload<'_> {
    match udp {
        [0xff] => NattPayload::Keepalive,
        [0, 0, 0, 0, ike @ ..] => NattPayload::Ike(ike),
        _ => NattPayload::Esp,
    }
}
