//! `[[ike.peer]]`: the clients the responder accepts, their identities and how they
//! authenticate, with the config forms of identities and pre-shared keys.

use std::net::IpAddr;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use zeroize::Zeroizing;

use super::{IkeCfg, IkePeerCfg, Psk};
use crate::config::{ConfigError, SecretFiles};
use crate::ike::cert::identity::parse_dn;
use crate::ike::types::identity::Identity as IkeIdentity;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPeer {
    id: Spanned<String>,
    psk: Option<Spanned<String>>,
    #[serde(alias = "psk_file")]
    psk_file: Option<Spanned<String>>,
    /// `"psk"` (default), `"certificate"` or `"eap"`.
    auth: Option<Spanned<String>>,
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

/// Adds the `[[ike.peer]]` entries to `cfg`, each checked against what `[ike]` has
/// (certificate settings for certificate and EAP peers, `[ike.radius]` for EAP ones) and
/// each PSK at least `psk_min` bytes.
pub(super) fn add(
    raw: Vec<RawPeer>,
    psk_min: usize,
    cfg: &mut IkeCfg,
    err: &impl Fn(Range<usize>, &str, String) -> ConfigError,
    files: &mut SecretFiles,
) -> Result<(), ConfigError> {
    for (i, p) in raw.into_iter().enumerate() {
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
                    "\"certificate\" needs `certificate`, `private-key` and `ca` in [ike]".into(),
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
    Ok(())
}
