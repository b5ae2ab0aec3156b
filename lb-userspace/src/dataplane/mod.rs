//! The XDP dataplane: loads the embedded object, pins its maps, fills VIPs, targets and
//! slot tables (A/B, flipped atomically), attaches and detaches, or keeps the fast path
//! for the next process and takes a kept one over ([`link`], [`adopt`]).

pub mod adopt;
pub mod choice;
mod decap;
mod error;
pub mod forward;
pub mod link;
mod neigh;
pub mod stats;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, PerCpuValues};
use aya::programs::Xdp;
use aya::{Ebpf, EbpfLoader};
use lb_common::maps::{
    self as m, Config as MapConfig, FLAG_ACTIVE, SlotTable, Target as MapTarget, VIP_GEN_MASK,
    VIP_GEN_SHIFT, Vip as MapVip,
};

use crate::config::{RateLimit, RedirectMode, Vip};
use crate::target::{self, Identity, Owner, Target};
pub use error::DataplaneError;
use error::map_err;
pub use link::rx_vlan_offload;

/// The XDP object built by `cargo xtask build` (empty in a plain `cargo build`).
static EBPF_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/ikelb.bpf.o"));

/// Root of our pins in bpffs; each interface gets its own directory below it.
pub const PIN_ROOT: &str = "/sys/fs/bpf/ikelb";

/// A loaded XDP object with its maps.
pub struct Dataplane {
    ebpf: Ebpf,
    pin_dir: Option<PathBuf>,
    generation: u32,
    active: bool,
    /// Generation of the VIP maps (`Config.flags` above `VIP_GEN_SHIFT`).
    vip_generation: u32,
    /// `Config.hash_key`: random per load.
    hash_key: [u64; 2],
    /// `Config.rate_interval_ns` and `rate_limit_ns`: off until configured.
    rate: (u64, u64),
    /// Target index by (owner, identity): indices stay stable across updates so
    /// per-target counters and in-flight table lookups stay meaningful.
    index: HashMap<(Owner, Identity), u16>,
    vips: Vec<IpAddr>,
    attached: Option<String>,
    link: link::Attachment,
    fwd: forward::FwdState,
}

/// The bpffs directory of an interface's pins.
pub fn pin_dir_for(iface: &str) -> PathBuf {
    Path::new(PIN_ROOT).join(iface)
}

/// Mounts bpffs on /sys/fs/bpf if nothing is mounted there (a fresh machine).
pub fn ensure_bpffs() -> Result<(), DataplaneError> {
    const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
    let path = c"/sys/fs/bpf";
    // SAFETY: statfs on a valid C string into a zeroed struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(path.as_ptr(), &mut st) } == 0 && st.f_type as i64 == BPF_FS_MAGIC {
        return Ok(());
    }
    // SAFETY: all arguments are valid C strings or null.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            path.as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(DataplaneError::Io(format!(
            "mount bpffs on /sys/fs/bpf: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

impl Dataplane {
    /// Loads the object and its programs. With `pin_dir`, stale pins there are removed
    /// and the maps pinned anew so `bpftool map dump pinned <dir>/<MAP>` shows them.
    pub fn load(pin_dir: Option<&Path>) -> Result<Self, DataplaneError> {
        if EBPF_OBJ.is_empty() {
            return Err(DataplaneError::NoObject);
        }
        Self::load_object(EBPF_OBJ, pin_dir)
    }

    /// As [`Dataplane::load`], from the bytes of another object file with the same
    /// maps (`ikelb bench --baseline-object` times an older build beside this one).
    pub fn load_object(obj: &[u8], pin_dir: Option<&Path>) -> Result<Self, DataplaneError> {
        let mut dp = Self::load_with(obj, pin_dir, false)?;
        dp.write_config()?;
        Ok(dp)
    }

    /// Loads `obj` with its maps pinned in `pin_dir`: fresh ones (stale pins removed),
    /// or with `reuse` the ones pinned there, which a running program may be using, so
    /// nothing is written to them here and a failure leaves them in place.
    fn load_with(obj: &[u8], pin_dir: Option<&Path>, reuse: bool) -> Result<Self, DataplaneError> {
        let mut loader = EbpfLoader::new();
        if let Some(dir) = pin_dir {
            ensure_bpffs()?;
            if !reuse {
                remove_pins(dir)?;
            }
            std::fs::create_dir_all(dir).map_err(|e| DataplaneError::Pin {
                path: dir.into(),
                what: e.to_string(),
            })?;
            for name in m::PINNED_MAPS
                .into_iter()
                .chain(lb_common::forward::PINNED_FWD_MAPS)
            {
                loader.map_pin_path(name, dir.join(name));
            }
        }
        let loaded = loader
            .load(obj)
            .map_err(|e| DataplaneError::Load(format!("{e:#}")))
            .and_then(|mut ebpf| {
                load_program(&mut ebpf, m::PROG_NAME)?;
                Ok(ebpf)
            });
        let ebpf = match loaded {
            Ok(e) => e,
            Err(e) => {
                // Nothing half-applied: no pins stay behind a failed start.
                if let Some(dir) = pin_dir.filter(|_| !reuse) {
                    let _ = remove_pins(dir);
                }
                return Err(e);
            }
        };
        Ok(Dataplane {
            ebpf,
            pin_dir: pin_dir.map(Into::into),
            generation: 0,
            active: false,
            vip_generation: 0,
            hash_key: target::choice::random_key(),
            rate: (0, 0),
            index: HashMap::new(),
            vips: Vec::new(),
            attached: None,
            link: link::Attachment::None,
            fwd: forward::FwdState::default(),
        })
    }

    /// A program of the object by name (`ikelb_xdp`, `ikelb_pass`, `ikelb_reflect`,
    /// `ikelb_bench`), loaded into the kernel on first use.
    pub fn program(&mut self, name: &str) -> Result<&mut Xdp, DataplaneError> {
        load_program(&mut self.ebpf, name)
    }

    fn write_config(&mut self) -> Result<(), DataplaneError> {
        let v = MapConfig {
            active_table: self.generation,
            flags: if self.active { FLAG_ACTIVE } else { 0 }
                | (self.vip_generation << VIP_GEN_SHIFT),
            hash_key: self.hash_key,
            rate_interval_ns: self.rate.0,
            rate_limit_ns: self.rate.1,
        };
        match self.map_mut::<Array<_, MapConfig>>(m::MAP_CONFIG) {
            Ok(mut cfg) => cfg.set(0, v, 0).map_err(map_err(m::MAP_CONFIG)),
            // An object from before the key and the rate limit (`ikelb bench
            // --baseline-object`) has only the first two words.
            Err(e) => match self.map_mut::<Array<_, [u32; 2]>>(m::MAP_CONFIG) {
                Ok(mut old) => old
                    .set(0, [v.active_table, v.flags], 0)
                    .map_err(map_err(m::MAP_CONFIG)),
                Err(_) => Err(e),
            },
        }
    }

    /// Sets the flow-hash key in place of the random one (tests that check choices).
    pub fn set_hash_key(&mut self, key: [u64; 2]) -> Result<(), DataplaneError> {
        self.hash_key = key;
        self.write_config()
    }

    /// Sets the per-source rate limit of answers.
    pub fn set_rate_limit(&mut self, r: RateLimit) -> Result<(), DataplaneError> {
        self.rate = r.map_values();
        self.write_config()
    }

    fn map_mut<'a, T>(&'a mut self, name: &str) -> Result<T, DataplaneError>
    where
        T: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or_else(|| DataplaneError::Map(name.into(), "not in the object".into()))?;
        T::try_from(map).map_err(map_err(name))
    }

    /// Answer (true) or pass everything (false, a VRRP backup).
    pub fn set_active(&mut self, on: bool) -> Result<(), DataplaneError> {
        self.active = on;
        self.write_config()
    }

    /// Installs the VIP set (added, updated, removed as needed).
    pub fn set_vips(&mut self, vips: &[Vip]) -> Result<(), DataplaneError> {
        let start_forwarding = self.assign_forward_vips(vips)?;
        let entries: Vec<(IpAddr, MapVip)> = vips
            .iter()
            .map(|v| {
                let mode = match v.redirect {
                    RedirectMode::Init => m::VIP_MODE_INIT,
                    RedirectMode::Auth => m::VIP_MODE_AUTH,
                };
                let vlans = v.vlans.map_value();
                let fwd = self.fwd.vip_value(v);
                (v.address, MapVip { mode, vlans, fwd })
            })
            .collect();
        let stale: Vec<IpAddr> = self
            .vips
            .iter()
            .filter(|a| !entries.iter().any(|(n, _)| n == *a))
            .copied()
            .collect();
        let written = self.write_vips(&entries, &stale);
        // After the maps, and even after a failed write (some entries may have changed):
        // a program that sees the new generation looks the VIPs up again.
        self.vip_generation = (self.vip_generation + 1) & VIP_GEN_MASK;
        let config = self.write_config();
        written?;
        self.vips = entries.into_iter().map(|(a, _)| a).collect();
        config?;
        if start_forwarding {
            self.start_forwarding()?;
        }
        Ok(())
    }

    fn write_vips(
        &mut self,
        entries: &[(IpAddr, MapVip)],
        stale: &[IpAddr],
    ) -> Result<(), DataplaneError> {
        for (a, v) in entries {
            match a {
                IpAddr::V4(a) => {
                    let mut map: BpfHashMap<_, u32, MapVip> = self.map_mut(m::MAP_VIPS4)?;
                    map.insert(m::vip4_key(a.octets()), v, 0)
                        .map_err(map_err(m::MAP_VIPS4))?;
                }
                IpAddr::V6(a) => {
                    let mut map: BpfHashMap<_, [u8; 16], MapVip> = self.map_mut(m::MAP_VIPS6)?;
                    map.insert(a.octets(), v, 0)
                        .map_err(map_err(m::MAP_VIPS6))?;
                }
            }
        }
        for a in stale {
            match a {
                IpAddr::V4(a) => {
                    let mut map: BpfHashMap<_, u32, MapVip> = self.map_mut(m::MAP_VIPS4)?;
                    map.remove(&m::vip4_key(a.octets()))
                        .map_err(map_err(m::MAP_VIPS4))?;
                }
                IpAddr::V6(a) => {
                    let mut map: BpfHashMap<_, [u8; 16], MapVip> = self.map_mut(m::MAP_VIPS6)?;
                    map.remove(&a.octets()).map_err(map_err(m::MAP_VIPS6))?;
                }
            }
        }
        Ok(())
    }

    /// Installs targets and their weights: new identities get free indices, both
    /// families' tables are built in the idle generation, then one word flips it live.
    pub fn set_targets(&mut self, targets: &[Target]) -> Result<(), DataplaneError> {
        let mut next: HashMap<(Owner, Identity), u16> = HashMap::new();
        let mut fresh: Vec<(u16, MapTarget)> = Vec::new();
        for t in targets {
            let key = (t.owner.clone(), t.identity.clone());
            let idx = match self.index.get(&key) {
                Some(&i) => i,
                None => {
                    let used = |i: &u16| {
                        self.index.values().any(|x| x == i)
                            || next.values().any(|x| x == i)
                            || fresh.iter().any(|(x, _)| x == i)
                    };
                    let i = (0..m::MAX_TARGETS as u16)
                        .find(|i| !used(i))
                        .ok_or_else(|| DataplaneError::Map(m::MAP_TARGETS.into(), "full".into()))?;
                    fresh.push((i, t.identity.to_target()));
                    i
                }
            };
            next.insert(key, idx);
        }
        let ncpu =
            aya::util::nr_cpus().map_err(|(w, e)| DataplaneError::Io(format!("{w}: {e}")))?;
        {
            let mut tmap: Array<_, MapTarget> = self.map_mut(m::MAP_TARGETS)?;
            for (i, t) in &fresh {
                tmap.set(u32::from(*i), t, 0)
                    .map_err(map_err(m::MAP_TARGETS))?;
            }
        }
        {
            let mut cnt: PerCpuArray<_, u64> = self.map_mut(m::MAP_TGT_STATS)?;
            for (i, _) in &fresh {
                let zero = PerCpuValues::try_from(vec![0u64; ncpu])
                    .map_err(|e| DataplaneError::Io(e.to_string()))?;
                cnt.set(u32::from(*i), zero, 0)
                    .map_err(map_err(m::MAP_TGT_STATS))?;
            }
        }
        let gen_next = self.generation ^ 1;
        for v6 in [false, true] {
            let indexed = targets
                .iter()
                .map(|t| (next[&(t.owner.clone(), t.identity.clone())], t));
            let table: SlotTable = target::tables::family(indexed, v6);
            let mut slots: Array<_, SlotTable> = self.map_mut(m::MAP_SLOTS)?;
            slots
                .set(m::slot_table_index(gen_next, v6), table, 0)
                .map_err(map_err(m::MAP_SLOTS))?;
        }
        self.install_forward(targets, &next, gen_next)?;
        self.generation = gen_next;
        self.write_config()?;
        self.index = next;
        self.retire_forward()
    }

    /// Adds one to target `idx`'s redirect counter, for a redirect the userspace
    /// responder sent. A per-CPU array cannot be incremented atomically from outside
    /// the kernel, so this adds to CPU 0's value with a read-modify-write of the
    /// element: a fast-path increment that lands between the two syscalls is lost.
    /// Auth-mode VIPs do not count in the fast path at all (their IKE goes to
    /// userspace), so only a node serving init and auth VIPs to the same target under
    /// load can miss a few counts.
    pub fn count_redirect(&mut self, idx: u16) -> Result<(), DataplaneError> {
        let mut counts: PerCpuArray<_, u64> = self.map_mut(m::MAP_TGT_STATS)?;
        let idx = u32::from(idx);
        let mut v: Vec<u64> = counts
            .get(&idx, 0)
            .map_err(map_err(m::MAP_TGT_STATS))?
            .iter()
            .copied()
            .collect();
        if let Some(c0) = v.first_mut() {
            *c0 = c0.wrapping_add(1);
        }
        let v = PerCpuValues::try_from(v).map_err(|e| DataplaneError::Io(e.to_string()))?;
        counts.set(idx, v, 0).map_err(map_err(m::MAP_TGT_STATS))
    }

    /// Target owners by map index, for status output and redirect counts.
    pub fn target_names(&self) -> Vec<(u16, Owner, Identity)> {
        let mut v: Vec<_> = self
            .index
            .iter()
            .map(|((n, id), &i)| (i, n.clone(), id.clone()))
            .collect();
        v.sort_by_key(|x| x.0);
        v
    }

    /// Counters summed over CPUs.
    pub fn counters(&self) -> Result<stats::Counters, DataplaneError> {
        let get = |name: &str| -> Result<PerCpuArray<&MapData, u64>, DataplaneError> {
            let map = self
                .ebpf
                .map(name)
                .ok_or_else(|| DataplaneError::Map(name.into(), "not in the object".into()))?;
            PerCpuArray::try_from(map).map_err(map_err(name))
        };
        stats::read(&get(m::MAP_STATS)?, &get(m::MAP_TGT_STATS)?)
    }

    pub fn pin_dir(&self) -> Option<&Path> {
        self.pin_dir.as_deref()
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        // Links detach when `ebpf` and `link` drop; the map pins would keep the maps
        // alive.
        if let Some(dir) = &self.pin_dir
            && let Err(e) = remove_pins(dir)
        {
            tracing::warn!(error = %e, "removing pins");
        }
        if let Some(i) = &self.attached {
            tracing::info!(iface = %i, "XDP detached");
        }
    }
}

/// The program `name`, loaded (verified) if it is not yet.
fn load_program<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp, DataplaneError> {
    let p: &mut Xdp = ebpf
        .program_mut(name)
        .ok_or_else(|| DataplaneError::Program(name.into(), "not in the object".into()))?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| {
            DataplaneError::Program(name.into(), e.to_string())
        })?;
    if p.fd().is_err() {
        p.load()
            .map_err(|e| DataplaneError::Program(name.into(), verifier_msg(&e)))?;
    }
    Ok(p)
}

/// The verifier's log, when the kernel refused the program.
fn verifier_msg(e: &aya::programs::ProgramError) -> String {
    match e {
        aya::programs::ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            format!(
                "{io_error}; verifier:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        }
        e => format!("{e:#}"),
    }
}

/// A typed map opened from its pin `dir/name` (for processes beside `ikelb run`).
pub(crate) fn open_pinned<T>(dir: &Path, name: &str) -> Result<T, DataplaneError>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let path = dir.join(name);
    let data = MapData::from_pin(&path).map_err(|e| DataplaneError::Pin {
        path: path.clone(),
        what: e.to_string(),
    })?;
    let map = aya::maps::Map::from_map_data(data)
        .map_err(|e| DataplaneError::Map(name.into(), e.to_string()))?;
    T::try_from(map).map_err(|e| DataplaneError::Map(name.into(), e.to_string()))
}

/// Removes our map pins in `dir`, and the directory itself once it is empty.
fn remove_pins(dir: &Path) -> Result<(), DataplaneError> {
    if !dir.exists() {
        return Ok(());
    }
    for name in m::PINNED_MAPS
        .into_iter()
        .chain(lb_common::forward::PINNED_FWD_MAPS)
    {
        let p = dir.join(name);
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| DataplaneError::Pin {
                path: p.clone(),
                what: e.to_string(),
            })?;
        }
    }
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

/// Maps of the running object, for tests and the bench.
impl Dataplane {
    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pin_dir_is_per_interface() {
        assert_eq!(
            super::pin_dir_for("eth1"),
            std::path::Path::new("/sys/fs/bpf/ikelb/eth1")
        );
    }
}
