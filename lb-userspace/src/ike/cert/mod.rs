//! Certificate authentication (RFC 7296 §2.15, §3.6, §3.7; RFC 7427 signatures;
//! RFC 4754 ECDSA), in three parts: the signatures of AUTH payloads and certificates
//! with the keys behind them ([`signature`]); our credentials and the validation of a
//! client's chain against our CAs ([`validate`]); and which identities a certificate
//! proves ([`identity`]).
//!
//! All cryptography is RustCrypto's: `x509-cert`/`der` parse, `rsa` (PKCS#1 v1.5 and
//! PSS), `p256`/`p384` (ECDSA) and `sha1`/`sha2` hash. Only the glue is here.

pub mod identity;
pub mod signature;
pub mod validate;

use x509_cert::der::asn1::ObjectIdentifier;

/// Why a certificate, key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("not a PEM or DER X.509 certificate")]
    BadCertificate,
    #[error("no certificate")]
    NoCertificate,
    #[error("not an RSA or ECDSA (P-256, P-384) private key in PEM")]
    BadPrivateKey,
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error("unsupported public key (RSA, ECDSA P-256 and P-384 are)")]
    UnsupportedKey,
    #[error("unsupported or malformed signature algorithm")]
    UnsupportedAlgorithm,
    #[error("signature does not verify")]
    BadSignature,
    #[error("certificate not valid at this time")]
    Expired,
    #[error("no chain to a configured CA")]
    UntrustedChain,
    #[error("the identity is not in the certificate")]
    IdentityMismatch,
    #[error("RSA key of {0} bits: at least 2048 are needed")]
    WeakKey(usize),
    #[error("a CA's RSA key has {0} bits: at least 2048 are needed")]
    WeakCaKey(usize),
    #[error("unknown critical extension {0}")]
    UnknownCriticalExtension(ObjectIdentifier),
    #[error("KeyUsage does not allow this use")]
    KeyUsage,
    #[error("ExtendedKeyUsage names no purpose for IKE")]
    ExtendedKeyUsage,
    #[error("more intermediates than an issuer's path length allows")]
    PathLength,
    #[error("SHA-1 signature (AUTH method 1) not allowed")]
    Sha1NotAllowed,
    #[error("signing failed")]
    Sign,
}
