//! The EAP settings of the lab's daemons ([`LabConfig::eap`]): the members' eap-radius
//! with the lab's servers, the clients' EAP methods and secrets, and ikelb's
//! `[ike.radius]`.

use std::fmt::Write as _;
use std::path::Path;

use super::addr::{radius_host, segment_addr};
use super::spec::{ClientSpec, EapLab, EapMethod, Family, LabConfig};
use crate::peers::RADIUS_SECRET;
use crate::peers::strongswan::{CharonOptions, Conn};

/// `<pki>/radius.secret`: the RADIUS shared secret ikelb reads (`secret-file`).
pub fn secret_path(pki: &Path) -> std::path::PathBuf {
    pki.join("radius.secret")
}

pub(super) fn server_addrs(eap: &EapLab) -> Vec<std::net::IpAddr> {
    (1..=eap.servers)
        .map(|i| segment_addr(Family::V4, radius_host(i)))
        .collect()
}

/// A member's charon options in an EAP lab: eap-radius with the lab's real servers
/// (not the down or forging ones). strongSwan 5.9.8's eap-radius does not move a conversation to its next server when
/// one times out (the client gets EAP-Failure; only later conversations avoid that
/// server), so a member that knew the down server would fail the client the failover
/// test is about: ikelb's failover is under test, not the member's.
pub(super) fn member_options(opts: &CharonOptions, eap: &EapLab) -> CharonOptions {
    let mut o = opts.clone();
    o.plugins.push_str(" eap-identity eap-radius");
    let mut servers = String::new();
    let up = server_addrs(eap).into_iter().enumerate().filter(|(i, _)| {
        let n = *i as u8 + 1;
        !eap.down.contains(&n) && !eap.forged.contains(&n)
    });
    for (i, a) in up {
        let _ = write!(
            servers,
            "        rad{} {{\n          address = {a}\n          secret = {RADIUS_SECRET}\n        }}\n",
            i + 1
        );
    }
    let _ = write!(
        o.plugin_conf,
        "    eap-radius {{\n      retransmit_tries = 1\n      retransmit_timeout = 1\n      \
         retransmit_base = 1\n      servers {{\n{servers}      }}\n    }}\n"
    );
    o
}

/// A member's connection: proves `MEMBER_ID` by its certificate, asks the client for its
/// EAP identity and relays it to RADIUS.
pub(super) fn member_conn(base: Conn) -> Conn {
    Conn {
        remote_auth: Some("eap-radius".into()),
        remote_eap_id: Some("%any".into()),
        ..base
    }
}

/// A strongSwan client's options: the EAP methods it may use.
pub(super) fn client_options(opts: &CharonOptions) -> CharonOptions {
    let mut o = opts.clone();
    o.plugins.push_str(" eap-identity eap-mschapv2 eap-tls");
    o
}

/// A strongSwan client's connection by `method`, and its EAP secrets: EAP as itself
/// (its IKE identity is its EAP identity), the gateways by certificate.
pub(super) fn client_conn(
    base: Conn,
    spec: &ClientSpec,
    method: &EapMethod,
) -> (Conn, Vec<(String, String)>) {
    let conn = Conn {
        remote_auth: Some("pubkey".into()),
        local_eap_id: Some(spec.id()),
        ..base
    };
    match method {
        EapMethod::MsChapV2 { password } => (
            Conn {
                local_auth: Some("eap-mschapv2".into()),
                cert: None,
                ..conn
            },
            vec![(spec.id(), password.clone())],
        ),
        EapMethod::Tls => (
            Conn {
                local_auth: Some("eap-tls".into()),
                ..conn
            },
            Vec::new(),
        ),
    }
}

impl LabConfig {
    /// ikelb's `[[ike.peer]]` for EAP clients and `[ike.radius]`.
    pub(super) fn ikelb_toml_eap(&self, pki: &Path) -> String {
        let Some(eap) = &self.eap else {
            return String::new();
        };
        let mut s = String::from("[[ike.peer]]\nid = \"%any\"\nauth = \"eap\"\n\n");
        let _ = write!(
            s,
            "[ike.radius]\ntimeout-ms = {}\nretries = {}\nnas-identifier = \"ikelb-lab\"\n\n",
            eap.timeout_ms, eap.retries
        );
        for a in server_addrs(eap) {
            let _ = write!(
                s,
                "[[ike.radius.server]]\naddress = \"{a}\"\nsecret-file = \"{}\"\n\n",
                secret_path(pki).display()
            );
        }
        s
    }
}
