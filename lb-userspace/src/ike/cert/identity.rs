//! Which identities a certificate proves, and how configured identities compare with
//! a client's IDi (distinguished names as names, not bytes).

use lb_common::wire::ike::{self as wire, ID_DER_ASN1_DN};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::RdnSequence;

use super::validate::Credentials;
use crate::ike::types::identity::Identity;
use crate::ike::types::payload::Identification;

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
