//! Real IKE peers, one daemon per network namespace: strongSwan charon (from a private
//! root, docs/testing.md §4), libreswan pluto (self-contained, docs/testing.md §5) and
//! FreeRADIUS for EAP (docs/testing.md §4.4).

pub mod freeradius;
pub mod libreswan;
pub mod root;
pub mod strongswan;
pub mod vici;

/// Pre-shared key every lab peer uses.
pub const PSK: &str = "ikelb-lab-psk-0123456789";

/// Shared secret between the lab's RADIUS servers and their NAS (ikelb, the members).
pub const RADIUS_SECRET: &str = "ikelb-lab-radius-secret";

/// EAP-MSCHAPv2 password of every lab user at the RADIUS servers.
pub const EAP_PASSWORD: &str = "ikelb-lab-eap-password";
