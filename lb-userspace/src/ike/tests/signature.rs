//! Signatures: RFC 7427 AlgorithmIdentifier known answers, our AUTH signed and verified,
//! and the signature forms clients send.

use std::time::SystemTime;

use x509_cert::der::{Decode, Encode};

use lb_common::wire::ike::{AUTH_DIGITAL_SIGNATURE, AUTH_ECDSA_256, AUTH_RSA};

use crate::ike::cert::CertError;
use crate::ike::cert::identity::cert_has_identity;
use crate::ike::cert::signature::{Hash, PrivateKey, PublicKey, SigAlg};
use crate::ike::cert::validate::Credentials;
use crate::ike::types::payload::Auth;

use super::pki::{Kind, ca, der_of, id, key, leaf};

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
