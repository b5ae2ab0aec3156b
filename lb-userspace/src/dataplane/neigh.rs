//! Member MACs for same-L2 forwarding (docs/architecture.md §6.3): the kernel's
//! neighbour table, read with one rtnetlink dump; resolution is provoked by a datagram
//! to the member's discard port (RFC 863), which the member may ignore.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, UdpSocket};

use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};

use crate::rtnl::Rtnl;

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
    // Family unspecified, index 0: both families, all interfaces.
    let all = Rtnl::open()?.dump(RouteNetlinkMessage::GetNeighbour(
        NeighbourMessage::default(),
    ))?;
    Ok(all
        .iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewNeighbour(n) => usable(n),
            _ => None,
        })
        .collect())
}

/// The entry's address and MAC when its link-layer address can be used.
fn usable(n: &NeighbourMessage) -> Option<(IpAddr, [u8; 6])> {
    use NeighbourState as S;
    if !matches!(
        n.header.state,
        S::Reachable | S::Stale | S::Delay | S::Probe | S::Permanent
    ) {
        return None;
    }
    let (mut dst, mut mac) = (None, None);
    for a in &n.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => dst = Some((*v4).into()),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                dst = Some((*v6).into())
            }
            NeighbourAttribute::LinkLayerAddress(l) => mac = <[u8; 6]>::try_from(&l[..]).ok(),
            _ => {}
        }
    }
    Some((dst?, mac?))
}

/// A route's gateway (`None`: on-link) and preferred source address.
pub type Route4 = (Option<[u8; 4]>, Option<[u8; 4]>);

/// The kernel's route to IPv4 `dst`, for IP-in-IP to a routed member
/// (docs/architecture.md §6.4).
pub fn route4(dst: [u8; 4]) -> io::Result<Route4> {
    let mut q = RouteMessage::default();
    q.header.address_family = crate::rtnl::family(IpAddr::from(dst));
    q.header.destination_prefix_length = 32;
    q.attributes
        .push(RouteAttribute::Destination(RouteAddress::Inet(dst.into())));
    match Rtnl::open()?.get(RouteNetlinkMessage::GetRoute(q))? {
        RouteNetlinkMessage::NewRoute(r) => Ok(route_of(&r)),
        m => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "RTM_GETROUTE answered with message type {}",
                m.message_type()
            ),
        )),
    }
}

fn route_of(r: &RouteMessage) -> Route4 {
    let v4 = |a: &RouteAddress| match a {
        RouteAddress::Inet(a) => Some(a.octets()),
        _ => None,
    };
    let (mut gw, mut src) = (None, None);
    for a in &r.attributes {
        match a {
            RouteAttribute::Gateway(a) => gw = v4(a),
            RouteAttribute::PrefSource(a) => src = v4(a),
            _ => {}
        }
    }
    (gw, src)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RTM_NEWNEIGH as the kernel sends it: ndmsg, NDA_DST, NDA_LLADDR.
    fn kernel_neighbour(state: u16) -> NeighbourMessage {
        let mut m = Vec::new();
        m.extend_from_slice(&48u32.to_ne_bytes());
        m.extend_from_slice(&libc::RTM_NEWNEIGH.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&[2, 0, 0, 0, 3, 0, 0, 0]);
        m.extend_from_slice(&state.to_ne_bytes());
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(&8u16.to_ne_bytes());
        m.extend_from_slice(&1u16.to_ne_bytes());
        m.extend_from_slice(&[192, 0, 2, 7]);
        m.extend_from_slice(&10u16.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes());
        m.extend_from_slice(&[2, 0, 0, 0, 0, 7, 0, 0]);
        let m = netlink_packet_core::NetlinkMessage::<RouteNetlinkMessage>::deserialize(&m)
            .expect("a kernel neighbour message");
        match m.payload {
            netlink_packet_core::NetlinkPayload::InnerMessage(
                RouteNetlinkMessage::NewNeighbour(n),
            ) => n,
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn usable_neighbour_entries_only() {
        assert_eq!(
            usable(&kernel_neighbour(0x02)),
            Some(("192.0.2.7".parse().unwrap(), [2, 0, 0, 0, 0, 7]))
        );
        // PERMANENT is usable; INCOMPLETE and FAILED are not.
        assert!(usable(&kernel_neighbour(0x80)).is_some());
        assert_eq!(usable(&kernel_neighbour(0x01)), None);
        assert_eq!(usable(&kernel_neighbour(0x20)), None);
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
