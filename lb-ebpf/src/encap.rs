//! IP-in-IP for routed members (docs/architecture.md §6.4, `lb_common::encap`): the
//! balancer's side in [`encap`], the member's in [`decap`] (program `ikelb_decap`).

use aya_ebpf::{
    bindings::xdp_action::{XDP_DROP, XDP_PASS, XDP_TX},
    helpers::generated::bpf_xdp_adjust_head,
    macros::map,
    maps::HashMap,
    programs::XdpContext,
};
use lb_common::{
    encap::{OUTER_HLEN, PROTO_IPIP, PROTO_IPV6, outer_header},
    forward::FwdMember,
    wire::l2l3,
};

use crate::parse::{l3_of, load};

/// The member's own IPv4 addresses (raw words) whose IP-in-IP packets it unwraps.
#[map(name = "IKELB_DECAP")]
static DECAP: HashMap<u32, u32> = HashMap::with_max_entries(64, 0);

/// Writes `v` at `off` bytes from the frame start, if inside the frame.
#[inline(always)]
fn store<T: Copy>(ctx: &XdpContext, off: usize, v: T) -> Option<()> {
    let p = ctx.data() + off;
    if p + core::mem::size_of::<T>() > ctx.data_end() {
        return None;
    }
    // SAFETY: [p, p + size) was checked against data_end just above.
    unsafe { (p as *mut T).write_unaligned(v) };
    Some(())
}

/// The 12 MAC bytes and up to two VLAN tags of an `l2`-byte Ethernet header.
#[inline(always)]
fn read_l2(ctx: &XdpContext, l2: usize) -> Option<([u8; 12], u32, u32)> {
    let macs: [u8; 12] = load(ctx, 0)?;
    let t1: u32 = if l2 >= 18 { load(ctx, 12)? } else { 0 };
    let t2: u32 = if l2 >= 22 { load(ctx, 16)? } else { 0 };
    Some((macs, t1, t2))
}

/// Writes an `l2`-byte Ethernet header at `at`: `macs`, the tags, EtherType `etype`.
#[inline(always)]
fn write_l2(
    ctx: &XdpContext,
    at: usize,
    l2: usize,
    (macs, t1, t2): ([u8; 12], u32, u32),
    etype: u16,
) -> Option<()> {
    store(ctx, at, macs)?;
    if l2 >= 18 {
        store(ctx, at + 12, t1)?;
    }
    if l2 >= 22 {
        store(ctx, at + 16, t2)?;
    }
    store(ctx, (at + l2 - 2) & 0x3f, etype.to_be())
}

/// Wraps the IP packet after the `l2`-byte Ethernet header in an outer IPv4 header to
/// member `m` and readdresses the frame to its next hop. `None` before anything was
/// changed (the frame keeps its outcome); after the head moved, a failure drops it.
#[inline(always)]
pub fn encap(ctx: &XdpContext, l2: usize, inner_v6: bool, m: &FwdMember) -> Option<u32> {
    let inner_len = ctx.data_end() - ctx.data() - l2;
    let (macs, t1, t2) = read_l2(ctx, l2)?;
    let mut out = [0u8; 12];
    out[..6].copy_from_slice(&m.mac);
    out[6..].copy_from_slice(&macs[..6]);
    let hdr = outer_header(inner_v6, inner_len, m.outer_src, m.outer_dst);
    // SAFETY: a helper on our own context.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(OUTER_HLEN as i32)) } < 0 {
        return None;
    }
    let done = write_l2(ctx, 0, l2, (out, t1, t2), l2l3::ETHERTYPE_IPV4)
        .and_then(|()| store(ctx, l2 & 0x1f, hdr));
    Some(if done.is_some() { XDP_TX } else { XDP_DROP })
}

/// `ikelb_decap`: an IPv4 packet without options or fragmentation, protocol 4 or 41, to
/// one of `IKELB_DECAP`'s addresses loses its outer header; everything else passes
/// unchanged.
#[inline(always)]
pub fn decap(ctx: &XdpContext) -> u32 {
    let Some((etype, l2)) = l3_of(ctx) else {
        return XDP_PASS;
    };
    if etype != l2l3::ETHERTYPE_IPV4 {
        return XDP_PASS;
    }
    let Some(w) = load::<[u32; 5]>(ctx, l2) else {
        return XDP_PASS;
    };
    let frag = u16::from_be((w[1] >> 16) as u16) & l2l3::ipv4::FRAG_MASK;
    let inner = match (w[2] >> 8) as u8 {
        PROTO_IPIP => l2l3::ETHERTYPE_IPV4,
        PROTO_IPV6 => l2l3::ETHERTYPE_IPV6,
        _ => return XDP_PASS,
    };
    // SAFETY: a map value read once.
    if w[0] as u8 != 0x45 || frag != 0 || unsafe { DECAP.get(&w[4]) }.is_none() {
        return XDP_PASS;
    }
    let Some(l2h) = read_l2(ctx, l2) else {
        return XDP_PASS;
    };
    // The Ethernet header moves over the outer one (already read), then the start.
    if write_l2(ctx, OUTER_HLEN, l2, l2h, inner).is_none() {
        return XDP_PASS;
    }
    // SAFETY: a helper on our own context.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, OUTER_HLEN as i32) } < 0 {
        return XDP_DROP;
    }
    XDP_PASS
}
