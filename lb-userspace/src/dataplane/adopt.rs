//! Taking over the maps a kept fast path left pinned (docs/architecture.md §3.4). They
//! are reused only when every one has exactly the layout this object defines, and the
//! state they hold (the live table generation, flags, flow-hash key, rate limit, VIP
//! generation, target indices, forwarding slots) is read back, so the next writes
//! continue it and the table answers unchanged; otherwise fresh maps replace them under
//! the same pins, and the kept program keeps its old ones until its link switches.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use aya::maps::{Array, HashMap as BpfHashMap, MapData, MapInfo};
use lb_common::maps::{
    self as m, Config as MapConfig, FLAG_ACTIVE, SlotTable, Target as MapTarget, VIP_GEN_MASK,
    VIP_GEN_SHIFT, Vip as MapVip,
};

use super::{Dataplane, DataplaneError, EBPF_OBJ};
use crate::target::{Identity, Owner, Target};

/// Which maps a takeover uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Maps {
    /// The kept ones, with the table and state they hold.
    Kept,
    /// Fresh ones under the same pins; why the kept ones could not serve.
    Fresh(String),
}

impl Dataplane {
    /// Loads the embedded object for an interface whose previous process kept its fast
    /// path in `dir`; `names` is that process's target-name file. Nothing the running
    /// program uses is written here.
    pub fn adopt(dir: &Path, names: &Path) -> Result<(Dataplane, Maps), DataplaneError> {
        if EBPF_OBJ.is_empty() {
            return Err(DataplaneError::NoObject);
        }
        let why = match incompatible(EBPF_OBJ, dir) {
            None => {
                let mut dp = Self::load_with(EBPF_OBJ, Some(dir), true)?;
                match dp.recover(names) {
                    Ok(()) => return Ok((dp, Maps::Kept)),
                    Err(why) => {
                        // Its pins are the kept ones: the fresh load below replaces them.
                        dp.pin_dir = None;
                        why
                    }
                }
            }
            Some(why) => why,
        };
        let dp = Self::load_object(EBPF_OBJ, Some(dir))?;
        Ok((dp, Maps::Fresh(why)))
    }

    /// Reads back the state of kept maps; the error says what does not add up.
    fn recover(&mut self, names: &Path) -> Result<(), String> {
        let map = |name: &str| {
            self.ebpf
                .map(name)
                .ok_or_else(|| format!("{name} is not in the object"))
        };
        let cfg: Array<&MapData, MapConfig> =
            Array::try_from(map(m::MAP_CONFIG)?).map_err(|e| e.to_string())?;
        let c = cfg
            .get(&0, 0)
            .map_err(|e| format!("{}: {e}", m::MAP_CONFIG))?;
        let mut vips: Vec<(IpAddr, u32)> = Vec::new();
        let v4: BpfHashMap<&MapData, u32, MapVip> =
            BpfHashMap::try_from(map(m::MAP_VIPS4)?).map_err(|e| e.to_string())?;
        for (k, v) in v4.iter().flatten() {
            vips.push((IpAddr::from(k.to_ne_bytes()), v.fwd));
        }
        let v6: BpfHashMap<&MapData, [u8; 16], MapVip> =
            BpfHashMap::try_from(map(m::MAP_VIPS6)?).map_err(|e| e.to_string())?;
        for (k, v) in v6.iter().flatten() {
            vips.push((IpAddr::from(k), v.fwd));
        }
        let generation = c.active_table & 1;
        let index = read_names(names)?;
        let targets: Array<&MapData, MapTarget> =
            Array::try_from(map(m::MAP_TARGETS)?).map_err(|e| e.to_string())?;
        for ((_, id), i) in &index {
            let pinned = targets.get(&u32::from(*i), 0).map_err(|e| e.to_string())?;
            if pinned != id.to_target() {
                return Err(format!(
                    "target {i} of {} ({id}) is not the pinned one",
                    names.display()
                ));
            }
        }
        // Every live slot must name a known target; its slots give its weight.
        let slots: Array<&MapData, SlotTable> =
            Array::try_from(map(m::MAP_SLOTS)?).map_err(|e| e.to_string())?;
        let mut weight: HashMap<u16, u32> = HashMap::new();
        for v6 in [false, true] {
            let t = slots
                .get(&m::slot_table_index(generation, v6), 0)
                .map_err(|e| e.to_string())?;
            let mut count: HashMap<u16, u32> = HashMap::new();
            for s in t.slots.iter().take(t.len as usize) {
                if !index.values().any(|i| i == s) {
                    return Err(format!(
                        "the live table names target {s}, unknown to {}",
                        names.display()
                    ));
                }
                *count.entry(*s).or_insert(0) += 1;
            }
            for (i, n) in count {
                let w = weight.entry(i).or_insert(0);
                *w = (*w).max(n);
            }
        }
        let entries: Vec<Target> = index
            .iter()
            .map(|((owner, identity), i)| Target {
                owner: owner.clone(),
                identity: identity.clone(),
                weight: weight.get(i).copied().unwrap_or(0),
            })
            .collect();
        self.generation = generation;
        self.active = c.flags & FLAG_ACTIVE != 0;
        self.vip_generation = (c.flags >> VIP_GEN_SHIFT) & VIP_GEN_MASK;
        self.hash_key = c.hash_key;
        self.rate = (c.rate_interval_ns, c.rate_limit_ns);
        self.index = index;
        self.vips = vips.iter().map(|v| v.0).collect();
        self.recover_forward(&vips, entries)
            .map_err(|e| e.to_string())
    }

    /// Whether the fast path answers (the kept flag until something sets it).
    pub fn active(&self) -> bool {
        self.active
    }
}

/// The target-name file the dataplane task writes (`<index> <name> <identity>` per
/// line) as the index of [`Dataplane`].
fn read_names(path: &Path) -> Result<HashMap<(Owner, Identity), u16>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let mut it = line.splitn(3, ' ');
        let parsed = (|| {
            let i: u16 = it.next()?.parse().ok()?;
            let owner = Owner::from_printed(it.next()?);
            let id = it.next()?;
            let id = match id.parse::<IpAddr>() {
                Ok(a) => Identity::Ip(a),
                Err(_) => Identity::Fqdn(id.to_string()),
            };
            (u32::from(i) < m::MAX_TARGETS).then_some(((owner, id), i))
        })();
        let (k, i) =
            parsed.ok_or_else(|| format!("{} line {}: not a target", path.display(), n + 1))?;
        out.insert(k, i);
    }
    Ok(out)
}

/// Why the maps pinned in `dir` cannot serve `obj`'s program, or `None` when every one
/// is there with the type, key and value sizes, entries and flags the object defines.
fn incompatible(obj: &[u8], dir: &Path) -> Option<String> {
    let parsed = match aya_obj::Object::parse(obj) {
        Ok(o) => o,
        Err(e) => return Some(format!("parsing the object: {e}")),
    };
    for name in m::PINNED_MAPS
        .into_iter()
        .chain(lb_common::forward::PINNED_FWD_MAPS)
    {
        let Some(def) = parsed.maps.get(name) else {
            return Some(format!("{name} is not in this program"));
        };
        let info = match MapInfo::from_pin(dir.join(name)) {
            Ok(i) => i,
            Err(e) => return Some(format!("{name} is not pinned: {e}")),
        };
        let have = (
            info.map_type().map_or(u32::MAX, |t| t as u32),
            info.key_size(),
            info.value_size(),
            info.max_entries(),
            info.map_flags(),
        );
        let want = (
            def.map_type(),
            def.key_size(),
            def.value_size(),
            def.max_entries(),
            def.map_flags(),
        );
        if have != want {
            return Some(format!(
                "{name} is pinned as (type, key, value, entries, flags) {have:?}, \
                 this program defines {want:?}"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_are_read_back_or_refused_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("eth1.targets");
        std::fs::write(
            &p,
            "0 member-1 192.0.2.1\n3 gw2 gw2.example.net\n7 v6 2001:db8::7\n",
        )
        .unwrap();
        let names = read_names(&p).unwrap();
        assert_eq!(names.len(), 3);
        let ip = |a: &str| Identity::Ip(a.parse().unwrap());
        assert_eq!(names[&(Owner::Member(1), ip("192.0.2.1"))], 0);
        assert_eq!(
            names[&(
                Owner::Static("gw2".into()),
                Identity::Fqdn("gw2.example.net".into())
            )],
            3
        );
        assert_eq!(names[&(Owner::Static("v6".into()), ip("2001:db8::7"))], 7);
        std::fs::write(&p, "0 member-1 192.0.2.1\n999 x 192.0.2.9\n").unwrap();
        assert!(read_names(&p).unwrap_err().contains("line 2"));
        std::fs::write(&p, "zero a b\n").unwrap();
        assert!(read_names(&p).unwrap_err().contains("line 1"));
        assert!(read_names(&dir.path().join("none")).is_err());
    }
}
