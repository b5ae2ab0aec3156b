//! The userspace IKEv2 responder (redirect after authentication).
//!
//! - [`types`]: everything apart from the state machine: the bounded parser and
//!   serializer of IKEv2 messages, the algorithms and the choice among a client's
//!   proposals, identities, the responder's configuration and its events. The numbers
//!   are `lb_common::wire::ike`'s.
//! - [`crypto`]: the PRF and the keys derived with it, key exchange (groups 14, 15, 19,
//!   20 and 31), and the protection of SK and SKF payloads.
//! - [`cert`]: RFC 7427 signatures and the keys behind them, our credentials and the
//!   validation of a client's chain, and the identities a certificate proves.
//! - [`responder`]: the sans-IO state machine ([`Responder`]), all of it.
//! - [`io`]: the tokio driver (sockets on VIP:500 and VIP:4500, timers, key log, and
//!   the RADIUS client's socket for EAP, [`crate::radius`]).
//!
//! The unit tests are in `tests/`, with the corpus of captured datagrams they replay.

pub mod cert;
pub mod crypto;
pub mod io;
pub mod responder;
pub mod types;

pub use responder::Responder;
pub use types::config::{
    AuthMethod, AuthRedirect, GatewayIdentity, PeerConfig, ResponderConfig, TargetChooser,
    VipConfig, VipMode,
};
pub use types::event::{DeleteReason, Event, KeyLog, RedirectHow, Transmit};
pub use types::identity::Identity;

#[cfg(test)]
mod tests;
