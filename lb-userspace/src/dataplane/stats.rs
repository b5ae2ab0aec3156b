//! Reading the per-CPU counters from the pinned maps (`ikelb stats`).

use std::borrow::Borrow;
use std::path::Path;

use aya::maps::{MapData, PerCpuArray};
use lb_common::maps::{MAP_STATS, MAP_TGT_STATS, MAX_TARGETS, Stat};

use super::DataplaneError;

/// Counters summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// `(name, value)` for every [`Stat`], in index order.
    pub stats: Vec<(&'static str, u64)>,
    /// Redirects per target index.
    pub per_target: Vec<u64>,
}

impl Counters {
    pub fn get(&self, s: Stat) -> u64 {
        self.stats.get(s as usize).map_or(0, |&(_, v)| v)
    }
}

fn sum_all<T: Borrow<MapData>>(
    a: &PerCpuArray<T, u64>,
    n: u32,
    name: &str,
) -> Result<Vec<u64>, DataplaneError> {
    (0..n)
        .map(|i| {
            a.get(&i, 0)
                .map(|v| v.iter().sum())
                .map_err(|e| DataplaneError::Map(name.into(), e.to_string()))
        })
        .collect()
}

/// Reads all counters from the maps pinned in `dir`.
pub fn read_pinned(dir: &Path) -> Result<Counters, DataplaneError> {
    let stats = super::open_pinned(dir, MAP_STATS)?;
    let tgt = super::open_pinned(dir, MAP_TGT_STATS)?;
    read(&stats, &tgt)
}

/// The counter maps pinned in a directory, opened once for reading: status and the
/// load exchange read counters beside the dataplane task, which alone writes the maps.
pub struct PinnedCounters {
    stats: PerCpuArray<MapData, u64>,
    tgt: PerCpuArray<MapData, u64>,
}

impl PinnedCounters {
    pub fn open(dir: &Path) -> Result<Self, DataplaneError> {
        Ok(PinnedCounters {
            stats: super::open_pinned(dir, MAP_STATS)?,
            tgt: super::open_pinned(dir, MAP_TGT_STATS)?,
        })
    }

    pub fn read(&self) -> Result<Counters, DataplaneError> {
        read(&self.stats, &self.tgt)
    }
}

pub fn read<T: Borrow<MapData>>(
    stats: &PerCpuArray<T, u64>,
    tgt: &PerCpuArray<T, u64>,
) -> Result<Counters, DataplaneError> {
    let v = sum_all(stats, Stat::COUNT, MAP_STATS)?;
    Ok(Counters {
        stats: Stat::ALL.iter().map(|s| s.name()).zip(v).collect(),
        per_target: sum_all(tgt, MAX_TARGETS, MAP_TGT_STATS)?,
    })
}
