//! The fast path's target choice, for the userspace IKE responder: the same live slot
//! table, the same flow hash, the same per-target counters.
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
    self as m, Config as MapConfig, SLOTS, SlotTable, Target as MapTarget, slot_table_index,
};
use lb_common::wire::request::flow_hash;
use rand_core::{OsRng, RngCore};

use super::DataplaneError;
use crate::ike::{GatewayIdentity, TargetChooser};

/// The flow-hash key of a client as the XDP program reads it: an IPv4 address in the
/// first four bytes (the rest zero), an IPv6 address as it is. An IPv4-mapped IPv6
/// address (a dual-stack socket) counts as IPv4. Returns the bytes and whether the
/// client is IPv6.
pub fn client_key(client: IpAddr) -> ([u8; 16], bool) {
    let mut k = [0u8; 16];
    match client {
        IpAddr::V4(a) => {
            k[..4].copy_from_slice(&a.octets());
            (k, false)
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => {
                k[..4].copy_from_slice(&v4.octets());
                (k, false)
            }
            None => (a.octets(), true),
        },
    }
}

/// A fresh flow-hash key from the OS's random source (`Config.hash_key`).
pub fn random_key() -> [u64; 2] {
    [OsRng.next_u64(), OsRng.next_u64()]
}

/// The target index the fast path would pick from `table` for this request under the
/// flow-hash key `key`: slot `flow_hash(key, client address, client port, SPIi) mod
/// SLOTS`. `None` for an empty table.
pub fn pick(table: &SlotTable, key: &[u64; 2], client: SocketAddr, spi_i: &[u8; 8]) -> Option<u16> {
    if table.len == 0 {
        return None;
    }
    let (addr, _) = client_key(client.ip());
    let slot = flow_hash(key, &addr, client.port(), spi_i) as usize & (SLOTS - 1);
    Some(table.slots[slot])
}

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

/// The fast path's choice without a fast path (`--xdp-mode off`): the same weighted
/// slot tables built from the configured targets, the same flow hash; redirects are
/// counted here, there being no maps.
pub struct StaticChooser {
    v4: SlotTable,
    v6: SlotTable,
    /// The flow-hash key, random per start as the XDP program's.
    key: [u64; 2],
    targets: Vec<MapTarget>,
    last: Option<usize>,
    counts: Vec<u64>,
}

impl StaticChooser {
    /// Tables over `targets` (identity and weight), as `Dataplane::set_targets` builds
    /// them for the XDP program.
    pub fn new(targets: &[super::TargetEntry]) -> Self {
        let encoded: Vec<MapTarget> = targets.iter().map(|t| t.identity.to_target()).collect();
        let table = |v6: bool| {
            let members: Vec<(u16, u32)> = encoded
                .iter()
                .zip(targets)
                .enumerate()
                .filter(|(_, (e, _))| e.serves(v6))
                .map(|(i, (_, t))| (i as u16, t.weight))
                .collect();
            super::tables::build(&members)
        };
        StaticChooser {
            v4: table(false),
            v6: table(true),
            key: random_key(),
            counts: vec![0; encoded.len()],
            targets: encoded,
            last: None,
        }
    }

    /// Redirects sent per target, in configuration order.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }
}

impl TargetChooser for StaticChooser {
    fn choose(&mut self, client: IpAddr) -> Option<GatewayIdentity> {
        self.choose_flow(SocketAddr::new(client, 0), &[0; 8])
    }

    fn choose_flow(&mut self, client: SocketAddr, spi_i: &[u8; 8]) -> Option<GatewayIdentity> {
        let (_, v6) = client_key(client.ip());
        let table = if v6 { &self.v6 } else { &self.v4 };
        let idx = usize::from(pick(table, &self.key, client, spi_i)?);
        self.last = Some(idx);
        self.targets.get(idx).copied()
    }

    fn redirected(&mut self, target: &GatewayIdentity) {
        if let Some(i) = self.last
            && self.targets.get(i) == Some(target)
            && let Some(c) = self.counts.get_mut(i)
        {
            *c += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::tables;

    #[test]
    fn client_keys_match_the_xdp_layout() {
        let (k, v6) = client_key("192.0.2.7".parse().unwrap());
        assert!(!v6);
        assert_eq!(&k[..4], &[192, 0, 2, 7]);
        assert_eq!(&k[4..], &[0; 12]);
        let (k2, v6) = client_key("::ffff:192.0.2.7".parse().unwrap());
        assert!(!v6);
        assert_eq!(k, k2);
        let (k, v6) = client_key("2001:db8::1".parse().unwrap());
        assert!(v6);
        assert_eq!(k[0..2], [0x20, 0x01]);
    }

    #[test]
    fn pick_is_the_fast_paths_slot() {
        let t = tables::build(&[(3, 1), (9, 1)]);
        let c: SocketAddr = "192.0.2.7:500".parse().unwrap();
        let spi = [1, 2, 3, 4, 5, 6, 7, 8];
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&[192, 0, 2, 7]);
        let k = [5, 6];
        let slot = flow_hash(&k, &addr, 500, &spi) as usize & (SLOTS - 1);
        assert_eq!(pick(&t, &k, c, &spi), Some(t.slots[slot]));
        assert_eq!(pick(&SlotTable::default(), &k, c, &spi), None);
        // Both targets get clients: the choice depends on port and SPI.
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..64u8 {
            seen.insert(pick(&t, &k, c, &[i; 8]).unwrap());
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![3, 9]);
        // And on the key: another key sends some of these requests elsewhere.
        let moved = (0..64u8)
            .filter(|i| pick(&t, &k, c, &[*i; 8]) != pick(&t, &[7, 8], c, &[*i; 8]))
            .count();
        assert!(moved > 8, "{moved}");
        assert_ne!(random_key(), random_key());
    }

    #[test]
    fn static_chooser_serves_each_family_and_counts() {
        use crate::config::Identity;
        use crate::dataplane::TargetEntry;
        let t = |n: &str, id: Identity, weight| TargetEntry {
            name: n.into(),
            identity: id,
            weight,
        };
        let targets = [
            t("a", Identity::Ip("198.51.100.11".parse().unwrap()), 1),
            t("b", Identity::Ip("2001:db8::12".parse().unwrap()), 1),
            t("c", Identity::Fqdn("gw.example.net".into()), 3),
        ];
        let mut ch = StaticChooser::new(&targets);
        let v4: SocketAddr = "192.0.2.7:500".parse().unwrap();
        let v6: SocketAddr = "[2001:db8:1::7]:500".parse().unwrap();
        for i in 0..200u8 {
            let g = ch.choose_flow(v4, &[i; 8]).unwrap();
            assert!(g.serves(false) && g.ident_type != lb_common::wire::redirect::GW_IPV6);
            ch.redirected(&g);
            let g = ch.choose_flow(v6, &[i; 8]).unwrap();
            assert!(g.serves(true) && g.ident_type != lb_common::wire::redirect::GW_IPV4);
        }
        // Same request, same answer (retransmissions).
        assert_eq!(ch.choose_flow(v4, &[7; 8]), ch.choose_flow(v4, &[7; 8]));
        // The v4 table is the fast path's: slot of (client, port, SPIi) over a and c.
        let table = tables::build(&[(0, 1), (2, 3)]);
        let want = pick(&table, &ch.key, v4, &[9; 8]).unwrap();
        assert_eq!(
            ch.choose_flow(v4, &[9; 8]),
            Some(targets[usize::from(want)].identity.to_target())
        );
        // 200 counted redirects, to IPv4 or FQDN targets only, FQDN about 3 in 4.
        let c = ch.counts();
        assert_eq!(c.iter().sum::<u64>(), 200);
        assert_eq!(c[1], 0);
        assert!(c[2] > c[0], "{c:?}");
    }
}
