//! A synchronous rtnetlink (RFC 3549) client: the messages are `netlink-packet-route`'s,
//! the socket `netlink-sys`'s. Synchronous on purpose: the callers are a blocking
//! thread per network namespace (the flood topology) or a few requests on a VRRP
//! transition, where the async `rtnetlink` crate would only add a runtime to drive.
//! Each socket acts on the network namespace of the thread that opened it.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// Receive buffer: the kernel fills one dump datagram up to 32 KiB.
const RECV_BUF: usize = 64 << 10;

pub struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// The address family of `a` in rtnetlink's terms.
pub fn family(a: IpAddr) -> AddressFamily {
    match a {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn bad_reply(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("rtnetlink reply: {e}"))
}

impl Rtnl {
    pub fn open() -> io::Result<Self> {
        let sock = Socket::new(NETLINK_ROUTE)?;
        // The kernel (port 0) is the only peer.
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Self {
            sock,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Sends `msg` with `flags` (`NLM_F_REQUEST` added); its sequence number.
    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags | NLM_F_REQUEST;
        header.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        m.finalize();
        let mut out = vec![0; m.buffer_len()];
        m.serialize(&mut out);
        self.sock.send(&out, 0)?;
        Ok(self.seq)
    }

    /// Reads replies to `seq`, each handed to `each` until it returns `Some`. An error
    /// reply ends the wait with its errno; an acknowledgement and the end of a dump
    /// come as `Done`.
    fn replies<T>(&mut self, seq: u32, mut each: impl FnMut(Reply) -> Option<T>) -> io::Result<T> {
        loop {
            let n = self.sock.recv(&mut &mut self.buf[..], 0)?.min(RECV_BUF);
            let mut b = &self.buf[..n];
            while !b.is_empty() {
                let len = NetlinkBuffer::new_checked(b).map_err(bad_reply)?.length() as usize;
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&b[..len])
                    .map_err(bad_reply)?;
                b = &b[len.next_multiple_of(4).min(b.len())..];
                if m.header.sequence_number != seq {
                    continue;
                }
                let r = match m.payload {
                    NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                    NetlinkPayload::Error(_) | NetlinkPayload::Done(_) => Reply::Done,
                    NetlinkPayload::InnerMessage(m) => Reply::Message(m),
                    _ => continue,
                };
                if let Some(t) = each(r) {
                    return Ok(t);
                }
            }
        }
    }

    /// A change (`RTM_NEW*`, `RTM_DEL*`) with `flags`, acknowledged by the kernel.
    pub fn ack(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        let seq = self.send(msg, flags | NLM_F_ACK)?;
        self.replies(seq, |r| matches!(r, Reply::Done).then_some(()))
    }

    /// Every message a dump request (`RTM_GET*` with `NLM_F_DUMP`) answers.
    pub fn dump(&mut self, msg: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
        let seq = self.send(msg, NLM_F_DUMP)?;
        let mut out = Vec::new();
        self.replies(seq, |r| match r {
            Reply::Message(m) => {
                out.push(m);
                None
            }
            Reply::Done => Some(()),
        })?;
        Ok(out)
    }

    /// The one message a plain `RTM_GET*` request answers.
    pub fn get(&mut self, msg: RouteNetlinkMessage) -> io::Result<RouteNetlinkMessage> {
        let seq = self.send(msg, 0)?;
        self.replies(seq, |r| match r {
            Reply::Message(m) => Some(Ok(m)),
            Reply::Done => Some(Err(bad_reply("no answer"))),
        })?
    }

    /// Sets the link with `index` up.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.ack(RouteNetlinkMessage::NewLink(m), 0)
    }
}

enum Reply {
    Message(RouteNetlinkMessage),
    Done,
}

/// `addr/prefix` on the link with `index`; IPv6 without duplicate address detection,
/// so the address is usable at once (a VIP that moves, an address a peer binds to).
pub fn address(index: u32, addr: IpAddr, prefix: u8) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = family(addr);
    m.header.prefix_len = prefix;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(addr));
    m.attributes.push(AddressAttribute::Address(addr));
    if addr.is_ipv6() {
        m.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    m
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::Emitable;

    use super::*;

    #[test]
    fn address_message_layout() {
        let m = address(7, "10.0.0.1".parse().unwrap(), 32);
        let mut b = vec![0; m.buffer_len()];
        m.emit(&mut b);
        // ifaddrmsg: family, prefix, flags, scope, index; IFA_LOCAL then IFA_ADDRESS.
        assert_eq!(&b[..4], &[libc::AF_INET as u8, 32, 0, 0]);
        assert_eq!(u32::from_ne_bytes(b[4..8].try_into().unwrap()), 7);
        assert_eq!(b.len(), 8 + 8 + 8);
        assert_eq!(u16::from_ne_bytes([b[10], b[11]]), libc::IFA_LOCAL);
        assert_eq!(u16::from_ne_bytes([b[18], b[19]]), libc::IFA_ADDRESS);
        // IPv6: two 20-byte addresses and IFA_FLAGS with IFA_F_NODAD.
        let m6 = address(1, "2001:db8::1".parse().unwrap(), 128);
        let mut b = vec![0; m6.buffer_len()];
        m6.emit(&mut b);
        assert_eq!(b.len(), 8 + 20 + 20 + 8);
        assert_eq!(u16::from_ne_bytes([b[50], b[51]]), libc::IFA_FLAGS);
        assert_eq!(
            u32::from_ne_bytes(b[52..56].try_into().unwrap()),
            libc::IFA_F_NODAD
        );
    }

    #[test]
    fn the_loopback_link_can_be_dumped() {
        let mut nl = Rtnl::open().expect("rtnetlink socket");
        let links = nl
            .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
            .expect("RTM_GETLINK dump");
        let lo = nix::net::if_::if_nametoindex("lo").expect("lo");
        assert!(
            links
                .iter()
                .any(|m| matches!(m, RouteNetlinkMessage::NewLink(l) if l.header.index == lo)),
            "{} links, none is lo",
            links.len()
        );
    }
}
