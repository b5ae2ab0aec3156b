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

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::Instant;

use lb_common::wire::arp_nd;
use lb_common::wire::vrrp::{self as wire, Family};
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrIn6, SockaddrStorage,
    recvmsg, sendmsg, setsockopt, sockopt,
};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Type};
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

/// A received datagram: source, destination, TTL or hop limit, the VRRP bytes in the
/// buffer.
type Received = (IpAddr, IpAddr, u8, std::ops::Range<usize>);

/// The raw socket of one instance.
struct Socket {
    fd: AsyncFd<socket2::Socket>,
    family: Family,
    ifindex: u32,
    primary: IpAddr,
}

impl Socket {
    fn open(iface: &str, primary: IpAddr, multicast: bool) -> io::Result<Socket> {
        let family = Family::of(primary);
        let ifindex = net::ifindex(iface)?;
        let domain = match family {
            Family::V4 => Domain::IPV4,
            Family::V6 => Domain::IPV6,
        };
        let ty = Type::RAW.nonblocking().cloexec();
        let s = socket2::Socket::new(domain, ty, Some(Protocol::from(i32::from(wire::PROTOCOL))))?;
        let ttl = u32::from(wire::TTL);
        let tos = 0xc0;
        s.bind_device(Some(iface.as_bytes()))?;
        match family {
            Family::V4 => {
                setsockopt(&s, sockopt::Ipv4PacketInfo, &true)?;
                s.set_ttl_v4(ttl)?;
                s.set_multicast_ttl_v4(ttl)?;
                s.set_multicast_loop_v4(false)?;
                s.set_tos_v4(tos)?;
                net::set_multicast_if_v4(&s, ifindex)?;
                if multicast {
                    s.join_multicast_v4_n(
                        &wire::GROUP_V4,
                        &InterfaceIndexOrAddress::Index(ifindex),
                    )?;
                }
            }
            Family::V6 => {
                setsockopt(&s, sockopt::Ipv6RecvPacketInfo, &true)?;
                s.set_recv_hoplimit_v6(true)?;
                s.set_unicast_hops_v6(ttl)?;
                s.set_multicast_hops_v6(ttl)?;
                s.set_multicast_loop_v6(false)?;
                s.set_tclass_v6(tos)?;
                s.set_multicast_if_v6(ifindex)?;
                if multicast {
                    s.join_multicast_v6(&wire::GROUP_V6, ifindex)?;
                }
            }
        }
        // SAFETY: the socket moves into the AsyncFd, which owns it (and so its
        // descriptor) from here on.
        let fd = unsafe { AsyncFd::register(s)? };
        Ok(Socket {
            fd,
            family,
            ifindex,
            primary,
        })
    }

    /// Sends one advert from the primary address to `dst`.
    fn send(&self, dst: IpAddr, payload: &[u8]) -> io::Result<()> {
        let iov = [IoSlice::new(payload)];
        let fd = self.fd.as_raw_fd();
        let flags = MsgFlags::empty();
        match (dst, self.primary) {
            (IpAddr::V4(d), IpAddr::V4(src)) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: self.ifindex as i32,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from_ne_bytes(src.octets()),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                let to = SockaddrIn::from(SocketAddrV4::new(d, 0));
                let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
                sendmsg(fd, &iov, &cmsg, flags, Some(&to))?;
            }
            (IpAddr::V6(d), IpAddr::V6(src)) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: src.octets(),
                    },
                    ipi6_ifindex: self.ifindex,
                };
                let to = SockaddrIn6::from(SocketAddrV6::new(d, 0, 0, self.ifindex));
                let cmsg = [ControlMessage::Ipv6PacketInfo(&info)];
                sendmsg(fd, &iov, &cmsg, flags, Some(&to))?;
            }
            _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "family")),
        }
        Ok(())
    }

    /// One datagram: (src, dst, ttl, payload range in buf), or `None` when it came in on
    /// another interface or is not even an IP header.
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        // Room for more than the two control messages asked for (PKTINFO, HOPLIMIT).
        let mut cbuf = nix::cmsg_space!([u8; 128]);
        let (n, from, ifindex, hop, dst6) = {
            let mut iov = [IoSliceMut::new(buf)];
            let m = recvmsg::<SockaddrStorage>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cbuf),
                MsgFlags::empty(),
            )?;
            // Truncated control data cannot tell the arrival interface: not ours.
            let Ok(cmsgs) = m.cmsgs() else {
                return Ok(None);
            };
            let (mut ifindex, mut hop, mut dst6) = (None, None, None);
            for c in cmsgs {
                match c {
                    ControlMessageOwned::Ipv4PacketInfo(i) => ifindex = Some(i.ipi_ifindex as u32),
                    ControlMessageOwned::Ipv6PacketInfo(i) => {
                        ifindex = Some(i.ipi6_ifindex);
                        dst6 = Some(Ipv6Addr::from(i.ipi6_addr.s6_addr));
                    }
                    ControlMessageOwned::Ipv6HopLimit(v) => hop = Some(v as u8),
                    _ => {}
                }
            }
            let from = m.address.and_then(|a| a.as_sockaddr_in6().map(|a| a.ip()));
            (m.bytes, from, ifindex, hop, dst6)
        };
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
                let (Some(from), Some(dst)) = (from, dst6) else {
                    return Ok(None);
                };
                Ok(Some((from.into(), dst.into(), hop.unwrap_or(0), 0..n)))
            }
        }
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
