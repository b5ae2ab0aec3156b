//! Signatures: the hash and signature schemes of X.509 and RFC 7427, the public keys
//! we verify with, our private key, and the AUTH payload of the signature methods (1,
//! 9, 10 and 14). RSA keys need [`MIN_RSA_BITS`]; SHA-1 (AUTH method 1) only when
//! configured.

use lb_common::wire::ike::{
    self as wire, AUTH_DIGITAL_SIGNATURE, AUTH_ECDSA_256, AUTH_ECDSA_384, AUTH_RSA,
};
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use rsa::pkcs1::{DecodeRsaPrivateKey, RsaPssParams};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use sha1::{Digest, Sha1};
use sha2::{Sha256, Sha384, Sha512};
use x509_cert::Certificate;
use x509_cert::der::{self, Decode, Encode, asn1::ObjectIdentifier};
use x509_cert::spki::{self, AlgorithmIdentifierRef};

use super::CertError;
use crate::ike::types::payload::Auth;

/// The hashes we verify RFC 7427 signatures with: SHA2-256, -384, -512.
pub const OUR_HASHES: [u16; 3] = [
    wire::HASH_SHA2_256,
    wire::HASH_SHA2_384,
    wire::HASH_SHA2_512,
];
/// Smallest RSA modulus we accept, in ours, our CAs' and clients' certificates (NIST SP
/// 800-57: 1024-bit RSA is no longer acceptable).
pub const MIN_RSA_BITS: usize = 2048;
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

    /// The key of a certificate.
    pub fn of(cert: &Certificate) -> Result<Self, CertError> {
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

    /// The public half.
    pub fn public(&self) -> PublicKey {
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
