//! Member MACs for same-L2 forwarding (docs/architecture.md §6.3): the kernel's
//! neighbour table, read with one rtnetlink dump; resolution is provoked by a datagram
//! to the member's discard port (RFC 863), which the member may ignore.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
/// NUD states whose link-layer address is usable: REACHABLE, STALE, DELAY, PROBE,
/// PERMANENT (include/uapi/linux/neighbour.h).
const NUD_USABLE: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x80;

/// Makes the kernel resolve `addr` (an ARP request or neighbour solicitation).
pub fn provoke(addr: IpAddr) {
    let bind: IpAddr = if addr.is_ipv4() {
        IpAddr::from([0u8; 4])
    } else {
        IpAddr::from([0u8; 16])
    };
    if let Ok(s) = UdpSocket::bind((bind, 0)) {
        // Errors (no route, unreachable) only mean no entry will appear.
        let _ = s.send_to(&[], (addr, 9));
    }
}

/// Every usable neighbour entry of every interface: address → MAC.
pub fn dump() -> io::Result<HashMap<IpAddr, [u8; 6]>> {
    // SAFETY: plain socket(2); the descriptor is owned below.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let s = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = Vec::with_capacity(28);
    req.extend_from_slice(&28u32.to_ne_bytes());
    req.extend_from_slice(&libc::RTM_GETNEIGH.to_ne_bytes());
    req.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    // struct ndmsg: family AF_UNSPEC (both), pads, ifindex 0 (all), state, flags, type.
    req.extend_from_slice(&[0u8; 12]);
    // SAFETY: `req` is valid for its length; the kernel is the default destination.
    if unsafe { libc::send(s.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        // SAFETY: reading into a buffer we own.
        let n = unsafe { libc::recv(s.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if parse(&buf[..n as usize], &mut out)? {
            return Ok(out);
        }
    }
}

/// A route's gateway (`None`: on-link) and preferred source address.
pub type Route4 = (Option<[u8; 4]>, Option<[u8; 4]>);

/// The kernel's route to IPv4 `dst`, for IP-in-IP to a routed member
/// (docs/architecture.md §6.4).
pub fn route4(dst: [u8; 4]) -> io::Result<Route4> {
    // SAFETY: plain socket(2); the descriptor is owned below.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let s = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = Vec::with_capacity(36);
    req.extend_from_slice(&36u32.to_ne_bytes());
    req.extend_from_slice(&libc::RTM_GETROUTE.to_ne_bytes());
    req.extend_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    // struct rtmsg: AF_INET, dst_len 32, the rest zero.
    req.extend_from_slice(&[libc::AF_INET as u8, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    req.extend_from_slice(&8u16.to_ne_bytes());
    req.extend_from_slice(&libc::RTA_DST.to_ne_bytes());
    req.extend_from_slice(&dst);
    // SAFETY: `req` is valid for its length; the kernel is the default destination.
    if unsafe { libc::send(s.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 8192];
    // SAFETY: reading into a buffer we own.
    let n = unsafe { libc::recv(s.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    parse_route(&buf[..n as usize])
}

fn parse_route(b: &[u8]) -> io::Result<Route4> {
    let u16_at = |b: &[u8], i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    if b.len() < 16 {
        return Err(io::Error::other("short rtnetlink answer"));
    }
    if u16_at(b, 4) == libc::NLMSG_ERROR as u16 {
        let e = b
            .get(16..20)
            .map_or(0, |x| i32::from_ne_bytes([x[0], x[1], x[2], x[3]]));
        return Err(io::Error::from_raw_os_error(-e));
    }
    let len = (u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize).min(b.len());
    let (mut gw, mut src) = (None, None);
    let mut a = b.get(28..len).unwrap_or_default();
    while a.len() >= 4 {
        let alen = usize::from(u16_at(a, 0));
        if alen < 4 || alen > a.len() {
            break;
        }
        let v = <[u8; 4]>::try_from(&a[4..alen]).ok();
        match u16_at(a, 2) {
            libc::RTA_GATEWAY => gw = v,
            libc::RTA_PREFSRC => src = v,
            _ => {}
        }
        a = &a[((alen + 3) & !3).min(a.len())..];
    }
    Ok((gw, src))
}

/// Adds the entries of one receive buffer to `out`; true at NLMSG_DONE.
fn parse(mut b: &[u8], out: &mut HashMap<IpAddr, [u8; 6]>) -> io::Result<bool> {
    let u16_at = |b: &[u8], i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    while b.len() >= 16 {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < 16 || len > b.len() {
            break;
        }
        let msg = &b[..len];
        b = &b[((len + 3) & !3).min(b.len())..];
        match u16_at(msg, 4) {
            t if t == libc::NLMSG_DONE as u16 => return Ok(true),
            t if t == libc::NLMSG_ERROR as u16 => {
                let e = msg
                    .get(16..20)
                    .map_or(0, |x| i32::from_ne_bytes([x[0], x[1], x[2], x[3]]));
                return Err(io::Error::from_raw_os_error(-e));
            }
            t if t == libc::RTM_NEWNEIGH => {}
            _ => continue,
        }
        let Some(nd) = msg.get(16..28) else { continue };
        if u16_at(nd, 8) & NUD_USABLE == 0 {
            continue;
        }
        let (mut dst, mut mac) = (None, None);
        let mut a = &msg[28..];
        while a.len() >= 4 {
            let alen = usize::from(u16_at(a, 0));
            if alen < 4 || alen > a.len() {
                break;
            }
            let data = &a[4..alen];
            match u16_at(a, 2) {
                NDA_DST => {
                    dst = match data.len() {
                        4 => Some(IpAddr::from(<[u8; 4]>::try_from(data).unwrap_or_default())),
                        16 => Some(IpAddr::from(<[u8; 16]>::try_from(data).unwrap_or_default())),
                        _ => None,
                    }
                }
                NDA_LLADDR => mac = <[u8; 6]>::try_from(data).ok(),
                _ => {}
            }
            a = &a[((alen + 3) & !3).min(a.len())..];
        }
        if let (Some(d), Some(m)) = (dst, mac) {
            out.insert(d, m);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_neighbour_message_and_done() {
        let mut m = Vec::new();
        let body_len = 16 + 12 + 8 + 12;
        m.extend_from_slice(&(body_len as u32).to_ne_bytes());
        m.extend_from_slice(&libc::RTM_NEWNEIGH.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&[2, 0, 0, 0, 3, 0, 0, 0]);
        m.extend_from_slice(&0x02u16.to_ne_bytes());
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(&8u16.to_ne_bytes());
        m.extend_from_slice(&NDA_DST.to_ne_bytes());
        m.extend_from_slice(&[192, 0, 2, 7]);
        m.extend_from_slice(&10u16.to_ne_bytes());
        m.extend_from_slice(&NDA_LLADDR.to_ne_bytes());
        m.extend_from_slice(&[2, 0, 0, 0, 0, 7, 0, 0]);
        let mut done = Vec::new();
        done.extend_from_slice(&20u32.to_ne_bytes());
        done.extend_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
        done.extend_from_slice(&[0; 14]);
        let mut out = HashMap::new();
        assert!(!parse(&m, &mut out).unwrap());
        assert_eq!(
            out[&"192.0.2.7".parse::<IpAddr>().unwrap()],
            [2, 0, 0, 0, 0, 7]
        );
        assert!(parse(&done, &mut out).unwrap());
    }

    #[test]
    fn the_live_table_can_be_read() {
        dump().expect("RTM_GETNEIGH dump");
    }

    #[test]
    fn the_route_to_loopback_is_on_link_from_loopback() {
        let (gw, src) = route4([127, 0, 0, 1]).expect("RTM_GETROUTE");
        assert_eq!(gw, None);
        assert_eq!(src, Some([127, 0, 0, 1]));
    }
}
