//! The fast path's target choice from its live maps, for the userspace IKE responder:
//! the same slot table, the same flow hash ([`crate::target::choice::pick`]), the same
//! per-target counters.
//!
//! [`SlotChooser`] opens the maps `ikelb run` pinned (so it follows every table update,
//! whoever makes it: static targets or the cluster) and, per choice, reads the live
//! generation and flow-hash key, the client family's slot table and the target the slot
//! names, exactly as
//! `lb-ebpf/src/respond.rs` does. It only reads the maps: its redirects are handed to
//! a counting callback, which in `ikelb run` sends them to the dataplane task (the only
//! writer of the maps, [`super::Dataplane::count_redirect`]), so they count in
//! `IKELB_TGT_STATS` beside the fast path's.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use aya::maps::{Array, MapData};
use lb_common::maps::{
    self as m, Config as MapConfig, SlotTable, Target as MapTarget, slot_table_index,
};

use super::DataplaneError;
use crate::target::choice::{client_key, pick};
use crate::target::{GatewayIdentity, TargetChooser};

/// A [`TargetChooser`] over the pinned maps of a running dataplane.
pub struct SlotChooser {
    config: Array<MapData, MapConfig>,
    slots: Array<MapData, SlotTable>,
    targets: Array<MapData, MapTarget>,
    /// Told the target index of every redirect sent.
    count: Box<dyn Fn(u16) + Send>,
    /// The latest choice (target and its index), counted by `redirected`.
    last: Option<(MapTarget, u16)>,
}

impl SlotChooser {
    /// Opens the maps pinned in `dir` (`dataplane::pin_dir_for(iface)`); `count` is
    /// told the target index of each redirect.
    pub fn open_pinned(dir: &Path, count: Box<dyn Fn(u16) + Send>) -> Result<Self, DataplaneError> {
        Ok(SlotChooser {
            config: super::open_pinned(dir, m::MAP_CONFIG)?,
            slots: super::open_pinned(dir, m::MAP_SLOTS)?,
            targets: super::open_pinned(dir, m::MAP_TARGETS)?,
            count,
            last: None,
        })
    }

    fn lookup(&self, client: SocketAddr, spi_i: &[u8; 8]) -> Option<(MapTarget, u16)> {
        let (_, v6) = client_key(client.ip());
        let cfg = self.config.get(&0, 0).ok()?;
        let table = self
            .slots
            .get(&slot_table_index(cfg.active_table, v6), 0)
            .ok()?;
        let idx = pick(&table, &cfg.hash_key, client, spi_i)?;
        let t = self.targets.get(&u32::from(idx), 0).ok()?;
        (t.ident_len != 0 && t.serves(v6)).then_some((t, idx))
    }
}

impl TargetChooser for SlotChooser {
    fn choose(&mut self, client: IpAddr) -> Option<GatewayIdentity> {
        self.choose_flow(SocketAddr::new(client, 0), &[0; 8])
    }

    fn choose_flow(&mut self, client: SocketAddr, spi_i: &[u8; 8]) -> Option<GatewayIdentity> {
        self.last = self.lookup(client, spi_i);
        self.last.map(|(t, _)| t)
    }

    fn redirected(&mut self, target: &GatewayIdentity) {
        if let Some((t, idx)) = self.last.take()
            && t == *target
        {
            (self.count)(idx);
        }
    }
}
