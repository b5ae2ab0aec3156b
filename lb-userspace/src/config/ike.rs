//! The `[ike]` section (the userspace IKEv2 responder: our identity, the clients and
//! their pre-shared keys) and the per-VIP `auth-redirect` key. Errors name the line and
//! the key, like the rest of [`crate::config`].
//!
//! ```toml
//! [[vip]]
//! address = "192.0.2.1"
//! redirect = "auth"
//! auth-redirect = "informational"   # or "ike_auth"
//!
//! [ike]
//! identity = "vpn.example.net"      # our IDr: FQDN, IP address or user@domain
//!
//! [[ike.peer]]
//! id = "alice@example.net"
//! psk = "a long random secret"      # or "0x<hex>", or psk-file = "/etc/ikelb/alice.psk"
//!                                   # at least [ike] psk-min-length = 16 bytes (8 or more)
//!
//! # Certificates (RFC 7427 signatures): our certificate and key, the clients' CAs.
//! # [ike] certificate = "/etc/ikelb/gw.pem", private-key = "/etc/ikelb/gw.key",
//! #       ca = "/etc/ikelb/ca.pem", allow-sha1 = false (true: accept AUTH method 1)
//! # [[ike.peer]] id = "C=CH, O=Example, CN=carol", auth = "certificate"
//!
//! # Limits on what unauthenticated clients make us hold (defaults shown).
//! # [ike.limits] half-open-per-source = 20, half-open-max = 10000, sa-max = 50000,
//! #              cookie-threshold = 1000, state-memory-mib = 64
//! # EAP through RADIUS (needs the certificate settings, ikelb proves itself with
//! # them, and [ike.radius], see [`super::radius`]); `%any`: every identity no other
//! # peer lists.
//! # [[ike.peer]] id = "%any", auth = "eap"
//! ```

use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;
use zeroize::Zeroizing;

use super::{ConfigError, RedirectMode, SecretFiles};
use crate::ike::cert::identity::parse_dn;
use crate::ike::cert::validate::Credentials;
use crate::ike::types::config::AuthRedirect;
use crate::ike::types::identity::Identity as IkeIdentity;

/// A pre-shared key, zeroized on drop and redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Psk(pub Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Psk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Psk(<redacted>)")
    }
}

/// One client the responder accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkePeerCfg {
    pub id: IkeIdentity,
    /// The pre-shared key; `None`: `auth = "certificate"` or `"eap"`.
    pub psk: Option<Psk>,
    /// `auth = "eap"`.
    pub eap: bool,
}

/// The validated `[ike]` settings, with each auth-mode VIP's redirect method.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IkeCfg {
    /// Our IDr; required when any VIP has `redirect = "auth"`.
    pub identity: Option<IkeIdentity>,
    pub peers: Vec<IkePeerCfg>,
    /// `certificate`, `private-key` and `ca`, loaded and checked.
    pub credentials: Option<Arc<Credentials>>,
    /// `(VIP, method)` for every VIP with `redirect = "auth"`.
    pub auth_vips: Vec<(IpAddr, AuthRedirect)>,
    /// `[[ike.peer]] id = "%any"` with `auth = "eap"`.
    pub eap_any: bool,
    /// `[ike.radius]`, required by EAP peers.
    pub radius: Option<super::RadiusCfg>,
    /// `[ike.limits]`.
    pub limits: IkeLimits,
    /// `allow-sha1`: accept AUTH method 1 (RSA with SHA-1) from certificate clients.
    pub allow_sha1: bool,
}

/// `[ike.limits]`: each `None` keeps [`crate::ike::types::config::ResponderConfig::new`]'s
/// default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IkeLimits {
    pub half_open_per_source: Option<usize>,
    pub half_open_max: Option<usize>,
    pub sa_max: Option<usize>,
    pub cookie_threshold: Option<usize>,
    /// In bytes (the config gives MiB).
    pub state_memory_max: Option<usize>,
}

impl IkeCfg {
    /// How VIP `addr` redirects authenticated clients, if it is an auth-mode VIP.
    pub fn auth_redirect(&self, addr: IpAddr) -> Option<AuthRedirect> {
        self.auth_vips
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|&(_, m)| m)
    }
}

impl IkeCfg {
    /// The responder's configuration for `vips` (every VIP: auth-mode ones
    /// authenticate, init-mode ones get the fast path's answer for what it passed up).
    pub fn responder_config(
        &self,
        vips: &[super::Vip],
        chooser: Box<dyn crate::ike::types::config::TargetChooser>,
        log_keys: bool,
    ) -> crate::ike::types::config::ResponderConfig {
        use crate::ike::types::config::{
            AuthMethod, PeerConfig, ResponderConfig, VipConfig, VipMode,
        };
        // Without auth-mode VIPs the identity is never sent; with only certificate
        // peers it may be left out: our certificate's subject then.
        let id = self.identity.clone().unwrap_or_else(|| {
            self.credentials
                .as_ref()
                .and_then(|c| {
                    use x509_cert::der::Encode;
                    c.certificate().tbs_certificate.subject.to_der().ok()
                })
                .map_or_else(|| IkeIdentity::Fqdn("ikelb".into()), IkeIdentity::DerDn)
        });
        let mut rc = ResponderConfig::new(id, chooser);
        rc.peers = self
            .peers
            .iter()
            .map(|p| PeerConfig {
                id: p.id.clone(),
                auth: match &p.psk {
                    _ if p.eap => AuthMethod::Eap,
                    Some(k) => AuthMethod::Psk(k.0.clone()),
                    None => AuthMethod::Certificate,
                },
            })
            .collect();
        rc.vips = vips
            .iter()
            .map(|v| VipConfig {
                addr: v.address,
                mode: self
                    .auth_redirect(v.address)
                    .map_or(VipMode::Init, VipMode::Auth),
            })
            .collect();
        rc.credentials = self.credentials.clone();
        rc.allow_sha1 = self.allow_sha1;
        rc.eap_any = self.eap_any;
        rc.log_keys = log_keys;
        let l = &self.limits;
        for (set, to) in [
            (l.half_open_per_source, &mut rc.half_open_per_source),
            (l.half_open_max, &mut rc.half_open_max),
            (l.sa_max, &mut rc.sa_max),
            (l.cookie_threshold, &mut rc.cookie_threshold),
            (l.state_memory_max, &mut rc.state_memory_max),
        ] {
            if let Some(v) = set {
                *to = v;
            }
        }
        rc
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawIke {
    identity: Option<Spanned<String>>,
    certificate: Option<Spanned<String>>,
    #[serde(alias = "private_key")]
    private_key: Option<Spanned<String>>,
    ca: Option<Spanned<String>>,
    #[serde(default)]
    allow_sha1: bool,
    psk_min_length: Option<Spanned<i64>>,
    #[serde(default)]
    peer: Vec<RawPeer>,
    radius: Option<super::radius::RawRadius>,
    limits: Option<RawLimits>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLimits {
    half_open_per_source: Option<Spanned<i64>>,
    half_open_max: Option<Spanned<i64>>,
    sa_max: Option<Spanned<i64>>,
    cookie_threshold: Option<Spanned<i64>>,
    state_memory_mib: Option<Spanned<i64>>,
}

/// `[ike.limits]`, each value in its range.
fn limits(
    raw: RawLimits,
    err: &impl Fn(std::ops::Range<usize>, &str, String) -> ConfigError,
) -> Result<IkeLimits, ConfigError> {
    let get = |v: Option<Spanned<i64>>, key: &str, range: std::ops::RangeInclusive<i64>| {
        v.map(|v| {
            if range.contains(v.get_ref()) {
                usize::try_from(*v.get_ref()).map_err(|_| err(v.span(), key, "out of range".into()))
            } else {
                Err(err(
                    v.span(),
                    key,
                    format!("must be {}..={}", range.start(), range.end()),
                ))
            }
        })
        .transpose()
    };
    Ok(IkeLimits {
        half_open_per_source: get(
            raw.half_open_per_source,
            "ike.limits.half-open-per-source",
            1..=1_000_000,
        )?,
        half_open_max: get(
            raw.half_open_max,
            "ike.limits.half-open-max",
            1..=10_000_000,
        )?,
        sa_max: get(raw.sa_max, "ike.limits.sa-max", 1..=10_000_000)?,
        cookie_threshold: get(
            raw.cookie_threshold,
            "ike.limits.cookie-threshold",
            0..=10_000_000,
        )?,
        state_memory_max: get(
            raw.state_memory_mib,
            "ike.limits.state-memory-mib",
            1..=65_536,
        )?
        .map(|mib| mib.saturating_mul(1 << 20)),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPeer {
    id: Spanned<String>,
    psk: Option<Spanned<String>>,
    #[serde(alias = "psk_file")]
    psk_file: Option<Spanned<String>>,
    /// `"psk"` (default), `"certificate"` or `"eap"`.
    auth: Option<Spanned<String>>,
}

/// One `[[vip]]`'s part in the IKE settings.
pub(super) struct VipIke {
    pub index: usize,
    pub address: IpAddr,
    pub redirect: RedirectMode,
    /// Span of the `redirect` key (or of `address` when absent), for errors.
    pub span: std::ops::Range<usize>,
    pub auth_redirect: Option<Spanned<String>>,
}

/// An IKE identity from its config form: an IP address, `user@domain` (RFC 822), a
/// name (FQDN; a leading `@`, as strongSwan and libreswan write it, is dropped), or a
/// distinguished name written most significant first (`C=CH, O=Example, CN=alice`).
pub fn parse_ike_identity(s: &str) -> Result<IkeIdentity, String> {
    if s.is_empty() || s.len() > 255 {
        return Err("an identity is 1 to 255 bytes".into());
    }
    if let Ok(a) = s.parse::<IpAddr>() {
        return Ok(IkeIdentity::Ip(a));
    }
    if let Some(name) = s.strip_prefix('@') {
        if name.is_empty() || name.contains('@') {
            return Err(format!("`{s}`: expected @name"));
        }
        return Ok(IkeIdentity::Fqdn(name.into()));
    }
    if s.contains('=') {
        return parse_dn(s).map(IkeIdentity::DerDn);
    }
    if s.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{s}`: expected an IP address, an FQDN, user@domain or a DN"
        ));
    }
    match s.split_once('@') {
        Some((user, domain)) if !user.is_empty() && !domain.is_empty() && !domain.contains('@') => {
            Ok(IkeIdentity::Rfc822(s.into()))
        }
        Some(_) => Err(format!("`{s}`: not a valid user@domain")),
        None => Ok(IkeIdentity::Fqdn(s.into())),
    }
}

/// Default shortest PSK, in bytes (128 bits): whoever poses as the gateway to a client
/// receives the client's PSK AUTH and can guess the key offline, so it needs as much
/// unpredictability as the keys it protects (RFC 7296 §2.15).
pub const PSK_MIN_LENGTH: usize = 16;
/// The lowest `psk-min-length` may go.
pub const PSK_MIN_FLOOR: usize = 8;

/// A key as written: `0x` + hex digits, or the string's bytes.
fn parse_psk(s: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let bytes = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => {
            if h.is_empty() || h.len() % 2 != 0 {
                return Err("a hex key needs an even, non-zero number of digits".into());
            }
            let mut v = Zeroizing::new(Vec::with_capacity(h.len() / 2));
            for i in (0..h.len()).step_by(2) {
                let b = h
                    .get(i..i + 2)
                    .and_then(|d| u8::from_str_radix(d, 16).ok())
                    .ok_or("not a hex key")?;
                v.push(b);
            }
            v
        }
        None => Zeroizing::new(s.as_bytes().to_vec()),
    };
    if bytes.is_empty() {
        return Err("the key is empty".into());
    }
    Ok(bytes)
}

/// `certificate`, `private-key` and `ca`: all three or none, each file read and checked
/// (the key must belong to the certificate).
fn credentials(
    raw: &RawIke,
    err: &impl Fn(std::ops::Range<usize>, &str, String) -> ConfigError,
    secrets: &mut SecretFiles,
) -> Result<Option<Arc<Credentials>>, ConfigError> {
    let keys = [
        ("ike.certificate", &raw.certificate),
        ("ike.private-key", &raw.private_key),
        ("ike.ca", &raw.ca),
    ];
    if keys.iter().all(|(_, v)| v.is_none()) {
        return Ok(None);
    }
    let mut files = Vec::new();
    for (key, v) in keys {
        let Some(v) = v else {
            let (k, given) = keys
                .iter()
                .find_map(|(k, v)| v.as_ref().map(|v| (k, v)))
                .ok_or_else(|| ConfigError("[ike]: certificate settings".into()))?;
            return Err(err(
                given.span(),
                k,
                format!(
                    "needs `{}` too (`certificate`, `private-key` and `ca` go together)",
                    &key[4..]
                ),
            ));
        };
        if key == "ike.private-key" {
            secrets
                .check(v.get_ref().as_ref())
                .map_err(|m| err(v.span(), key, m))?;
        }
        let bytes = Zeroizing::new(
            std::fs::read(v.get_ref())
                .map_err(|e| err(v.span(), key, format!("{}: {e}", v.get_ref())))?,
        );
        files.push((key, v, bytes));
    }
    let [(_, cert_span, cert), (_, key_span, key), (_, ca_span, ca)] = &files[..] else {
        return Err(ConfigError("[ike]: certificate settings".into()));
    };
    let key_text = std::str::from_utf8(key).map_err(|_| {
        err(
            key_span.span(),
            "ike.private-key",
            format!("{}: not PEM", key_span.get_ref()),
        )
    })?;
    use crate::ike::cert::CertError;
    use crate::ike::cert::validate::parse_certificates;
    parse_certificates(cert).map_err(|e| {
        err(
            cert_span.span(),
            "ike.certificate",
            format!("{}: {e}", cert_span.get_ref()),
        )
    })?;
    parse_certificates(ca).map_err(|e| {
        err(
            ca_span.span(),
            "ike.ca",
            format!("{}: {e}", ca_span.get_ref()),
        )
    })?;
    Credentials::new(cert, key_text, ca)
        .map(|c| Some(Arc::new(c)))
        .map_err(|e| {
            let (span, k, f) = match e {
                CertError::BadPrivateKey | CertError::KeyMismatch => {
                    (key_span.span(), "ike.private-key", key_span.get_ref())
                }
                CertError::UnsupportedKey | CertError::WeakCaKey(_) => {
                    (ca_span.span(), "ike.ca", ca_span.get_ref())
                }
                _ => (cert_span.span(), "ike.certificate", cert_span.get_ref()),
            };
            err(span, k, format!("{f}: {e}"))
        })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Validates `[ike]` against the VIPs.
pub(super) fn build(
    text: &str,
    raw: Option<RawIke>,
    vips: Vec<VipIke>,
    files: &mut SecretFiles,
) -> Result<IkeCfg, ConfigError> {
    let err = |span: std::ops::Range<usize>, key: &str, msg: String| {
        ConfigError(format!(
            "line {}: `{key}`: {msg}",
            line_of(text, span.start)
        ))
    };
    let mut cfg = IkeCfg::default();
    let mut first_auth = None;
    for v in vips {
        let method = match (&v.auth_redirect, v.redirect) {
            (None, RedirectMode::Auth) => AuthRedirect::Informational,
            (None, _) => continue,
            (Some(m), RedirectMode::Auth) => match m.get_ref().as_str() {
                "informational" => AuthRedirect::Informational,
                "ike_auth" | "ike-auth" => AuthRedirect::IkeAuth,
                o => {
                    return Err(err(
                        m.span(),
                        &format!("vip[{}].auth-redirect", v.index),
                        format!("`{o}`: expected \"informational\" or \"ike_auth\""),
                    ));
                }
            },
            (Some(m), _) => {
                return Err(err(
                    m.span(),
                    &format!("vip[{}].auth-redirect", v.index),
                    "only for a VIP with redirect = \"auth\"".into(),
                ));
            }
        };
        first_auth.get_or_insert((v.index, v.span));
        cfg.auth_vips.push((v.address, method));
    }
    if let Some(mut raw) = raw {
        cfg.credentials = credentials(&raw, &err, files)?;
        let psk_min = match &raw.psk_min_length {
            None => PSK_MIN_LENGTH,
            Some(v) => usize::try_from(*v.get_ref())
                .ok()
                .filter(|n| (PSK_MIN_FLOOR..=256).contains(n))
                .ok_or_else(|| {
                    err(
                        v.span(),
                        "ike.psk-min-length",
                        format!("must be {PSK_MIN_FLOOR}..=256 (bytes)"),
                    )
                })?,
        };
        cfg.allow_sha1 = raw.allow_sha1;
        if let Some(l) = raw.limits.take() {
            cfg.limits = limits(l, &err)?;
        }
        if let Some(id) = raw.identity {
            cfg.identity = Some(
                parse_ike_identity(id.get_ref()).map_err(|m| err(id.span(), "ike.identity", m))?,
            );
        }
        cfg.radius = raw
            .radius
            .map(|r| super::radius::build(r, &err, files))
            .transpose()?;
        for (i, p) in raw.peer.into_iter().enumerate() {
            let key = format!("ike.peer[{i}].auth");
            if p.auth.as_ref().is_some_and(|a| a.get_ref() == "eap") {
                let span = p.auth.as_ref().map_or(p.id.span(), |a| a.span());
                if cfg.credentials.is_none() || cfg.radius.is_none() {
                    return Err(err(
                        span,
                        &key,
                        "\"eap\" needs `certificate`, `private-key` and `ca` in [ike] (ikelb \
                         proves itself with them) and [ike.radius]"
                            .into(),
                    ));
                }
                if p.psk.is_some() || p.psk_file.is_some() {
                    return Err(err(
                        span,
                        &key,
                        "an EAP peer has no `psk` or `psk-file`".into(),
                    ));
                }
                if p.id.get_ref() == "%any" {
                    if cfg.eap_any {
                        return Err(err(
                            p.id.span(),
                            &format!("ike.peer[{i}].id"),
                            "`%any` listed twice".into(),
                        ));
                    }
                    cfg.eap_any = true;
                    continue;
                }
            }
            if p.id.get_ref() == "%any" {
                return Err(err(
                    p.id.span(),
                    &format!("ike.peer[{i}].id"),
                    "`%any` only with auth = \"eap\"".into(),
                ));
            }
            let id = parse_ike_identity(p.id.get_ref())
                .map_err(|m| err(p.id.span(), &format!("ike.peer[{i}].id"), m))?;
            if cfg.peers.iter().any(|x| x.id == id) {
                return Err(err(
                    p.id.span(),
                    &format!("ike.peer[{i}].id"),
                    format!("`{}` listed twice", p.id.get_ref()),
                ));
            }
            let cert = match &p.auth {
                None => false,
                Some(a) => match a.get_ref().as_str() {
                    "psk" => false,
                    "certificate" | "cert" | "pubkey" => true,
                    "eap" => {
                        cfg.peers.push(IkePeerCfg {
                            id,
                            psk: None,
                            eap: true,
                        });
                        continue;
                    }
                    o => {
                        return Err(err(
                            a.span(),
                            &format!("ike.peer[{i}].auth"),
                            format!("`{o}`: expected \"psk\", \"certificate\" or \"eap\""),
                        ));
                    }
                },
            };
            if let Some(a) = p.auth.as_ref().filter(|_| cert) {
                let key = format!("ike.peer[{i}].auth");
                if cfg.credentials.is_none() {
                    return Err(err(
                        a.span(),
                        &key,
                        "\"certificate\" needs `certificate`, `private-key` and `ca` in [ike]"
                            .into(),
                    ));
                }
                if p.psk.is_some() || p.psk_file.is_some() {
                    return Err(err(
                        a.span(),
                        &key,
                        "a certificate peer has no `psk` or `psk-file`".into(),
                    ));
                }
                cfg.peers.push(IkePeerCfg {
                    id,
                    psk: None,
                    eap: false,
                });
                continue;
            }
            let (psk, span, key) = match (p.psk, p.psk_file) {
                (Some(k), None) => {
                    let key = format!("ike.peer[{i}].psk");
                    let psk = parse_psk(k.get_ref()).map_err(|m| err(k.span(), &key, m))?;
                    (psk, k.span(), key)
                }
                (None, Some(f)) => {
                    let key = format!("ike.peer[{i}].psk-file");
                    files
                        .check(f.get_ref().as_ref())
                        .map_err(|m| err(f.span(), &key, m))?;
                    let content = Zeroizing::new(
                        std::fs::read_to_string(f.get_ref())
                            .map_err(|e| err(f.span(), &key, format!("{}: {e}", f.get_ref())))?,
                    );
                    let psk = parse_psk(content.trim_end_matches(['\n', '\r']))
                        .map_err(|m| err(f.span(), &key, format!("{}: {m}", f.get_ref())))?;
                    (psk, f.span(), key)
                }
                _ => {
                    return Err(err(
                        p.id.span(),
                        &format!("ike.peer[{i}]"),
                        "give exactly one of `psk` and `psk-file`".into(),
                    ));
                }
            };
            if psk.len() < psk_min {
                return Err(err(
                    span,
                    &key,
                    format!(
                        "the key of peer `{}` has {} bytes, at least {psk_min} are needed \
                         (ike.psk-min-length)",
                        p.id.get_ref(),
                        psk.len()
                    ),
                ));
            }
            cfg.peers.push(IkePeerCfg {
                id,
                psk: Some(Psk(psk)),
                eap: false,
            });
        }
    }
    if let Some((i, span)) = first_auth
        && ((cfg.identity.is_none() && cfg.credentials.is_none())
            || (cfg.peers.is_empty() && !cfg.eap_any))
    {
        return Err(err(
            span,
            &format!("vip[{i}].redirect"),
            "\"auth\" needs [ike] with `identity` (or `certificate`) and at least one [[ike.peer]]"
                .into(),
        ));
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const AUTH: &str = r#"
[[vip]]
address = "192.0.2.1"
redirect = "auth"

[[vip]]
address = "2001:db8::1"
redirect = "auth"
auth_redirect = "ike_auth"

[[vip]]
address = "192.0.2.2"

[[target]]
name = "gw1"
identity = "198.51.100.11"

[ike]
identity = "vpn.example.net"

[[ike.peer]]
id = "alice@example.net"
psk = "alice's long secret"

[[ike.peer]]
id = "@bob.example.net"
psk = "0x0102ff0102ff0102ff0102ff0102ff01"
"#;

    #[test]
    fn parses_ike_and_methods() {
        let c = Config::parse(AUTH).unwrap();
        let ike = &c.ike;
        assert_eq!(
            ike.identity,
            Some(IkeIdentity::Fqdn("vpn.example.net".into()))
        );
        assert_eq!(ike.peers.len(), 2);
        assert_eq!(
            ike.peers[0].id,
            IkeIdentity::Rfc822("alice@example.net".into())
        );
        assert_eq!(
            &ike.peers[0].psk.as_ref().unwrap().0[..],
            b"alice's long secret"
        );
        assert_eq!(ike.peers[1].id, IkeIdentity::Fqdn("bob.example.net".into()));
        assert_eq!(
            &ike.peers[1].psk.as_ref().unwrap().0[..],
            &[
                1, 2, 0xff, 1, 2, 0xff, 1, 2, 0xff, 1, 2, 0xff, 1, 2, 0xff, 1
            ]
        );
        assert_eq!(
            ike.auth_redirect("192.0.2.1".parse().unwrap()),
            Some(AuthRedirect::Informational)
        );
        assert_eq!(
            ike.auth_redirect("2001:db8::1".parse().unwrap()),
            Some(AuthRedirect::IkeAuth)
        );
        assert_eq!(ike.auth_redirect("192.0.2.2".parse().unwrap()), None);
        assert!(!format!("{c:?}").contains("secret"), "keys are redacted");
    }

    #[test]
    fn psk_file() {
        let dir = std::env::temp_dir().join(format!("ikelb-psk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("k");
        std::fs::write(&f, "from a file, long enough\n").unwrap();
        let text = format!(
            "[[vip]]\naddress = \"192.0.2.1\"\nredirect = \"auth\"\n[ike]\nidentity = \"10.0.0.1\"\n\
             [[ike.peer]]\nid = \"c.example\"\npsk-file = \"{}\"\n",
            f.display()
        );
        let c = Config::parse(&text).unwrap();
        assert_eq!(
            &c.ike.peers[0].psk.as_ref().unwrap().0[..],
            b"from a file, long enough"
        );
        assert_eq!(
            c.ike.identity,
            Some(IkeIdentity::Ip("10.0.0.1".parse().unwrap()))
        );
        std::fs::remove_file(&f).unwrap();
        let e = Config::parse(&text).unwrap_err().to_string();
        assert!(e.contains("line 8") && e.contains("psk-file"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn error_of(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    /// A key long enough for the default minimum.
    const LONG: &str = "sixteen bytes ok";

    #[test]
    fn psk_minimum_length() {
        let head =
            "[[vip]]\naddress = \"192.0.2.1\"\nredirect = \"auth\"\n[ike]\nidentity = \"gw\"\n";
        let peer = "[[ike.peer]]\nid = \"alice@example.net\"\npsk = \"ten bytes!\"\n";
        let e = error_of(&format!("{head}{peer}"));
        assert!(
            e.contains("line 8")
                && e.contains("ike.peer[0].psk")
                && e.contains("alice@example.net")
                && e.contains("10 bytes, at least 16"),
            "{e}"
        );
        let c = Config::parse(&format!("{head}psk-min-length = 8\n{peer}")).unwrap();
        assert_eq!(c.ike.peers.len(), 1);
        let e = error_of(&format!("{head}psk-min-length = 4\n{peer}"));
        assert!(
            e.contains("line 6") && e.contains("ike.psk-min-length"),
            "{e}"
        );
        Config::parse(&format!(
            "{head}[[ike.peer]]\nid = \"a@b\"\npsk = \"{LONG}\"\n"
        ))
        .unwrap();
    }

    #[test]
    fn secret_file_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ikelb-perm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (k, conf) = (dir.join("k"), dir.join("ikelb.toml"));
        std::fs::write(&k, format!("{LONG}\n")).unwrap();
        let chmod = |p: &std::path::Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        let text = |strict: bool| {
            format!(
                "[security]\nstrict-permissions = {strict}\n[[vip]]\naddress = \"192.0.2.1\"\n\
                 redirect = \"auth\"\n[ike]\nidentity = \"gw\"\n[[ike.peer]]\nid = \"c.example\"\n\
                 psk-file = \"{}\"\n",
                k.display()
            )
        };
        chmod(&k, 0o600);
        assert!(Config::parse(&text(true)).unwrap().warnings.is_empty());
        // Readable by the group: a warning, or with strict-permissions an error.
        chmod(&k, 0o640);
        let c = Config::parse(&text(false)).unwrap();
        assert!(
            c.warnings.len() == 1 && c.warnings[0].contains("mode 0640"),
            "{:?}",
            c.warnings
        );
        let e = error_of(&text(true));
        assert!(
            e.contains("line 10") && e.contains("ike.peer[0].psk-file") && e.contains("0640"),
            "{e}"
        );
        // The configuration file itself, which may hold keys.
        chmod(&k, 0o600);
        std::fs::write(&conf, text(true)).unwrap();
        chmod(&conf, 0o604);
        let e = Config::load(&conf).unwrap_err().to_string();
        assert!(e.contains("ikelb.toml") && e.contains("0604"), "{e}");
        std::fs::write(&conf, text(false)).unwrap();
        assert_eq!(Config::load(&conf).unwrap().warnings.len(), 1);
        chmod(&conf, 0o600);
        assert!(Config::load(&conf).unwrap().warnings.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn errors_name_line_and_key() {
        let vip = "[[vip]]\naddress = \"192.0.2.1\"\nredirect = \"auth\"\n";
        let e = error_of(vip);
        assert!(e.contains("line 3") && e.contains("vip[0].redirect"), "{e}");
        let e = error_of(&format!("{vip}[ike]\nidentity = \"gw\"\n"));
        assert!(e.contains("[[ike.peer]]"), "{e}");
        let e = error_of(&format!(
            "{vip}auth-redirect = \"sometimes\"\n[ike]\nidentity = \"gw\"\n"
        ));
        assert!(
            e.contains("line 4") && e.contains("vip[0].auth-redirect"),
            "{e}"
        );
        let e = error_of("[[vip]]\naddress = \"192.0.2.1\"\nauth-redirect = \"ike_auth\"\n");
        assert!(e.contains("line 3") && e.contains("only for"), "{e}");
        let peer = "[ike]\nidentity = \"gw\"\n[[ike.peer]]\nid = \"a.example\"\n";
        let e = error_of(&format!("{vip}{peer}"));
        assert!(e.contains("line 7") && e.contains("exactly one"), "{e}");
        let e = error_of(&format!("{vip}{peer}psk = \"0xabc\"\n"));
        assert!(e.contains("line 8") && e.contains("ike.peer[0].psk"), "{e}");
        let e = error_of(&format!("{vip}{peer}psk = \"\"\n"));
        assert!(e.contains("empty"), "{e}");
        let e = error_of(&format!(
            "{vip}[ike]\nidentity = \"gw\"\n[[ike.peer]]\nid = \"a.example\"\npsk = \"{LONG}\"\n\
             [[ike.peer]]\nid = \"a.example\"\npsk = \"{LONG}\"\n"
        ));
        assert!(e.contains("line 10") && e.contains("twice"), "{e}");
        let e = error_of(&format!("{vip}[ike]\nidentity = \"cn=x, =y\"\n"));
        assert!(e.contains("line 5") && e.contains("ike.identity"), "{e}");
        let e = error_of(&format!("{vip}[ike]\nbogus = 1\n"));
        assert!(e.contains("line 5") && e.contains("bogus"), "{e}");
    }

    #[test]
    fn limits_are_applied_and_checked() {
        let text = format!(
            "{AUTH}[ike.limits]\nhalf-open-per-source = 4\nstate-memory-mib = 8\n\
             cookie-threshold = 0\n"
        );
        let c = Config::parse(&text).unwrap();
        let chooser = Box::new(|_: IpAddr| None);
        let rc = c.ike.responder_config(&c.vips, chooser, false);
        assert_eq!(rc.half_open_per_source, 4);
        assert_eq!(rc.state_memory_max, 8 << 20);
        assert_eq!(rc.cookie_threshold, 0);
        // Unset: the responder's defaults.
        assert_eq!(rc.half_open_max, 10_000);
        let e = error_of(&format!("{AUTH}[ike.limits]\nhalf-open-max = 0\n"));
        let line = AUTH.lines().count() + 2;
        assert!(
            e.contains(&format!("line {line}")) && e.contains("ike.limits.half-open-max"),
            "{e}"
        );
        let e = error_of(&format!("{AUTH}[ike.limits]\nhalf-open = 3\n"));
        assert!(e.contains("half-open"), "{e}");
        // SHA-1 signatures: off unless asked for.
        assert!(!rc.allow_sha1);
        let c = Config::parse(&AUTH.replace("[ike]\n", "[ike]\nallow-sha1 = true\n")).unwrap();
        let rc = c
            .ike
            .responder_config(&c.vips, Box::new(|_: IpAddr| None), false);
        assert!(rc.allow_sha1);
    }

    #[test]
    fn identities() {
        assert_eq!(
            parse_ike_identity("192.0.2.9").unwrap(),
            IkeIdentity::Ip("192.0.2.9".parse().unwrap())
        );
        assert_eq!(
            parse_ike_identity("@gw").unwrap(),
            IkeIdentity::Fqdn("gw".into())
        );
        assert!(parse_ike_identity("").is_err());
        assert!(parse_ike_identity("@").is_err());
        assert!(parse_ike_identity("a@").is_err());
        assert!(parse_ike_identity("a@b@c").is_err());
    }
}
