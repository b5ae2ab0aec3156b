//! Certificate authentication: RFC 7427 AlgorithmIdentifier known answers, AUTH
//! signing and verification round trips, chain and identity checks, with certificates
//! rcgen makes at test time (RSA keys from the `rsa` crate, ring cannot make them).

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384, PKCS_RSA_SHA256, SanType,
};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use x509_cert::der::{Decode, Encode};

use lb_common::wire::ike::{AUTH_DIGITAL_SIGNATURE, AUTH_ECDSA_256, AUTH_RSA};

use crate::ike::cert::CertError;
use crate::ike::cert::identity::{cert_has_identity, identity_eq, our_identity, parse_dn};
use crate::ike::cert::signature::{Hash, PrivateKey, PublicKey, SigAlg};
use crate::ike::cert::validate::Credentials;
use crate::ike::types::event::Event;
use crate::ike::types::identity::Identity;
use crate::ike::types::payload::{Auth, Identification};

#[derive(Clone, Copy, Debug)]
enum Kind {
    P256,
    P384,
    Rsa,
}

fn key(kind: Kind) -> KeyPair {
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

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(kind: Kind, name: &str) -> Ca {
    let key = key(kind);
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CountryName, "CH");
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

fn sub_ca(kind: Kind, name: &str, issuer: &Ca) -> Ca {
    let key = key(kind);
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = p.signed_by(&key, &issuer.cert, &issuer.key).unwrap();
    Ca { cert, key }
}

/// An end entity `CN=<cn>` with SANs (DNS names, IPs, `x@y` as e-mail).
fn leaf(kind: Kind, cn: &str, sans: &[&str], issuer: &Ca, expired: bool) -> (String, KeyPair) {
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

fn der_of(pem: &str) -> Vec<u8> {
    x509_cert::Certificate::load_pem_chain(pem.as_bytes()).unwrap()[0]
        .to_der()
        .unwrap()
}

fn id(kind: u8, data: &[u8]) -> Identification {
    Identification {
        kind,
        data: data.to_vec(),
    }
}

#[test]
fn rfc7427_algorithm_identifiers() {
    // RFC 7427 Appendix A: the AlgorithmIdentifier bytes after the length octet.
    let kat: [(SigAlg, &str); 6] = [
        (
            SigAlg::RsaPkcs1(Hash::Sha256),
            "300d06092a864886f70d01010b0500",
        ),
        (
            SigAlg::RsaPkcs1(Hash::Sha384),
            "300d06092a864886f70d01010c0500",
        ),
        (
            SigAlg::RsaPkcs1(Hash::Sha512),
            "300d06092a864886f70d01010d0500",
        ),
        (SigAlg::Ecdsa(Hash::Sha256), "300a06082a8648ce3d040302"),
        (SigAlg::Ecdsa(Hash::Sha384), "300a06082a8648ce3d040303"),
        (SigAlg::Ecdsa(Hash::Sha512), "300a06082a8648ce3d040304"),
    ];
    for (alg, want) in kat {
        let der = alg.algorithm_der().unwrap();
        assert_eq!(hex(&der), want, "{alg:?}");
        // And back.
        let parsed = x509_cert::spki::AlgorithmIdentifierRef::from_der(&der).unwrap();
        assert_eq!(SigAlg::from_algorithm(&parsed).unwrap(), alg);
    }
    // RSASSA-PSS with SHA-256, MGF1-SHA-256, salt 32 (RFC 7427 A.4.3's parameters).
    let pss = rsa::pkcs1::RsaPssParams::new::<sha2::Sha256>(32)
        .to_der()
        .unwrap();
    let alg = x509_cert::spki::AlgorithmIdentifierRef {
        oid: x509_cert::der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10"),
        parameters: Some(x509_cert::der::AnyRef::from_der(&pss).unwrap()),
    };
    assert_eq!(
        SigAlg::from_algorithm(&alg).unwrap(),
        SigAlg::RsaPss {
            hash: Hash::Sha256,
            salt: 32
        }
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Our AUTH (method 14) verifies with our certificate's key, and not over other octets.
#[test]
fn sign_verify_round_trip() {
    for kind in [Kind::P256, Kind::P384, Kind::Rsa] {
        let root = ca(kind, "Test CA");
        let (pem, key) = leaf(kind, "gw", &["gw.example"], &root, false);
        let creds = Credentials::new(
            pem.as_bytes(),
            &key.serialize_pem(),
            root.cert.pem().as_bytes(),
        )
        .unwrap();
        let octets = b"RealMessage1 | NonceRData | MACedIDForR".repeat(9);
        let auth = creds.sign_auth(&octets).unwrap();
        assert_eq!(auth.method, AUTH_DIGITAL_SIGNATURE);
        let pk = PublicKey::from_spki_der(&key.public_key_der()).unwrap();
        pk.verify_auth(&auth, &octets, false).unwrap();
        assert_eq!(
            pk.verify_auth(&auth, &octets[1..], false),
            Err(CertError::BadSignature),
            "{kind:?}"
        );
        // The signature verifies with the client's chain check too (self as client).
        let (c, k) = creds
            .verify_chain(&der_of(&pem), &[], SystemTime::now())
            .unwrap();
        assert!(cert_has_identity(&c, &id(2, b"GW.example")));
        k.verify_auth(&auth, &octets, false).unwrap();
        // A key that is not the certificate's is refused at load.
        let other = self::key(kind);
        assert_eq!(
            Credentials::new(
                pem.as_bytes(),
                &other.serialize_pem(),
                root.cert.pem().as_bytes()
            )
            .unwrap_err(),
            CertError::KeyMismatch
        );
    }
}

/// What clients send: RFC 7427 with RSASSA-PSS, RFC 4754 `r | s`, method 1 (SHA-1).
#[test]
fn client_signature_forms() {
    let octets = b"InitiatorSignedOctets".to_vec();
    let k = key(Kind::P256);
    let pk = PublicKey::from_spki_der(&k.public_key_der()).unwrap();
    let PrivateKey::P256(sk) = PrivateKey::from_pem(&k.serialize_pem()).unwrap() else {
        panic!("not P-256");
    };
    use p256::ecdsa::signature::Signer;
    let sig: p256::ecdsa::Signature = sk.sign(&octets);
    let raw = Auth {
        method: AUTH_ECDSA_256,
        data: sig.to_bytes().to_vec(),
    };
    pk.verify_auth(&raw, &octets, false).unwrap();
    assert!(pk.verify_auth(&raw, b"other", false).is_err());

    let r = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
    let rpk = PublicKey::Rsa(r.to_public_key());
    use sha2::Digest;
    let pss = r
        .sign_with_rng(
            &mut rand_core::OsRng,
            rsa::Pss::new_with_salt::<sha2::Sha256>(32),
            &sha2::Sha256::digest(&octets),
        )
        .unwrap();
    let params = rsa::pkcs1::RsaPssParams::new::<sha2::Sha256>(32)
        .to_der()
        .unwrap();
    let alg = x509_cert::spki::AlgorithmIdentifierRef {
        oid: x509_cert::der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10"),
        parameters: Some(x509_cert::der::AnyRef::from_der(&params).unwrap()),
    }
    .to_der()
    .unwrap();
    let mut data = vec![u8::try_from(alg.len()).unwrap()];
    data.extend_from_slice(&alg);
    data.extend_from_slice(&pss);
    let a = Auth {
        method: AUTH_DIGITAL_SIGNATURE,
        data,
    };
    rpk.verify_auth(&a, &octets, false).unwrap();
    assert!(rpk.verify_auth(&a, b"other", false).is_err());

    let v15 = r
        .sign(
            rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
            &sha1::Sha1::digest(&octets),
        )
        .unwrap();
    let a = Auth {
        method: AUTH_RSA,
        data: v15,
    };
    // Method 1 is SHA-1: only when allowed.
    assert_eq!(
        rpk.verify_auth(&a, &octets, false),
        Err(CertError::Sha1NotAllowed)
    );
    rpk.verify_auth(&a, &octets, true).unwrap();
    // Method 1 with an ECDSA key, and garbage in method 14, are refused.
    assert!(pk.verify_auth(&a, &octets, true).is_err());
    let junk = Auth {
        method: AUTH_DIGITAL_SIGNATURE,
        data: vec![40, 1, 2, 3],
    };
    assert!(rpk.verify_auth(&junk, &octets, false).is_err());
}

#[test]
fn chain_accept_and_reject() {
    let root = ca(Kind::P256, "Root CA");
    let (gw, gw_key) = leaf(Kind::P256, "gw", &["gw.example"], &root, false);
    let creds = Credentials::new(
        gw.as_bytes(),
        &gw_key.serialize_pem(),
        root.cert.pem().as_bytes(),
    )
    .unwrap();
    let now = SystemTime::now();
    for kind in [Kind::P256, Kind::P384, Kind::Rsa] {
        // Directly under the root.
        let (c, _) = leaf(
            kind,
            "carol",
            &["carol@example.net", "192.0.2.7", "carol.example"],
            &root,
            false,
        );
        let (cert, _) = creds.verify_chain(&der_of(&c), &[], now).unwrap();
        assert!(cert_has_identity(&cert, &id(3, b"carol@example.net")));
        assert!(cert_has_identity(&cert, &id(1, &[192, 0, 2, 7])));
        assert!(cert_has_identity(&cert, &id(2, b"carol.example")));
        let dn = cert.tbs_certificate.subject.to_der().unwrap();
        assert!(cert_has_identity(&cert, &id(9, &dn)));
        // Wrong identity.
        assert!(!cert_has_identity(&cert, &id(3, b"dave@example.net")));
        assert!(!cert_has_identity(&cert, &id(1, &[192, 0, 2, 8])));
        assert!(!cert_has_identity(&cert, &id(2, b"dave.example")));
        let other_dn = parse_dn("C=CH, O=ikelb test, CN=dave").unwrap();
        assert!(!cert_has_identity(&cert, &id(9, &other_dn)));
        // The same DN written in config compares equal although its strings differ.
        let same_dn = parse_dn("C=CH, O=ikelb test, CN=carol").unwrap();
        assert!(cert_has_identity(&cert, &id(9, &same_dn)));

        // Through an intermediate the client sends.
        let mid = sub_ca(kind, "Intermediate", &root);
        let (c2, _) = leaf(Kind::P256, "erin", &["erin.example"], &mid, false);
        let mid_der = mid.cert.der().to_vec();
        creds
            .verify_chain(&der_of(&c2), &[mid_der.as_slice()], now)
            .unwrap();
        assert_eq!(
            creds.verify_chain(&der_of(&c2), &[], now).unwrap_err(),
            CertError::UntrustedChain
        );

        // Another CA's certificate.
        let rogue = ca(kind, "Root CA");
        let (c3, _) = leaf(kind, "carol", &["carol.example"], &rogue, false);
        assert_eq!(
            creds.verify_chain(&der_of(&c3), &[], now).unwrap_err(),
            CertError::UntrustedChain
        );

        // Expired.
        let (c4, _) = leaf(kind, "carol", &["carol.example"], &root, true);
        assert_eq!(
            creds.verify_chain(&der_of(&c4), &[], now).unwrap_err(),
            CertError::Expired
        );
        // Not yet valid: far in the past.
        assert_eq!(
            creds
                .verify_chain(
                    &der_of(&c),
                    &[],
                    SystemTime::UNIX_EPOCH + Duration::from_secs(1)
                )
                .unwrap_err(),
            CertError::Expired
        );
    }
    // A leaf is no issuer: a chain "through" a non-CA certificate fails.
    let fake_key = key(Kind::P256);
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, "Intermediate");
    let fake_mid = Ca {
        cert: p.signed_by(&fake_key, &root.cert, &root.key).unwrap(),
        key: fake_key,
    };
    let fake_mid_pem = fake_mid.cert.pem();
    let (c5, _) = leaf(Kind::P256, "mallory", &["m.example"], &fake_mid, false);
    assert_eq!(
        creds
            .verify_chain(&der_of(&c5), &[der_of(&fake_mid_pem).as_slice()], now)
            .unwrap_err(),
        CertError::UntrustedChain
    );
}

/// A certificate `CN=<cn>` under `issuer` (self-signed without one), with `edit`
/// applied to its parameters: a P-256 key, or `key` when given.
fn cert_edited(
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
struct RsaPublic(Vec<u8>);

impl rcgen::PublicKeyData for RsaPublic {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &rcgen::SignatureAlgorithm {
        &PKCS_RSA_SHA256
    }
}

fn ca_params(p: &mut CertificateParams, path_len: Option<u8>) {
    p.is_ca = IsCa::Ca(path_len.map_or(BasicConstraints::Unconstrained, |n| {
        BasicConstraints::Constrained(n)
    }));
}

/// RFC 5280 / RFC 4945 extension checks on the client's chain, and RSA key sizes.
#[test]
fn chain_extension_and_key_checks() {
    let root = cert_edited("Root CA", None, None, |p| {
        ca_params(p, None);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    });
    // A second root that allows no intermediate below it.
    let flat_root = cert_edited("Flat Root CA", None, None, |p| ca_params(p, Some(0)));
    let (gw, gw_key) = leaf(Kind::P256, "gw", &["gw.example"], &root, false);
    let bundle = format!("{}{}", root.cert.pem(), flat_root.cert.pem());
    let creds =
        Credentials::new(gw.as_bytes(), &gw_key.serialize_pem(), bundle.as_bytes()).unwrap();
    let now = SystemTime::now();
    let check = |ee: &Ca, mids: &[&Ca]| {
        let mids: Vec<&[u8]> = mids.iter().map(|m| m.cert.der().as_ref()).collect();
        creds.verify_chain(ee.cert.der(), &mids, now).map(|_| ())
    };
    // With a SAN: rcgen 0.13 writes no extensions (KeyUsage included) without one.
    let ee = |issuer: &Ca, edit: &dyn Fn(&mut CertificateParams)| {
        cert_edited("carol", Some(issuer), None, |p| {
            p.subject_alt_names = vec![SanType::DnsName("carol.example".try_into().unwrap())];
            edit(p);
        })
    };

    // KeyUsage of the client's certificate: it must be allowed to sign.
    let ok = ee(&root, &|p| {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    });
    check(&ok, &[]).unwrap();
    let nr = ee(&root, &|p| {
        p.key_usages = vec![KeyUsagePurpose::ContentCommitment]
    });
    check(&nr, &[]).unwrap();
    let enc = ee(&root, &|p| {
        p.key_usages = vec![KeyUsagePurpose::KeyEncipherment]
    });
    assert_eq!(check(&enc, &[]), Err(CertError::KeyUsage));

    // ExtendedKeyUsage, when present, must name a purpose IKE may use.
    for purposes in [
        vec![ExtendedKeyUsagePurpose::ServerAuth],
        vec![ExtendedKeyUsagePurpose::Any],
        vec![ExtendedKeyUsagePurpose::Other(vec![
            1, 3, 6, 1, 5, 5, 7, 3, 17,
        ])],
        vec![
            ExtendedKeyUsagePurpose::EmailProtection,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    ] {
        check(
            &ee(&root, &|p| p.extended_key_usages = purposes.clone()),
            &[],
        )
        .unwrap();
    }
    let mail = ee(&root, &|p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
    });
    assert_eq!(check(&mail, &[]), Err(CertError::ExtendedKeyUsage));

    // A critical extension we do not process; the same one non-critical is fine.
    let private_ext = |critical: bool| {
        ee(&root, &|p| {
            let mut e =
                CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![5, 0]);
            e.set_criticality(critical);
            p.custom_extensions = vec![e];
        })
    };
    assert!(matches!(
        check(&private_ext(true), &[]),
        Err(CertError::UnknownCriticalExtension(_))
    ));
    check(&private_ext(false), &[]).unwrap();

    // An intermediate must be allowed to sign certificates.
    let mid = |issuer: &Ca, path_len: Option<u8>, usages: Vec<KeyUsagePurpose>| {
        cert_edited("Intermediate", Some(issuer), None, |p| {
            ca_params(p, path_len);
            p.key_usages = usages;
        })
    };
    let signer = mid(&root, None, vec![KeyUsagePurpose::DigitalSignature]);
    assert_eq!(
        check(&ee(&signer, &|_| {}), &[&signer]),
        Err(CertError::KeyUsage)
    );
    let good_mid = mid(&root, None, vec![KeyUsagePurpose::KeyCertSign]);
    check(&ee(&good_mid, &|_| {}), &[&good_mid]).unwrap();

    // Path length: the flat root signs end entities, not intermediates; an
    // intermediate with path length 0 signs no further intermediate.
    check(&ee(&flat_root, &|_| {}), &[]).unwrap();
    let under_flat = mid(&flat_root, None, Vec::new());
    assert_eq!(
        check(&ee(&under_flat, &|_| {}), &[&under_flat]),
        Err(CertError::PathLength)
    );
    let last = mid(&root, Some(0), Vec::new());
    check(&ee(&last, &|_| {}), &[&last]).unwrap();
    let deeper = cert_edited("Deeper", Some(&last), None, |p| ca_params(p, None));
    assert_eq!(
        check(&ee(&deeper, &|_| {}), &[&deeper, &last]),
        Err(CertError::PathLength)
    );

    // RSA under 2048 bits: refused in a client's certificate and at load.
    use rsa::pkcs1::EncodeRsaPublicKey;
    let small = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
    let small_pub = RsaPublic(small.to_public_key().to_pkcs1_der().unwrap().into_vec());
    let weak = cert_edited("weak", Some(&root), Some(&small_pub), |_| {});
    assert_eq!(check(&weak, &[]), Err(CertError::WeakKey(1024)));
    let weak_ca = cert_edited("Weak CA", Some(&root), Some(&small_pub), |p| {
        ca_params(p, None)
    });
    assert_eq!(
        Credentials::new(
            gw.as_bytes(),
            &gw_key.serialize_pem(),
            weak_ca.cert.pem().as_bytes()
        )
        .unwrap_err(),
        CertError::WeakCaKey(1024)
    );
    let small_pem = small.to_pkcs8_pem(LineEnding::LF).unwrap();
    assert_eq!(
        Credentials::new(
            weak.cert.pem().as_bytes(),
            &small_pem,
            root.cert.pem().as_bytes()
        )
        .unwrap_err(),
        CertError::WeakKey(1024)
    );
}

#[test]
fn identities_and_dn_config() {
    let root = ca(Kind::P256, "Root CA");
    let (gw, gw_key) = leaf(Kind::P256, "gw", &["vpn.example.net"], &root, false);
    let creds = Credentials::new(
        gw.as_bytes(),
        &gw_key.serialize_pem(),
        root.cert.pem().as_bytes(),
    )
    .unwrap();
    // Our IDr: the configured identity when the certificate proves it, else the DN.
    let fqdn = Identity::Fqdn("vpn.example.net".into());
    assert_eq!(our_identity(&creds, &fqdn), fqdn.to_payload());
    let other = our_identity(&creds, &Identity::Fqdn("other.example".into()));
    assert_eq!(other.kind, 9);
    let dn = parse_dn("C=CH, O=ikelb test, CN=gw").unwrap();
    assert!(identity_eq(&Identity::DerDn(dn.clone()), &other));
    assert!(!identity_eq(
        &Identity::DerDn(parse_dn("C=CH, CN=gw").unwrap()),
        &other
    ));
    assert!(identity_eq(&fqdn, &id(2, b"vpn.example.net")));
    assert!(parse_dn("C=CH, =x").is_err());
    // CERTREQ carries one SHA-1 per CA.
    assert_eq!(creds.certreq_payload().data.len(), 20);
    assert_eq!(
        creds.cert_payload().data,
        der_of(&gw),
        "CERT is our certificate's DER"
    );
}

#[test]
fn config_certificate_keys() {
    use crate::config::Config;
    let root = ca(Kind::P256, "Root CA");
    let (gw, gw_key) = leaf(Kind::P256, "gw", &["vpn.example.net"], &root, false);
    let dir = std::env::temp_dir().join(format!("ikelb-cert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (c, k, a) = (dir.join("gw.pem"), dir.join("gw.key"), dir.join("ca.pem"));
    std::fs::write(&c, gw).unwrap();
    std::fs::write(&k, gw_key.serialize_pem()).unwrap();
    std::fs::write(&a, root.cert.pem()).unwrap();
    let vip = "[[vip]]\naddress = \"192.0.2.1\"\nredirect = \"auth\"\n";
    let files = format!(
        "certificate = \"{}\"\nprivate-key = \"{}\"\nca = \"{}\"\n",
        c.display(),
        k.display(),
        a.display()
    );
    let peer = "[[ike.peer]]\nid = \"C=CH, O=ikelb test, CN=carol\"\nauth = \"certificate\"\n";
    let cfg = Config::parse(&format!("{vip}[ike]\n{files}{peer}")).unwrap();
    assert!(cfg.ike.credentials.is_some());
    assert!(cfg.ike.peers[0].psk.is_none());
    assert!(matches!(cfg.ike.peers[0].id, Identity::DerDn(_)));
    // Without `identity` our IDr is the certificate's subject.
    let rc = cfg
        .ike
        .responder_config(&cfg.vips, Box::new(|_: std::net::IpAddr| None), false);
    assert!(matches!(rc.local_id, Identity::DerDn(_)));
    assert!(matches!(
        rc.peers[0].auth,
        crate::ike::types::config::AuthMethod::Certificate
    ));

    let err = |t: String| Config::parse(&t).unwrap_err().to_string();
    let e = err(format!("{vip}[ike]\nidentity = \"gw\"\n{peer}"));
    assert!(
        e.contains("line 8") && e.contains("ike.peer[0].auth"),
        "{e}"
    );
    let e = err(format!(
        "{vip}[ike]\ncertificate = \"{}\"\nprivate-key = \"{}\"\n{peer}",
        c.display(),
        k.display()
    ));
    assert!(e.contains("line 5") && e.contains("needs `ca`"), "{e}");
    let e = err(format!("{vip}[ike]\n{files}{peer}psk = \"x\"\n"));
    assert!(e.contains("ike.peer[0].auth") && e.contains("psk"), "{e}");
    let e = err(format!(
        "{vip}[ike]\n{files}[[ike.peer]]\nid = \"a.example\"\nauth = \"eap\"\n"
    ));
    assert!(e.contains("line 10") && e.contains("auth"), "{e}");
    std::fs::write(&k, key(Kind::P256).serialize_pem()).unwrap();
    let e = err(format!("{vip}[ike]\n{files}{peer}"));
    assert!(e.contains("line 6") && e.contains("ike.private-key"), "{e}");
    std::fs::write(&a, "not a certificate").unwrap();
    let e = err(format!("{vip}[ike]\n{files}{peer}"));
    assert!(e.contains("line 7") && e.contains("ike.ca"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The sans-IO responder end to end with certificates: CERTREQ and
/// SIGNATURE_HASH_ALGORITHMS in IKE_SA_INIT, the client's CERT and RFC 7427 AUTH
/// accepted, our IDr, CERT and AUTH verifiable, the redirect; a client of another CA
/// gets AUTHENTICATION_FAILED.
#[test]
fn responder_ike_auth_with_certificates() {
    use super::responder::{Gw, client, config, gw, init, x25519_gcm};
    use crate::ike::crypto::prf::signed_octets;
    use crate::ike::types::config::{AuthMethod, AuthRedirect, PeerConfig};
    use crate::ike::types::message::{Message, Payload};
    use crate::ike::types::payload::Cert;
    use lb_common::wire::ike as wire;

    for kind in [Kind::P256, Kind::Rsa] {
        let root = ca(kind, "Root CA");
        let (gw_pem, gw_key) = leaf(kind, "gw", &["gw.example"], &root, false);
        let creds = Credentials::new(
            gw_pem.as_bytes(),
            &gw_key.serialize_pem(),
            root.cert.pem().as_bytes(),
        )
        .unwrap();
        let mut cfg = config(AuthRedirect::IkeAuth);
        cfg.credentials = Some(std::sync::Arc::new(creds));
        cfg.peers.push(PeerConfig {
            id: Identity::Rfc822("carol@example.net".into()),
            auth: AuthMethod::Certificate,
        });
        let mut g = Gw::new(cfg);
        let rogue = ca(kind, "Root CA");
        for (n, issuer) in [(0u8, &root), (1, &rogue)] {
            let (proposal, group) = x25519_gcm();
            let mut c = super::initiator::Initiator::new(
                7 + u64::from(n),
                client(20 + n, 500),
                gw(500),
                proposal,
                group,
            );
            c.id = id(3, b"carol@example.net");
            init(&mut g, &mut c);
            let resp = Message::parse(&c.init_resp).unwrap();
            let certreq = resp.payloads.iter().find_map(|p| match p {
                Payload::CertReq(r) => Some(r.clone()),
                _ => None,
            });
            assert_eq!(certreq.unwrap().data.len(), 20);
            assert_eq!(
                resp.find_notify(wire::NOTIFY_SIGNATURE_HASH_ALGORITHMS)
                    .unwrap()
                    .data,
                [0, 2, 0, 3, 0, 4]
            );
            let nr = resp
                .payloads
                .iter()
                .find_map(|p| match p {
                    Payload::Nonce(x) => Some(x.clone()),
                    _ => None,
                })
                .unwrap();
            let prf = c.suite.unwrap().prf;
            let (sk_pi, sk_pr) = {
                let k = c.keys.as_ref().unwrap();
                (k.sk_pi.clone(), k.sk_pr.clone())
            };
            let octets = signed_octets(prf, &c.init_req, &nr, &sk_pi, &c.id.body());
            let (c_pem, c_key) = leaf(kind, "carol", &["carol@example.net"], issuer, false);
            let auth = PrivateKey::from_pem(&c_key.serialize_pem())
                .unwrap()
                .sign_auth(&octets)
                .unwrap();
            let payloads = vec![
                Payload::IdI(c.id.clone()),
                Payload::Cert(Cert {
                    encoding: wire::CERT_X509_SIGNATURE,
                    data: der_of(&c_pem),
                }),
                Payload::Auth(auth),
            ];
            let out = g.deliver(c.addr, c.gw, &c.request(wire::EXCHANGE_IKE_AUTH, &payloads));
            let msg = c.open(&out[0]);
            if n == 1 {
                assert!(
                    msg.find_notify(wire::NOTIFY_AUTHENTICATION_FAILED)
                        .is_some()
                );
                // Why stays in our log.
                assert!(
                    g.events().iter().any(|e| matches!(
                        e,
                        Event::AuthFailed {
                            certificate: Some(CertError::UntrustedChain),
                            ..
                        }
                    )),
                    "{kind:?}"
                );
                continue;
            }
            let kinds: Vec<u8> = msg.payloads.iter().map(Payload::kind).collect();
            assert_eq!(
                kinds,
                [
                    wire::PAYLOAD_IDR,
                    wire::PAYLOAD_CERT,
                    wire::PAYLOAD_AUTH,
                    wire::PAYLOAD_NOTIFY
                ],
                "{kind:?}"
            );
            assert!(msg.find_notify(wire::NOTIFY_REDIRECT).is_some());
            let (Payload::IdR(idr), Payload::Cert(cert), Payload::Auth(auth)) =
                (&msg.payloads[0], &msg.payloads[1], &msg.payloads[2])
            else {
                unreachable!()
            };
            assert_eq!(*idr, id(2, b"gw.example"));
            assert_eq!(cert.data, der_of(&gw_pem));
            assert_eq!(auth.method, AUTH_DIGITAL_SIGNATURE);
            let ours = signed_octets(prf, &c.init_resp, &c.ni, &sk_pr, &idr.body());
            PublicKey::from_spki_der(&gw_key.public_key_der())
                .unwrap()
                .verify_auth(auth, &ours, false)
                .unwrap();
        }
    }
}
