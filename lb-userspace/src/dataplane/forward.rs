//! Userspace side of forwarding (docs/architecture.md §6): forward-VIP slots, member
//! MACs, the Maglev table (built beside the slot tables from the same weights, in the
//! idle generation) and the members' alive flags; counters for status and stats.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, PerCpuValues};
use lb_common::forward::{
    self as f, FwdCount, FwdKind, FwdMember, MAX_FWD_VIPS, MEMBER_ALIVE, MEMBER_ENCAP, MEMBER_LOCAL,
};
use lb_common::maglev::{self, Member};
use lb_common::maps::{self as m, Vip as MapVip};

use super::{Dataplane, DataplaneError, map_err, neigh};
use crate::config::{NoRedirect, Vip};
use crate::target::{Identity, Owner, Target};

/// How long `set_targets` waits for members' neighbour entries to appear.
const RESOLVE_WAIT: Duration = Duration::from_millis(500);
/// A member whose MAC did not resolve is asked again after this long.
const RESOLVE_RETRY: Duration = Duration::from_secs(10);

/// Forwarding state kept between updates.
#[derive(Default)]
pub(super) struct FwdState {
    /// Forward-mode VIPs; the position is the counter slot (`Vip.fwd` - 1), `None` a
    /// free one.
    vips: Vec<Option<IpAddr>>,
    /// The targets of the last `set_targets`, to build the tables when a VIP starts
    /// forwarding.
    targets: Vec<Target>,
    /// MACs given by the caller ([`Dataplane::set_member_mac`]); they win over the
    /// neighbour table.
    static_macs: HashMap<IpAddr, [u8; 6]>,
    /// The last MAC seen for each member address.
    macs: HashMap<IpAddr, [u8; 6]>,
    /// Members are reached inside IP-in-IP.
    encap: bool,
    /// When resolution of an address was last provoked.
    provoked: HashMap<IpAddr, Instant>,
    /// The table last written into each (generation, family): only changed entries
    /// are written.
    written: [Option<Vec<u16>>; 4],
    /// Member indices marked alive now, and by the update in progress.
    alive: Vec<u16>,
    next_alive: Vec<u16>,
}

impl FwdState {
    /// `Vip.fwd` of a VIP: its slot + 1 in forward mode, else 0.
    pub(super) fn vip_value(&self, v: &Vip) -> u32 {
        self.vips
            .iter()
            .position(|a| *a == Some(v.address))
            .filter(|_| v.no_redirect == NoRedirect::Forward)
            .map_or(0, |i| i as u32 + 1)
    }

    fn enabled(&self) -> bool {
        self.vips.iter().any(Option::is_some)
    }
}

impl Dataplane {
    /// Gives the forward-mode VIPs of `vips` counter slots before their map entries are
    /// written: a VIP keeps its slot, one that stopped forwarding frees its, a new one
    /// takes the first free slot, whose counters are zeroed. Returns whether forwarding
    /// was off before and is on now (the tables must then be built).
    pub(super) fn assign_forward_vips(&mut self, vips: &[Vip]) -> Result<bool, DataplaneError> {
        let was = self.fwd.enabled();
        let fwd: Vec<IpAddr> = vips
            .iter()
            .filter(|v| v.no_redirect == NoRedirect::Forward)
            .map(|v| v.address)
            .collect();
        if fwd.len() > MAX_FWD_VIPS as usize {
            return Err(DataplaneError::Map(
                m::MAP_VIPS4.into(),
                format!("at most {MAX_FWD_VIPS} VIPs may forward"),
            ));
        }
        for s in self.fwd.vips.iter_mut() {
            if s.is_some_and(|a| !fwd.contains(&a)) {
                *s = None;
            }
        }
        for a in fwd {
            if self.fwd.vips.contains(&Some(a)) {
                continue;
            }
            let slot = match self.fwd.vips.iter().position(Option::is_none) {
                Some(i) => i,
                None => {
                    self.fwd.vips.push(None);
                    self.fwd.vips.len() - 1
                }
            };
            self.zero_forward_slot(slot as u32)?;
            self.fwd.vips[slot] = Some(a);
        }
        Ok(!was && self.fwd.enabled())
    }

    fn zero_forward_slot(&mut self, slot: u32) -> Result<(), DataplaneError> {
        let ncpu =
            aya::util::nr_cpus().map_err(|(w, e)| DataplaneError::Io(format!("{w}: {e}")))?;
        let mut st: PerCpuArray<_, FwdCount> = self.map_mut(f::MAP_FWD_STATS)?;
        for member in 0..lb_common::maps::MAX_TARGETS {
            for kind in FwdKind::ALL {
                let zero = PerCpuValues::try_from(vec![FwdCount::default(); ncpu])
                    .map_err(|e| DataplaneError::Io(e.to_string()))?;
                st.set(f::stat_index(slot, member, kind), zero, 0)
                    .map_err(map_err(f::MAP_FWD_STATS))?;
            }
        }
        Ok(())
    }

    /// After `set_vips`: when forwarding just came on, builds its tables from the last
    /// targets (a new generation of both tables, flipped as usual).
    pub(super) fn start_forwarding(&mut self) -> Result<(), DataplaneError> {
        let t = self.fwd.targets.clone();
        self.set_targets(&t)
    }
}

impl Dataplane {
    /// Takes the forwarding state of kept maps: the forward VIPs' counter slots (their
    /// `Vip.fwd`), the members marked alive, and `targets` for a later start of
    /// forwarding.
    pub(super) fn recover_forward(
        &mut self,
        vips: &[(IpAddr, u32)],
        targets: Vec<Target>,
    ) -> Result<(), DataplaneError> {
        let mut slots: Vec<Option<IpAddr>> = Vec::new();
        for &(a, fwd) in vips.iter().filter(|v| (1..=MAX_FWD_VIPS).contains(&v.1)) {
            let i = fwd as usize - 1;
            if slots.len() <= i {
                slots.resize(i + 1, None);
            }
            slots[i] = Some(a);
        }
        let map = self.ebpf.map(f::MAP_FWD_MEMBERS).ok_or_else(|| {
            DataplaneError::Map(f::MAP_FWD_MEMBERS.into(), "not in the object".into())
        })?;
        let members: Array<&MapData, FwdMember> =
            Array::try_from(map).map_err(map_err(f::MAP_FWD_MEMBERS))?;
        let mut alive = Vec::new();
        for i in 0..lb_common::maps::MAX_TARGETS as u16 {
            let v = members
                .get(&u32::from(i), 0)
                .map_err(map_err(f::MAP_FWD_MEMBERS))?;
            if v.flags & MEMBER_ALIVE != 0 {
                alive.push(i);
            }
        }
        self.fwd.vips = slots;
        self.fwd.alive = alive;
        self.fwd.targets = targets;
        Ok(())
    }
}

/// How frames reach a member.
enum Reach {
    /// This host: passed to the local stack.
    Local,
    /// On the segment: this address's MAC.
    Segment(IpAddr),
    /// Inside IP-in-IP from `src` to `dst`, sent to `hop`'s MAC (the gateway, or the
    /// member itself when on-link).
    Encap {
        hop: IpAddr,
        src: [u8; 4],
        dst: [u8; 4],
    },
}

impl Dataplane {
    /// Makes forwarded frames reach members inside IP-in-IP (docs/architecture.md §6.4)
    /// instead of on the segment; takes effect at the next `set_targets`.
    pub fn set_forward_encap(&mut self, on: bool) {
        self.fwd.encap = on;
    }

    /// How member `a` is reached, `None` when it cannot be (logged).
    fn reach(&self, a: IpAddr) -> Option<Reach> {
        if is_local(a) {
            return Some(Reach::Local);
        }
        if !self.fwd.encap {
            return Some(Reach::Segment(a));
        }
        let IpAddr::V4(d) = a else {
            tracing::warn!(member = %a, "IP-in-IP reaches IPv4 members only: this one gets no forwarded clients");
            return None;
        };
        match neigh::route4(d.octets()) {
            Ok((gw, Some(src))) => Some(Reach::Encap {
                hop: IpAddr::from(gw.unwrap_or(d.octets())),
                src,
                dst: d.octets(),
            }),
            Ok((_, None)) => {
                tracing::warn!(member = %a, "no source address on the route to this member");
                None
            }
            Err(e) => {
                tracing::warn!(member = %a, error = %e, "no route to this member");
                None
            }
        }
    }
}

/// Whether `a` is an address of this host (a cluster's VRRP master is also a member):
/// only a local address can be bound.
fn is_local(a: IpAddr) -> bool {
    std::net::UdpSocket::bind((a, 0)).is_ok()
}

impl Dataplane {
    /// Sets the MAC of member address `addr` instead of the neighbour table's (tests,
    /// and members whose MAC is fixed); takes effect at the next `set_targets`.
    pub fn set_member_mac(&mut self, addr: IpAddr, mac: [u8; 6]) {
        self.fwd.static_macs.insert(addr, mac);
    }

    /// MACs of `addrs`: static ones, then the neighbour table, then the last one seen
    /// (XDP traffic does not refresh a neighbour entry, which may age out). Resolution
    /// of missing ones is provoked (at most every `RESOLVE_RETRY`); only a first attempt
    /// is awaited, up to `RESOLVE_WAIT`, so that a member that never answers does not
    /// stall every rebuild (a later one picks up what a retry resolved).
    fn member_macs(&mut self, addrs: &[IpAddr]) -> HashMap<IpAddr, [u8; 6]> {
        let mut table = neigh::dump().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading the neighbour table");
            HashMap::new()
        });
        let st = &mut self.fwd;
        let due: Vec<IpAddr> = addrs
            .iter()
            .filter(|a| !st.static_macs.contains_key(a) && !table.contains_key(a))
            .filter(|a| {
                st.provoked
                    .get(a)
                    .is_none_or(|t| t.elapsed() >= RESOLVE_RETRY)
            })
            .copied()
            .collect();
        let waiting: Vec<IpAddr> = due
            .iter()
            .filter(|a| !st.provoked.contains_key(a))
            .copied()
            .collect();
        for a in &due {
            neigh::provoke(*a);
            st.provoked.insert(*a, Instant::now());
        }
        let deadline = Instant::now() + RESOLVE_WAIT;
        while waiting.iter().any(|a| !table.contains_key(a)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            table = neigh::dump().unwrap_or_default();
        }
        let mut out = HashMap::new();
        for a in addrs {
            let mac = st.static_macs.get(a).or_else(|| table.get(a)).copied();
            match mac.or_else(|| st.macs.get(a).copied()) {
                Some(mac) => {
                    st.macs.insert(*a, mac);
                    out.insert(*a, mac);
                }
                None => {
                    tracing::warn!(member = %a, "no MAC for this member: it gets no forwarded clients")
                }
            }
        }
        out
    }

    /// Writes the Maglev table of `targets` (with their indices `idx`) into generation
    /// `generation` and the members' entries; called by `set_targets` before the flip.
    /// Nothing to do while no VIP forwards.
    pub(super) fn install_forward(
        &mut self,
        targets: &[Target],
        idx: &HashMap<(Owner, Identity), u16>,
        generation: u32,
    ) -> Result<(), DataplaneError> {
        self.fwd.targets = targets.to_vec();
        if !self.fwd.enabled() {
            return Ok(());
        }
        let plan: Vec<(&Target, IpAddr, Reach)> = targets
            .iter()
            .filter_map(|t| {
                let a = t.identity.addr()?;
                Some((t, a, self.reach(a)?))
            })
            .collect();
        let hops: Vec<IpAddr> = plan
            .iter()
            .filter_map(|(_, _, r)| match r {
                Reach::Local => None,
                Reach::Segment(h) | Reach::Encap { hop: h, .. } => Some(*h),
            })
            .collect();
        let macs = self.member_macs(&hops);
        let mut members: [Vec<Member>; 2] = [Vec::new(), Vec::new()];
        let mut values: BTreeMap<u16, FwdMember> = BTreeMap::new();
        for (t, addr, reach) in plan {
            let value = match reach {
                Reach::Local => FwdMember {
                    flags: MEMBER_ALIVE | MEMBER_LOCAL,
                    ..FwdMember::default()
                },
                Reach::Segment(h) => match macs.get(&h) {
                    Some(mac) => FwdMember {
                        flags: MEMBER_ALIVE,
                        mac: *mac,
                        ..FwdMember::default()
                    },
                    None => continue,
                },
                Reach::Encap { hop, src, dst } => match macs.get(&hop) {
                    Some(mac) => FwdMember {
                        flags: MEMBER_ALIVE | MEMBER_ENCAP,
                        mac: *mac,
                        outer_src: src,
                        outer_dst: dst,
                        ..FwdMember::default()
                    },
                    None => continue,
                },
            };
            let index = idx[&(t.owner.clone(), t.identity.clone())];
            // A member serves clients of its address's family, as in the slot tables.
            members[usize::from(addr.is_ipv6())].push(Member {
                index,
                key: maglev::member_key(t.owner.to_string().as_bytes()),
                weight: t.weight,
            });
            values.insert(index, value);
        }
        // Alive first, so a table entry never names a member the program refuses.
        {
            let mut mm: Array<_, FwdMember> = self.map_mut(f::MAP_FWD_MEMBERS)?;
            for (i, v) in &values {
                mm.set(u32::from(*i), v, 0)
                    .map_err(map_err(f::MAP_FWD_MEMBERS))?;
            }
        }
        for v6 in [0u32, 1] {
            let table = maglev::populate(&members[v6 as usize]);
            let g = ((generation & 1) * 2 + v6) as usize;
            let old = self.fwd.written[g].take();
            let mut tm: Array<_, u16> = self.map_mut(f::MAP_FWD_TABLE)?;
            for (i, &e) in table.iter().enumerate() {
                if old.as_ref().is_some_and(|o| o[i] == e) {
                    continue;
                }
                tm.set(f::table_index(generation, v6, i as u32), e, 0)
                    .map_err(map_err(f::MAP_FWD_TABLE))?;
            }
            self.fwd.written[g] = Some(table);
        }
        self.fwd.next_alive = values.into_keys().collect();
        Ok(())
    }

    /// After the flip: members no longer in the set lose their alive flag, so the
    /// program moves their pinned clients (and only theirs) to the live table.
    pub(super) fn retire_forward(&mut self) -> Result<(), DataplaneError> {
        let next = std::mem::take(&mut self.fwd.next_alive);
        let gone: Vec<u16> = self
            .fwd
            .alive
            .iter()
            .filter(|i| !next.contains(i))
            .copied()
            .collect();
        if !gone.is_empty() {
            let mut mm: Array<_, FwdMember> = self.map_mut(f::MAP_FWD_MEMBERS)?;
            for i in gone {
                mm.set(u32::from(i), FwdMember::default(), 0)
                    .map_err(map_err(f::MAP_FWD_MEMBERS))?;
            }
        }
        self.fwd.alive = next;
        Ok(())
    }
}

/// One non-zero counter of `IKELB_FWD_STATS`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FwdRow {
    pub vip: IpAddr,
    pub member: String,
    pub kind: String,
    pub packets: u64,
    pub bytes: u64,
}

impl Dataplane {
    /// Non-zero forwarded counters of this dataplane's forward VIPs and members.
    pub fn forward_counters(&self) -> Result<Vec<FwdRow>, DataplaneError> {
        if !self.fwd.enabled() {
            return Ok(Vec::new());
        }
        let map = self.ebpf.map(f::MAP_FWD_STATS).ok_or_else(|| {
            DataplaneError::Map(f::MAP_FWD_STATS.into(), "not in the object".into())
        })?;
        let stats: PerCpuArray<&MapData, FwdCount> =
            PerCpuArray::try_from(map).map_err(map_err(f::MAP_FWD_STATS))?;
        let vips: Vec<(IpAddr, u32)> = (1..)
            .zip(&self.fwd.vips)
            .filter_map(|(slot, a)| Some(((*a)?, slot)))
            .collect();
        let names: Vec<(u16, String)> = self
            .target_names()
            .into_iter()
            .map(|(i, n, _)| (i, n.to_string()))
            .collect();
        rows(&vips, &stats, &names)
    }
}

/// Forwarded counters from the maps pinned in `dir` (`ikelb stats`), for the members
/// `names` (target index, name): the VIPs' slots come from the pinned VIP maps.
pub fn read_pinned(dir: &Path, names: &[(u16, String)]) -> Result<Vec<FwdRow>, DataplaneError> {
    let mut vips: Vec<(IpAddr, u32)> = Vec::new();
    let v4: BpfHashMap<MapData, u32, MapVip> = super::open_pinned(dir, m::MAP_VIPS4)?;
    for (k, v) in v4.iter().flatten() {
        vips.push((IpAddr::from(k.to_ne_bytes()), v.fwd));
    }
    let v6: BpfHashMap<MapData, [u8; 16], MapVip> = super::open_pinned(dir, m::MAP_VIPS6)?;
    for (k, v) in v6.iter().flatten() {
        vips.push((IpAddr::from(k), v.fwd));
    }
    let stats: PerCpuArray<MapData, FwdCount> = super::open_pinned(dir, f::MAP_FWD_STATS)?;
    rows(&vips, &stats, names)
}

/// The non-zero counters of `vips` (address, `Vip.fwd`) × `names` × kinds.
fn rows<T: Borrow<MapData>>(
    vips: &[(IpAddr, u32)],
    stats: &PerCpuArray<T, FwdCount>,
    names: &[(u16, String)],
) -> Result<Vec<FwdRow>, DataplaneError> {
    let mut rows = Vec::new();
    for &(vip, fwd) in vips.iter().filter(|(_, s)| *s > 0) {
        for (i, name) in names {
            for kind in FwdKind::ALL {
                let at = f::stat_index(fwd - 1, u32::from(*i), kind);
                let per_cpu = stats
                    .get(&at, 0)
                    .map_err(|e| DataplaneError::Map(f::MAP_FWD_STATS.into(), e.to_string()))?;
                let (packets, bytes) = per_cpu
                    .iter()
                    .fold((0, 0), |(p, b), c| (p + c.packets, b + c.bytes));
                if packets > 0 {
                    rows.push(FwdRow {
                        vip,
                        member: name.clone(),
                        kind: kind.name().into(),
                        packets,
                        bytes,
                    });
                }
            }
        }
    }
    Ok(rows)
}
