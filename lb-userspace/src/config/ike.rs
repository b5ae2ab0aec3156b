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

mod credentials;
mod limits;
mod peer;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;
use zeroize::Zeroizing;

pub use self::peer::parse_ike_identity;
use self::peer::{PSK_MIN_FLOOR, PSK_MIN_LENGTH, RawPeer};
use super::{ConfigError, RedirectMode, SecretFiles, line_of};
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
    limits: Option<limits::RawLimits>,
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
        cfg.credentials = credentials::credentials(&raw, &err, files)?;
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
            cfg.limits = limits::limits(l, &err)?;
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
        peer::add(raw.peer, psk_min, &mut cfg, &err, files)?;
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
