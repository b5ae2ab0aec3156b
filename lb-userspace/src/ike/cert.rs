//! Certificate authentication (RFC 7296 §2.15, §3.6, §3.7; RFC 7427 signatures;
//! RFC 4754 ECDSA): our certificate and private key, the CA bundle clients are checked
//! against, chain verification, identity checks, and AUTH signing and verification.
//!
//! A client's chain is checked as RFC 5280 §4.2 and RFC 4945 §5.1.3 ask: no critical
//! extension we do not understand; the client's certificate, when it has KeyUsage, may
//! sign (digitalSignature or nonRepudiation) and, when it has ExtendedKeyUsage, names
//! one IKE may use ([`ACCEPTED_EKUS`]); each issuer is a CA, may sign certificates
//! (keyCertSign, when KeyUsage is there) and has a path length that allows the
//! intermediates below it. RSA keys need [`MIN_RSA_BITS`]; SHA-1 (AUTH method 1) only
//! when configured.
//!
//! All cryptography is RustCrypto's: `x509-cert`/`der` parse, `rsa` (PKCS#1 v1.5 and
//! PSS), `p256`/`p384` (ECDSA) and `sha1`/`sha2` hash. Only the glue is here.

use std::time::SystemTime;

use lb_common::wire::ike::{
    self as wire, AUTH_DIGITAL_SIGNATURE, AUTH_ECDSA_256, AUTH_ECDSA_384, AUTH_RSA,
    CERT_X509_SIGNATURE, ID_DER_ASN1_DN,
};
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use rsa::pkcs1::{DecodeRsaPrivateKey, RsaPssParams};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use sha1::{Digest, Sha1};
use sha2::{Sha256, Sha384, Sha512};
use x509_cert::Certificate;
use x509_cert::der::{self, asn1::ObjectIdentifier};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName};
use x509_cert::name::RdnSequence;
use x509_cert::spki::{self, AlgorithmIdentifierRef};

use super::payload::{Auth, Cert, Identification};
use super::responder::Identity;

/// The hashes we verify RFC 7427 signatures with: SHA2-256, -384, -512.
pub const OUR_HASHES: [u16; 3] = [
    wire::HASH_SHA2_256,
    wire::HASH_SHA2_384,
    wire::HASH_SHA2_512,
];
/// Longest chain we follow from the client's certificate to a CA (intermediates + 1).
const MAX_CHAIN: usize = 5;
/// Smallest RSA modulus we accept, in ours, our CAs' and clients' certificates (NIST SP
/// 800-57: 1024-bit RSA is no longer acceptable).
pub const MIN_RSA_BITS: usize = 2048;

/// The extensions we act on, and so the only ones that may be critical (RFC 5280
/// §4.2: a certificate with a critical extension we do not process is refused).
const KNOWN_CRITICAL: [ObjectIdentifier; 4] = [
    ObjectIdentifier::new_unwrap("2.5.29.15"), // keyUsage
    ObjectIdentifier::new_unwrap("2.5.29.17"), // subjectAltName
    ObjectIdentifier::new_unwrap("2.5.29.19"), // basicConstraints
    ObjectIdentifier::new_unwrap("2.5.29.37"), // extKeyUsage
];
/// The ExtendedKeyUsage purposes a client certificate may carry for IKE (RFC 4945
/// §5.1.3.12 and what deployed clients use): serverAuth, clientAuth, ipsecIKE (RFC
/// 4945), iKEIntermediate (strongSwan's and Windows' historic one), anyExtendedKeyUsage.
pub const ACCEPTED_EKUS: [ObjectIdentifier; 5] = [
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1"),
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2"),
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.17"),
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.8.2.2"),
    ObjectIdentifier::new_unwrap("2.5.29.37.0"),
];

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

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

/// A hash function of a signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => Sha1::digest(msg).to_vec(),
            Hash::Sha256 => Sha256::digest(msg).to_vec(),
            Hash::Sha384 => Sha384::digest(msg).to_vec(),
            Hash::Sha512 => Sha512::digest(msg).to_vec(),
        }
    }

    fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        match oid {
            SHA256 => Some(Hash::Sha256),
            SHA384 => Some(Hash::Sha384),
            SHA512 => Some(Hash::Sha512),
            _ => None,
        }
    }

    fn pkcs1(self) -> Pkcs1v15Sign {
        match self {
            Hash::Sha1 => Pkcs1v15Sign::new::<Sha1>(),
            Hash::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
            Hash::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
            Hash::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
        }
    }

    fn pss(self, salt: usize) -> Pss {
        match self {
            Hash::Sha1 => Pss::new_with_salt::<Sha1>(salt),
            Hash::Sha256 => Pss::new_with_salt::<Sha256>(salt),
            Hash::Sha384 => Pss::new_with_salt::<Sha384>(salt),
            Hash::Sha512 => Pss::new_with_salt::<Sha512>(salt),
        }
    }
}

/// A signature scheme, from an X.509 or RFC 7427 AlgorithmIdentifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigAlg {
    RsaPkcs1(Hash),
    RsaPss {
        hash: Hash,
        salt: usize,
    },
    /// ECDSA; the signature is the DER `Ecdsa-Sig-Value` (RFC 7427 §3, X.509).
    Ecdsa(Hash),
}

impl SigAlg {
    /// Reads an AlgorithmIdentifier (RSASSA-PSS with its parameters: MGF1 with the
    /// same hash, the only form in use).
    pub fn from_algorithm(alg: &AlgorithmIdentifierRef<'_>) -> Result<Self, CertError> {
        let bad = CertError::UnsupportedAlgorithm;
        Ok(match alg.oid {
            SHA256_WITH_RSA => SigAlg::RsaPkcs1(Hash::Sha256),
            SHA384_WITH_RSA => SigAlg::RsaPkcs1(Hash::Sha384),
            SHA512_WITH_RSA => SigAlg::RsaPkcs1(Hash::Sha512),
            ECDSA_SHA256 => SigAlg::Ecdsa(Hash::Sha256),
            ECDSA_SHA384 => SigAlg::Ecdsa(Hash::Sha384),
            ECDSA_SHA512 => SigAlg::Ecdsa(Hash::Sha512),
            RSASSA_PSS => {
                let params: RsaPssParams<'_> = alg
                    .parameters
                    .ok_or(bad.clone())?
                    .decode_as()
                    .map_err(|_| bad.clone())?;
                let hash = Hash::from_oid(params.hash.oid).ok_or(bad.clone())?;
                let mgf_hash = params.mask_gen.parameters.map(|p| p.oid);
                if mgf_hash != Some(params.hash.oid) {
                    return Err(bad);
                }
                SigAlg::RsaPss {
                    hash,
                    salt: usize::from(params.salt_len),
                }
            }
            _ => return Err(bad),
        })
    }

    /// The DER AlgorithmIdentifier RFC 7427 puts before the signature, for the schemes
    /// we sign with (PKCS#1 v1.5 with NULL parameters, ECDSA without parameters).
    pub fn algorithm_der(self) -> Result<Vec<u8>, CertError> {
        let (oid, null) = match self {
            SigAlg::RsaPkcs1(Hash::Sha256) => (SHA256_WITH_RSA, true),
            SigAlg::RsaPkcs1(Hash::Sha384) => (SHA384_WITH_RSA, true),
            SigAlg::RsaPkcs1(Hash::Sha512) => (SHA512_WITH_RSA, true),
            SigAlg::Ecdsa(Hash::Sha256) => (ECDSA_SHA256, false),
            SigAlg::Ecdsa(Hash::Sha384) => (ECDSA_SHA384, false),
            SigAlg::Ecdsa(Hash::Sha512) => (ECDSA_SHA512, false),
            _ => return Err(CertError::UnsupportedAlgorithm),
        };
        AlgorithmIdentifierRef {
            oid,
            parameters: null.then_some(der::asn1::AnyRef::NULL),
        }
        .to_der()
        .map_err(|_| CertError::UnsupportedAlgorithm)
    }
}

/// A public key we verify with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Rsa(RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// From a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(spki: &[u8]) -> Result<Self, CertError> {
        let info =
            spki::SubjectPublicKeyInfoRef::from_der(spki).map_err(|_| CertError::UnsupportedKey)?;
        let bad = |_| CertError::UnsupportedKey;
        match info.algorithm.oid {
            RSA_ENCRYPTION => {
                let k = RsaPublicKey::from_public_key_der(spki).map_err(bad)?;
                let bits = k.n().bits();
                if bits < MIN_RSA_BITS {
                    return Err(CertError::WeakKey(bits));
                }
                Ok(PublicKey::Rsa(k))
            }
            EC_PUBLIC_KEY => match info.algorithm.parameters_oid().ok() {
                Some(SECP256R1) => Ok(PublicKey::P256(
                    p256::ecdsa::VerifyingKey::from_public_key_der(spki).map_err(bad)?,
                )),
                Some(SECP384R1) => Ok(PublicKey::P384(
                    p384::ecdsa::VerifyingKey::from_public_key_der(spki).map_err(bad)?,
                )),
                _ => Err(CertError::UnsupportedKey),
            },
            _ => Err(CertError::UnsupportedKey),
        }
    }

    fn of(cert: &Certificate) -> Result<Self, CertError> {
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|_| CertError::BadCertificate)?;
        Self::from_spki_der(&spki)
    }

    /// Verifies `sig` over `msg`. `ecdsa_raw`: the signature is `r | s` (RFC 4754)
    /// rather than DER.
    pub fn verify(
        &self,
        alg: SigAlg,
        msg: &[u8],
        sig: &[u8],
        ecdsa_raw: bool,
    ) -> Result<(), CertError> {
        let bad = CertError::BadSignature;
        match (self, alg) {
            (PublicKey::Rsa(k), SigAlg::RsaPkcs1(h)) => {
                k.verify(h.pkcs1(), &h.digest(msg), sig).map_err(|_| bad)
            }
            (PublicKey::Rsa(k), SigAlg::RsaPss { hash, salt }) => k
                .verify(hash.pss(salt), &hash.digest(msg), sig)
                .map_err(|_| bad),
            (PublicKey::P256(k), SigAlg::Ecdsa(h)) => {
                let s = if ecdsa_raw {
                    p256::ecdsa::Signature::from_slice(sig)
                } else {
                    p256::ecdsa::Signature::from_der(sig)
                }
                .map_err(|_| bad.clone())?;
                k.verify_prehash(&h.digest(msg), &s).map_err(|_| bad)
            }
            (PublicKey::P384(k), SigAlg::Ecdsa(h)) => {
                let s = if ecdsa_raw {
                    p384::ecdsa::Signature::from_slice(sig)
                } else {
                    p384::ecdsa::Signature::from_der(sig)
                }
                .map_err(|_| bad.clone())?;
                k.verify_prehash(&h.digest(msg), &s).map_err(|_| bad)
            }
            _ => Err(CertError::UnsupportedAlgorithm),
        }
    }

    /// Verifies a client's AUTH payload over its signed octets: method 14 (RFC 7427,
    /// SHA-2 only), 9/10 (RFC 4754), or 1 (RSA with SHA-1, RFC 7296) when `allow_sha1`.
    pub fn verify_auth(
        &self,
        auth: &Auth,
        octets: &[u8],
        allow_sha1: bool,
    ) -> Result<(), CertError> {
        match (auth.method, self) {
            (AUTH_DIGITAL_SIGNATURE, _) => {
                let (&len, rest) = auth.data.split_first().ok_or(CertError::BadSignature)?;
                let len = usize::from(len);
                if rest.len() <= len {
                    return Err(CertError::BadSignature);
                }
                let (alg, sig) = rest.split_at(len);
                let alg = AlgorithmIdentifierRef::from_der(alg)
                    .map_err(|_| CertError::UnsupportedAlgorithm)?;
                self.verify(SigAlg::from_algorithm(&alg)?, octets, sig, false)
            }
            (AUTH_RSA, PublicKey::Rsa(_)) if !allow_sha1 => Err(CertError::Sha1NotAllowed),
            (AUTH_RSA, PublicKey::Rsa(_)) => {
                self.verify(SigAlg::RsaPkcs1(Hash::Sha1), octets, &auth.data, false)
            }
            (AUTH_ECDSA_256, PublicKey::P256(_)) => {
                self.verify(SigAlg::Ecdsa(Hash::Sha256), octets, &auth.data, true)
            }
            (AUTH_ECDSA_384, PublicKey::P384(_)) => {
                self.verify(SigAlg::Ecdsa(Hash::Sha384), octets, &auth.data, true)
            }
            _ => Err(CertError::UnsupportedAlgorithm),
        }
    }
}

/// Our private key: RSA, or ECDSA on P-256 or P-384 (zeroized on drop by its crate).
pub enum PrivateKey {
    Rsa(Box<RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PrivateKey::Rsa(_) => "Rsa(<redacted>)",
            PrivateKey::P256(_) => "P256(<redacted>)",
            PrivateKey::P384(_) => "P384(<redacted>)",
        })
    }
}

impl PrivateKey {
    /// From PEM: PKCS#8 `PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`.
    pub fn from_pem(pem: &str) -> Result<Self, CertError> {
        if let Ok(k) = RsaPrivateKey::from_pkcs8_pem(pem) {
            return Ok(PrivateKey::Rsa(Box::new(k)));
        }
        if let Ok(k) = RsaPrivateKey::from_pkcs1_pem(pem) {
            return Ok(PrivateKey::Rsa(Box::new(k)));
        }
        if let Ok(k) = p256::SecretKey::from_pkcs8_pem(pem) {
            return Ok(PrivateKey::P256(k.into()));
        }
        if let Ok(k) = p384::SecretKey::from_pkcs8_pem(pem) {
            return Ok(PrivateKey::P384(k.into()));
        }
        if let Ok(k) = p256::SecretKey::from_sec1_pem(pem) {
            return Ok(PrivateKey::P256(k.into()));
        }
        if let Ok(k) = p384::SecretKey::from_sec1_pem(pem) {
            return Ok(PrivateKey::P384(k.into()));
        }
        Err(CertError::BadPrivateKey)
    }

    fn public(&self) -> PublicKey {
        match self {
            PrivateKey::Rsa(k) => PublicKey::Rsa(k.to_public_key()),
            PrivateKey::P256(k) => PublicKey::P256(*k.verifying_key()),
            PrivateKey::P384(k) => PublicKey::P384(*k.verifying_key()),
        }
    }

    /// The scheme we sign our AUTH with: PKCS#1 v1.5 with SHA-256 for RSA, ECDSA with
    /// the curve's hash; every RFC 7427 implementation takes SHA2-256 (§4), P-384
    /// peers SHA2-384.
    pub fn scheme(&self) -> SigAlg {
        match self {
            PrivateKey::Rsa(_) => SigAlg::RsaPkcs1(Hash::Sha256),
            PrivateKey::P256(_) => SigAlg::Ecdsa(Hash::Sha256),
            PrivateKey::P384(_) => SigAlg::Ecdsa(Hash::Sha384),
        }
    }

    /// Signs `msg` with [`PrivateKey::scheme`]; ECDSA signatures are DER.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CertError> {
        match (self, self.scheme()) {
            // Blinded: the private-key operation of the `rsa` crate is not constant
            // time (RUSTSEC-2023-0071); random blinding masks most of what a network
            // observer could time. ECDSA keys avoid the question.
            (PrivateKey::Rsa(k), SigAlg::RsaPkcs1(h)) => k
                .sign_with_rng(&mut rand_core::OsRng, h.pkcs1(), &h.digest(msg))
                .map_err(|_| CertError::Sign),
            (PrivateKey::P256(k), SigAlg::Ecdsa(h)) => {
                let s: p256::ecdsa::Signature = k
                    .sign_prehash(&h.digest(msg))
                    .map_err(|_| CertError::Sign)?;
                Ok(s.to_der().as_bytes().to_vec())
            }
            (PrivateKey::P384(k), SigAlg::Ecdsa(h)) => {
                let s: p384::ecdsa::Signature = k
                    .sign_prehash(&h.digest(msg))
                    .map_err(|_| CertError::Sign)?;
                Ok(s.to_der().as_bytes().to_vec())
            }
            _ => Err(CertError::Sign),
        }
    }

    /// Our AUTH payload (method 14) over `octets`.
    pub fn sign_auth(&self, octets: &[u8]) -> Result<Auth, CertError> {
        let alg = self.scheme().algorithm_der()?;
        let sig = self.sign(octets)?;
        let mut data = Vec::with_capacity(1 + alg.len() + sig.len());
        data.push(u8::try_from(alg.len()).map_err(|_| CertError::Sign)?);
        data.extend_from_slice(&alg);
        data.extend_from_slice(&sig);
        Ok(Auth {
            method: AUTH_DIGITAL_SIGNATURE,
            data,
        })
    }
}

/// Parses certificates from PEM (one or more `CERTIFICATE` blocks) or one DER.
pub fn parse_certificates(bytes: &[u8]) -> Result<Vec<Certificate>, CertError> {
    let certs = if bytes.starts_with(b"-----") || bytes.iter().take(64).all(u8::is_ascii) {
        Certificate::load_pem_chain(bytes).map_err(|_| CertError::BadCertificate)?
    } else {
        vec![Certificate::from_der(bytes).map_err(|_| CertError::BadCertificate)?]
    };
    if certs.is_empty() {
        return Err(CertError::NoCertificate);
    }
    Ok(certs)
}

fn valid_at(cert: &Certificate, now: SystemTime) -> bool {
    let v = &cert.tbs_certificate.validity;
    v.not_before.to_system_time() <= now && now <= v.not_after.to_system_time()
}

fn is_ca(cert: &Certificate) -> bool {
    matches!(
        cert.tbs_certificate.get::<BasicConstraints>(),
        Ok(Some((_, BasicConstraints { ca: true, .. })))
    )
}

/// The extension checks of one certificate of a client's chain (module docs). `depth`:
/// 0 for the client's own certificate, then 1, 2, … for its issuers, so an issuer has
/// `depth - 1` intermediates below it (each counts, self-issued or not). An `anchor`
/// (a configured CA) is trusted as configured, so it needs no basicConstraints, but
/// the path length and KeyUsage it has still apply.
fn check_extensions(cert: &Certificate, depth: usize, anchor: bool) -> Result<(), CertError> {
    let tbs = &cert.tbs_certificate;
    if let Some(e) = tbs
        .extensions
        .iter()
        .flatten()
        .find(|e| e.critical && !KNOWN_CRITICAL.contains(&e.extn_id))
    {
        return Err(CertError::UnknownCriticalExtension(e.extn_id));
    }
    let key_usage = tbs
        .get::<KeyUsage>()
        .map_err(|_| CertError::BadCertificate)?
        .map(|(_, k)| k);
    if depth == 0 {
        if key_usage.is_some_and(|k| !k.digital_signature() && !k.non_repudiation()) {
            return Err(CertError::KeyUsage);
        }
        let eku = tbs
            .get::<ExtendedKeyUsage>()
            .map_err(|_| CertError::BadCertificate)?;
        if let Some((_, ExtendedKeyUsage(purposes))) = eku
            && !purposes.iter().any(|p| ACCEPTED_EKUS.contains(p))
        {
            return Err(CertError::ExtendedKeyUsage);
        }
        return Ok(());
    }
    let bc = match tbs.get::<BasicConstraints>() {
        Ok(Some((_, bc))) if bc.ca || anchor => Some(bc),
        Ok(None) if anchor => None,
        _ => return Err(CertError::UntrustedChain),
    };
    if bc
        .and_then(|b| b.path_len_constraint)
        .is_some_and(|n| usize::from(n) < depth - 1)
    {
        return Err(CertError::PathLength);
    }
    if key_usage.is_some_and(|k| !k.key_cert_sign()) {
        return Err(CertError::KeyUsage);
    }
    Ok(())
}

/// Checks that `issuer` signed `cert`.
fn signed_by(cert: &Certificate, issuer: &Certificate) -> Result<(), CertError> {
    if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return Err(CertError::UntrustedChain);
    }
    let key = PublicKey::of(issuer)?;
    let alg_der = cert
        .signature_algorithm
        .to_der()
        .map_err(|_| CertError::BadCertificate)?;
    let alg =
        AlgorithmIdentifierRef::from_der(&alg_der).map_err(|_| CertError::UnsupportedAlgorithm)?;
    let alg = SigAlg::from_algorithm(&alg)?;
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(|_| CertError::BadCertificate)?;
    let sig = cert.signature.as_bytes().ok_or(CertError::BadCertificate)?;
    key.verify(alg, &tbs, sig, false)
}

/// Our certificate and key, and the CAs clients' certificates must chain to.
#[derive(Debug)]
pub struct Credentials {
    /// Our certificate, DER, as the CERT payload carries it.
    pub cert_der: Vec<u8>,
    cert: Certificate,
    key: PrivateKey,
    cas: Vec<Certificate>,
    /// SHA-1 of each CA's SubjectPublicKeyInfo: the CERTREQ data (§3.7).
    ca_key_ids: Vec<[u8; 20]>,
}

impl PartialEq for Credentials {
    fn eq(&self, other: &Self) -> bool {
        self.cert_der == other.cert_der && self.cas == other.cas
    }
}

impl Eq for Credentials {}

impl Credentials {
    /// Our certificate (PEM or DER, the first one counts), our private key (PEM), the
    /// CA bundle (PEM, one or more).
    pub fn new(cert: &[u8], key_pem: &str, ca: &[u8]) -> Result<Self, CertError> {
        let cert = parse_certificates(cert)?.swap_remove(0);
        let key = PrivateKey::from_pem(key_pem)?;
        if key.public() != PublicKey::of(&cert)? {
            return Err(CertError::KeyMismatch);
        }
        let cas = parse_certificates(ca)?;
        let mut ca_key_ids = Vec::with_capacity(cas.len());
        for c in &cas {
            PublicKey::of(c).map_err(|e| match e {
                CertError::WeakKey(bits) => CertError::WeakCaKey(bits),
                e => e,
            })?;
            let spki = c
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .map_err(|_| CertError::BadCertificate)?;
            ca_key_ids.push(Sha1::digest(&spki).into());
        }
        Ok(Credentials {
            cert_der: cert.to_der().map_err(|_| CertError::BadCertificate)?,
            cert,
            key,
            cas,
            ca_key_ids,
        })
    }

    /// Our certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// Our CERT payload.
    pub fn cert_payload(&self) -> Cert {
        Cert {
            encoding: CERT_X509_SIGNATURE,
            data: self.cert_der.clone(),
        }
    }

    /// Our CERTREQ payload: the CAs we trust, by key hash.
    pub fn certreq_payload(&self) -> Cert {
        Cert {
            encoding: CERT_X509_SIGNATURE,
            data: self.ca_key_ids.concat(),
        }
    }

    /// Signs our AUTH (method 14).
    pub fn sign_auth(&self, octets: &[u8]) -> Result<Auth, CertError> {
        self.key.sign_auth(octets)
    }

    /// Verifies the client's chain: `ee` (DER) through the `intermediates` it sent (DER,
    /// in any order) to one of our CAs; every certificate valid at `now` and its
    /// extensions as the module docs say, every issuer below the CA a CA itself.
    /// Returns the end entity and its key.
    pub fn verify_chain(
        &self,
        ee: &[u8],
        intermediates: &[&[u8]],
        now: SystemTime,
    ) -> Result<(Certificate, PublicKey), CertError> {
        let ee = Certificate::from_der(ee).map_err(|_| CertError::BadCertificate)?;
        let inter: Vec<Certificate> = intermediates
            .iter()
            .filter_map(|d| Certificate::from_der(d).ok())
            .collect();
        let mut cur = &ee;
        for depth in 0..MAX_CHAIN {
            if !valid_at(cur, now) {
                return Err(CertError::Expired);
            }
            check_extensions(cur, depth, false)?;
            if let Some(ca) = self.cas.iter().find(|ca| {
                ca.tbs_certificate.subject == cur.tbs_certificate.issuer
                    && signed_by(cur, ca).is_ok()
            }) {
                if !valid_at(ca, now) {
                    return Err(CertError::Expired);
                }
                check_extensions(ca, depth + 1, true)?;
                let key = PublicKey::of(&ee)?;
                return Ok((ee, key));
            }
            let Some(next) = inter
                .iter()
                .find(|i| !std::ptr::eq(*i, cur) && is_ca(i) && signed_by(cur, i).is_ok())
            else {
                return Err(CertError::UntrustedChain);
            };
            cur = next;
        }
        Err(CertError::UntrustedChain)
    }
}

/// Does `cert` prove identity `id` (an IDi/IDr payload)? ID_DER_ASN1_DN: the subject
/// (compared as names, so string types and spacing do not matter); IP, FQDN and RFC 822:
/// a subjectAltName of that kind (names without regard to case).
pub fn cert_has_identity(cert: &Certificate, id: &Identification) -> bool {
    let tbs = &cert.tbs_certificate;
    if id.kind == ID_DER_ASN1_DN {
        return RdnSequence::from_der(&id.data).is_ok_and(|dn| dn_eq(&dn, &tbs.subject));
    }
    let Ok(Some((_, SubjectAltName(names)))) = tbs.get::<SubjectAltName>() else {
        return false;
    };
    names.iter().any(|n| match (id.kind, n) {
        (wire::ID_IPV4_ADDR | wire::ID_IPV6_ADDR, GeneralName::IpAddress(a)) => {
            a.as_bytes() == id.data.as_slice()
        }
        (wire::ID_FQDN, GeneralName::DnsName(d)) => d.as_bytes().eq_ignore_ascii_case(&id.data),
        (wire::ID_RFC822_ADDR, GeneralName::Rfc822Name(m)) => {
            m.as_bytes().eq_ignore_ascii_case(&id.data)
        }
        _ => false,
    })
}

/// Two DNs name the same: the same RDNs in the same order, each attribute of the same
/// type with the same value, strings compared without regard to their ASN.1 string
/// type (UTF8String, PrintableString, IA5String, TeletexString) or ASCII case.
pub fn dn_eq(a: &RdnSequence, b: &RdnSequence) -> bool {
    use x509_cert::der::{Tag, Tagged};
    let text = |t: Tag| {
        matches!(
            t,
            Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString
        )
    };
    a.0.len() == b.0.len()
        && a.0.iter().zip(&b.0).all(|(x, y)| {
            x.0.len() == y.0.len()
                && x.0.iter().zip(y.0.iter()).all(|(p, q)| {
                    p.oid == q.oid
                        && if text(p.value.tag()) && text(q.value.tag()) {
                            p.value.value().eq_ignore_ascii_case(q.value.value())
                        } else {
                            p.value == q.value
                        }
                })
        })
}

/// A DN as strongSwan and libreswan write it, most significant first:
/// `C=CH, O=Example, CN=alice`. Returns its DER.
pub fn parse_dn(s: &str) -> Result<Vec<u8>, String> {
    use std::str::FromStr;
    // RFC 4514 writes the most specific RDN first; ours is the other way round.
    let rfc4514: Vec<&str> = s.split(',').map(str::trim).rev().collect();
    let dn = RdnSequence::from_str(&rfc4514.join(","))
        .map_err(|e| format!("`{s}`: not a distinguished name ({e})"))?;
    if dn.0.is_empty() {
        return Err(format!("`{s}`: empty distinguished name"));
    }
    dn.to_der().map_err(|e| format!("`{s}`: {e}"))
}

/// Does configured identity `want` equal the client's IDi? As bytes, except DNs, which
/// compare as names.
pub fn identity_eq(want: &Identity, idi: &Identification) -> bool {
    match want {
        Identity::DerDn(d) if idi.kind == ID_DER_ASN1_DN => {
            match (RdnSequence::from_der(d), RdnSequence::from_der(&idi.data)) {
                (Ok(a), Ok(b)) => dn_eq(&a, &b),
                _ => false,
            }
        }
        _ => want.to_payload() == *idi,
    }
}

/// The IDr our certificate proves: the configured identity when the certificate has it,
/// else the certificate's subject DN.
pub fn our_identity(creds: &Credentials, configured: &Identity) -> Identification {
    let id = configured.to_payload();
    if cert_has_identity(creds.certificate(), &id) {
        return id;
    }
    Identification {
        kind: ID_DER_ASN1_DN,
        data: creds
            .certificate()
            .tbs_certificate
            .subject
            .to_der()
            .unwrap_or_default(),
    }
}
