//! The generator's template: a request built by `frames::RequestSpec`, the offsets of
//! every field the generator varies, and the checksum sums taken without them, so the
//! program adds only what it writes (docs/testing.md §9.2).

use lb_common::checksum;
use lb_common::flood;
use lb_common::flood::{FRAME_MAX, FloodCheck, FloodGen, NONCE_WORDS_MAX};
use lb_common::maps::Vip;
use lb_common::wire::ike;
use lb_common::wire::l2l3::{ipv4, ipv6, udp};
use lb_common::wire::request;

use crate::frames::RequestSpec;

/// What varies per request and how.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub tag: u16,
    pub ncpu: u32,
    /// Pacing interval per CPU in ns (0 = full speed).
    pub interval_ns: u64,
    /// First client address (host order, IPv6: the last word) and how many.
    pub host_base: u32,
    pub host_count: u32,
    pub port_base: u16,
    pub port_count: u32,
    /// Fractions of 65 536.
    pub mix_udp: u32,
    pub mix_no_rs: u32,
    pub bg_dport: u16,
}

/// Offset of the Notify Message Type of N(REDIRECT_SUPPORTED) in `frame`.
fn redirect_supported_off(frame: &[u8], ike_off: usize, ike_len: usize) -> Option<usize> {
    let mut np = frame[ike_off + ike::field::NEXT_PAYLOAD];
    let mut off = ike_off + ike::HEADER_LEN;
    while np != ike::PAYLOAD_NONE && off + ike::NOTIFY_FIXED_LEN <= ike_off + ike_len {
        let len = usize::from(u16::from_be_bytes([frame[off + 2], frame[off + 3]]));
        let ty = u16::from_be_bytes([frame[off + 6], frame[off + 7]]);
        if np == ike::PAYLOAD_NOTIFY && ty == ike::NOTIFY_REDIRECT_SUPPORTED {
            return Some(off + 6);
        }
        if len < ike::GENERIC_HEADER_LEN {
            return None;
        }
        np = frame[off];
        off += len;
    }
    None
}

/// The per-CPU generator value (with `cpu` and `limit` left to the caller) and the
/// counter's check entry for requests shaped like `spec`.
pub fn build(spec: &RequestSpec, p: &Params) -> Result<(FloodGen, FloodCheck), String> {
    let frame = spec.frame();
    if frame.len() > FRAME_MAX {
        return Err(format!(
            "template frame of {} bytes > {FRAME_MAX}",
            frame.len()
        ));
    }
    let r = request::parse(&frame, true, |_, _| Some(Vip::ANY))
        .map_err(|s| format!("template is not a request ikelb answers: {}", s.name()))?;
    if r.marker || !spec.vlans.is_empty() || r.ip_hlen != if r.v6 { ipv6::HLEN } else { ipv4::HLEN }
    {
        return Err("template: no VLAN tags, IP options or port 4500".into());
    }
    if !r.nonce_len.is_multiple_of(8) || r.nonce_len / 8 > NONCE_WORDS_MAX as usize {
        return Err(format!(
            "nonce of {} bytes: the generator derives multiples of 8 up to {}",
            r.nonce_len,
            NONCE_WORDS_MAX * 8
        ));
    }
    let ip_off = r.l2_len;
    let udp_off = ip_off + r.ip_hlen;
    let src_off = ip_off + if r.v6 { 8 + 12 } else { 12 };
    let spi_off = r.ike_off;
    let rs_off = redirect_supported_off(&frame, r.ike_off, r.ike_len)
        .ok_or("template lacks N(REDIRECT_SUPPORTED)")?;
    // Word sums in host order are valid only for fields at even offsets.
    for (what, o) in [
        ("spi", spi_off),
        ("nonce", r.nonce_off),
        ("REDIRECT_SUPPORTED", rs_off),
    ] {
        if !(o - udp_off).is_multiple_of(2) {
            return Err(format!("template: {what} at an odd UDP offset"));
        }
    }
    let mut z = frame.clone();
    for (o, n) in [
        (src_off, 4),
        (udp_off, 4),
        (udp_off + udp::CHECKSUM, 2),
        (spi_off, 8),
        (r.nonce_off, r.nonce_len),
        (rs_off, 2),
    ] {
        z[o..o + n].fill(0);
    }
    let le = |be: u64| u32::from(checksum::fold(be).swap_bytes());
    let ip_sum = if r.v6 {
        0
    } else {
        z[ip_off + ipv4::CHECKSUM..ip_off + ipv4::CHECKSUM + 2].fill(0);
        le(checksum::sum_bytes(0, &z[ip_off..udp_off]))
    };
    let (src, dst) = if r.v6 {
        (&z[ip_off + 8..ip_off + 24], &z[ip_off + 24..ip_off + 40])
    } else {
        (&z[ip_off + 12..ip_off + 16], &z[ip_off + 16..ip_off + 20])
    };
    let udp_len = (frame.len() - udp_off) as u64;
    let pseudo =
        checksum::sum_bytes(checksum::sum_bytes(0, src), dst) + u64::from(udp::PROTO) + udp_len;
    let udp_sum = le(checksum::sum_bytes(pseudo, &z[udp_off..]));

    let mut g = FloodGen {
        ncpu: p.ncpu,
        interval_ns: p.interval_ns,
        tag: u32::from(p.tag),
        len: frame.len() as u32,
        v6: u32::from(r.v6),
        ip_off: ip_off as u32,
        src_off: src_off as u32,
        udp_off: udp_off as u32,
        spi_off: spi_off as u32,
        nonce_off: r.nonce_off as u32,
        nonce_words: (r.nonce_len / 8) as u32,
        rs_off: rs_off as u32,
        ip_sum,
        udp_sum,
        host_base: p.host_base,
        host_count: p.host_count,
        port_base: u32::from(p.port_base),
        port_count: p.port_count,
        mix_udp: p.mix_udp,
        mix_no_rs: p.mix_no_rs,
        bg_dport: u32::from(p.bg_dport),
        ike_dport: u32::from(r.dport),
        ..FloodGen::default()
    };
    g.frame[..frame.len()].copy_from_slice(&frame);
    let c = FloodCheck {
        limit: 0,
        tag: u32::from(p.tag),
        ncpu: p.ncpu,
        v6: u32::from(r.v6),
        nonce_words: g.nonce_words,
        host_base: p.host_base,
        host_count: p.host_count,
        port_base: u32::from(p.port_base),
        port_count: p.port_count,
        echo_nonce_off: r.nonce_off as u32,
        recycle: 0,
        forwarded: 0,
    };
    Ok((g, c))
}

/// What request `seq` of `cpu` must look like: the template with the varied fields set
/// by the reference functions (used to check the program's output).
pub fn expected(g: &FloodGen, cpu: u32, seq: u64) -> Vec<u8> {
    let mut f = g.frame[..g.len as usize].to_vec();
    vary(g, cpu, seq, &mut f);
    f
}

/// Writes the varied fields of request `seq` of `cpu` into a copy of the template.
fn vary(g: &FloodGen, cpu: u32, seq: u64, f: &mut [u8]) {
    let idx = flood::client_index(cpu, g.ncpu, seq);
    let (host, port) = flood::client(idx, g.host_base, g.host_count, g.port_base, g.port_count);
    let spi = flood::spi(g.tag, cpu, seq);
    let at = |o: u32| o as usize;
    f[at(g.src_off)..at(g.src_off) + 4].copy_from_slice(&host.to_be_bytes());
    f[at(g.udp_off)..at(g.udp_off) + 2].copy_from_slice(&port.to_be_bytes());
    f[at(g.spi_off)..at(g.spi_off) + 8].copy_from_slice(&spi.to_be_bytes());
    for k in 0..g.nonce_words {
        let o = at(g.nonce_off) + 8 * k as usize;
        f[o..o + 8].copy_from_slice(&flood::nonce_word(spi, k).to_be_bytes());
    }
}

/// The whole frame the generator program sends as request `seq` of `cpu`, kind (mixed
/// floods) and checksums included, written into `out`; returns its length. The AF_XDP
/// sender builds its frames with it, so both senders' requests are the same.
pub fn request(g: &FloodGen, cpu: u32, seq: u64, out: &mut [u8]) -> usize {
    let len = g.len as usize;
    let f = &mut out[..len];
    f.copy_from_slice(&g.frame[..len]);
    vary(g, cpu, seq, f);
    let kind = flood::kind(seq, g.mix_udp, g.mix_no_rs);
    let (uo, io) = (g.udp_off as usize, g.ip_off as usize);
    let dport = if kind == flood::KIND_UDP {
        g.bg_dport
    } else {
        g.ike_dport
    } as u16;
    f[uo + 2..uo + 4].copy_from_slice(&dport.to_be_bytes());
    let rs = if kind == flood::KIND_NO_RS {
        ike::NOTIFY_FRAGMENTATION_SUPPORTED
    } else {
        ike::NOTIFY_REDIRECT_SUPPORTED
    };
    let ro = g.rs_off as usize;
    f[ro..ro + 2].copy_from_slice(&rs.to_be_bytes());
    let (src, dst) = if g.v6 != 0 {
        (io + 8..io + 24, io + 24..io + 40)
    } else {
        let c = io + ipv4::CHECKSUM;
        f[c..c + 2].fill(0);
        let sum = checksum::finish(checksum::sum_bytes(0, &f[io..uo]));
        f[c..c + 2].copy_from_slice(&sum.to_be_bytes());
        (io + 12..io + 16, io + 16..io + 20)
    };
    let c = uo + udp::CHECKSUM;
    f[c..c + 2].fill(0);
    let pseudo = checksum::sum_addr(checksum::sum_addr(0, &f[src]), &f[dst])
        + u64::from(udp::PROTO)
        + (len - uo) as u64;
    let sum = checksum::finish_udp(checksum::sum_bytes(pseudo, &f[uo..]));
    f[c..c + 2].copy_from_slice(&sum.to_be_bytes());
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            tag: 0x1234,
            ncpu: 2,
            interval_ns: 0,
            host_base: u32::from_be_bytes([198, 18, 0, 1]),
            host_count: 65534,
            port_base: 1024,
            port_count: 1000,
            mix_udp: 0,
            mix_no_rs: 0,
            bg_dport: 9,
        }
    }

    /// The program's arithmetic, on the host: base sums plus the varied words in host
    /// order give the checksums of the finished frame.
    fn finish(g: &FloodGen, f: &mut [u8]) {
        let halves = |x: u64| (x & 0xffff_ffff) + (x >> 32);
        let rd = |f: &[u8], o: u32, n: usize| {
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(&f[o as usize..o as usize + n]);
            u64::from_le_bytes(b)
        };
        let hw = rd(f, g.src_off, 4);
        let mut u = u64::from(g.udp_sum)
            + halves(hw)
            + rd(f, g.udp_off, 2)
            + rd(f, g.udp_off + 2, 2)
            + rd(f, g.rs_off, 2)
            + halves(rd(f, g.spi_off, 8));
        for k in 0..g.nonce_words {
            u += halves(rd(f, g.nonce_off + 8 * k, 8));
        }
        let c = !checksum::fold(u);
        let c = if c == 0 { 0xffff } else { c };
        let uo = g.udp_off as usize + udp::CHECKSUM;
        f[uo..uo + 2].copy_from_slice(&c.to_le_bytes());
        if g.v6 == 0 {
            let c = !checksum::fold(u64::from(g.ip_sum) + halves(hw));
            let io = g.ip_off as usize + ipv4::CHECKSUM;
            f[io..io + 2].copy_from_slice(&c.to_le_bytes());
        }
    }

    #[test]
    fn varied_requests_parse_with_valid_checksums() {
        for spec in [RequestSpec::default(), RequestSpec::v6()] {
            let (g, _) = build(&spec, &params()).unwrap();
            for (cpu, seq) in [(0, 0), (1, 1), (0, 99_999), (1, 7_777_777)] {
                let mut f = expected(&g, cpu, seq);
                finish(&g, &mut f);
                let r = request::parse(&f, true, |_, _| Some(Vip::ANY)).unwrap();
                let spi = lb_common::flood::spi(0x1234, cpu, seq);
                assert_eq!(r.spi_i, spi.to_be_bytes());
                assert_eq!(
                    &r.nonce(&f)[..8],
                    &lb_common::flood::nonce_word(spi, 0).to_be_bytes()
                );
            }
        }
    }

    /// The AF_XDP sender's frames are byte-equal to the generator program's, and a
    /// mixed flood's kinds come out as the program makes them.
    #[test]
    fn socket_frames_equal_the_programs() {
        for spec in [RequestSpec::default(), RequestSpec::v6()] {
            let (mut g, _) = build(&spec, &params()).unwrap();
            let mut out = [0u8; 2048];
            for (cpu, seq) in [(0, 0), (1, 1), (0, 99_999), (1, 7_777_777)] {
                let mut f = expected(&g, cpu, seq);
                finish(&g, &mut f);
                let n = request(&g, cpu, seq, &mut out);
                assert_eq!(&out[..n], &f[..]);
            }
            (g.mix_udp, g.mix_no_rs) = (20_000, 20_000);
            let mut kinds = [0u32; 3];
            for seq in 0..200 {
                let n = request(&g, 0, seq, &mut out);
                let k = lb_common::flood::kind(seq, g.mix_udp, g.mix_no_rs);
                kinds[k as usize] += 1;
                let r = request::parse(&out[..n], true, |_, _| Some(Vip::ANY));
                match k {
                    lb_common::flood::KIND_IKE => assert!(r.is_ok()),
                    lb_common::flood::KIND_UDP => {
                        let uo = g.udp_off as usize;
                        assert_eq!(&out[uo + 2..uo + 4], &9u16.to_be_bytes());
                    }
                    _ => assert_eq!(
                        r.err().map(|s| s.name()),
                        Some("pass_no_redirect_supported")
                    ),
                }
            }
            assert!(kinds.iter().all(|&k| k > 0), "{kinds:?}");
        }
    }

    #[test]
    fn rejects_templates_it_cannot_vary() {
        let s = RequestSpec {
            nonce: vec![1; 20],
            ..RequestSpec::default()
        };
        assert!(build(&s, &params()).is_err());
        let s = RequestSpec {
            redirect_supported: false,
            ..RequestSpec::default()
        };
        assert!(build(&s, &params()).is_err());
    }
}
