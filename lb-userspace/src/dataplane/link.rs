//! The XDP attachment and its life across a restart (docs/architecture.md §3.4): a fresh
//! attach; keeping the link pinned beside the maps so the fast path outlives the
//! process; taking a kept link over, with the program on it replaced atomically
//! (`bpf_link_update`) when ours differs; and removing what a kept fast path left.

use std::path::PathBuf;

use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::xdp::{XdpLink, XdpLinkId};
use aya::programs::{ProgramError, XdpMode, loaded_programs};
use lb_common::maps as m;

use super::{Dataplane, DataplaneError, pin_dir_for, remove_pins};
use crate::config::XdpModeCfg;

/// The pin of the XDP link a restart keeps, beside the maps.
pub const LINK_PIN: &str = "IKELB_LINK";

/// How `ikelb_xdp` is attached.
#[derive(Debug, Default)]
pub(super) enum Attachment {
    #[default]
    None,
    /// Made by [`Dataplane::attach`] or replaced by [`Dataplane::take_over`]: aya owns
    /// it and detaches it when the object drops.
    Owned(XdpLinkId),
    /// Taken over with the previous program left running on it (the same
    /// instructions); unpinned, so it detaches when this descriptor closes.
    Adopted(FdLink),
}

/// What [`Dataplane::take_over`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TakeOver {
    /// The kept program's tag (a hash of its instructions) and ours.
    pub old_tag: Option<u64>,
    pub new_tag: Option<u64>,
    /// The link now runs our program (`bpf_link_update`); otherwise the kept program
    /// runs on, on the same maps.
    pub replaced: bool,
}

fn program_err(e: ProgramError) -> DataplaneError {
    DataplaneError::Program(m::PROG_NAME.into(), e.to_string())
}

/// The link a previous `ikelb run` kept for `iface`, if there is one.
pub fn kept_link(iface: &str) -> Result<Option<PinnedLink>, DataplaneError> {
    let path = pin_dir_for(iface).join(LINK_PIN);
    if !path.exists() {
        return Ok(None);
    }
    PinnedLink::from_pin(&path)
        .map(Some)
        .map_err(|e| DataplaneError::Pin {
            path,
            what: e.to_string(),
        })
}

/// Removes what a kept fast path left on `iface`: the link's pin (XDP detaches with
/// it) and the maps' pins. Returns the link's path, or `None` when nothing was kept
/// (the maps of a running `ikelb run` are left alone then).
pub fn detach_kept(iface: &str) -> Result<Option<PathBuf>, DataplaneError> {
    let dir = pin_dir_for(iface);
    let path = dir.join(LINK_PIN);
    if !path.exists() {
        return Ok(None);
    }
    std::fs::remove_file(&path).map_err(|e| DataplaneError::Pin {
        path: path.clone(),
        what: e.to_string(),
    })?;
    remove_pins(&dir)?;
    Ok(Some(path))
}

/// Removes the pin of the kept link of `iface` alone (XDP detaches with it), leaving
/// the maps: after a failed takeover, before a fresh attach.
pub fn remove_link_pin(iface: &str) -> Result<(), DataplaneError> {
    let path = pin_dir_for(iface).join(LINK_PIN);
    std::fs::remove_file(&path).map_err(|e| DataplaneError::Pin {
        path,
        what: e.to_string(),
    })
}

/// The tag of the loaded program `id`.
fn tag_of(id: u32) -> Option<u64> {
    loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == id)
        .map(|p| p.tag())
}

impl Dataplane {
    /// Attaches `ikelb_xdp` to `iface`. `Auto` tries native first and falls back to
    /// generic with a warning. Returns the mode used.
    pub fn attach(
        &mut self,
        iface: &str,
        mode: XdpModeCfg,
    ) -> Result<&'static str, DataplaneError> {
        let tries: &[(XdpMode, &'static str)] = match mode {
            XdpModeCfg::Native => &[(XdpMode::Driver, "native")],
            XdpModeCfg::Skb => &[(XdpMode::Skb, "skb")],
            XdpModeCfg::Auto => &[(XdpMode::Driver, "native"), (XdpMode::Skb, "skb")],
            XdpModeCfg::Off => &[],
        };
        let mut last = String::new();
        for &(flags, name) in tries {
            match self.program(m::PROG_NAME)?.attach(iface, flags) {
                Ok(id) => {
                    self.link = Attachment::Owned(id);
                    self.attached = Some(iface.into());
                    if rx_vlan_offload(iface) == Some(true) {
                        // The NIC strips the outer tag before XDP: a tagged request
                        // is seen untagged and its answer would leave untagged.
                        tracing::info!(
                            iface,
                            "rx VLAN offload is on: on a VLAN trunk turn it off \
                             (ethtool -K {iface} rxvlan off) so answers keep their tags"
                        );
                    }
                    return Ok(name);
                }
                Err(e) => {
                    last = format!("{e:#}");
                    if mode == XdpModeCfg::Auto && name == "native" {
                        tracing::warn!(iface, error = %last, "native XDP failed, falling back to generic (skb) mode");
                    }
                }
            }
        }
        Err(DataplaneError::Attach {
            iface: iface.into(),
            mode: tries.last().map_or("off", |t| t.1),
            what: if tries.is_empty() {
                "XDP mode `off` attaches nothing".into()
            } else {
                last
            },
        })
    }

    /// Ends this process's hold on the fast path without detaching it: the link is
    /// pinned beside the maps, which stay pinned, for the next `ikelb run` on the
    /// interface to take over. On an error nothing is kept: the fast path detaches and
    /// its pins go, as at a stop.
    pub fn keep(mut self) -> Result<PathBuf, DataplaneError> {
        let dir = self
            .pin_dir
            .clone()
            .ok_or_else(|| DataplaneError::Keep("the dataplane has no pins".into()))?;
        let path = dir.join(LINK_PIN);
        let link = match std::mem::take(&mut self.link) {
            Attachment::Owned(id) => {
                let l = self
                    .program(m::PROG_NAME)?
                    .take_link(id)
                    .map_err(program_err)?;
                FdLink::try_from(l).map_err(|_| {
                    DataplaneError::Keep(
                        "XDP is attached through netlink here (a kernel before 5.9): \
                         it cannot outlive the process"
                            .into(),
                    )
                })?
            }
            Attachment::Adopted(l) => l,
            Attachment::None => return Err(DataplaneError::Keep("XDP is not attached".into())),
        };
        link.pin(&path).map_err(|e| DataplaneError::Pin {
            path: path.clone(),
            what: e.to_string(),
        })?;
        self.pin_dir = None;
        self.attached = None;
        Ok(path)
    }

    /// Takes over `link`, the link a previous process kept, once the maps are ready: its
    /// program is replaced atomically by ours (`bpf_link_update`, no moment without a
    /// program) when the instructions differ, when this object's maps are not the
    /// kept ones (`fresh_maps`), or when `force`d; otherwise the kept program runs on.
    /// Then the pin goes: the link is this process's, detached when it ends unless
    /// kept again. On an error the kept link stays as it was.
    pub fn take_over(
        &mut self,
        iface: &str,
        link: PinnedLink,
        fresh_maps: bool,
        force: bool,
    ) -> Result<TakeOver, DataplaneError> {
        let path = pin_dir_for(iface).join(LINK_PIN);
        let fd = FdLink::from(link);
        let old_tag = fd.info().ok().and_then(|i| tag_of(i.program_id()));
        let prog = self.program(m::PROG_NAME)?;
        let new_tag = prog.info().ok().map(|i| i.tag());
        let replaced = force || fresh_maps || old_tag.is_none() || old_tag != new_tag;
        if replaced {
            let xdp = XdpLink::try_from(fd).map_err(|e| {
                DataplaneError::TakeOver(format!("{}: not an XDP link: {e}", path.display()))
            })?;
            // The pin still holds the link if the update fails: the kept program runs on.
            let id = prog
                .attach_to_link(xdp)
                .map_err(|e| DataplaneError::TakeOver(format!("bpf_link_update: {e:#}")))?;
            self.link = Attachment::Owned(id);
        } else {
            self.link = Attachment::Adopted(fd);
        }
        self.attached = Some(iface.into());
        std::fs::remove_file(&path).map_err(|e| DataplaneError::Pin {
            path,
            what: e.to_string(),
        })?;
        Ok(TakeOver {
            old_tag,
            new_tag,
            replaced,
        })
    }
}
/// Whether the interface strips VLAN tags on receive (ETHTOOL_GFLAGS, ETH_FLAG_RXVLAN),
/// or `None` if the driver does not say.
pub fn rx_vlan_offload(iface: &str) -> Option<bool> {
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    const ETHTOOL_GFLAGS: u32 = 0x25;
    const ETH_FLAG_RXVLAN: u32 = 1 << 8;
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    let name = iface.as_bytes();
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return None;
    }
    let mut val = EthtoolValue {
        cmd: ETHTOOL_GFLAGS,
        data: 0,
    };
    // SAFETY: a zeroed ifreq with a NUL-terminated name and a pointer to `val`, which
    // outlives the ioctl; the socket is closed below.
    unsafe {
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
            *d = *s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = (&mut val as *mut EthtoolValue).cast();
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let rc = libc::ioctl(fd, SIOCETHTOOL, &mut ifr);
        libc::close(fd);
        (rc == 0).then_some(val.data & ETH_FLAG_RXVLAN != 0)
    }
}
