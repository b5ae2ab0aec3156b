//! The tokio driver of one [`Vrrp`] instance: raw IP sockets of protocol 112, the
//! timer, and the actions of the module docs (VIPs with rtnetlink, GARP/NA with
//! `AF_PACKET`, the XDP active flag through a callback).
//!
//! Receive: one raw socket per instance, bound to the interface, joined to the group
//! (224.0.0.18 or ff02::12). The TTL (IPv4: from the header the raw socket passes up)
//! or hop limit (IPv6: `IPV6_HOPLIMIT`) goes to [`Vrrp::handle_packet`], which drops
//! anything but 255; the arrival interface (`IP_PKTINFO`/`IPV6_PKTINFO`) must be ours.
//! Send: `sendmsg` with a `PKTINFO` that sets the primary address as source and the
//! interface, TTL/hop limit 255, TOS/traffic class 0xc0, multicast loop off.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use lb_common::wire::arp_nd;
use lb_common::wire::vrrp::{self as wire, Family};
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tracing::{info, warn};

use super::{Event, State, Stats, Vrrp};
use crate::net;

/// One instance to run: the state machine's settings plus where it lives.
#[derive(Clone, Debug)]
pub struct Instance {
    pub iface: String,
    pub config: super::Config,
    /// Prefix length of the VIPs on the interface (/32, /128 unless configured).
    pub prefix_len: u8,
}

/// What `ikelb status` shows of an instance.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Status {
    pub iface: String,
    pub vrid: u8,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// `init`, `backup` or `active`.
    pub state: String,
    pub priority: u8,
    pub interval_cs: u16,
    pub primary: IpAddr,
    /// The current Active's address (ours when Active).
    pub active: Option<IpAddr>,
    pub vips: Vec<IpAddr>,
    pub accepted: u64,
    pub sent: u64,
    pub became_active: u64,
    /// Dropped adverts by reason.
    pub dropped: Vec<(String, u64)>,
    /// Set when the instance was handed over as Active: what the next process needs.
    #[serde(skip)]
    pub kept: Option<Kept>,
}

/// How the daemon ends the instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Run,
    /// A stop: the priority-0 advert, the VIPs released.
    Release,
    /// A restart that keeps the fast path ([`Vrrp::hand_over`]): the VIPs stay.
    HandOver,
}

/// An Active instance handed over to the next process: when its last advert left and
/// at what interval (what the Backups' timers follow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kept {
    pub last_advert: Instant,
    pub interval_cs: u16,
}

impl Status {
    /// Before the instance runs.
    pub fn initial(inst: &Instance) -> Status {
        let c = &inst.config;
        Status {
            iface: inst.iface.clone(),
            vrid: c.vrid,
            family: if c.primary.is_ipv6() { "ipv6" } else { "ipv4" }.into(),
            state: "init".into(),
            priority: c.priority,
            interval_cs: c.interval_cs,
            primary: c.primary,
            active: None,
            vips: c.vips.clone(),
            accepted: 0,
            sent: 0,
            became_active: 0,
            dropped: Vec::new(),
            kept: None,
        }
    }

    fn of(inst: &Instance, v: &Vrrp) -> Status {
        let c = v.config();
        let st: &Stats = v.stats();
        Status {
            iface: inst.iface.clone(),
            vrid: c.vrid,
            family: match Family::of(c.primary) {
                Family::V4 => "ipv4",
                Family::V6 => "ipv6",
            }
            .into(),
            state: match v.state() {
                State::Initialize => "init",
                State::Backup => "backup",
                State::Active => "active",
            }
            .into(),
            priority: c.priority,
            interval_cs: c.interval_cs,
            primary: c.primary,
            active: v.active_addr(),
            vips: c.vips.clone(),
            accepted: st.accepted,
            sent: st.sent,
            became_active: st.became_active,
            dropped: super::DropReason::ALL
                .iter()
                .map(|r| (format!("{r:?}"), st.dropped(*r)))
                .collect(),
            kept: None,
        }
    }
}

fn setsockopt<T>(fd: RawFd, level: i32, name: i32, v: &T) -> io::Result<()> {
    // SAFETY: v points to a T of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            size_of::<T>() as u32,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A received datagram: source, destination, TTL or hop limit, the VRRP bytes in the
/// buffer.
type Received = (IpAddr, IpAddr, u8, std::ops::Range<usize>);

/// The raw socket of one instance.
struct Socket {
    fd: AsyncFd<OwnedFd>,
    family: Family,
    ifindex: u32,
    primary: IpAddr,
}

impl Socket {
    fn open(iface: &str, primary: IpAddr, multicast: bool) -> io::Result<Socket> {
        let family = Family::of(primary);
        let ifindex = net::ifindex(iface)?;
        let domain = match family {
            Family::V4 => libc::AF_INET,
            Family::V6 => libc::AF_INET6,
        };
        // SAFETY: plain socket(2); owned right away.
        let raw = unsafe {
            libc::socket(
                domain,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(wire::PROTOCOL),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: i32 = 1;
        let zero: i32 = 0;
        let ttl: i32 = i32::from(wire::TTL);
        let tos: i32 = 0xc0;
        let name = iface.as_bytes();
        // SAFETY: the name bytes for SO_BINDTODEVICE.
        let rc = unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                name.as_ptr().cast(),
                name.len() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        match family {
            Family::V4 => {
                setsockopt(raw, libc::IPPROTO_IP, libc::IP_PKTINFO, &one)?;
                setsockopt(raw, libc::IPPROTO_IP, libc::IP_TTL, &ttl)?;
                setsockopt(raw, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, &ttl)?;
                setsockopt(raw, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &zero)?;
                setsockopt(raw, libc::IPPROTO_IP, libc::IP_TOS, &tos)?;
                let mreq = libc::ip_mreqn {
                    imr_multiaddr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(wire::GROUP_V4.octets()),
                    },
                    imr_address: libc::in_addr { s_addr: 0 },
                    imr_ifindex: ifindex as i32,
                };
                setsockopt(raw, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreq)?;
                if multicast {
                    setsockopt(raw, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreq)?;
                }
            }
            Family::V6 => {
                setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &one)?;
                setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, &one)?;
                setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &ttl)?;
                setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &ttl)?;
                setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &zero)?;
                setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, &tos)?;
                let idx = ifindex as i32;
                setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &idx)?;
                if multicast {
                    let mreq = libc::ipv6_mreq {
                        ipv6mr_multiaddr: libc::in6_addr {
                            s6_addr: wire::GROUP_V6.octets(),
                        },
                        ipv6mr_interface: ifindex,
                    };
                    setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &mreq)?;
                }
            }
        }
        // SAFETY: the OwnedFd moves into the AsyncFd, which owns it from here on.
        let fd = unsafe { AsyncFd::register(fd)? };
        Ok(Socket {
            fd,
            family,
            ifindex,
            primary,
        })
    }

    /// Sends one advert from the primary address to `dst`.
    fn send(&self, dst: IpAddr, payload: &[u8]) -> io::Result<()> {
        let mut iov = libc::iovec {
            iov_base: payload.as_ptr().cast_mut().cast(),
            iov_len: payload.len(),
        };
        let mut cbuf = [0u64; 8];
        // SAFETY: zeroed msghdr, filled below with pointers that outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        match (dst, self.primary) {
            (IpAddr::V4(d), IpAddr::V4(src)) => {
                sin.sin_family = libc::AF_INET as u16;
                sin.sin_addr.s_addr = u32::from_ne_bytes(d.octets());
                msg.msg_name = (&raw mut sin).cast();
                msg.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
                let info = libc::in_pktinfo {
                    ipi_ifindex: self.ifindex as i32,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from_ne_bytes(src.octets()),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                put_cmsg(
                    &mut msg,
                    &mut cbuf,
                    libc::IPPROTO_IP,
                    libc::IP_PKTINFO,
                    &info,
                );
            }
            (IpAddr::V6(d), IpAddr::V6(src)) => {
                sin6.sin6_family = libc::AF_INET6 as u16;
                sin6.sin6_addr.s6_addr = d.octets();
                sin6.sin6_scope_id = self.ifindex;
                msg.msg_name = (&raw mut sin6).cast();
                msg.msg_namelen = size_of::<libc::sockaddr_in6>() as u32;
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: src.octets(),
                    },
                    ipi6_ifindex: self.ifindex,
                };
                put_cmsg(
                    &mut msg,
                    &mut cbuf,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_PKTINFO,
                    &info,
                );
            }
            _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "family")),
        }
        // SAFETY: msg points to live buffers.
        let n = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// One datagram: (src, dst, ttl, payload range in buf), or `None` when it came in on
    /// another interface or is not even an IP header.
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut cbuf = [0u64; 16];
        // SAFETY: zeroed msghdr and sockaddr storage, filled by recvmsg.
        let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&raw mut from).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_storage>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 16]>();
        // SAFETY: msg points to live buffers.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        let mut ifindex = None;
        let mut hop = None;
        let mut dst6 = None;
        // SAFETY: walking the control messages the kernel wrote.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let h = &*c;
                let data = libc::CMSG_DATA(c);
                match (h.cmsg_level, h.cmsg_type) {
                    (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                        let i: libc::in_pktinfo = std::ptr::read_unaligned(data.cast());
                        ifindex = Some(i.ipi_ifindex as u32);
                    }
                    (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                        let i: libc::in6_pktinfo = std::ptr::read_unaligned(data.cast());
                        ifindex = Some(i.ipi6_ifindex);
                        dst6 = Some(Ipv6Addr::from(i.ipi6_addr.s6_addr));
                    }
                    (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                        let v: i32 = std::ptr::read_unaligned(data.cast());
                        hop = Some(v as u8);
                    }
                    _ => {}
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        if ifindex.is_some_and(|i| i != self.ifindex) {
            return Ok(None);
        }
        match self.family {
            Family::V4 => {
                // The raw IPv4 socket passes the header up.
                if n < 20 || buf[0] >> 4 != 4 {
                    return Ok(None);
                }
                let ihl = usize::from(buf[0] & 0x0f) * 4;
                let total = usize::from(u16::from_be_bytes([buf[2], buf[3]])).min(n);
                if ihl < 20 || total < ihl {
                    return Ok(None);
                }
                let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
                let dst = Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]);
                Ok(Some((src.into(), dst.into(), buf[8], ihl..total)))
            }
            Family::V6 => {
                // SAFETY: the kernel wrote a sockaddr_in6 for an AF_INET6 socket.
                let sin6: libc::sockaddr_in6 =
                    unsafe { std::ptr::read_unaligned((&raw const from).cast()) };
                let src = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                let Some(dst) = dst6 else { return Ok(None) };
                Ok(Some((src.into(), dst.into(), hop.unwrap_or(0), 0..n)))
            }
        }
    }
}

fn put_cmsg<T>(msg: &mut libc::msghdr, cbuf: &mut [u64; 8], level: i32, ty: i32, v: &T) {
    // SAFETY: cbuf is large and aligned enough for one cmsg of T.
    unsafe {
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(size_of::<T>() as u32) as usize;
        let c = libc::CMSG_FIRSTHDR(msg);
        (*c).cmsg_level = level;
        (*c).cmsg_type = ty;
        (*c).cmsg_len = libc::CMSG_LEN(size_of::<T>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), std::ptr::read(v));
    }
}

/// How many GARP/NA go out on becoming Active (keepalived sends 5).
const ANNOUNCE: usize = 5;

/// Runs `inst` until `stop` says how to end: [`Stop::Release`] sends the priority-0
/// advert and releases the VIPs, [`Stop::HandOver`] leaves them to the next process
/// (the final status carries [`Kept`] when it was Active). With `resume`, the previous
/// process's record, it starts by [`Vrrp::resume`]. `on_role(true)` is called on
/// becoming Active before the VIPs are announced, `on_role(false)` on leaving it.
/// Status goes out on `status` after every input.
pub async fn run(
    inst: Instance,
    mut stop: watch::Receiver<Stop>,
    mut priority: watch::Receiver<u8>,
    mut on_role: impl FnMut(bool) + Send,
    status: watch::Sender<Status>,
    resume: Option<Kept>,
) -> io::Result<()> {
    let mut vrrp = Vrrp::new(inst.config.clone())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let sock = Socket::open(
        &inst.iface,
        inst.config.primary,
        inst.config.peers.is_empty(),
    )
    .map_err(|e| io::Error::new(e.kind(), format!("VRRP socket on {}: {e}", inst.iface)))?;
    let frames = net::FrameSender::new(&inst.iface)?;
    let mac = net::mac(&inst.iface)?;
    info!(vrid = inst.config.vrid, iface = %inst.iface, primary = %inst.config.primary, priority = inst.config.priority, interval_cs = inst.config.interval_cs, "starting");
    match resume {
        Some(k) => vrrp.resume(Instant::now(), k.last_advert, k.interval_cs),
        None => vrrp.start(Instant::now()),
    }
    let mut buf = vec![0u8; 2048];
    let mut handing = false;
    let mut kept = None;
    loop {
        let now_stop = *stop.borrow();
        match now_stop {
            Stop::Release => vrrp.shutdown(Instant::now()),
            Stop::HandOver if !handing => {
                handing = true;
                vrrp.hand_over(Instant::now());
            }
            Stop::HandOver | Stop::Run => {}
        }
        while let Some(t) = vrrp.poll_transmit() {
            if let Err(e) = sock.send(t.dst, &t.payload) {
                warn!(dst = %t.dst, error = %e, "advert not sent");
            }
        }
        while let Some(ev) = vrrp.poll_event() {
            match ev {
                Event::BecameActive => {
                    on_role(true);
                    for v in &inst.config.vips {
                        if let Err(e) = net::add_address(&inst.iface, *v, inst.prefix_len) {
                            warn!(error = %e, "VIP not added");
                        }
                    }
                    announce(&frames, mac, &inst.config.vips);
                }
                Event::BecameBackup | Event::Stopped => {
                    on_role(false);
                    for v in &inst.config.vips {
                        if let Err(e) = net::del_address(&inst.iface, *v, inst.prefix_len) {
                            warn!(error = %e, "VIP not removed");
                        }
                    }
                }
                Event::HandedOver { active } => {
                    kept = vrrp.last_advert().filter(|_| active).map(|t| Kept {
                        last_advert: t,
                        interval_cs: vrrp.config().interval_cs,
                    });
                }
            }
        }
        let mut st = Status::of(&inst, &vrrp);
        st.kept = kept;
        status.send_replace(st);
        // A handover is done once the instance left its role (at its next advert).
        if now_stop == Stop::Release || (handing && vrrp.state() == State::Initialize) {
            return Ok(());
        }
        let deadline = vrrp.poll_timeout();
        tokio::select! {
            r = sock.fd.readable() => {
                let mut guard = r?;
                loop {
                    match guard.try_io(|_| sock.recv(&mut buf)) {
                        Ok(Ok(Some((src, dst, ttl, range)))) => {
                            vrrp.handle_packet(Instant::now(), src, dst, ttl, &buf[range]);
                        }
                        Ok(Ok(None)) => {}
                        Ok(Err(e)) => return Err(e),
                        Err(_would_block) => break,
                    }
                }
            }
            () = sleep_until_opt(deadline) => vrrp.handle_timeout(Instant::now()),
            // The reload checked the change; its sender outlives this task.
            Ok(()) = priority.changed() => {
                let p = *priority.borrow_and_update();
                vrrp.set_priority(Instant::now(), p)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
            }
            Ok(()) = stop.changed() => {}
        }
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

fn announce(frames: &net::FrameSender, mac: [u8; 6], vips: &[IpAddr]) {
    for _ in 0..ANNOUNCE {
        for v in vips {
            let r = match v {
                IpAddr::V4(a) => frames.send(&arp_nd::gratuitous_arp(mac, *a)),
                IpAddr::V6(a) => frames.send(&arp_nd::unsolicited_na(mac, *a, *a, false)),
            };
            if let Err(e) = r {
                warn!(vip = %v, error = %e, "announcement not sent");
            }
        }
    }
}
