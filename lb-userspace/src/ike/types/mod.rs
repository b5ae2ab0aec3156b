//! The IKEv2 vocabulary of the responder, everything apart from its state machine: the
//! bounded parser and serializer of messages ([`message`] and [`payload`] on
//! [`codec`]), the algorithms and the choice among a client's proposals ([`proposal`]),
//! what port 4500 carries ([`natt`]), identities ([`identity`]), what the responder is
//! configured with ([`config`]) and what it reports ([`event`]). The numbers are
//! `lb_common::wire::ike`'s.

pub mod codec;
pub mod config;
pub mod event;
pub mod identity;
pub mod message;
pub mod natt;
pub mod payload;
pub mod proposal;
