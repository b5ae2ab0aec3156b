//! The few kernel interfaces the cluster drivers need: interface index, MAC and
//! addresses (`nix`'s `if_nametoindex`, `getifaddrs`), adding and removing addresses
//! with rtnetlink ([`crate::rtnl`]), and sending whole Ethernet frames (`AF_PACKET`,
//! a `socket2` socket) for gratuitous ARP and unsolicited NA. Everything acts on the
//! calling thread's network namespace.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::RouteNetlinkMessage;
use nix::ifaddrs::InterfaceAddress;
use socket2::{Domain, SockAddr, SockAddrStorage, Socket, Type};

use crate::rtnl::{self, Rtnl};

/// `if_nametoindex`, with the name in the error.
pub fn ifindex(iface: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(iface).map_err(|e| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {iface}: {e}"),
        )
    })
}

/// The `getifaddrs` entries of `iface`, in the kernel's order.
fn entries(iface: &str) -> io::Result<impl Iterator<Item = InterfaceAddress>> {
    let name = iface.to_string();
    Ok(nix::ifaddrs::getifaddrs()?.filter(move |a| a.interface_name == name))
}

/// The interface's hardware address (its `AF_PACKET` entry).
pub fn mac(iface: &str) -> io::Result<[u8; 6]> {
    entries(iface)?
        .find_map(|a| a.address?.as_link_addr()?.addr())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no interface {iface} with a hardware address"),
            )
        })
}

/// Addresses of `iface`, in the kernel's order.
pub fn addresses(iface: &str) -> io::Result<Vec<IpAddr>> {
    Ok(entries(iface)?
        .filter_map(|a| {
            let sa = a.address?;
            sa.as_sockaddr_in()
                .map(|s| IpAddr::from(s.ip()))
                .or_else(|| sa.as_sockaddr_in6().map(|s| IpAddr::from(s.ip())))
        })
        .collect())
}

/// `IP_MULTICAST_IF` by interface index. Hand-written: socket2 and nix set it by
/// address only, which also fixes the source address and needs one on the interface.
pub fn set_multicast_if_v4(sock: &impl AsFd, ifindex: u32) -> io::Result<()> {
    let mreq = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: ifindex as i32,
    };
    // SAFETY: an `ip_mreqn` that lives across the call, with its size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_fd().as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            (&raw const mreq).cast(),
            size_of::<libc::ip_mreqn>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// True for fe80::/10.
pub fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// The source address VRRP uses on `iface` (RFC 9568 §5.1): the first IPv4 address
/// not in `exclude` (the VIPs), or the IPv6 link-local address.
pub fn primary_address(iface: &str, v6: bool, exclude: &[IpAddr]) -> io::Result<IpAddr> {
    addresses(iface)?
        .into_iter()
        .find(|a| {
            !exclude.contains(a)
                && match a {
                    IpAddr::V4(_) => !v6,
                    IpAddr::V6(x) => v6 && is_link_local(x),
                }
        })
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{iface} has no {} address",
                    if v6 { "IPv6 link-local" } else { "IPv4" }
                ),
            )
        })
}

/// Adds `addr/prefix` to `iface` (replacing an existing one: idempotent).
pub fn add_address(iface: &str, addr: IpAddr, prefix: u8) -> io::Result<()> {
    let m = rtnl::address(ifindex(iface)?, addr, prefix);
    Rtnl::open()
        .and_then(|mut nl| {
            nl.ack(
                RouteNetlinkMessage::NewAddress(m),
                NLM_F_CREATE | NLM_F_REPLACE,
            )
        })
        .map_err(|e| io::Error::new(e.kind(), format!("add {addr}/{prefix} to {iface}: {e}")))
}

/// Removes `addr/prefix` from `iface`; an address that is not there is no error.
pub fn del_address(iface: &str, addr: IpAddr, prefix: u8) -> io::Result<()> {
    let m = rtnl::address(ifindex(iface)?, addr, prefix);
    match Rtnl::open().and_then(|mut nl| nl.ack(RouteNetlinkMessage::DelAddress(m), 0)) {
        Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        r => r.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("remove {addr}/{prefix} from {iface}: {e}"),
            )
        }),
    }
}

/// An `AF_PACKET` socket that sends whole frames out of one interface.
pub struct FrameSender {
    sock: Socket,
    to: SockAddr,
}

impl FrameSender {
    pub fn new(iface: &str) -> io::Result<Self> {
        let ifindex = ifindex(iface)?;
        // Protocol 0: send only, nothing is queued for reading.
        let sock = Socket::new(Domain::PACKET, Type::RAW, None)?;
        let mut storage = SockAddrStorage::zeroed();
        // SAFETY: socket2 and nix build no `sockaddr_ll`: it is written into zeroed
        // storage large enough for it, and the length given is its size.
        let to = unsafe {
            let ll = storage.view_as::<libc::sockaddr_ll>();
            ll.sll_family = libc::AF_PACKET as u16;
            ll.sll_ifindex = ifindex as i32;
            SockAddr::new(storage, size_of::<libc::sockaddr_ll>() as libc::socklen_t)
        };
        Ok(FrameSender { sock, to })
    }

    /// Sends `frame` (Ethernet header included) as it is.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.sock.send_to(frame, &self.to).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_index_mac_and_addresses() {
        let lo = ifindex("lo").expect("lo");
        assert!(lo > 0);
        assert_eq!(mac("lo").expect("lo's AF_PACKET entry"), [0; 6]);
        let addrs = addresses("lo").expect("getifaddrs");
        assert!(addrs.contains(&IpAddr::from([127, 0, 0, 1])), "{addrs:?}");
        let e = ifindex("nosuchif0").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("nosuchif0"), "{e}");
        assert!(mac("nosuchif0").is_err());
    }

    #[test]
    fn link_local() {
        assert!(is_link_local(&"fe80::1".parse().unwrap()));
        assert!(!is_link_local(&"2001:db8::1".parse().unwrap()));
    }
}
