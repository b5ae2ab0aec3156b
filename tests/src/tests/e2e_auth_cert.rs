//! End to end, redirect after authentication by certificate: ikelb's VIPs in
//! `redirect = "auth"` mode with `[ike] certificate/private-key/ca` and every peer
//! `auth = "certificate"`. rcgen makes a CA, ikelb's certificate, one per member (the
//! same identity `gw.ikelb.test` as ikelb's: a redirected client checks the same remote
//! id at both) and one per client at lab start ([`crate::lab::pki`]). Real clients
//! authenticate ikelb by its certificate and ikelb them by theirs, are redirected and
//! build IKE + CHILD at a strongSwan member that authenticates by certificate too:
//! - strongSwan 5.9.8, `"informational"`, ECDSA P-256: ping through the tunnel.
//! - libreswan 4.10, `"ike_auth"`, ECDSA P-256 (`authby=ecdsa`) and RSA 2048
//!   (`authby=rsasig`): IKE + CHILD at the member (its own ESP install fails with
//!   errno 38 on a kernel without ESP).
//!
//! Each client's wire is captured and decoded with tshark, the encrypted messages with
//! ikelb's test-only key log: the certificates, the RFC 7427 signatures and the REDIRECT
//! must be visible inside them.
//!
//! Root only. Uses the `ikelb` binary from `IKELB_BIN`, else
//! `<workspace>/target/release/ikelb` (`cargo xtask build`).

use super::e2e_auth::{auth_lab, packets};
use crate::lab::{
    CertKey, ClientDaemon, ClientKind, ClientSpec, Family, Lab, LabConfig, ikelb_bin, pki,
};

/// [`auth_lab`] with certificates of type `key` everywhere, also checking that the
/// members authenticated the clients by certificate; returns, per client, the decrypted
/// tshark text of its capture.
fn cert_lab(method: &str, key: CertKey, clients: Vec<ClientSpec>) -> (Lab, Vec<(String, String)>) {
    let (lab, results, decoded) = auth_lab(method, Some(key), clients);
    // The members authenticated the clients by their certificates, not by a PSK.
    for r in &results {
        let m = lab
            .member(r.landed_on.as_deref().expect("landed"))
            .expect("member");
        let log = m.charon.log();
        let id = format!("{}.client.ikelb.test", r.name);
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("authentication of '{id}'"))
                    && l.contains("successful")
                    && !l.contains("pre-shared key")),
            "{}: {} did not authenticate the client by signature:\n{}",
            r.name,
            m.name,
            crate::cmd::tail(&m.charon.log_path(), 40)
        );
    }
    (lab, decoded)
}

/// The decrypted IKE_AUTH request (from the client) and response (from ikelb) of one
/// client's capture, each checked to carry a certificate and a signature AUTH.
fn cert_ike_auth(name: &str, text: &str) -> (String, String) {
    let pkts = packets(text);
    let find = |resp: bool| {
        pkts.iter()
            .find(|p| {
                p.contains("Exchange type: IKE_AUTH (35)")
                    && p.contains("Payload: Authentication (39)")
                    && (p.contains("Flags: 0x20") == resp)
            })
            .cloned()
            .unwrap_or_else(|| {
                panic!("{name}: no decrypted IKE_AUTH (response: {resp}) with AUTH:\n{text}")
            })
    };
    let (req, resp) = (find(false), find(true));
    for (what, p) in [("request", &req), ("response", &resp)] {
        assert!(
            p.contains("Payload: Certificate (37)"),
            "{name}: the IKE_AUTH {what} carries a CERT:\n{p}"
        );
        assert!(
            p.contains("Authentication Method: Digital Signature (14)"),
            "{name}: the IKE_AUTH {what} has an RFC 7427 signature AUTH:\n{p}"
        );
    }
    (req, resp)
}

/// strongSwan 5.9.8 with ECDSA P-256 certificates and `auth-redirect =
/// "informational"`, over IPv4 and IPv6.
#[test]
fn strongswan_by_certificate_is_redirected_after_ike_auth_by_informational() {
    crate::require_root!();
    let clients = vec![
        ClientSpec::new("sw4c", ClientKind::StrongSwan, Family::V4, 500),
        ClientSpec::new("sw6c", ClientKind::StrongSwan, Family::V6, 500),
    ];
    let (lab, decoded) = cert_lab("informational", CertKey::EcdsaP256, clients);
    for (name, text) in &decoded {
        // The client verified ikelb's signature, then the member's, for the same id.
        let c = lab.client(name).expect("client");
        let ClientDaemon::StrongSwan(ch) = &c.daemon else {
            panic!("{name}: not strongSwan")
        };
        let log = ch.log();
        let verified = log
            .lines()
            .filter(|l| {
                l.contains(
                    "authentication of 'gw.ikelb.test' with ECDSA_WITH_SHA256_DER successful",
                )
            })
            .count();
        assert_eq!(
            verified, 2,
            "{name}: the client verified gw.ikelb.test's signature at ikelb and at the member:\n{log}"
        );
        let (_, resp) = cert_ike_auth(name, text);
        assert!(
            resp.contains("Payload: Security Association (33)")
                && !resp.contains("REDIRECT (16407)"),
            "{name}: IKE_AUTH completes with a CHILD SA and no REDIRECT:\n{resp}"
        );
        let info = packets(text)
            .into_iter()
            .find(|p| {
                p.contains("Exchange type: INFORMATIONAL (37)")
                    && p.contains("Notify Message Type: REDIRECT (16407)")
                    && p.contains("Flags: 0x00")
            })
            .unwrap_or_else(|| {
                panic!("{name}: no decrypted INFORMATIONAL request with N(REDIRECT):\n{text}")
            });
        eprintln!("{name}: decrypted IKE_AUTH response:\n{resp}\ndecrypted redirect:\n{info}");
    }
}

fn libreswan_case(key: CertKey, names: [&str; 2]) {
    let clients = vec![
        ClientSpec::new(names[0], ClientKind::Libreswan, Family::V4, 500),
        ClientSpec::new(names[1], ClientKind::Libreswan, Family::V6, 500),
    ];
    let (lab, decoded) = cert_lab("ike_auth", key, clients);
    for (name, text) in &decoded {
        // The client verified ikelb's certificate and signature, then the member's, for
        // the same id (with the default `send_cert = ifasked` the member would leave its
        // certificate out: libreswan sends no CERTREQ here).
        let c = lab.client(name).expect("client");
        let ClientDaemon::Libreswan(p) = &c.daemon else {
            panic!("{name}: not libreswan")
        };
        let log = p.log();
        let verified = log
            .lines()
            .filter(|l| {
                l.contains("initiator established IKE SA; authenticated peer")
                    && l.contains("using peer certificate '@gw.ikelb.test'")
            })
            .count();
        assert_eq!(
            verified, 2,
            "{name}: the client verified gw.ikelb.test's certificate at ikelb and at the member:\n{log}"
        );
        let (_, resp) = cert_ike_auth(name, text);
        assert!(
            resp.contains("Notify Message Type: REDIRECT (16407)")
                && !resp.contains("Payload: Security Association (33)"),
            "{name}: the IKE_AUTH response redirects, no CHILD SA:\n{resp}"
        );
        eprintln!("{name}: decrypted IKE_AUTH redirect:\n{resp}");
    }
}

/// libreswan 4.10 with ECDSA P-256 certificates (`authby=ecdsa`) and `auth-redirect =
/// "ike_auth"`, over IPv4 and IPv6.
#[test]
fn libreswan_by_ecdsa_certificate_is_redirected_in_ike_auth() {
    crate::require_root!();
    libreswan_case(CertKey::EcdsaP256, ["ls4ce", "ls6ce"]);
}

/// The same with RSA 2048 certificates (`authby=rsasig`).
#[test]
fn libreswan_by_rsa_certificate_is_redirected_in_ike_auth() {
    crate::require_root!();
    libreswan_case(CertKey::Rsa2048, ["ls4cr", "ls6cr"]);
}

/// The certificate lab's ikelb config, with certificates rcgen made, is one the daemon
/// accepts (no root needed).
#[test]
fn cert_lab_config_passes_ikelb_check_config() {
    let bin = ikelb_bin();
    if !bin.exists() {
        eprintln!("SKIPPED: {} not built", bin.display());
        return;
    }
    let dir = std::env::temp_dir().join(format!("ikelb-cert-{}", crate::netns::unique_tag()));
    let cfg = LabConfig {
        clients: ClientSpec::standard_set(),
        ikelb_auth: Some("informational".into()),
        ikelb_auth_cert: Some(CertKey::EcdsaP256),
        ..LabConfig::default()
    };
    let pki = pki::pki_dir(&dir);
    pki::generate(&pki, &cfg, CertKey::EcdsaP256).unwrap_or_else(|e| panic!("{e:#}"));
    let path = dir.join("ikelb.toml");
    std::fs::write(&path, cfg.ikelb_toml_at("native", &pki)).expect("write");
    let out = std::process::Command::new(&bin)
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run ikelb check-config");
    let text = String::from_utf8_lossy(&out.stdout);
    let ok = out.status.success();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        ok,
        "ikelb check-config rejects the cert lab config: {text}{err}"
    );
    assert!(text.contains("5 peer(s)"), "{text}");
}
