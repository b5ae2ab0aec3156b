//! Turning the request into the REDIRECT answer in place (protocol.md §4.3).

use aya_ebpf::{
    bindings::xdp_action::{XDP_PASS, XDP_TX},
    helpers::generated::{
        bpf_csum_diff, bpf_xdp_adjust_tail, bpf_xdp_load_bytes, bpf_xdp_store_bytes,
    },
    programs::XdpContext,
};
use core::ptr::write_volatile;
use lb_common::{
    checksum,
    maps::{SLOTS, Stat, slot_table_index},
    wire::{
        ike,
        l2l3::{self, ipv4, ipv6, udp},
        redirect,
        request::flow_hash,
    },
};

use crate::{
    maps::{self, TARGETS, copy_len},
    parse::{Req, load},
};

#[inline(always)]
pub fn respond(ctx: &XdpContext, r: &Req) -> Stat {
    match try_respond(ctx, r) {
        Ok(()) => Stat::Redirected,
        Err(s) => s,
    }
}

#[inline(always)]
fn try_respond(ctx: &XdpContext, r: &Req) -> Result<(), Stat> {
    let ip = r.l2;
    let uoff = r.l2 + r.ihl;
    let mut cli = [0u8; 16];
    let mut vip = [0u8; 16];
    if r.v6 {
        cli = load(ctx, ip + ipv6::SRC.start).ok_or(Stat::DropTruncated)?;
        vip = load(ctx, ip + ipv6::DST.start).ok_or(Stat::DropTruncated)?;
    } else {
        let a: [u8; 8] = load(ctx, ip + ipv4::SRC.start).ok_or(Stat::DropTruncated)?;
        cli[..4].copy_from_slice(&a[..4]);
        vip[..4].copy_from_slice(&a[4..]);
    }
    let ports: [u8; 4] = load(ctx, uoff).ok_or(Stat::DropTruncated)?;
    let sport = u16::from_be_bytes([ports[0], ports[1]]);
    let dport = u16::from_be_bytes([ports[2], ports[3]]);
    let spi: [u8; 8] = load(ctx, r.ike_off).ok_or(Stat::DropTruncated)?;

    let table = maps::SLOTS
        .get(slot_table_index(r.table, r.v6))
        .ok_or(Stat::PassNoTarget)?;
    if table.len == 0 {
        return Err(Stat::PassNoTarget);
    }
    let slot = flow_hash(&cli, sport, &spi) as usize & (SLOTS - 1);
    let idx = u32::from(table.slots[slot]);
    let t = TARGETS.get(idx).ok_or(Stat::PassNoTarget)?;
    if !t.serves(r.v6) {
        return Err(Stat::PassNoTarget);
    }
    let k = t.ident_len as usize;
    let n = r.nonce_len;
    if k == 0 || n < ike::NONCE_MIN || n > ike::NONCE_MAX {
        return Err(Stat::PassNoTarget);
    }
    let reply_ike = redirect::ike_len(k, n);
    // Never amplify: the answer must be strictly shorter than the request (doc §4.6).
    if reply_ike >= r.ike_len {
        return Err(Stat::PassTooLarge);
    }
    let mk = if r.marker { ike::NON_ESP_MARKER_LEN } else { 0 };
    let iph = if r.v6 { ipv6::HLEN } else { ipv4::HLEN };
    let udp_len = udp::HLEN + mk + reply_ike;
    let new_len = r.l2 + iph + udp_len;
    let old_len = r.frame_len;

    // Nonce into scratch (its old and new places may overlap), summed on the way.
    let sc = r.scratch;
    // SAFETY: `sc` is this CPU's scratch value; n ≤ 256 keeps every access in `buf`.
    let nonce_sum = unsafe {
        let buf = core::ptr::addr_of_mut!((*sc).buf) as *mut u8;
        // Re-read: LLVM knows n's range and would fold `copy_len` away.
        let nm = copy_len(core::ptr::read_volatile(&(*sc).nonce_len) as usize);
        write_volatile(buf.add(nm & !3) as *mut u32, 0);
        if bpf_xdp_load_bytes(ctx.ctx, r.nonce_off as u32, buf as *mut _, nm as u32) < 0 {
            return Err(Stat::DropTruncated);
        }
        let s = bpf_csum_diff(
            core::ptr::null_mut(),
            0,
            buf as *mut u32,
            ((nm + 3) & !3) as u32,
            0,
        );
        if s < 0 {
            return Err(Stat::DropTxError);
        }
        let id_off = (r.l2 + iph + udp::HLEN + mk + redirect::PREFIX_LEN) as u32;
        if bpf_xdp_store_bytes(ctx.ctx, id_off, t.ident.as_ptr() as *mut _, k as u32) < 0
            || bpf_xdp_store_bytes(ctx.ctx, id_off + k as u32, buf as *mut _, nm as u32) < 0
        {
            return Err(Stat::DropTxError);
        }
        checksum::fold(u64::from(s as u32)).swap_bytes()
    };
    let macs: [u8; 12] = load(ctx, 0).ok_or(Stat::DropTruncated)?;

    // SAFETY: helper call on our own context; pointers are re-read below.
    if unsafe { bpf_xdp_adjust_tail(ctx.ctx, new_len as i32 - old_len as i32) } < 0 {
        return Err(Stat::DropTxError);
    }

    // Headers, written through fresh pointers (adjust_tail invalidated the old ones).
    let start = ctx.data();
    let end = ctx.data_end();
    let alen = if r.v6 { 16 } else { 4 };
    let mut sum = checksum::sum_addr(checksum::sum_addr(0, &vip[..alen]), &cli[..alen])
        + u64::from(udp::PROTO)
        + udp_len as u64;
    let mut mac = [0u8; 12];
    mac[..6].copy_from_slice(&macs[6..]);
    mac[6..].copy_from_slice(&macs[..6]);
    if start + l2l3::ETH_HLEN > end {
        return Err(Stat::DropTxError);
    }
    // SAFETY: checked just above.
    unsafe { (start as *mut [u8; 12]).write_unaligned(mac) };
    let pip = start + r.l2;
    if r.v6 {
        let mut h = [0u8; ipv6::HLEN];
        h[0] = 0x60;
        h[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        h[ipv6::NEXT_HEADER] = udp::PROTO;
        h[ipv6::HOP_LIMIT] = l2l3::REPLY_TTL;
        h[ipv6::SRC].copy_from_slice(&vip);
        h[ipv6::DST].copy_from_slice(&cli);
        if pip + ipv6::HLEN > end {
            return Err(Stat::DropTxError);
        }
        // SAFETY: checked just above.
        unsafe { (pip as *mut [u8; ipv6::HLEN]).write_unaligned(h) };
    } else {
        let mut h = [0u8; ipv4::HLEN];
        h[0] = 0x45;
        h[2..4].copy_from_slice(&((ipv4::HLEN + udp_len) as u16).to_be_bytes());
        h[6..8].copy_from_slice(&ipv4::DF.to_be_bytes());
        h[ipv4::TTL] = l2l3::REPLY_TTL;
        h[ipv4::PROTO] = udp::PROTO;
        h[12..16].copy_from_slice(&vip[..4]);
        h[16..20].copy_from_slice(&cli[..4]);
        let c = checksum::finish(checksum::sum_bytes(0, &h));
        h[10..12].copy_from_slice(&c.to_be_bytes());
        if pip + ipv4::HLEN > end {
            return Err(Stat::DropTxError);
        }
        // SAFETY: checked just above.
        unsafe { (pip as *mut [u8; ipv4::HLEN]).write_unaligned(h) };
    }
    sum += u64::from(sport) + u64::from(dport) + udp_len as u64;
    sum += redirect::payload_sum(&spi, t, n as u16, nonce_sum);
    let mut uh = [0u8; udp::HLEN + ike::NON_ESP_MARKER_LEN];
    uh[0..2].copy_from_slice(&dport.to_be_bytes());
    uh[2..4].copy_from_slice(&sport.to_be_bytes());
    uh[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    uh[6..8].copy_from_slice(&checksum::finish_udp(sum).to_be_bytes());
    let pu = pip + iph;
    if pu + uh.len() > end {
        return Err(Stat::DropTxError);
    }
    // SAFETY: checked just above; the marker word is zero (written even without one:
    // the IKE prefix below then overwrites it).
    unsafe { (pu as *mut [u8; udp::HLEN + ike::NON_ESP_MARKER_LEN]).write_unaligned(uh) };
    let pike = pu + udp::HLEN + mk;
    if pike + redirect::PREFIX_LEN > end {
        return Err(Stat::DropTxError);
    }
    let prefix = redirect::ike_prefix(&spi, t.ident_type, t.ident_len, n as u16);
    // SAFETY: checked just above.
    unsafe { (pike as *mut [u8; redirect::PREFIX_LEN]).write_unaligned(prefix) };
    maps::count_target(idx);
    Ok(())
}

/// MAC/IP/port swap of an untagged IPv4 (no options) or IPv6 UDP frame.
#[inline(always)]
pub fn reflect(ctx: &XdpContext) -> u32 {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + 14 + 48 > end {
        return XDP_PASS;
    }
    // SAFETY: the first 62 bytes are inside the frame (checked above).
    unsafe {
        let p = start as *mut u8;
        let macs = (p as *const [u8; 12]).read_unaligned();
        let mut m = [0u8; 12];
        m[..6].copy_from_slice(&macs[6..]);
        m[6..].copy_from_slice(&macs[..6]);
        (p as *mut [u8; 12]).write_unaligned(m);
        let (a, alen, u) = match u16::from_be((p.add(12) as *const u16).read_unaligned()) {
            l2l3::ETHERTYPE_IPV4 => (14 + 12, 4, 14 + 20),
            l2l3::ETHERTYPE_IPV6 => (14 + 8, 16, 14 + 40),
            _ => return XDP_PASS,
        };
        swap(p.add(a), p.add(a + alen), alen);
        swap(p.add(u), p.add(u + 2), 2);
    }
    XDP_TX
}

/// Swaps `len` (2, 4 or 16) bytes at `a` and `b`.
#[inline(always)]
unsafe fn swap(a: *mut u8, b: *mut u8, len: usize) {
    // SAFETY: the caller checked both ranges.
    unsafe {
        if len == 16 {
            let x = (a as *const [u8; 16]).read_unaligned();
            let y = (b as *const [u8; 16]).read_unaligned();
            (a as *mut [u8; 16]).write_unaligned(y);
            (b as *mut [u8; 16]).write_unaligned(x);
        } else if len == 4 {
            let x = (a as *const [u8; 4]).read_unaligned();
            let y = (b as *const [u8; 4]).read_unaligned();
            (a as *mut [u8; 4]).write_unaligned(y);
            (b as *mut [u8; 4]).write_unaligned(x);
        } else {
            let x = (a as *const [u8; 2]).read_unaligned();
            let y = (b as *const [u8; 2]).read_unaligned();
            (a as *mut [u8; 2]).write_unaligned(y);
            (b as *mut [u8; 2]).write_unaligned(x);
        }
    }
}
