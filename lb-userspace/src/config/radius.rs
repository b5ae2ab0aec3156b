//! `[ike.radius]`: the RADIUS servers EAP clients are authenticated through
//! ([`crate::radius`]). Errors name the line and the key.
//!
//! ```toml
//! [ike.radius]
//! timeout-ms = 2000                 # per try; default 2000
//! retries = 2                       # retransmissions per server; default 2
//! revive-after-ms = 30000           # a silent server is passed over this long; default 30000
//! nas-identifier = "ikelb"          # default "ikelb"
//!
//! [[ike.radius.server]]             # in order of preference: the next takes over
//! address = "192.0.2.10"            # when one does not answer
//! port = 1812                       # default 1812
//! secret-file = "/etc/ikelb/radius.secret"
//! ```

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use zeroize::Zeroizing;

use super::ike::Psk;
use super::{ConfigError, SecretFiles};
use crate::radius::{ClientConfig, Server};

/// The validated `[ike.radius]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RadiusCfg {
    /// Address and shared secret of each server, in order of preference.
    pub servers: Vec<(SocketAddr, Psk)>,
    pub timeout: Duration,
    pub retries: u32,
    pub revive_after: Duration,
    pub nas_identifier: String,
}

impl RadiusCfg {
    /// The RADIUS client's configuration.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            servers: self
                .servers
                .iter()
                .map(|(addr, secret)| Server {
                    addr: *addr,
                    secret: secret.0.clone(),
                })
                .collect(),
            timeout: self.timeout,
            retries: self.retries,
            revive_after: self.revive_after,
            nas_identifier: self.nas_identifier.clone(),
            nas_ip: None,
        }
    }

    /// The longest a client waits for a verdict: every server, every try.
    pub fn worst_case(&self) -> Duration {
        let tries = (self.retries + 1) * self.servers.len() as u32;
        self.timeout.saturating_mul(tries)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawRadius {
    #[serde(alias = "timeout_ms")]
    timeout_ms: Option<Spanned<i64>>,
    retries: Option<Spanned<i64>>,
    #[serde(alias = "revive_after_ms")]
    revive_after_ms: Option<Spanned<i64>>,
    #[serde(alias = "nas_identifier")]
    nas_identifier: Option<Spanned<String>>,
    #[serde(default)]
    server: Vec<RawServer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawServer {
    address: Spanned<String>,
    port: Option<Spanned<i64>>,
    #[serde(alias = "secret_file")]
    secret_file: Spanned<String>,
}

/// Validates `[ike.radius]`, reading each server's secret file.
pub(super) fn build(
    raw: RawRadius,
    err: &impl Fn(Range<usize>, &str, String) -> ConfigError,
    files: &mut SecretFiles,
) -> Result<RadiusCfg, ConfigError> {
    let timeout = match raw.timeout_ms {
        None => Duration::from_millis(2000),
        Some(t) => u64::try_from(*t.get_ref())
            .ok()
            .filter(|ms| (100..=60_000).contains(ms))
            .map(Duration::from_millis)
            .ok_or_else(|| {
                err(
                    t.span(),
                    "ike.radius.timeout-ms",
                    "must be 100..=60000".into(),
                )
            })?,
    };
    let retries = match raw.retries {
        None => 2,
        Some(r) => u32::try_from(*r.get_ref())
            .ok()
            .filter(|r| *r <= 10)
            .ok_or_else(|| err(r.span(), "ike.radius.retries", "must be 0..=10".into()))?,
    };
    let revive_after = match raw.revive_after_ms {
        None => Duration::from_secs(30),
        Some(t) => u64::try_from(*t.get_ref())
            .ok()
            .filter(|ms| (1000..=3_600_000).contains(ms))
            .map(Duration::from_millis)
            .ok_or_else(|| {
                err(
                    t.span(),
                    "ike.radius.revive-after-ms",
                    "must be 1000..=3600000".into(),
                )
            })?,
    };
    let nas_identifier = match raw.nas_identifier {
        None => "ikelb".to_string(),
        Some(n) if (1..=253).contains(&n.get_ref().len()) => n.into_inner(),
        Some(n) => {
            return Err(err(
                n.span(),
                "ike.radius.nas-identifier",
                "1 to 253 bytes".into(),
            ));
        }
    };
    if raw.server.is_empty() {
        return Err(ConfigError(
            "[ike.radius] needs at least one [[ike.radius.server]]".into(),
        ));
    }
    let mut servers: Vec<(SocketAddr, Psk)> = Vec::new();
    for (i, s) in raw.server.into_iter().enumerate() {
        let key = |k: &str| format!("ike.radius.server[{i}].{k}");
        let ip: IpAddr = s.address.get_ref().parse().map_err(|_| {
            err(
                s.address.span(),
                &key("address"),
                "not an IPv4 or IPv6 address".into(),
            )
        })?;
        let port = match s.port {
            None => 1812,
            Some(p) => u16::try_from(*p.get_ref())
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| err(p.span(), &key("port"), "must be 1..=65535".into()))?,
        };
        let addr = SocketAddr::new(ip, port);
        if servers.iter().any(|(a, _)| *a == addr) {
            return Err(err(
                s.address.span(),
                &key("address"),
                format!("{addr} listed twice"),
            ));
        }
        let path = s.secret_file.get_ref();
        // Readable by others: a warning, or an error with strict-permissions, as for PSKs.
        files
            .check(path.as_ref())
            .map_err(|m| err(s.secret_file.span(), &key("secret-file"), m))?;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            err(
                s.secret_file.span(),
                &key("secret-file"),
                format!("{path}: {e}"),
            )
        })?);
        let secret = text.trim_end_matches(['\n', '\r']);
        if secret.is_empty() {
            return Err(err(
                s.secret_file.span(),
                &key("secret-file"),
                format!("{path}: the secret is empty"),
            ));
        }
        servers.push((addr, Psk(Zeroizing::new(secret.as_bytes().to_vec()))));
    }
    Ok(RadiusCfg {
        servers,
        timeout,
        retries,
        revive_after,
        nas_identifier,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;

    /// An auth VIP, our certificate files (rcgen), `extra` after `[ike]`.
    fn parse(dir: &std::path::Path, extra: &str) -> Result<Config, String> {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["gw.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (dir.join("gw.pem"), dir.join("gw.key"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        let text = format!(
            "[[vip]]\naddress = \"192.0.2.1\"\nredirect = \"auth\"\n[ike]\n\
             certificate = \"{c}\"\nprivate-key = \"{k}\"\nca = \"{c}\"\n{extra}",
            c = c.display(),
            k = k.display()
        );
        Config::parse(&text).map_err(|e| e.to_string())
    }

    #[test]
    fn eap_peers_and_radius_servers() {
        let dir = std::env::temp_dir().join(format!("ikelb-radius-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let servers = format!(
            "[[ike.radius.server]]\naddress = \"10.0.0.1\"\nsecret-file = \"{s}\"\n\
             [[ike.radius.server]]\naddress = \"fd00::2\"\nport = 1645\nsecret-file = \"{s}\"\n",
            s = secret.display()
        );
        let peers = "[[ike.peer]]\nid = \"carol@example.net\"\nauth = \"eap\"\n\
                     [[ike.peer]]\nid = \"%any\"\nauth = \"eap\"\n";
        let c = parse(
            &dir,
            &format!(
                "{peers}[ike.radius]\ntimeout-ms = 500\nretries = 1\nrevive-after-ms = 5000\n{servers}"
            ),
        )
        .unwrap();
        let r = c.ike.radius.as_ref().unwrap();
        assert_eq!(r.servers.len(), 2);
        assert_eq!(r.servers[0].0, "10.0.0.1:1812".parse().unwrap());
        assert_eq!(r.servers[1].0, "[fd00::2]:1645".parse().unwrap());
        assert_eq!(&r.servers[0].1.0[..], b"s3cret");
        assert_eq!(r.worst_case(), Duration::from_secs(2));
        assert_eq!(r.revive_after, Duration::from_secs(5));
        assert!(c.ike.eap_any);
        assert_eq!(c.ike.peers.len(), 1);
        assert!(c.ike.peers[0].eap);
        assert!(!format!("{c:?}").contains("s3cret"), "secrets are redacted");

        let e = parse(&dir, peers).unwrap_err();
        assert!(e.contains("line 10") && e.contains("[ike.radius]"), "{e}");
        let e = parse(
            &dir,
            &format!("{peers}[ike.radius]\ntimeout-ms = 5\n{servers}"),
        )
        .unwrap_err();
        assert!(e.contains("timeout-ms"), "{e}");
        let e = parse(&dir, &format!("{peers}[ike.radius]\n")).unwrap_err();
        assert!(e.contains("at least one"), "{e}");
        let e = parse(
            &dir,
            "[ike.radius]\n[[ike.radius.server]]\naddress = \"10.0.0.1\"\nsecret-file = \"/nonexistent\"\n",
        )
        .unwrap_err();
        assert!(
            e.contains("secret-file") && e.contains("/nonexistent"),
            "{e}"
        );
        let e = parse(
            &dir,
            "[[ike.peer]]\nid = \"%any\"\nauth = \"psk\"\npsk = \"k\"\n",
        )
        .unwrap_err();
        assert!(e.contains("ike.peer[0].id"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
