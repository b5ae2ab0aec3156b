//! End to end, EAP in auth mode: ikelb proves itself by certificate, relays each
//! client's EAP to FreeRADIUS 3.2 (its own namespace, config dir and users file), keys
//! the final AUTH with the MSK from the server's MS-MPPE keys, then redirects; the
//! member authenticates the client again through the same FreeRADIUS (strongSwan
//! `eap-radius`) and the client pings through the tunnel (kernel-libipsec):
//! - EAP-MSCHAPv2 over IPv4 and IPv6, EAP-TLS over IPv4 (strongSwan 5.9.8,
//!   `auth-redirect = "informational"`), the REDIRECT and the EAP payloads seen in the
//!   capture decrypted with ikelb's key log;
//! - a wrong password: AUTHENTICATION_FAILED from ikelb, no redirect;
//! - the only RADIUS server down: AUTHENTICATION_FAILED within ikelb's RADIUS time
//!   budget, and the log line with its counter;
//! - the first of two RADIUS servers down: the second takes over;
//! - the first of two answering with forgeries: dropped and counted, the second takes
//!   over.
//!
//! Root only. Uses the `ikelb` binary from `IKELB_BIN`, else
//! `<workspace>/target/release/ikelb` (`cargo xtask build`).

use std::time::{Duration, Instant};

use super::e2e_auth::{decode_with_keys, packets, require_ikelb};
use crate::capture::Capture;
use crate::esp;
use crate::lab::{
    Balancer, CertKey, ClientDaemon, ClientKind, ClientSpec, EapLab, EapMethod, Family, Lab,
    LabConfig, segment_addr, vip,
};

fn eap_lab(eap: EapLab, clients: Vec<ClientSpec>) -> Lab {
    require_ikelb();
    Lab::up(LabConfig {
        balancer: Balancer::ikelb_default(),
        clients,
        ikelb_auth: Some("informational".into()),
        ikelb_auth_cert: Some(CertKey::EcdsaP256),
        eap: Some(eap),
        ..LabConfig::default()
    })
    .unwrap_or_else(|e| panic!("lab up: {e:#}"))
}

/// Connects every client with its wire captured, expects each redirected to a member
/// with IKE + CHILD SAs and a ping through the tunnel; returns each client's decrypted
/// capture.
fn connect_all(lab: &Lab) -> Vec<(String, String)> {
    let esp = esp::probe().expect("ESP probe");
    let caps: Vec<(String, Capture)> = lab
        .clients
        .iter()
        .map(|c| {
            let filter = format!("udp and host {}", vip(c.spec.family));
            let cap = Capture::start(&c.netns, "eth0", &filter, None, &lab.run_dir, &c.spec.name)
                .unwrap_or_else(|e| panic!("{e:#}"));
            (c.spec.name.clone(), cap)
        })
        .collect();
    lab.connect_clients_expect_landed(esp);
    std::thread::sleep(Duration::from_millis(500));
    caps.into_iter()
        .map(|(name, cap)| {
            let pcap = cap.pcap_path().to_path_buf();
            cap.finish().unwrap_or_else(|e| panic!("{e:#}"));
            (name, decode_with_keys(&pcap, &lab.ike_keylog_path()))
        })
        .collect()
}

/// The RADIUS server's log shows an Access-Accept for `user` to ikelb (its requests
/// come from the VIP) and to a member: both authenticated the user.
fn accepted_by_ikelb_and_member(lab: &Lab, server: &str, user: &str) {
    let log = lab.radius_log(server);
    let accepts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Sent Access-Accept"))
        .collect();
    let to_ikelb = accepts
        .iter()
        .any(|l| l.contains(&format!("to {}:", vip(Family::V4))));
    let to_member = lab.members.iter().any(|m| {
        accepts
            .iter()
            .any(|l| l.contains(&format!("to {}:", m.v4())))
    });
    assert!(
        to_ikelb && to_member && log.contains(user),
        "{server}: Access-Accept for {user} to ikelb and to a member:\n{}",
        accepts.join("\n")
    );
}

/// Checks a decrypted capture: IKE_AUTH exchanges that carry EAP, the REDIRECT in an
/// INFORMATIONAL request after them.
fn eap_then_redirect_in_capture(name: &str, text: &str) {
    let pkts = packets(text);
    let eap = pkts
        .iter()
        .filter(|p| {
            p.contains("Exchange type: IKE_AUTH (35)")
                && p.contains("Payload: Extensible Authentication (48)")
        })
        .count();
    assert!(
        eap >= 4,
        "{name}: IKE_AUTH messages with EAP payloads in the decrypted capture: {eap}\n{text}"
    );
    let info = pkts
        .iter()
        .find(|p| {
            p.contains("Exchange type: INFORMATIONAL (37)")
                && p.contains("Notify Message Type: REDIRECT (16407)")
        })
        .unwrap_or_else(|| panic!("{name}: no decrypted INFORMATIONAL with N(REDIRECT):\n{text}"));
    eprintln!("{name}: {eap} IKE_AUTH messages with EAP; decrypted redirect:\n{info}");
}

/// EAP-MSCHAPv2 over IPv4 and IPv6.
#[test]
fn strongswan_eap_mschapv2_through_freeradius_is_redirected() {
    crate::require_root!();
    let clients = vec![
        ClientSpec::new("sw4m", ClientKind::StrongSwan, Family::V4, 500)
            .with_eap(EapMethod::mschapv2()),
        ClientSpec::new("sw6m", ClientKind::StrongSwan, Family::V6, 500)
            .with_eap(EapMethod::mschapv2()),
    ];
    let lab = eap_lab(EapLab::default(), clients);
    for (name, text) in connect_all(&lab) {
        eap_then_redirect_in_capture(&name, &text);
        let id = lab.client(&name).expect("client").spec.id();
        accepted_by_ikelb_and_member(&lab, "rad1", &id);
        let c = lab.client(&name).expect("client");
        let ClientDaemon::StrongSwan(ch) = &c.daemon else {
            panic!("{name}: not strongSwan")
        };
        let log = ch.log();
        assert_eq!(
            log.matches("EAP method EAP_MSCHAPV2 succeeded, MSK established")
                .count(),
            2,
            "{name}: EAP-MSCHAPv2 with an MSK at ikelb and at the member:\n{log}"
        );
        assert_eq!(
            log.matches("authentication of 'gw.ikelb.test' with EAP successful")
                .count(),
            2,
            "{name}: the MSK-keyed AUTH of ikelb and of the member checked out:\n{log}"
        );
    }
}

/// EAP-TLS over IPv4: the client's certificate of the lab CA, checked by FreeRADIUS.
#[test]
fn strongswan_eap_tls_through_freeradius_is_redirected() {
    crate::require_root!();
    let clients = vec![
        ClientSpec::new("sw4t", ClientKind::StrongSwan, Family::V4, 500).with_eap(EapMethod::Tls),
    ];
    let lab = eap_lab(EapLab::default(), clients);
    for (name, text) in connect_all(&lab) {
        eap_then_redirect_in_capture(&name, &text);
        let id = lab.client(&name).expect("client").spec.id();
        accepted_by_ikelb_and_member(&lab, "rad1", &id);
        let c = lab.client(&name).expect("client");
        let ClientDaemon::StrongSwan(ch) = &c.daemon else {
            panic!("{name}: not strongSwan")
        };
        let log = ch.log();
        assert_eq!(
            log.matches("EAP method EAP_TLS succeeded, MSK established")
                .count(),
            2,
            "{name}: EAP-TLS with an MSK at ikelb and at the member:\n{log}"
        );
    }
}

/// Connects `name`, which must fail; returns how long swanctl took and the client's log.
fn connect_expect_refused(lab: &Lab, name: &str) -> (Duration, String) {
    let c = lab.client(name).expect("client");
    let ClientDaemon::StrongSwan(ch) = &c.daemon else {
        panic!("{name}: not strongSwan")
    };
    let mark = ch.log_mark();
    let t = Instant::now();
    let (ok, out) = ch
        .initiate("svc", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let took = t.elapsed();
    let log = ch.log_since(mark);
    assert!(!ok, "{name}: initiate succeeded:\n{out}\n{log}");
    assert!(
        log.contains("received AUTHENTICATION_FAILED notify error"),
        "{name}: AUTHENTICATION_FAILED from ikelb:\n{log}"
    );
    assert!(
        !log.contains("redirected to"),
        "{name}: no redirect for a client that failed:\n{log}"
    );
    for m in &lab.members {
        assert!(
            !m.charon.log().contains(&c.spec.id()),
            "{name}: never reached {}",
            m.name
        );
    }
    (took, log)
}

#[test]
fn strongswan_eap_wrong_password_gets_authentication_failed() {
    crate::require_root!();
    let bad = EapMethod::MsChapV2 {
        password: "not-the-password".into(),
    };
    let clients =
        vec![ClientSpec::new("sw4w", ClientKind::StrongSwan, Family::V4, 500).with_eap(bad)];
    let lab = eap_lab(EapLab::default(), clients);
    let (_, log) = connect_expect_refused(&lab, "sw4w");
    let radius = lab.radius_log("rad1");
    assert!(
        radius.contains("Sent Access-Reject"),
        "rad1 rejected the password:\n{radius}"
    );
    let ikelb = lab.ikelb_log();
    assert!(
        ikelb
            .lines()
            .any(|l| l.contains("authentication failed") && l.contains("sw4w.client.ikelb.test")),
        "ikelb logs the failure:\n{ikelb}"
    );
    assert!(!ikelb.contains("redirected"), "no redirect:\n{ikelb}");
    eprintln!("client log:\n{log}");
}

#[test]
fn strongswan_eap_radius_down_fails_in_bounded_time() {
    crate::require_root!();
    let eap = EapLab {
        servers: 1,
        down: vec![1],
        timeout_ms: 500,
        retries: 1,
        ..EapLab::default()
    };
    let budget = eap.worst_case();
    let clients = vec![
        ClientSpec::new("sw4d", ClientKind::StrongSwan, Family::V4, 500)
            .with_eap(EapMethod::mschapv2()),
    ];
    let lab = eap_lab(eap, clients);
    let (took, _) = connect_expect_refused(&lab, "sw4d");
    // IKE_SA_INIT and the first IKE_AUTH take milliseconds; the rest is ikelb waiting
    // for RADIUS, then the client's next retransmission fetching the cached answer.
    eprintln!("refused after {took:?} (RADIUS budget {budget:?})");
    assert!(
        took >= budget && took < budget + Duration::from_secs(4),
        "AUTHENTICATION_FAILED within ikelb's RADIUS budget: {took:?} for {budget:?}"
    );
    let ikelb = lab.ikelb_log();
    let line = ikelb
        .lines()
        .find(|l| l.contains("no RADIUS server answered"))
        .unwrap_or_else(|| panic!("ikelb logs why:\n{ikelb}"));
    assert!(
        line.contains("unreachable=1") && line.contains(&segment_addr(Family::V4, 101).to_string()),
        "the log line names the client and counts: {line}"
    );
    eprintln!("ikelb: {line}");
}

#[test]
fn strongswan_eap_second_radius_server_takes_over() {
    crate::require_root!();
    let eap = EapLab {
        servers: 2,
        down: vec![1],
        timeout_ms: 500,
        retries: 1,
        ..EapLab::default()
    };
    let clients = vec![
        ClientSpec::new("sw4f", ClientKind::StrongSwan, Family::V4, 500)
            .with_eap(EapMethod::mschapv2()),
    ];
    let lab = eap_lab(eap, clients);
    let decoded = connect_all(&lab);
    eap_then_redirect_in_capture(&decoded[0].0, &decoded[0].1);
    accepted_by_ikelb_and_member(&lab, "rad2", "sw4f.client.ikelb.test");
    let ikelb = lab.ikelb_log();
    let rad1 = lab.radius.iter().find(|r| r.name == "rad1").expect("rad1");
    let line = ikelb
        .lines()
        .find(|l| l.contains("RADIUS server not answering"))
        .unwrap_or_else(|| panic!("ikelb logs the failover:\n{ikelb}"));
    assert!(line.contains(&rad1.v4().to_string()), "{line}");
    eprintln!("ikelb: {line}");
}

/// The EAP lab's ikelb config (certificates from rcgen, the RADIUS secret in a file) is
/// one the daemon accepts (no root needed).
#[test]
fn eap_lab_config_passes_ikelb_check_config() {
    require_ikelb();
    let dir = std::env::temp_dir().join(format!("ikelb-eap-{}", crate::netns::unique_tag()));
    let cfg = LabConfig {
        clients: vec![
            ClientSpec::new("sw4m", ClientKind::StrongSwan, Family::V4, 500)
                .with_eap(EapMethod::mschapv2()),
        ],
        ikelb_auth: Some("informational".into()),
        ikelb_auth_cert: Some(CertKey::EcdsaP256),
        eap: Some(EapLab {
            servers: 2,
            ..EapLab::default()
        }),
        ..LabConfig::default()
    };
    let pki = crate::lab::pki::pki_dir(&dir);
    crate::lab::pki::generate(&pki, &cfg, CertKey::EcdsaP256).unwrap_or_else(|e| panic!("{e:#}"));
    let path = dir.join("ikelb.toml");
    std::fs::write(&path, cfg.ikelb_toml_at("native", &pki)).expect("write");
    let out = std::process::Command::new(crate::lab::ikelb_bin())
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run ikelb check-config");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "ikelb check-config rejects the EAP lab config: {text}"
    );
    assert!(
        text.contains("ike eap for any other identity")
            && text.contains("radius 10.200.0.5:1812 10.200.0.6:1812")
            && text.contains("verdict within 4s"),
        "{text}"
    );
}

#[test]
fn strongswan_eap_forged_radius_answers_are_dropped_and_counted() {
    crate::require_root!();
    let eap = EapLab {
        servers: 2,
        forged: vec![1],
        timeout_ms: 500,
        retries: 1,
        ..EapLab::default()
    };
    let clients = vec![
        ClientSpec::new("sw4x", ClientKind::StrongSwan, Family::V4, 500)
            .with_eap(EapMethod::mschapv2()),
    ];
    let lab = eap_lab(eap, clients);
    let decoded = connect_all(&lab);
    eap_then_redirect_in_capture(&decoded[0].0, &decoded[0].1);
    accepted_by_ikelb_and_member(&lab, "rad2", "sw4x.client.ikelb.test");
    let ikelb = lab.ikelb_log();
    let dropped: Vec<&str> = ikelb
        .lines()
        .filter(|l| l.contains("RADIUS answer dropped"))
        .collect();
    // rad1 got the request and its one retransmission: one forgery of each kind.
    assert!(
        dropped
            .iter()
            .any(|l| l.contains("Response Authenticator mismatch")
                && l.contains("dropped_bad_response_authenticator=1"))
            && dropped
                .iter()
                .any(|l| l.contains("Message-Authenticator mismatch")
                    && l.contains("dropped_bad_message_authenticator=1")),
        "ikelb drops and counts both forgeries:\n{ikelb}"
    );
    assert!(
        ikelb.contains("RADIUS server not answering"),
        "a server that only forges counts as silent:\n{ikelb}"
    );
    for l in dropped {
        eprintln!("ikelb: {l}");
    }
}
