//! ICMP echo from inside a namespace, without the `ping` binary (not every test machine
//! has iputils): a thread inside the namespace ([`Netns::within`]) uses a raw socket.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::netns::Netns;

/// Sends up to `count` echo requests from `src` to `dst` inside `ns`, each waiting up to
/// `wait` for its reply; true as soon as one reply arrives.
pub fn ping(ns: &Netns, src: IpAddr, dst: IpAddr, count: u16, wait: Duration) -> Result<bool> {
    ns.within(|| echo(src, dst, count, wait))
}

fn socket(v6: bool) -> Result<OwnedFd> {
    let (dom, proto) = if v6 {
        (libc::AF_INET6, libc::IPPROTO_ICMPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_ICMP)
    };
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe { libc::socket(dom, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        bail!("raw ICMP socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn sockaddr(a: IpAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match SocketAddr::new(a, 0) {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *std::ptr::from_mut(&mut ss).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *std::ptr::from_mut(&mut ss).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, libc::socklen_t::try_from(len).unwrap_or(0))
}

fn csum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(0)
}

fn echo(src: IpAddr, dst: IpAddr, count: u16, wait: Duration) -> Result<bool> {
    let v6 = dst.is_ipv6();
    let fd = socket(v6)?;
    let (sa, sl) = sockaddr(src);
    // SAFETY: bind with a sockaddr of the length we computed.
    if unsafe { libc::bind(fd.as_raw_fd(), std::ptr::from_ref(&sa).cast(), sl) } != 0 {
        bail!("bind {src}: {}", std::io::Error::last_os_error());
    }
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: setting SO_RCVTIMEO with a timeval.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            std::ptr::from_ref(&tv).cast(),
            libc::socklen_t::try_from(std::mem::size_of::<libc::timeval>()).unwrap_or(0),
        );
    }
    let id = u16::try_from(std::process::id() & 0xffff).unwrap_or(0x1eb);
    let (req_type, rep_type) = if v6 { (128u8, 129u8) } else { (8u8, 0u8) };
    let (da, dl) = sockaddr(dst);
    for seq in 1..=count {
        let mut pkt = vec![req_type, 0, 0, 0];
        pkt.extend_from_slice(&id.to_be_bytes());
        pkt.extend_from_slice(&seq.to_be_bytes());
        pkt.extend_from_slice(b"ikelb-lab-ping-payload..");
        if !v6 {
            // ICMPv6 raw sockets get their checksum from the kernel.
            let c = csum(&pkt);
            pkt[2..4].copy_from_slice(&c.to_be_bytes());
        }
        // SAFETY: sendto with our buffer and a valid destination sockaddr.
        let n = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                pkt.as_ptr().cast(),
                pkt.len(),
                0,
                std::ptr::from_ref(&da).cast(),
                dl,
            )
        };
        if n < 0 {
            // Unreachable and friends: count as lost, try again.
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            // SAFETY: recv into our buffer.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            let Ok(n) = usize::try_from(n) else { continue };
            let icmp = if v6 {
                &buf[..n]
            } else {
                let ihl = usize::from(buf[0] & 0x0f) * 4;
                buf.get(ihl..n).unwrap_or(&[])
            };
            if icmp.len() >= 8
                && icmp[0] == rep_type
                && icmp[4..6] == id.to_be_bytes()
                && icmp[6..8] == seq.to_be_bytes()
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
