//! The flood topology without iproute2: a veth pair with one end in another namespace,
//! permanent neighbours and a route, as `netlink-packet-route` messages over
//! [`crate::rtnl`]; namespaces held by a descriptor (`nix`'s `unshare`/`setns`).

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteType,
};
use nix::sched::{CloneFlags, setns, unshare};

use crate::rtnl::{self, Rtnl};

/// Name, MAC, and `queues` TX and RX queues of one veth end.
fn veth_end(name: &str, mac: [u8; 6], queues: u32) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.attributes.extend([
        LinkAttribute::IfName(name.into()),
        LinkAttribute::Address(mac.to_vec()),
        LinkAttribute::NumTxQueues(queues),
        LinkAttribute::NumRxQueues(queues),
    ]);
    m
}

/// A veth pair `name`/`peer` with `queues` TX and RX queues on each end; the peer is
/// moved into the namespace `peer_ns` at creation.
pub fn add_veth(
    nl: &mut Rtnl,
    (name, mac): (&str, [u8; 6]),
    (peer, peer_mac): (&str, [u8; 6]),
    peer_ns: RawFd,
    queues: u32,
) -> io::Result<()> {
    let mut p = veth_end(peer, peer_mac, queues);
    p.attributes.push(LinkAttribute::NetNsFd(peer_ns));
    let mut m = veth_end(name, mac, queues);
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
    ]));
    nl.ack(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
}

/// `addr/prefix` on the interface (see [`rtnl::address`]).
pub fn add_addr(nl: &mut Rtnl, index: u32, addr: IpAddr, prefix: u8) -> io::Result<()> {
    let m = rtnl::address(index, addr, prefix);
    nl.ack(
        RouteNetlinkMessage::NewAddress(m),
        NLM_F_CREATE | NLM_F_EXCL,
    )
}

/// A permanent ARP (IPv4) or neighbour-discovery (IPv6) entry.
pub fn add_neigh(nl: &mut Rtnl, index: u32, addr: IpAddr, mac: [u8; 6]) -> io::Result<()> {
    let mut m = NeighbourMessage::default();
    m.header.family = rtnl::family(addr);
    m.header.ifindex = index;
    m.header.state = NeighbourState::Permanent;
    m.attributes.extend([
        NeighbourAttribute::Destination(match addr {
            IpAddr::V4(a) => NeighbourAddress::Inet(a),
            IpAddr::V6(a) => NeighbourAddress::Inet6(a),
        }),
        NeighbourAttribute::LinkLayerAddress(mac.to_vec()),
    ]);
    nl.ack(
        RouteNetlinkMessage::NewNeighbour(m),
        NLM_F_CREATE | NLM_F_EXCL,
    )
}

/// `dst/prefix via gw dev index` (both of one family).
pub fn add_route(nl: &mut Rtnl, dst: IpAddr, prefix: u8, gw: IpAddr, index: u32) -> io::Result<()> {
    if dst.is_ipv4() != gw.is_ipv4() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "route and gateway of different families",
        ));
    }
    let mut m = RouteMessage::default();
    m.header.address_family = rtnl::family(dst);
    m.header.destination_prefix_length = prefix;
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Boot;
    m.header.kind = RouteType::Unicast;
    m.attributes.extend([
        RouteAttribute::Destination(dst.into()),
        RouteAttribute::Gateway(gw.into()),
        RouteAttribute::Oif(index),
    ]);
    nl.ack(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
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

fn enter_ns(fd: BorrowedFd<'_>) -> io::Result<()> {
    // setns(2) moves this thread only.
    Ok(setns(fd, CloneFlags::CLONE_NEWNET)?)
}

impl Netns {
    pub fn new() -> io::Result<Self> {
        let orig = open_thread_ns()?;
        // unshare(2) of the network namespace affects this thread only.
        unshare(CloneFlags::CLONE_NEWNET)?;
        let fd = open_thread_ns();
        enter_ns(orig.as_fd())?;
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
                if let Err(e) = enter_ns(self.0.as_fd()) {
                    tracing::error!(error = %e, "cannot return to the original namespace");
                }
            }
        }
        let back = Back(open_thread_ns()?);
        enter_ns(self.fd.as_fd())?;
        let r = f();
        drop(back);
        Ok(r)
    }
}
