//! Just enough rtnetlink (RFC 3549) to build the flood topology without iproute2: a veth
//! pair with one end in another namespace, link up, addresses, permanent neighbours and
//! a route. Requests are acknowledged one at a time; a NLMSG_ERROR is the errno.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RTM_NEWNEIGH: u16 = 28;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_NUM_TX_QUEUES: u16 = 31;
const IFLA_NUM_RX_QUEUES: u16 = 32;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NUD_PERMANENT: u16 = 0x80;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;
const IFF_UP: u32 = 1;
const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;
const IFA_F_NODAD: u8 = 0x02;

/// A message body: family header, then attributes (each 4-byte aligned).
struct Msg(Vec<u8>);

impl Msg {
    fn new(header: &[u8]) -> Self {
        let mut m = Msg(header.to_vec());
        m.align();
        m
    }
    fn align(&mut self) {
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
    }
    fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        self.0
            .extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.align();
        self
    }
    fn nest(&mut self, ty: u16, fill: impl FnOnce(&mut Self)) -> &mut Self {
        let start = self.0.len();
        self.attr(ty, &[]);
        fill(self);
        let len = (self.0.len() - start) as u16;
        self.0[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }
}

/// struct ifinfomsg.
fn ifinfo(index: i32, flags: u32, change: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// An rtnetlink socket of the network namespace of the thread that opened it.
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

impl Rtnl {
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2); the fd is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd, seq: 0 })
    }

    fn request(&mut self, ty: u16, flags: u16, body: &Msg) -> io::Result<()> {
        self.seq += 1;
        let mut m = Vec::with_capacity(16 + body.0.len());
        m.extend_from_slice(&((16 + body.0.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        m.extend_from_slice(&self.seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&body.0);
        // SAFETY: sending our own buffer on our socket (the kernel is the default peer).
        let n = unsafe { libc::send(self.fd.as_raw_fd(), m.as_ptr().cast(), m.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 16384];
        loop {
            // SAFETY: receiving into our own buffer.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut off = 0usize;
            let n = n as usize;
            while off + 16 <= n {
                let word = |o: usize| u32::from_ne_bytes(buf[o..o + 4].try_into().expect("4"));
                let len = word(off) as usize;
                let mty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                let seq = word(off + 8);
                if len < 16 || off + len > n {
                    return Err(io::Error::other("truncated netlink reply"));
                }
                if mty == NLMSG_ERROR && seq == self.seq && len >= 20 {
                    let err = i32::from_ne_bytes(buf[off + 16..off + 20].try_into().expect("4"));
                    return if err == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-err))
                    };
                }
                off += (len + 3) & !3;
            }
        }
    }

    /// A veth pair `name`/`peer` with `queues` TX and RX queues on each end; the peer
    /// is moved into the namespace `peer_ns` at creation.
    pub fn add_veth(
        &mut self,
        (name, mac): (&str, [u8; 6]),
        (peer, peer_mac): (&str, [u8; 6]),
        peer_ns: RawFd,
        queues: u32,
    ) -> io::Result<()> {
        let mut m = Msg::new(&ifinfo(0, 0, 0));
        m.attr(IFLA_IFNAME, &cstr(name))
            .attr(IFLA_ADDRESS, &mac)
            .attr(IFLA_NUM_TX_QUEUES, &queues.to_ne_bytes())
            .attr(IFLA_NUM_RX_QUEUES, &queues.to_ne_bytes())
            .nest(IFLA_LINKINFO, |m| {
                m.attr(IFLA_INFO_KIND, b"veth");
                m.nest(IFLA_INFO_DATA, |m| {
                    m.nest(VETH_INFO_PEER, |m| {
                        m.0.extend_from_slice(&ifinfo(0, 0, 0));
                        m.attr(IFLA_IFNAME, &cstr(peer))
                            .attr(IFLA_ADDRESS, &peer_mac)
                            .attr(IFLA_NET_NS_FD, &peer_ns.to_ne_bytes())
                            .attr(IFLA_NUM_TX_QUEUES, &queues.to_ne_bytes())
                            .attr(IFLA_NUM_RX_QUEUES, &queues.to_ne_bytes());
                    });
                });
            });
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &m)
    }

    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let m = Msg::new(&ifinfo(index as i32, IFF_UP, IFF_UP));
        self.request(RTM_NEWLINK, 0, &m)
    }

    /// `addr/prefix` on the interface; IPv6 without duplicate address detection, so the
    /// address is usable at once (pluto binds to it).
    pub fn add_addr(&mut self, index: u32, addr: IpAddr, prefix: u8) -> io::Result<()> {
        let (fam, bytes) = family(addr);
        let mut h = [0u8; 8];
        h[0] = fam;
        h[1] = prefix;
        h[2] = if addr.is_ipv6() { IFA_F_NODAD } else { 0 };
        h[4..8].copy_from_slice(&index.to_ne_bytes());
        let mut m = Msg::new(&h);
        m.attr(IFA_LOCAL, &bytes).attr(IFA_ADDRESS, &bytes);
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &m)
    }

    /// A permanent ARP (IPv4) or neighbour-discovery (IPv6) entry.
    pub fn add_neigh(&mut self, index: u32, addr: IpAddr, mac: [u8; 6]) -> io::Result<()> {
        let (fam, bytes) = family(addr);
        let mut h = [0u8; 12];
        h[0] = fam;
        h[4..8].copy_from_slice(&index.to_ne_bytes());
        h[8..10].copy_from_slice(&NUD_PERMANENT.to_ne_bytes());
        let mut m = Msg::new(&h);
        m.attr(NDA_DST, &bytes).attr(NDA_LLADDR, &mac);
        self.request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, &m)
    }

    /// `dst/prefix via gw dev index` (both of one family).
    pub fn add_route(&mut self, dst: IpAddr, prefix: u8, gw: IpAddr, index: u32) -> io::Result<()> {
        let (fam, dst) = family(dst);
        let (gfam, gw) = family(gw);
        if fam != gfam {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "route and gateway of different families",
            ));
        }
        let h = [
            fam,
            prefix,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            0,
            RTN_UNICAST,
        ];
        let mut m = Msg::new(&[&h[..], &[0u8; 4]].concat());
        m.attr(RTA_DST, &dst)
            .attr(RTA_GATEWAY, &gw)
            .attr(RTA_OIF, &index.to_ne_bytes());
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &m)
    }
}

/// Address family and address bytes for rtnetlink.
fn family(a: IpAddr) -> (u8, Vec<u8>) {
    match a {
        IpAddr::V4(a) => (AF_INET, a.octets().to_vec()),
        IpAddr::V6(a) => (AF_INET6, a.octets().to_vec()),
    }
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Index of interface `name` in the calling thread's namespace.
pub fn if_index(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: valid C string.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        i => Ok(i),
    }
}

/// A network namespace held by a file descriptor only: nothing is mounted, so it (and
/// the veth ends inside) goes away when the last descriptor closes and the last process
/// in it exits, even if this process dies.
pub struct Netns {
    fd: OwnedFd,
}

fn open_thread_ns() -> io::Result<OwnedFd> {
    std::fs::File::open("/proc/thread-self/ns/net").map(OwnedFd::from)
}

fn setns(fd: RawFd) -> io::Result<()> {
    // SAFETY: setns(2) on a namespace descriptor, for this thread only.
    if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Netns {
    pub fn new() -> io::Result<Self> {
        let orig = open_thread_ns()?;
        // SAFETY: unshare(2) of the network namespace affects this thread only.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = open_thread_ns();
        setns(orig.as_raw_fd())?;
        Ok(Self { fd: fd? })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Runs `f` with the calling thread inside this namespace (children it spawns start
    /// there too), then returns the thread to where it was.
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> io::Result<R> {
        struct Back(OwnedFd);
        impl Drop for Back {
            fn drop(&mut self) {
                // Also on unwinding: the thread must not stay in a namespace about to go.
                if let Err(e) = setns(self.0.as_raw_fd()) {
                    tracing::error!(error = %e, "cannot return to the original namespace");
                }
            }
        }
        let back = Back(open_thread_ns()?);
        setns(self.fd())?;
        let r = f();
        drop(back);
        Ok(r)
    }
}
