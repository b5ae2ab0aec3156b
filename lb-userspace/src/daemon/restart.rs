//! Restarts that keep the fast path (docs/architecture.md §3.4). `ikelb restart` or
//! SIGUSR2 make `ikelb run` exit with [`HANDOVER_EXIT`], leaving the XDP link and maps
//! pinned, the VIPs on the interface, the target names, and this record of its VRRP
//! Actives in `/run/ikelb/<iface>.handover`; the next `ikelb run` on the interface
//! takes all of it over. `ikelb detach` removes what no process took over.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::config::RUN_DIR;
use crate::dataplane as dpl;
use crate::vrrp::io::{Instance, Kept, Status};

/// The exit status of a process that handed over: under systemd,
/// `RestartForceExitStatus=75` starts the next one at once and `SuccessExitStatus=75`
/// keeps the unit from counting it as a failure.
pub const HANDOVER_EXIT: i32 = 75;

/// What a handing-over process leaves the next one beside the kept fast path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    /// The VRRP instances that were Active: they hold the VIPs.
    pub vrrp: Vec<KeptVrrp>,
}

/// One Active instance handed over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptVrrp {
    pub iface: String,
    pub vrid: u8,
    pub vips: Vec<IpAddr>,
    pub prefix_len: u8,
    /// Max Adver Int of its adverts: what the Backups' timers follow.
    pub interval_cs: u16,
    /// When its last advert left, in ns of CLOCK_MONOTONIC (shared by all processes).
    pub last_advert_ns: u64,
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// `t` (an `Instant`, which is CLOCK_MONOTONIC on Linux) in ns of that clock.
fn ns_of(t: Instant) -> u64 {
    let ago = Instant::now().saturating_duration_since(t);
    monotonic_ns().saturating_sub(ago.as_nanos() as u64)
}

/// The `Instant` of `ns` of CLOCK_MONOTONIC (`None` when it is in the future).
fn instant_of(ns: u64) -> Option<Instant> {
    let ago = monotonic_ns().checked_sub(ns)?;
    Instant::now().checked_sub(Duration::from_nanos(ago))
}

/// Where the record of `iface` lives.
pub fn path(iface: &str) -> PathBuf {
    PathBuf::from(RUN_DIR).join(format!("{iface}.handover"))
}

impl Handover {
    /// The record of the instances `inst` whose final `status` says they were handed
    /// over as Active.
    pub fn of(inst: &[Instance], status: &[Status]) -> Handover {
        let vrrp = inst
            .iter()
            .zip(status)
            .filter_map(|(i, s)| {
                let k = s.kept?;
                Some(KeptVrrp {
                    iface: i.iface.clone(),
                    vrid: i.config.vrid,
                    vips: i.config.vips.clone(),
                    prefix_len: i.prefix_len,
                    interval_cs: k.interval_cs,
                    last_advert_ns: ns_of(k.last_advert),
                })
            })
            .collect();
        Handover { vrrp }
    }

    /// Writes the record of `iface` (a new file renamed into place).
    pub fn write(&self, iface: &str) -> io::Result<()> {
        let p = path(iface);
        std::fs::create_dir_all(RUN_DIR)?;
        let tmp = p.with_extension("handover.new");
        std::fs::write(&tmp, serde_json::to_vec(self).map_err(io::Error::other)?)?;
        std::fs::rename(&tmp, &p)
    }

    /// The record of `iface`, if a readable one is there.
    pub fn read(iface: &str) -> Option<Handover> {
        let p = path(iface);
        let text = std::fs::read(&p).ok()?;
        match serde_json::from_slice(&text) {
            Ok(h) => Some(h),
            Err(e) => {
                warn!(path = %p.display(), error = %e, "unreadable handover record: no VRRP role is resumed");
                None
            }
        }
    }

    /// What `inst` resumes from: the record of the same instance (interface, VRID and
    /// VIPs), if every VIP is still on the interface.
    pub fn resume_for(&self, inst: &Instance) -> Option<Kept> {
        let k = self.vrrp.iter().find(|k| {
            k.iface == inst.iface && k.vrid == inst.config.vrid && k.vips == inst.config.vips
        })?;
        let on = crate::net::addresses(&inst.iface).ok()?;
        if !k.vips.iter().all(|v| on.contains(v)) {
            info!(
                vrid = k.vrid,
                "a handed-over VIP is gone from the interface: not resuming"
            );
            return None;
        }
        Some(Kept {
            last_advert: instant_of(k.last_advert_ns)?,
            interval_cs: k.interval_cs,
        })
    }

    /// Removes the VIPs of handed-over Actives that no instance of `inst` resumes
    /// (`resumed[i]` for instance `i`), but those a resumed one holds: a changed
    /// configuration must not leave addresses nobody advertises.
    pub fn release_unresumed(&self, inst: &[Instance], resumed: &[bool]) {
        let held: Vec<(&str, IpAddr)> = inst
            .iter()
            .zip(resumed)
            .filter(|(_, r)| **r)
            .flat_map(|(i, _)| i.config.vips.iter().map(|v| (i.iface.as_str(), *v)))
            .collect();
        for k in &self.vrrp {
            for v in k
                .vips
                .iter()
                .filter(|v| !held.contains(&(k.iface.as_str(), **v)))
            {
                if let Err(e) = crate::net::del_address(&k.iface, *v, k.prefix_len) {
                    warn!(vip = %v, error = %e, "VIP not removed");
                }
            }
        }
    }

    /// Removes the VIPs the handed-over Actives held (nobody advertises them any more).
    pub fn release_vips(&self) {
        self.release_unresumed(&[], &[]);
    }
}

/// Removes the record of `iface`.
pub fn remove(iface: &str) {
    let _ = std::fs::remove_file(path(iface));
}

/// Ends what the previous process kept on `iface` when this start failed: nothing may
/// stay that nobody runs (a headless fast path, VIPs nobody advertises).
pub fn abandon(iface: &str, handover: Option<&Handover>) {
    if let Some(h) = handover {
        h.release_vips();
    }
    match dpl::link::detach_kept(iface) {
        Ok(Some(p)) => warn!(link = %p.display(), "the kept fast path is detached"),
        Ok(None) => {}
        Err(e) => warn!(error = %e, "detaching the kept fast path"),
    }
    remove(iface);
}

/// `ikelb detach --iface`: removes what a handover left on `iface` that no process took
/// over (the link, the maps, the VIPs, the records). Says what it did.
pub fn detach(iface: &str) -> anyhow::Result<String> {
    let h = Handover::read(iface);
    let link = dpl::link::detach_kept(iface)?;
    if let Some(h) = &h {
        h.release_vips();
    }
    remove(iface);
    let vips: Vec<String> = h
        .iter()
        .flat_map(|h| &h.vrrp)
        .flat_map(|k| k.vips.iter().map(ToString::to_string))
        .collect();
    if link.is_none() && vips.is_empty() {
        return Ok(format!("nothing kept on {iface}"));
    }
    let _ = std::fs::remove_file(PathBuf::from(RUN_DIR).join(format!("{iface}.targets")));
    Ok(format!(
        "{iface}: {}; VIPs removed: [{}]",
        if link.is_some() {
            "XDP detached, pins removed"
        } else {
            "no kept link"
        },
        vips.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_round_trip_and_record_format() {
        let t = Instant::now() - Duration::from_millis(30);
        let back = instant_of(ns_of(t)).unwrap();
        let d = if back > t { back - t } else { t - back };
        assert!(d < Duration::from_millis(1), "{d:?}");
        assert_eq!(instant_of(monotonic_ns() + 1_000_000_000), None);
        let h = Handover {
            vrrp: vec![KeptVrrp {
                iface: "eth1".into(),
                vrid: 80,
                vips: vec!["192.0.2.1".parse().unwrap()],
                prefix_len: 32,
                interval_cs: 10,
                last_advert_ns: 5,
            }],
        };
        let text = serde_json::to_string(&h).unwrap();
        assert_eq!(
            text,
            r#"{"vrrp":[{"iface":"eth1","vrid":80,"vips":["192.0.2.1"],"prefix_len":32,"interval_cs":10,"last_advert_ns":5}]}"#
        );
        assert_eq!(serde_json::from_str::<Handover>(&text).unwrap(), h);
    }
}
