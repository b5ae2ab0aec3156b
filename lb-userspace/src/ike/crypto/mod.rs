//! The IKE SA's cryptography, on RustCrypto: the PRF and what is derived with it
//! ([`prf`]), key exchange ([`dh`]) and the protection of SK and SKF payloads ([`sk`]).
//! Signatures and certificates are [`crate::ike::cert`]'s. Every secret lives in a
//! [`Secret`], wiped on drop.

pub mod dh;
pub mod prf;
pub mod sk;

use zeroize::Zeroizing;

/// Secret bytes, zeroed when dropped.
pub type Secret = Zeroizing<Vec<u8>>;

/// What can go wrong in key exchange, derivation or SK protection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("prf+ cannot produce {0} bytes")]
    KeymatTooLong(usize),
    #[error("peer's public value is invalid for the group")]
    InvalidPublicValue,
    #[error("encrypted payload too short or misaligned")]
    BadCiphertextLength,
    #[error("integrity check failed")]
    Integrity,
    #[error("bad padding")]
    Padding,
    #[error("message could not be encoded")]
    Encode,
}
