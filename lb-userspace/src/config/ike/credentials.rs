//! `certificate`, `private-key` and `ca` of `[ike]`: our credentials, read and checked
//! when the configuration is.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::RawIke;
use crate::config::{ConfigError, SecretFiles};
use crate::ike::cert::CertError;
use crate::ike::cert::validate::{Credentials, parse_certificates};

/// `certificate`, `private-key` and `ca`: all three or none, each file read and checked
/// (the key must belong to the certificate).
pub(super) fn credentials(
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
