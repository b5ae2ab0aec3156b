//! The load composition of `[cluster]`: capacity and weight, and for each kind of load
//! (crypto: active SAs of capacity; system: the higher of CPU and memory) its weight
//! and overload limit ([`crate::target::headroom`]). Every member reports its own.

use lb_common::wire::load::Figures;

use super::{ConfigError, Ctx, RawCluster};
use crate::target::headroom::{
    CRYPTO_LOAD_WEIGHT_DEFAULT, CRYPTO_OVERLOAD_PCT_DEFAULT, SYSTEM_LOAD_WEIGHT_DEFAULT,
    SYSTEM_OVERLOAD_PCT_DEFAULT,
};

impl Ctx<'_> {
    /// The figures this member reports besides its samples.
    pub(super) fn load(&self, c: &RawCluster) -> Result<Figures, ConfigError> {
        if let Some(o) = &c.overload_pct {
            return Err(self.err(
                o.span(),
                "cluster.overload-pct",
                "replaced by `crypto-overload-pct` (active SAs, percent of capacity) and \
                 `system-overload-pct` (the higher of CPU and memory, percent)",
            ));
        }
        let crypto_load_weight = self.int(
            &c.crypto_load_weight,
            "cluster.crypto-load-weight",
            0..=100,
            CRYPTO_LOAD_WEIGHT_DEFAULT,
        )?;
        let system_load_weight = self.int(
            &c.system_load_weight,
            "cluster.system-load-weight",
            0..=100,
            SYSTEM_LOAD_WEIGHT_DEFAULT,
        )?;
        if crypto_load_weight == 0 && system_load_weight == 0 {
            let span = [&c.crypto_load_weight, &c.system_load_weight]
                .into_iter()
                .flatten()
                .map(|s| s.span())
                .min_by_key(|s| s.start)
                .unwrap_or(0..0);
            return Err(self.err(
                span,
                "cluster.crypto-load-weight / system-load-weight",
                "both 0: at least one kind of load must count",
            ));
        }
        Ok(Figures {
            capacity: self.int(
                &c.capacity,
                "cluster.capacity",
                1..=0xffff_ffff,
                crate::config::TARGET_CAPACITY_DEFAULT,
            )?,
            weight: self.int(&c.weight, "cluster.weight", 0..=1000, 1)?,
            crypto_load_weight,
            system_load_weight,
            crypto_overload_pct: self.int(
                &c.crypto_overload_pct,
                "cluster.crypto-overload-pct",
                1..=1000,
                CRYPTO_OVERLOAD_PCT_DEFAULT,
            )?,
            system_overload_pct: self.int(
                &c.system_overload_pct,
                "cluster.system-overload-pct",
                1..=100,
                SYSTEM_OVERLOAD_PCT_DEFAULT,
            )?,
            ..Figures::default()
        })
    }
}
