//! Builder of IKE_SA_INIT request frames, for the bench, the flood generator's template
//! and tests: the shape real clients send (SA, KE, Ni, N(NAT_D)…, N(REDIRECT_SUPPORTED)),
//! with every knob the fast path cares about.

use std::net::IpAddr;

use lb_common::checksum;
use lb_common::wire::ike;
use lb_common::wire::l2l3::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, ipv4, udp};

/// A request to build. `Default` has the shape of the docs/protocol.md §5.1
/// vector, over IPv4.
#[derive(Clone, Debug)]
pub struct RequestSpec {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// VLAN tags, outermost first: (TPID, TCI).
    pub vlans: Vec<(u16, u16)>,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 options (a multiple of 4 bytes, ≤ 40).
    pub ip_options: Vec<u8>,
    pub sport: u16,
    /// 500, or 4500 (then the non-ESP marker is added).
    pub dport: u16,
    /// Compute the UDP checksum (mandatory over IPv6); else 0.
    pub udp_checksum: bool,
    pub spi_i: [u8; 8],
    pub nonce: Vec<u8>,
    /// DH group and KE data length.
    pub ke: (u16, usize),
    pub redirect_supported: bool,
    pub redirected_from: Option<IpAddr>,
    /// Further status notifies (empty data), after the NAT-D pair.
    pub extra_notifies: Vec<u16>,
}

impl Default for RequestSpec {
    fn default() -> Self {
        Self {
            dst_mac: [0x00, 0x00, 0x5e, 0x00, 0x01, 0x0a],
            src_mac: [0x02, 0, 0, 0, 0, 0x01],
            vlans: Vec::new(),
            src: IpAddr::from([192, 0, 2, 10]),
            dst: IpAddr::from([198, 51, 100, 1]),
            ip_options: Vec::new(),
            sport: 500,
            dport: 500,
            udp_checksum: true,
            spi_i: [0xc0, 0xff, 0xee, 0x00, 0x12, 0x34, 0x56, 0x78],
            nonce: (0xa0..=0xbf).collect(),
            ke: (31, 32),
            redirect_supported: true,
            redirected_from: None,
            extra_notifies: vec![ike::NOTIFY_FRAGMENTATION_SUPPORTED],
        }
    }
}

fn payload(out: &mut Vec<u8>, next: u8, body: &[u8]) {
    out.push(next);
    out.push(0);
    out.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    out.extend_from_slice(body);
}

fn notify_body(ty: u16, data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0];
    b.extend_from_slice(&ty.to_be_bytes());
    b.extend_from_slice(data);
    b
}

fn ip_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

impl RequestSpec {
    /// An IPv6 request with the same payloads.
    pub fn v6() -> Self {
        Self {
            src: "2001:db8:1::10".parse().expect("literal"),
            dst: "2001:db8::1".parse().expect("literal"),
            ..Self::default()
        }
    }

    /// The IKE message (no marker).
    pub fn ike(&self) -> Vec<u8> {
        // (type, body) in the order both real clients use (docs/protocol.md §1.7).
        let mut payloads: Vec<(u8, Vec<u8>)> = Vec::new();
        // SA: one proposal, AES-GCM-16-256, PRF HMAC-SHA2-256, KE = self.ke.0.
        let mut prop = vec![0, 0, 0, 0x24, 1, 1, 0, 3];
        prop.extend_from_slice(&[3, 0, 0, 0x0c, 1, 0, 0, 20, 0x80, 0x0e, 1, 0]);
        prop.extend_from_slice(&[3, 0, 0, 8, 2, 0, 0, 5]);
        prop.extend_from_slice(&[0, 0, 0, 8, 4, 0]);
        prop.extend_from_slice(&self.ke.0.to_be_bytes());
        payloads.push((ike::PAYLOAD_SA, prop));
        let mut ke = self.ke.0.to_be_bytes().to_vec();
        ke.extend_from_slice(&[0, 0]);
        ke.extend((0..self.ke.1).map(|i| 0x40 + i as u8));
        payloads.push((ike::PAYLOAD_KE, ke));
        payloads.push((ike::PAYLOAD_NONCE, self.nonce.clone()));
        payloads.push((
            ike::PAYLOAD_NOTIFY,
            notify_body(ike::NOTIFY_NAT_DETECTION_SOURCE_IP, &[0x11; 20]),
        ));
        payloads.push((
            ike::PAYLOAD_NOTIFY,
            notify_body(ike::NOTIFY_NAT_DETECTION_DESTINATION_IP, &[0x22; 20]),
        ));
        for &n in &self.extra_notifies {
            payloads.push((ike::PAYLOAD_NOTIFY, notify_body(n, &[])));
        }
        if let Some(from) = self.redirected_from {
            let ip = ip_bytes(from);
            let mut d = vec![if ip.len() == 4 { 1 } else { 2 }, ip.len() as u8];
            d.extend_from_slice(&ip);
            payloads.push((
                ike::PAYLOAD_NOTIFY,
                notify_body(ike::NOTIFY_REDIRECTED_FROM, &d),
            ));
        }
        if self.redirect_supported {
            payloads.push((
                ike::PAYLOAD_NOTIFY,
                notify_body(ike::NOTIFY_REDIRECT_SUPPORTED, &[]),
            ));
        }
        let mut body = Vec::new();
        for (i, (_, b)) in payloads.iter().enumerate() {
            let next = payloads.get(i + 1).map_or(0, |p| p.0);
            payload(&mut body, next, b);
        }
        let mut m = self.spi_i.to_vec();
        m.extend_from_slice(&[0; 8]);
        m.push(payloads.first().map_or(0, |p| p.0));
        m.extend_from_slice(&[
            ike::VERSION_2_0,
            ike::EXCHANGE_IKE_SA_INIT,
            ike::FLAG_INITIATOR,
        ]);
        m.extend_from_slice(&[0; 4]);
        m.extend_from_slice(&((ike::HEADER_LEN + body.len()) as u32).to_be_bytes());
        m.extend_from_slice(&body);
        m
    }

    /// The whole Ethernet frame.
    pub fn frame(&self) -> Vec<u8> {
        let mut udp_payload = Vec::new();
        if self.dport == ike::PORT_NATT {
            udp_payload.extend_from_slice(&[0; 4]);
        }
        udp_payload.extend_from_slice(&self.ike());
        build_frame(self, &udp_payload)
    }
}

/// Wraps a UDP payload in the spec's Ethernet/VLAN/IP/UDP headers.
pub fn build_frame(s: &RequestSpec, udp_payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&s.dst_mac);
    f.extend_from_slice(&s.src_mac);
    for &(tpid, tci) in &s.vlans {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    let v6 = s.src.is_ipv6();
    f.extend_from_slice(&if v6 { ETHERTYPE_IPV6 } else { ETHERTYPE_IPV4 }.to_be_bytes());
    let udp_len = (udp::HLEN + udp_payload.len()) as u16;
    let (src, dst) = (ip_bytes(s.src), ip_bytes(s.dst));
    let ip_start = f.len();
    if v6 {
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&udp_len.to_be_bytes());
        f.extend_from_slice(&[udp::PROTO, 64]);
    } else {
        let hl = ipv4::HLEN + s.ip_options.len();
        f.push(0x40 | (hl / 4) as u8);
        f.push(0);
        f.extend_from_slice(&((hl + udp_len as usize) as u16).to_be_bytes());
        f.extend_from_slice(&[0x1c, 0x46, 0x40, 0x00, 64, udp::PROTO, 0, 0]);
    }
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    if !v6 {
        f.extend_from_slice(&s.ip_options);
        let c = checksum::finish(checksum::sum_bytes(0, &f[ip_start..]));
        f[ip_start + ipv4::CHECKSUM..ip_start + ipv4::CHECKSUM + 2]
            .copy_from_slice(&c.to_be_bytes());
    }
    let u = f.len();
    f.extend_from_slice(&s.sport.to_be_bytes());
    f.extend_from_slice(&s.dport.to_be_bytes());
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(udp_payload);
    if s.udp_checksum || v6 {
        let pseudo = checksum::sum_addr(checksum::sum_addr(0, &src), &dst)
            + u64::from(udp::PROTO)
            + u64::from(udp_len);
        let c = checksum::finish_udp(checksum::sum_bytes(pseudo, &f[u..]));
        f[u + 6..u + 8].copy_from_slice(&c.to_be_bytes());
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_common::maps::Vip;
    use lb_common::wire::request;

    fn vip(_: bool, _: &[u8; 16]) -> Option<Vip> {
        Some(Vip::ANY)
    }

    #[test]
    fn default_matches_the_protocol_vector_shape() {
        let f = RequestSpec::default().frame();
        let r = request::parse(&f, true, vip).unwrap();
        assert_eq!(r.ike_len, 216);
        assert_eq!(r.nonce_len, 32);
        assert_eq!(
            &f[r.nonce_off..r.nonce_off + 32],
            &(0xa0..=0xbf).collect::<Vec<u8>>()[..]
        );
    }

    #[test]
    fn variants_parse() {
        let mut s = RequestSpec::v6();
        s.vlans = vec![(0x88a8, 100), (0x8100, 200)];
        s.dport = 4500;
        let r = request::parse(&s.frame(), true, vip).unwrap();
        assert!(r.v6 && r.marker);
        assert_eq!(r.l2_len, 22);
        let mut s = RequestSpec {
            ip_options: vec![1, 1, 1, 0],
            udp_checksum: false,
            ..RequestSpec::default()
        };
        assert_eq!(request::parse(&s.frame(), true, vip).unwrap().ip_hlen, 24);
        s.redirected_from = Some(s.dst);
        assert_eq!(
            request::parse(&s.frame(), true, vip),
            Err(lb_common::maps::Stat::PassRedirectedFrom)
        );
    }
}
