//! `[ike.limits]`: how much unauthenticated clients may make the responder hold.

use serde::Deserialize;
use toml::Spanned;

use super::IkeLimits;
use crate::config::ConfigError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawLimits {
    half_open_per_source: Option<Spanned<i64>>,
    half_open_max: Option<Spanned<i64>>,
    sa_max: Option<Spanned<i64>>,
    cookie_threshold: Option<Spanned<i64>>,
    state_memory_mib: Option<Spanned<i64>>,
}

/// `[ike.limits]`, each value in its range.
pub(super) fn limits(
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
