//! Our credentials and the validation of a client's certificate chain. A chain is
//! checked as RFC 5280 §4.2 and RFC 4945 §5.1.3 ask: no critical extension we do not
//! understand; the client's certificate, when it has KeyUsage, may sign
//! (digitalSignature or nonRepudiation) and, when it has ExtendedKeyUsage, names one IKE
//! may use ([`ACCEPTED_EKUS`]); each issuer is a CA, may sign certificates (keyCertSign,
//! when KeyUsage is there) and has a path length that allows the intermediates below
//! it; every signature verifies ([`super::signature`]).

use std::time::SystemTime;

use lb_common::wire::ike::CERT_X509_SIGNATURE;
use sha1::{Digest, Sha1};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode, asn1::ObjectIdentifier};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use x509_cert::spki::AlgorithmIdentifierRef;

use super::CertError;
use super::signature::{PrivateKey, PublicKey, SigAlg};
use crate::ike::types::payload::{Auth, Cert};

/// Longest chain we follow from the client's certificate to a CA (intermediates + 1).
const MAX_CHAIN: usize = 5;
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
