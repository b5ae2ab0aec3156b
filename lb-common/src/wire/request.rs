//! Reference model of the fast path's decision, over a whole Ethernet frame.
//!
//! The XDP program implements exactly these rules with bounded pointer reads; this
//! slice-based version is what userspace (slow path, tests, mutation runs) uses to know
//! what the program must do with a frame, and [`emit_reply_frame`] the bytes it must send.

use super::answer;
use super::ike::{self, field};
use super::l2l3::{self, ipv4, ipv6, udp};
use super::redirect;
use super::{be16, be32};
use crate::checksum;
use crate::hash::mix64;
use crate::maps::{Stat, Target, VIP_MODE_AUTH, VLAN_ANY, Vip, vlan_push};

/// What the parser learnt from a request it would answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub v6: bool,
    /// Bytes of Ethernet header plus VLAN tags.
    pub l2_len: usize,
    /// IP header length (options included).
    pub ip_hlen: usize,
    /// Non-ESP marker present (port 4500).
    pub marker: bool,
    /// Client address (IPv4 in the first 4 bytes).
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub spi_i: [u8; 8],
    /// Frame offset of the IKE header.
    pub ike_off: usize,
    pub ike_len: usize,
    /// Frame offset and length of the Ni data.
    pub nonce_off: usize,
    pub nonce_len: usize,
}

impl Request {
    pub fn nonce<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        &frame[self.nonce_off..self.nonce_off + self.nonce_len]
    }
    /// Slot-table hash under `key`: the same request (and its retransmissions) lands on
    /// the same slot.
    pub fn hash(&self, key: &[u64; 2]) -> u32 {
        flow_hash(key, &self.src, self.sport, &self.spi_i)
    }
    /// IKE length of our answer with target `t`.
    pub fn reply_ike_len(&self, t: &Target) -> usize {
        redirect::ike_len(t.ident_len as usize, self.nonce_len)
    }
}

/// Hash of (client address, client port, SPIi) that indexes the slot table, keyed by
/// the secret `Config.hash_key`: each key word enters before a round of [`mix64`], so
/// without the key no client can compute offline which SPIi lands it on which member.
/// Not a cryptographic PRF: a client that probes can still learn where its own flows
/// land (it sees the answer), at the per-source rate limit's pace, and that holds for
/// any hash of what the client chooses.
#[inline(always)]
pub fn flow_hash(key: &[u64; 2], addr: &[u8; 16], port: u16, spi: &[u8; 8]) -> u32 {
    let a0 = u64::from_be_bytes([
        addr[0], addr[1], addr[2], addr[3], addr[4], addr[5], addr[6], addr[7],
    ]);
    let a1 = u64::from_be_bytes([
        addr[8], addr[9], addr[10], addr[11], addr[12], addr[13], addr[14], addr[15],
    ]);
    let s = u64::from_be_bytes(*spi);
    let h = mix64(s ^ u64::from(port) ^ key[0]) ^ a0;
    let h = mix64(h ^ key[1]) ^ a1;
    (mix64(h ^ key[0]) >> 32) as u32
}

/// Is `nh` an IPv6 extension header (RFC 8200 §4, RFC 7045)?
#[inline(always)]
pub const fn ipv6_ext_header(nh: u8) -> bool {
    matches!(nh, 0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254)
}

/// Is `src` (IPv4: the first 4 bytes) a unicast host that may get an answer? Not
/// 0.0.0.0/8, 127/8, 224/4 (multicast) or 240/4 (class E, with the broadcast address);
/// not ::, ::1 or ff00::/8, nor an IPv4-mapped form of a refused IPv4 address; and not
/// the VIP it was sent to. Answers to such sources would reflect towards addresses
/// that never asked (docs/protocol.md §2.8).
pub fn unicast_source(v6: bool, src: &[u8; 16], dst: &[u8; 16]) -> bool {
    let v4_ok = |a: &[u8]| !matches!(a[0], 0 | 127 | 224..);
    if src == dst {
        return false;
    }
    if !v6 {
        return v4_ok(&src[..4]);
    }
    match src {
        [0xff, ..] => false,
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 | 1] => false,
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, v4 @ ..] => v4_ok(v4),
        _ => true,
    }
}

/// Decides what the fast path does with `frame`. `vip(v6, dst)` returns the VIP's map
/// value if `dst` is a configured VIP. `Ok` means "answer it"; `Err` names the counter
/// of the pass or drop. `active` is the VRRP/static active flag.
pub fn parse(
    frame: &[u8],
    active: bool,
    vip: impl Fn(bool, &[u8; 16]) -> Option<Vip>,
) -> Result<Request, Stat> {
    if !active {
        return Err(Stat::PassInactive);
    }
    let mut etype = be16(frame, l2l3::ETH_TYPE).ok_or(Stat::PassNotIp)?;
    let mut l2 = l2l3::ETH_HLEN;
    let mut vlans = 0;
    for _ in 0..l2l3::MAX_VLAN {
        if !l2l3::is_vlan_tpid(etype) {
            break;
        }
        vlans = vlan_push(vlans, be16(frame, l2).ok_or(Stat::PassNotIp)?);
        etype = be16(frame, l2 + 2).ok_or(Stat::PassNotIp)?;
        l2 += l2l3::VLAN_HLEN;
    }
    // The VIP lives behind one tag stack; elsewhere its address is someone else's.
    let bound = |v: Vip| {
        if v.vlans == VLAN_ANY || v.vlans == vlans {
            Ok(v.mode)
        } else {
            Err(Stat::PassOtherVlan)
        }
    };
    let v6 = match etype {
        l2l3::ETHERTYPE_IPV4 => false,
        l2l3::ETHERTYPE_IPV6 => true,
        _ => return Err(Stat::PassNotIp),
    };
    let ip = frame.get(l2..).ok_or(Stat::PassNotIp)?;
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    let (hlen, ip_payload, mode) = if v6 {
        let h = ip.get(..ipv6::HLEN).ok_or(Stat::PassNotIp)?;
        if h[0] >> 4 != 6 {
            return Err(Stat::PassNotIp);
        }
        src.copy_from_slice(&h[ipv6::SRC]);
        dst.copy_from_slice(&h[ipv6::DST]);
        let mode = bound(vip(true, &dst).ok_or(Stat::PassNotVip)?)?;
        let nh = h[ipv6::NEXT_HEADER];
        if nh != udp::PROTO {
            return Err(if ipv6_ext_header(nh) {
                Stat::PassIpv6ExtHeader
            } else {
                Stat::PassNotUdp
            });
        }
        let plen = usize::from(be16(h, ipv6::PAYLOAD_LEN).unwrap_or(0));
        if ip.len() < ipv6::HLEN + plen {
            return Err(Stat::DropTruncated);
        }
        (ipv6::HLEN, plen, mode)
    } else {
        let h = ip.get(..ipv4::HLEN).ok_or(Stat::PassNotIp)?;
        let ihl = usize::from(h[0] & 0x0f) * 4;
        if h[0] >> 4 != 4 || ihl < ipv4::HLEN {
            return Err(Stat::PassNotIp);
        }
        src[..4].copy_from_slice(&h[ipv4::SRC]);
        dst[..4].copy_from_slice(&h[ipv4::DST]);
        let mode = bound(vip(false, &dst).ok_or(Stat::PassNotVip)?)?;
        if h[ipv4::PROTO] != udp::PROTO {
            return Err(Stat::PassNotUdp);
        }
        if be16(h, ipv4::FRAG).unwrap_or(0) & ipv4::FRAG_MASK != 0 {
            return Err(Stat::PassFragment);
        }
        let total = usize::from(be16(h, ipv4::TOTAL_LEN).unwrap_or(0));
        let hdr = ip.get(..ihl).ok_or(Stat::DropTruncated)?;
        if total < ihl {
            return Err(Stat::DropBadLength);
        }
        if ip.len() < total {
            return Err(Stat::DropTruncated);
        }
        if checksum::fold(checksum::sum_bytes(0, hdr)) != 0xffff {
            return Err(Stat::DropBadChecksum);
        }
        (ihl, total - ihl, mode)
    };
    let u = &ip[hlen..hlen + ip_payload];
    if u.len() < udp::HLEN {
        return Err(Stat::DropBadLength);
    }
    let sport = be16(u, udp::SRC_PORT).unwrap_or(0);
    let dport = be16(u, udp::DST_PORT).unwrap_or(0);
    let marker = match dport {
        ike::PORT_IKE => false,
        ike::PORT_NATT => true,
        _ => return Err(Stat::PassNotIkePort),
    };
    if sport == 0 || !unicast_source(v6, &src, &dst) {
        return Err(Stat::DropBadSource);
    }
    if usize::from(be16(u, udp::LENGTH).unwrap_or(0)) != u.len() {
        return Err(Stat::DropBadLength);
    }
    let csum = be16(u, udp::CHECKSUM).unwrap_or(0);
    if csum != 0 || v6 {
        let ipw = &ip[..hlen];
        let (s, d) = if v6 {
            (&ipw[ipv6::SRC], &ipw[ipv6::DST])
        } else {
            (&ipw[ipv4::SRC], &ipw[ipv4::DST])
        };
        let pseudo = checksum::sum_addr(checksum::sum_addr(0, s), d)
            + u64::from(udp::PROTO)
            + u.len() as u64;
        if csum == 0 || checksum::fold(checksum::sum_bytes(pseudo, u)) != 0xffff {
            return Err(Stat::DropBadChecksum);
        }
    }
    let mut ike_msg = &u[udp::HLEN..];
    if marker {
        if ike_msg == [0xff] {
            return Err(Stat::PassKeepalive);
        }
        match ike_msg.get(..ike::NON_ESP_MARKER_LEN) {
            Some([0, 0, 0, 0]) => ike_msg = &ike_msg[ike::NON_ESP_MARKER_LEN..],
            _ => return Err(Stat::PassEsp),
        }
    }
    if mode == VIP_MODE_AUTH {
        return Err(Stat::PassAuthMode);
    }
    let ike = decide_ike(ike_msg)?;
    let ike_off = l2 + hlen + udp::HLEN + if marker { ike::NON_ESP_MARKER_LEN } else { 0 };
    Ok(Request {
        v6,
        l2_len: l2,
        ip_hlen: hlen,
        marker,
        src,
        dst,
        sport,
        dport,
        spi_i: ike.spi_i,
        ike_off,
        ike_len: ike.len,
        nonce_off: ike_off + ike.nonce_off,
        nonce_len: ike.nonce_len,
    })
}

/// What the fast path decides about an IKE message (the UDP payload after any non-ESP
/// marker) to a VIP in init mode: `Ok` to answer it with a REDIRECT, or the counter of
/// its pass or drop. The XDP program's walk and the userspace responder's init mode
/// (`--xdp-mode off`, a VRRP backup's passed frames) both follow this one decision.
pub fn decide_ike(ike_msg: &[u8]) -> Result<IkeRequest, Stat> {
    let hdr = ike_msg.get(..ike::HEADER_LEN).ok_or(Stat::DropTruncated)?;
    if hdr[field::VERSION] >> 4 != 2 {
        return Err(Stat::PassNotIkev2);
    }
    if hdr[field::EXCHANGE] != ike::EXCHANGE_IKE_SA_INIT {
        return Err(Stat::PassNotInit);
    }
    let flags = hdr[field::FLAGS];
    let spi_i: [u8; 8] = hdr[field::SPI_I].try_into().unwrap_or([0; 8]);
    if flags & ike::FLAG_RESPONSE != 0
        || flags & ike::FLAG_INITIATOR == 0
        || spi_i == [0; 8]
        || hdr[field::SPI_R] != [0; 8]
        || hdr[field::MESSAGE_ID] != [0; 4]
    {
        return Err(Stat::DropBadHeader);
    }
    let ike_len = be32(hdr, field::LENGTH.start).unwrap_or(0) as usize;
    if ike_len != ike_msg.len() {
        return Err(Stat::DropBadLength);
    }

    let (mut sa, mut ke, mut rs, mut rf) = (false, false, false, false);
    let mut nonce: Option<(usize, usize)> = None;
    let mut np = hdr[field::NEXT_PAYLOAD];
    let mut off = ike::HEADER_LEN;
    for _ in 0..ike::MAX_PAYLOADS {
        if np == ike::PAYLOAD_NONE {
            break;
        }
        let ph = ike_msg
            .get(off..off + ike::GENERIC_HEADER_LEN)
            .ok_or(Stat::DropBadPayload)?;
        let plen = usize::from(be16(ph, 2).unwrap_or(0));
        if plen < ike::GENERIC_HEADER_LEN || off + plen > ike_len {
            return Err(Stat::DropBadPayload);
        }
        match np {
            ike::PAYLOAD_SA => sa = true,
            ike::PAYLOAD_KE => ke = true,
            ike::PAYLOAD_NONCE => {
                let n = plen - ike::GENERIC_HEADER_LEN;
                if nonce.is_some() || !(ike::NONCE_MIN..=ike::NONCE_MAX).contains(&n) {
                    return Err(Stat::DropBadNonce);
                }
                nonce = Some((off + ike::GENERIC_HEADER_LEN, n));
            }
            ike::PAYLOAD_NOTIFY => {
                if plen < ike::NOTIFY_FIXED_LEN {
                    return Err(Stat::DropBadPayload);
                }
                match be16(ike_msg, off + 6).unwrap_or(0) {
                    // RFC 5685 §4: Protocol ID 0, SPI Size 0, no data (docs/protocol.md
                    // §2.1); another form is malformed.
                    ike::NOTIFY_REDIRECT_SUPPORTED
                        if plen != ike::NOTIFY_FIXED_LEN || ike_msg[off + 4..off + 6] != [0, 0] =>
                    {
                        return Err(Stat::DropBadRedirectSupported);
                    }
                    ike::NOTIFY_REDIRECT_SUPPORTED => rs = true,
                    ike::NOTIFY_REDIRECTED_FROM => rf = true,
                    _ => {}
                }
            }
            t if !ike::known_payload(t) && ph[1] & ike::CRITICAL != 0 => {
                return Err(Stat::PassUnknownCritical);
            }
            _ => {}
        }
        np = ph[0];
        off += plen;
    }
    if np != ike::PAYLOAD_NONE {
        return Err(Stat::DropBadPayload);
    }
    if off != ike_len {
        return Err(Stat::DropBadLength);
    }
    if rf {
        return Err(Stat::PassRedirectedFrom);
    }
    if !rs {
        return Err(Stat::PassNoRedirectSupported);
    }
    let (noff, nlen) = nonce.ok_or(Stat::DropBadNonce)?;
    if !sa || !ke {
        return Err(Stat::DropNoSaKe);
    }
    Ok(IkeRequest {
        spi_i,
        len: ike_len,
        nonce_off: noff,
        nonce_len: nlen,
    })
}

/// An IKE_SA_INIT request the fast path answers ([`decide_ike`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IkeRequest {
    pub spi_i: [u8; 8],
    /// The IKE message's length (that of the whole UDP payload after the marker).
    pub len: usize,
    /// Offset of the Ni data in the IKE message, and its length.
    pub nonce_off: usize,
    pub nonce_len: usize,
}

/// Builds the whole answer frame for `req` (parsed from `frame`) into `out`: the frame
/// the XDP program transmits. Returns its length, or the pass counter when the answer
/// would not be shorter than the request.
pub fn emit_reply_frame(
    frame: &[u8],
    req: &Request,
    t: &Target,
    out: &mut [u8],
) -> Result<usize, Stat> {
    let reply_ike = req.reply_ike_len(t);
    if reply_ike >= req.ike_len {
        return Err(Stat::PassTooLarge);
    }
    let mk = if req.marker {
        ike::NON_ESP_MARKER_LEN
    } else {
        0
    };
    let udp_len = udp::HLEN + mk + reply_ike;
    let ip_hlen = if req.v6 { ipv6::HLEN } else { ipv4::HLEN };
    let total = req.l2_len + ip_hlen + udp_len;
    let out = out.get_mut(..total).ok_or(Stat::DropTxError)?;
    out.fill(0);
    // L2: swap MACs, keep tags and EtherType.
    out[..req.l2_len].copy_from_slice(&frame[..req.l2_len]);
    out[l2l3::ETH_DST].copy_from_slice(&frame[l2l3::ETH_SRC]);
    out[l2l3::ETH_SRC].copy_from_slice(&frame[l2l3::ETH_DST]);
    let alen = if req.v6 { 16 } else { 4 };
    let (cli, vip) = (&req.src[..alen], &req.dst[..alen]);
    // The headers the XDP program stores, from the same functions.
    let ip = &mut out[req.l2_len..];
    if req.v6 {
        let h = answer::ipv6_header(answer::words(vip), answer::words(cli), udp_len);
        answer::put_words(ip, &h);
    } else {
        let [v]: [u32; 1] = answer::words(vip);
        let [c]: [u32; 1] = answer::words(cli);
        answer::put_words(ip, &answer::ipv4_header(v, c, udp_len));
    }
    let u = &mut ip[ip_hlen..];
    let ports = u32::from(req.sport.to_be()) | (u32::from(req.dport.to_be()) << 16);
    answer::put_words(u, &answer::udp_header(ports, udp_len, 0));
    redirect::emit_ike(&req.spi_i, t, req.nonce(frame), &mut u[udp::HLEN + mk..])
        .ok_or(Stat::DropTxError)?;
    let pseudo = checksum::sum_addr(checksum::sum_addr(0, vip), cli)
        + u64::from(udp::PROTO)
        + udp_len as u64;
    let c = checksum::finish_udp(checksum::sum_bytes(pseudo, &u[..udp_len]));
    u[udp::CHECKSUM..udp::CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    fn hex(s: &str) -> Vec<u8> {
        let s: std::string::String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// docs/protocol.md §5.1 (checked with tshark).
    const REQ: &str = "00005e00010a0200000000010800 4500 00f4 1c46 4000 4011 3174 c000020a c6336401
        01f4 01f4 00e0 e9ad c0ffee0012345678 0000000000000000 21202208 00000000 000000d8
        22000028 00000024 01010003 0300000c 01000014 800e0100 03000008 02000005 00000008 0400001f
        28000028 001f0000 404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f
        29000024 a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf
        2900001c 00004004 aed0c85c186db9efe29d4b553e8aa7bad9526425
        2900001c 00004005 335e0816da3a438510ea51c070bc21b46e1c0241
        29000008 0000402e 00000008 00004016";
    /// docs/protocol.md §5.2.
    const REPLY: &str = "0200000000010000 5e00010a08004500 0066000040004011 4e48c6336401c000
        020a01f401f40052 4560c0ffee001234 5678000000000000 0000292022200000
        0000000000 4a0000002e00004017 0104c6336403 a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

    fn vip(v6: bool, a: &[u8; 16]) -> Option<Vip> {
        (!v6 && a[..4] == [198, 51, 100, 1]).then_some(Vip::default())
    }

    #[test]
    fn vector_parses_and_answers_byte_exact() {
        let req = hex(REQ);
        assert_eq!(req.len(), 258);
        let r = parse(&req, true, vip).unwrap();
        assert_eq!(r.ike_off, 42);
        assert_eq!(r.ike_len, 216);
        assert_eq!(r.nonce_off, 42 + 112);
        assert_eq!(r.nonce_len, 32);
        let mut out = [0u8; 300];
        let n = emit_reply_frame(&req, &r, &Target::ipv4([198, 51, 100, 3]), &mut out).unwrap();
        assert_eq!(&out[..n], &hex(REPLY)[..]);
    }

    #[test]
    fn every_truncation_is_refused() {
        let req = hex(REQ);
        for cut in 0..req.len() {
            assert!(parse(&req[..cut], true, vip).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn decisions() {
        let req = hex(REQ);
        assert_eq!(parse(&req, false, vip), Err(Stat::PassInactive));
        assert_eq!(parse(&req, true, |_, _| None), Err(Stat::PassNotVip));
        let auth = Vip {
            mode: VIP_MODE_AUTH,
            vlans: 0,
            fwd: 0,
        };
        assert_eq!(
            parse(&req, true, |_, _| Some(auth)),
            Err(Stat::PassAuthMode)
        );
        // Flip the last notify to REDIRECTED_FROM (checksum then wrong: zero it, IPv4).
        let mut m = req.clone();
        m[0x28] = 0;
        m[0x29] = 0;
        assert!(parse(&m, true, vip).is_ok());
        m[0x101] = 0x18;
        assert_eq!(parse(&m, true, vip), Err(Stat::PassRedirectedFrom));
        m[0x101] = 0x99;
        assert_eq!(parse(&m, true, vip), Err(Stat::PassNoRedirectSupported));
        let mut m = req.clone();
        m[0x29] ^= 1;
        assert_eq!(parse(&m, true, vip), Err(Stat::DropBadChecksum));
    }

    #[test]
    fn sources_that_are_no_unicast_host() {
        let v4 = |a: [u8; 4]| {
            let mut s = [0u8; 16];
            s[..4].copy_from_slice(&a);
            s
        };
        let vip4 = v4([198, 51, 100, 1]);
        for bad in [[0, 0, 0, 0], [0, 1, 2, 3], [127, 0, 0, 1], [224, 0, 0, 5]] {
            assert!(!unicast_source(false, &v4(bad), &vip4), "{bad:?}");
        }
        for bad in [[239, 1, 1, 1], [240, 0, 0, 1], [255, 255, 255, 255]] {
            assert!(!unicast_source(false, &v4(bad), &vip4), "{bad:?}");
        }
        assert!(!unicast_source(false, &vip4, &vip4));
        for ok in [
            [1, 0, 0, 0],
            [126, 255, 255, 255],
            [128, 0, 0, 1],
            [223, 9, 9, 9],
        ] {
            assert!(unicast_source(false, &v4(ok), &vip4), "{ok:?}");
        }
        let v6 = |s: &str| s.parse::<core::net::Ipv6Addr>().unwrap().octets();
        let vip6 = v6("2001:db8::1");
        for bad in [
            "::",
            "::1",
            "ff02::1",
            "ff0e::5",
            "::ffff:127.0.0.1",
            "::ffff:0.0.0.0",
        ] {
            assert!(!unicast_source(true, &v6(bad), &vip6), "{bad}");
        }
        for bad in ["::ffff:224.0.0.1", "::ffff:255.255.255.255", "2001:db8::1"] {
            assert!(!unicast_source(true, &v6(bad), &vip6), "{bad}");
        }
        for ok in [
            "2001:db8::2",
            "::2",
            "fe80::1",
            "::ffff:192.0.2.1",
            "fc00::1",
        ] {
            assert!(unicast_source(true, &v6(ok), &vip6), "{ok}");
        }
    }

    #[test]
    fn hash_is_stable_and_spreads() {
        let a = [1u8; 16];
        let k = [1, 2];
        let h1 = flow_hash(&k, &a, 500, &[1; 8]);
        assert_eq!(h1, flow_hash(&k, &a, 500, &[1; 8]));
        assert_ne!(h1, flow_hash(&k, &a, 501, &[1; 8]));
        assert_ne!(h1, flow_hash(&[1, 3], &a, 500, &[1; 8]));
        assert_ne!(h1, flow_hash(&[0, 2], &a, 500, &[1; 8]));
        let mut buckets = [0u32; 16];
        for i in 0..16_000u32 {
            let mut spi = [0u8; 8];
            spi[4..].copy_from_slice(&i.to_be_bytes());
            buckets[(flow_hash(&k, &a, 500, &spi) & 15) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&b| (800..1200).contains(&b)),
            "{buckets:?}"
        );
    }
}
