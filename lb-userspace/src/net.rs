//! The few kernel interfaces the cluster drivers need, over raw syscalls: interface
//! index, MAC and primary address, adding and removing addresses with rtnetlink
//! (`RTM_NEWADDR`/`RTM_DELADDR`), and sending whole Ethernet frames (`AF_PACKET`) for
//! gratuitous ARP and unsolicited NA. Everything acts on the calling thread's network
//! namespace.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `if_nametoindex`, with the name in the error.
pub fn ifindex(iface: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(iface)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: a valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {iface}"),
        ));
    }
    Ok(i)
}

fn socket(domain: i32, ty: i32, proto: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned from here on.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The interface's hardware address (`SIOCGIFHWADDR`).
pub fn mac(iface: &str) -> io::Result<[u8; 6]> {
    let s = socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?;
    // SAFETY: zeroed ifreq is valid; the name is copied with a NUL left at the end.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, b) in req.ifr_name.iter_mut().zip(iface.bytes().take(15)) {
        *d = b as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR fills ifr_hwaddr of a valid ifreq.
    if unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the union member the ioctl wrote.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut m = [0u8; 6];
    for (d, s) in m.iter_mut().zip(sa.sa_data.iter()) {
        *d = *s as u8;
    }
    Ok(m)
}

/// Addresses of `iface` (from `getifaddrs`), in the kernel's order.
pub fn addresses(iface: &str) -> io::Result<Vec<IpAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates the list, freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut p = head;
    while !p.is_null() {
        // SAFETY: p walks the list getifaddrs returned.
        let ifa = unsafe { &*p };
        p = ifa.ifa_next;
        // SAFETY: ifa_name is a C string.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if name.to_bytes() != iface.as_bytes() || ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: the family says which sockaddr type this is.
        unsafe {
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    out.push(IpAddr::from(
                        u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                    ));
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    out.push(IpAddr::from(sin6.sin6_addr.s6_addr));
                }
                _ => {}
            }
        }
    }
    // SAFETY: the list from getifaddrs.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
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

/// rtnetlink header + ifaddrmsg + attributes, built by hand.
fn addr_message(new: bool, ifindex: u32, addr: IpAddr, prefix: u8, seq: u32) -> Vec<u8> {
    let (family, bytes): (u8, Vec<u8>) = match addr {
        IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
        IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
    };
    let mut body = vec![family, prefix, 0, 0];
    body.extend_from_slice(&ifindex.to_ne_bytes());
    let mut attr = |ty: u16, data: &[u8]| {
        let len = 4 + data.len();
        body.extend_from_slice(&(len as u16).to_ne_bytes());
        body.extend_from_slice(&ty.to_ne_bytes());
        body.extend_from_slice(data);
        while body.len() % 4 != 0 {
            body.push(0);
        }
    };
    attr(libc::IFA_LOCAL, &bytes);
    attr(libc::IFA_ADDRESS, &bytes);
    if family == libc::AF_INET6 as u8 {
        // Usable at once: no duplicate address detection for a VIP that moves.
        attr(libc::IFA_FLAGS, &(libc::IFA_F_NODAD).to_ne_bytes());
    }
    let flags = libc::NLM_F_REQUEST
        | libc::NLM_F_ACK
        | if new {
            libc::NLM_F_CREATE | libc::NLM_F_REPLACE
        } else {
            0
        };
    let ty = if new {
        libc::RTM_NEWADDR
    } else {
        libc::RTM_DELADDR
    };
    let mut m = Vec::with_capacity(16 + body.len());
    m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&(flags as u16).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&body);
    m
}

fn netlink_request(msg: &[u8]) -> io::Result<()> {
    let s = socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE)?;
    // SAFETY: a zeroed sockaddr_nl addressed to the kernel.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: msg and sa are valid for the given lengths.
    let n = unsafe {
        libc::sendto(
            s.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&raw const sa).cast(),
            size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = [0u8; 1024];
    // SAFETY: reading into a buffer we own.
    let n = unsafe { libc::recv(s.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let buf = &buf[..n as usize];
    // The answer is one NLMSG_ERROR whose error field is 0 (ack) or -errno.
    if buf.len() >= 20 && u16::from_ne_bytes([buf[4], buf[5]]) == libc::NLMSG_ERROR as u16 {
        let err = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
        if err != 0 {
            return Err(io::Error::from_raw_os_error(-err));
        }
    }
    Ok(())
}

/// Adds `addr/prefix` to `iface` (replacing an existing one: idempotent).
pub fn add_address(iface: &str, addr: IpAddr, prefix: u8) -> io::Result<()> {
    let idx = ifindex(iface)?;
    netlink_request(&addr_message(true, idx, addr, prefix, 1))
        .map_err(|e| io::Error::new(e.kind(), format!("add {addr}/{prefix} to {iface}: {e}")))
}

/// Removes `addr/prefix` from `iface`; an address that is not there is no error.
pub fn del_address(iface: &str, addr: IpAddr, prefix: u8) -> io::Result<()> {
    let idx = ifindex(iface)?;
    match netlink_request(&addr_message(false, idx, addr, prefix, 2)) {
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
    fd: OwnedFd,
    ifindex: u32,
}

impl FrameSender {
    pub fn new(iface: &str) -> io::Result<Self> {
        let ifindex = ifindex(iface)?;
        // Protocol 0: send only, nothing is queued for reading.
        let fd = socket(libc::AF_PACKET, libc::SOCK_RAW, 0)?;
        Ok(FrameSender { fd, ifindex })
    }

    /// Sends `frame` (Ethernet header included) as it is.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: a zeroed sockaddr_ll with family, interface and destination set.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_ifindex = self.ifindex as i32;
        sa.sll_halen = 6;
        sa.sll_addr[..6].copy_from_slice(&frame[..6.min(frame.len())]);
        // SAFETY: frame and sa are valid for the given lengths.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const sa).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addr_message_layout() {
        let m = addr_message(true, 7, "10.0.0.1".parse().unwrap(), 32, 9);
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), libc::RTM_NEWADDR);
        // ifaddrmsg: family, prefix, flags, scope, index.
        assert_eq!(&m[16..20], &[libc::AF_INET as u8, 32, 0, 0]);
        assert_eq!(u32::from_ne_bytes(m[20..24].try_into().unwrap()), 7);
        // IFA_LOCAL then IFA_ADDRESS, 8 bytes each.
        assert_eq!(m.len(), 24 + 16);
        let m6 = addr_message(false, 1, "2001:db8::1".parse().unwrap(), 128, 1);
        assert_eq!(u16::from_ne_bytes([m6[4], m6[5]]), libc::RTM_DELADDR);
        assert_eq!(m6.len(), 24 + 20 + 20 + 8);
    }

    #[test]
    fn link_local() {
        assert!(is_link_local(&"fe80::1".parse().unwrap()));
        assert!(!is_link_local(&"2001:db8::1".parse().unwrap()));
    }
}
