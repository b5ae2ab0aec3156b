//! Test certificates, made at test time with rcgen (RSA keys from the `rsa` crate, ring
//! cannot make them): CAs, intermediates and leaves of each key type, and certificates
//! with any parameter edited.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair,
    PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_RSA_SHA256, SanType,
};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use x509_cert::der::Encode;

use crate::ike::types::payload::Identification;

#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    P256,
    P384,
    Rsa,
}

pub(super) fn key(kind: Kind) -> KeyPair {
    match kind {
        Kind::P256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap(),
        Kind::P384 => KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap(),
        Kind::Rsa => {
            let k = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
            let pem = k.to_pkcs8_pem(LineEnding::LF).unwrap();
            KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &PKCS_RSA_SHA256).unwrap()
        }
    }
}

pub(super) struct Ca {
    pub(super) cert: rcgen::Certificate,
    pub(super) key: KeyPair,
}

pub(super) fn ca(kind: Kind, name: &str) -> Ca {
    let key = key(kind);
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CountryName, "CH");
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

pub(super) fn sub_ca(kind: Kind, name: &str, issuer: &Ca) -> Ca {
    let key = key(kind);
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = p.signed_by(&key, &issuer.cert, &issuer.key).unwrap();
    Ca { cert, key }
}

/// An end entity `CN=<cn>` with SANs (DNS names, IPs, `x@y` as e-mail).
pub(super) fn leaf(
    kind: Kind,
    cn: &str,
    sans: &[&str],
    issuer: &Ca,
    expired: bool,
) -> (String, KeyPair) {
    let key = key(kind);
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CountryName, "CH");
    p.distinguished_name
        .push(DnType::OrganizationName, "ikelb test");
    p.distinguished_name.push(DnType::CommonName, cn);
    for s in sans {
        p.subject_alt_names.push(if let Ok(ip) = s.parse() {
            SanType::IpAddress(ip)
        } else if s.contains('@') {
            SanType::Rfc822Name((*s).try_into().unwrap())
        } else {
            SanType::DnsName((*s).try_into().unwrap())
        });
    }
    if expired {
        p.not_before = rcgen::date_time_ymd(2001, 1, 1);
        p.not_after = rcgen::date_time_ymd(2002, 1, 1);
    }
    let cert = p.signed_by(&key, &issuer.cert, &issuer.key).unwrap();
    (cert.pem(), key)
}

pub(super) fn der_of(pem: &str) -> Vec<u8> {
    x509_cert::Certificate::load_pem_chain(pem.as_bytes()).unwrap()[0]
        .to_der()
        .unwrap()
}

pub(super) fn id(kind: u8, data: &[u8]) -> Identification {
    Identification {
        kind,
        data: data.to_vec(),
    }
}

/// A certificate `CN=<cn>` under `issuer` (self-signed without one), with `edit`
/// applied to its parameters: a P-256 key, or `key` when given.
pub(super) fn cert_edited(
    cn: &str,
    issuer: Option<&Ca>,
    key: Option<&dyn rcgen::PublicKeyData>,
    edit: impl FnOnce(&mut CertificateParams),
) -> Ca {
    let own = self::key(Kind::P256);
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    edit(&mut p);
    let cert = match (issuer, key) {
        (Some(i), Some(k)) => p.signed_by(&KeyRef(k), &i.cert, &i.key),
        (Some(i), None) => p.signed_by(&own, &i.cert, &i.key),
        (None, _) => p.self_signed(&own),
    }
    .unwrap();
    Ca { cert, key: own }
}

/// `&dyn PublicKeyData` as rcgen's generic argument.
struct KeyRef<'a>(&'a dyn rcgen::PublicKeyData);

impl rcgen::PublicKeyData for KeyRef<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.der_bytes()
    }
    fn algorithm(&self) -> &rcgen::SignatureAlgorithm {
        self.0.algorithm()
    }
}

/// An RSA public key of any size (ring, behind rcgen, refuses to load small ones).
pub(super) struct RsaPublic(pub(super) Vec<u8>);

impl rcgen::PublicKeyData for RsaPublic {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &rcgen::SignatureAlgorithm {
        &PKCS_RSA_SHA256
    }
}

pub(super) fn ca_params(p: &mut CertificateParams, path_len: Option<u8>) {
    p.is_ca = IsCa::Ca(path_len.map_or(BasicConstraints::Unconstrained, |n| {
        BasicConstraints::Constrained(n)
    }));
}
