//! The member's side of IP-in-IP (docs/architecture.md §6.4): `ikelb member --decap`
//! attaches `ikelb_decap`, which unwraps the balancer's packets to this interface's
//! IPv4 addresses before the stack (which has no tunnel modules) sees them.

use std::net::IpAddr;

use aya::maps::HashMap as BpfHashMap;
use aya::programs::XdpMode;
use lb_common::encap::{MAP_DECAP, PROG_DECAP};
use lb_common::maps::vip4_key;

use super::{Dataplane, DataplaneError, map_err};

impl Dataplane {
    /// Attaches `ikelb_decap` to `iface` (native, else generic), unwrapping IP-in-IP to
    /// the interface's IPv4 addresses; returns them. Detached when `self` drops.
    pub fn attach_decap(&mut self, iface: &str) -> Result<Vec<IpAddr>, DataplaneError> {
        let addrs: Vec<IpAddr> = crate::net::addresses(iface)
            .map_err(|e| DataplaneError::Io(format!("addresses of {iface}: {e}")))?
            .into_iter()
            .filter(IpAddr::is_ipv4)
            .collect();
        if addrs.is_empty() {
            return Err(DataplaneError::Io(format!(
                "{iface} has no IPv4 address to receive IP-in-IP on"
            )));
        }
        {
            let mut map: BpfHashMap<_, u32, u32> = self.map_mut(MAP_DECAP)?;
            for a in &addrs {
                if let IpAddr::V4(v4) = a {
                    map.insert(vip4_key(v4.octets()), 1, 0)
                        .map_err(map_err(MAP_DECAP))?;
                }
            }
        }
        let prog = self.program(PROG_DECAP)?;
        if let Err(native) = prog.attach(iface, XdpMode::Driver) {
            tracing::warn!(iface, error = %native, "native XDP failed, decapsulating in generic (skb) mode");
            prog.attach(iface, XdpMode::Skb)
                .map_err(|e| DataplaneError::Attach {
                    iface: iface.into(),
                    mode: "skb",
                    what: format!("{e:#}"),
                })?;
        }
        Ok(addrs)
    }
}
