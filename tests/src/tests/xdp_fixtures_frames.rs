//! Frame surgery for the XDP fixture tables: where the headers of a well-formed request
//! lie, its payload chain, and re-fixing lengths and checksums after an edit.
//!
//! Written against the RFCs, not with lb-common's parser, so that the checks of the
//! program's answer do not share the model's mistakes.

use std::ops::Range;

/// Where the headers of a well-formed request frame lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Layout {
    /// Ethernet header plus VLAN tags: offset of the IP header.
    pub l2: usize,
    pub v6: bool,
    /// IP header length (IPv4 options included).
    pub iph: usize,
    /// Offset of the UDP header.
    pub udp: usize,
    pub marker: bool,
    /// Offset of the IKE header.
    pub ike: usize,
}

/// One payload of the IKE chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Payload {
    /// Frame offset of the generic payload header.
    pub at: usize,
    /// Frame offset of the byte that names this payload's type (the previous payload's
    /// Next Payload, or the IKE header's).
    pub np_at: usize,
    pub ty: u8,
    pub len: usize,
}

pub(super) fn be16(f: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]))
}

pub(super) fn be32(f: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(f.get(at..at + 4)?.try_into().ok()?))
}

/// Writes a big-endian u16 if it fits (mutants may be short).
pub(super) fn set16(f: &mut [u8], at: usize, v: u16) {
    if let Some(d) = f.get_mut(at..at + 2) {
        d.copy_from_slice(&v.to_be_bytes());
    }
}

pub(super) fn set32(f: &mut [u8], at: usize, v: u32) {
    if let Some(d) = f.get_mut(at..at + 4) {
        d.copy_from_slice(&v.to_be_bytes());
    }
}

/// `f[r]`, or an empty slice where `r` does not fit (a short answer then fails its
/// comparisons instead of panicking the test).
pub(super) fn get(f: &[u8], r: Range<usize>) -> &[u8] {
    f.get(r).unwrap_or(&[])
}

pub(super) fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(if i % 16 == 0 { '\n' } else { ' ' });
        }
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// RFC 1071 sum of `data` as big-endian words (odd tail padded), added to `acc`, folded.
pub(super) fn sum16(acc: u32, data: &[u8]) -> u16 {
    let mut s = u64::from(acc);
    for c in data.chunks(2) {
        s += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Sum of the UDP pseudo-header (RFC 768, RFC 8200 §8.1).
pub(super) fn pseudo(v6: bool, ip: &[u8], udp_len: usize) -> u32 {
    let addrs = if v6 { get(ip, 8..40) } else { get(ip, 12..20) };
    u32::from(sum16(0, addrs)) + 17 + (udp_len as u32 & 0xffff) + (udp_len as u32 >> 16)
}

/// The layout of a request frame whose headers are well formed (a seed, not a mutant).
pub(super) fn layout(f: &[u8]) -> Option<Layout> {
    let mut l2 = 14;
    let mut et = be16(f, 12)?;
    for _ in 0..2 {
        if !matches!(et, 0x8100 | 0x88a8 | 0x9100) {
            break;
        }
        et = be16(f, l2 + 2)?;
        l2 += 4;
    }
    let (v6, iph) = match et {
        0x0800 => (false, usize::from(f.get(l2)? & 0x0f) * 4),
        0x86dd => (true, 40),
        _ => return None,
    };
    let udp = l2 + iph;
    let marker = be16(f, udp + 2)? == 4500;
    let ike = udp + 8 + if marker { 4 } else { 0 };
    (f.len() >= ike + 28).then_some(Layout {
        l2,
        v6,
        iph,
        udp,
        marker,
        ike,
    })
}

/// The payload chain of a well-formed request, in order.
pub(super) fn payloads(f: &[u8], lay: &Layout) -> Vec<Payload> {
    let end = lay.ike + be32(f, lay.ike + 24).unwrap_or(0) as usize;
    let mut out = Vec::new();
    let mut np_at = lay.ike + 16;
    let mut at = lay.ike + 28;
    while let (Some(&ty), Some(len)) = (f.get(np_at), be16(f, at + 2)) {
        if ty == 0 || len < 4 || at + usize::from(len) > end || out.len() > 64 {
            break;
        }
        out.push(Payload {
            at,
            np_at,
            ty,
            len: usize::from(len),
        });
        np_at = at;
        at += usize::from(len);
    }
    out
}

/// The Ni data of a well-formed request.
pub(super) fn nonce<'a>(f: &'a [u8], lay: &Layout) -> Option<&'a [u8]> {
    let p = payloads(f, lay).into_iter().find(|p| p.ty == 40)?;
    f.get(p.at + 4..p.at + p.len)
}

/// Notify payloads of a well-formed request, with their type.
pub(super) fn notifies(f: &[u8], lay: &Layout) -> Vec<(Payload, u16)> {
    payloads(f, lay)
        .into_iter()
        .filter(|p| p.ty == 41 && p.len >= 8)
        .map(|p| (p, be16(f, p.at + 6).unwrap_or(0)))
        .collect()
}

/// What [`fix`] repairs after an edit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Fix {
    /// IP total/payload length and UDP length = what the frame holds.
    pub lengths: bool,
    /// IKE Length = what the frame holds after the IKE header's start.
    pub ike_len: bool,
    /// IPv4 header checksum and UDP checksum (a zero IPv4 UDP checksum stays zero).
    pub checksums: bool,
}

impl Fix {
    pub const NONE: Fix = Fix {
        lengths: false,
        ike_len: false,
        checksums: false,
    };
    pub const CSUM: Fix = Fix {
        lengths: false,
        ike_len: false,
        checksums: true,
    };
    pub const L3L4: Fix = Fix {
        lengths: true,
        ike_len: false,
        checksums: true,
    };
    pub const ALL: Fix = Fix {
        lengths: true,
        ike_len: true,
        checksums: true,
    };
}

/// Repairs `f` (laid out as `lay` before the edit) as `fix` says. Never panics, whatever
/// the edit did to the frame.
pub(super) fn fix(f: &mut [u8], lay: &Layout, fix: Fix) {
    let ip = lay.l2;
    if fix.lengths {
        let ip_len = f.len().saturating_sub(ip);
        if lay.v6 {
            set16(f, ip + 4, ip_len.saturating_sub(40) as u16);
        } else {
            set16(f, ip + 2, ip_len as u16);
        }
        set16(f, lay.udp + 4, f.len().saturating_sub(lay.udp) as u16);
    }
    if fix.ike_len {
        set32(f, lay.ike + 24, f.len().saturating_sub(lay.ike) as u32);
    }
    if !fix.checksums || f.len() < lay.udp + 8 {
        return;
    }
    // The IP datagram ends where the IP header says (Ethernet padding follows).
    let ip_end = if lay.v6 {
        be16(f, ip + 4).map_or(0, |l| ip + 40 + usize::from(l))
    } else {
        be16(f, ip + 2).map_or(0, |l| ip + usize::from(l))
    }
    .min(f.len())
    .max(lay.udp);
    if !lay.v6 {
        set16(f, ip + 10, 0);
        let c = !sum16(0, get(f, ip..ip + lay.iph));
        set16(f, ip + 10, c);
    }
    if !lay.v6 && be16(f, lay.udp + 6) == Some(0) {
        return;
    }
    set16(f, lay.udp + 6, 0);
    let p = pseudo(lay.v6, &f[ip..], ip_end - lay.udp);
    let c = match !sum16(p, &f[lay.udp..ip_end]) {
        0 => 0xffff,
        c => c,
    };
    set16(f, lay.udp + 6, c);
}

/// A copy of `seed` with `edit` applied, then repaired as `how` says.
pub(super) fn edit(seed: &[u8], how: Fix, edit: impl FnOnce(&mut Vec<u8>, &Layout)) -> Vec<u8> {
    let lay = layout(seed).expect("seed frame has a request layout");
    let mut f = seed.to_vec();
    edit(&mut f, &lay);
    fix(&mut f, &lay, how);
    f
}

/// `frame` with VLAN tags (TPID, TCI) inserted after the MAC addresses.
pub(super) fn with_tags(frame: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    for (tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&frame[12..]);
    f
}

/// Resizes payload `p` by `delta` bytes (added or removed at its end), keeping its
/// Payload Length right; the caller repairs the outer lengths with [`fix`].
pub(super) fn resize_payload(f: &mut Vec<u8>, p: &Payload, delta: isize, fill: u8) {
    let end = p.at + p.len;
    if end > f.len() {
        return;
    }
    if delta >= 0 {
        let add = delta.unsigned_abs();
        f.splice(end..end, std::iter::repeat_n(fill, add));
        set16(f, p.at + 2, (p.len + add) as u16);
    } else {
        let cut = delta.unsigned_abs().min(p.len.saturating_sub(4));
        f.drain(end - cut..end);
        set16(f, p.at + 2, (p.len - cut) as u16);
    }
}
