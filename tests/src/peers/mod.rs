//! Real IKE peers, one daemon per network namespace: strongSwan charon (from a private
//! root, peers.md §2–§3) and libreswan pluto (self-contained, peers.md §4).

pub mod libreswan;
pub mod root;
pub mod strongswan;
pub mod vici;

/// Pre-shared key every lab peer uses.
pub const PSK: &str = "ikelb-lab-psk-0123456789";
