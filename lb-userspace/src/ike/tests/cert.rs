//! Certificate validation: chains accepted and refused, the RFC 5280 / RFC 4945
//! extension and key checks, identities and DNs, the `[ike]` certificate settings, and
//! the responder's IKE_AUTH with certificates end to end.

use std::time::{Duration, SystemTime};

use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    KeyUsagePurpose, SanType,
};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use x509_cert::der::Encode;

use lb_common::wire::ike::AUTH_DIGITAL_SIGNATURE;

use crate::ike::cert::CertError;
use crate::ike::cert::identity::{cert_has_identity, identity_eq, our_identity, parse_dn};
use crate::ike::cert::signature::{PrivateKey, PublicKey};
use crate::ike::cert::validate::Credentials;
use crate::ike::types::event::Event;
use crate::ike::types::identity::Identity;

use super::pki::{Ca, Kind, RsaPublic, ca, ca_params, cert_edited, der_of, id, key, leaf, sub_ca};

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
    use super::gateway::{Gw, client, config, gw, init, x25519_gcm};
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
