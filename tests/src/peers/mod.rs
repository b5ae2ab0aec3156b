//! Real IKE peers, one daemon per network namespace: strongSwan charon (from a private
//! root, docs/testing.md §4) and libreswan pluto (self-contained, docs/testing.md §5).

pub mod libreswan;
pub mod root;
pub mod strongswan;
pub mod vici;

/// Pre-shared key every lab peer uses.
pub const PSK: &str = "ikelb-lab-psk-0123456789";
