//! RADIUS for EAP pass-through (RFC 2865, RFC 3579, RFC 2548): ikelb relays each EAP
//! message of a client to a RADIUS server and back, and takes the MSK from the
//! server's Access-Accept (docs/protocol.md §2.11).
//!
//! - [`packet`]: Access-Request encoding, answer checks, MPPE key decryption.
//! - [`client`]: the sans-IO client (retransmission, failover, checks, counters).
//! - [`io`]: its tokio edge, driven by the IKE driver ([`crate::ike::io::drive`]).

pub mod client;
pub mod io;
pub mod packet;

pub use client::{Client, ClientConfig, Continuation, Outcome, Relay, Server, Stats, Ticket};

#[cfg(test)]
mod tests;
