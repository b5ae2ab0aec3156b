//! Turning the request into the REDIRECT answer in place (docs/protocol.md §4.3).

use aya_ebpf::{
    bindings::xdp_action::{XDP_PASS, XDP_TX},
    helpers::generated::{
        bpf_jiffies64, bpf_ktime_get_ns, bpf_xdp_adjust_head, bpf_xdp_adjust_tail,
        bpf_xdp_store_bytes,
    },
    programs::XdpContext,
};
use lb_common::{
    checksum,
    maps::{SLOTS, Stat, rate_admit, rate_bucket, slot_table_index},
    wire::{
        answer, ike,
        l2l3::{self, ipv4, ipv6, udp},
        redirect,
        request::flow_hash,
    },
};

use crate::{
    maps::{self, RATE, Scratch, TARGETS, bounded_len},
    parse::{Req, load, sum_addr, sum_frame},
};

#[inline(always)]
pub fn respond(ctx: &XdpContext, r: &Req) -> Stat {
    match try_respond(ctx, r) {
        Ok(()) => Stat::Redirected,
        Err(s) => s,
    }
}

/// Stores `v` at `off` (checked against the frame end).
#[inline(always)]
fn store<T>(ctx: &XdpContext, off: usize, v: T) -> Result<(), Stat> {
    let start = ctx.data();
    if start + off + core::mem::size_of::<T>() > ctx.data_end() {
        return Err(Stat::DropTxError);
    }
    // SAFETY: checked just above; packet memory has no alignment requirement here.
    unsafe { ((start + off) as *mut T).write(v) };
    Ok(())
}

/// The clock of the rate limit, in ns: `bpf_ktime_get_ns` read once per jiffy on each
/// CPU, so at most a jiffy (1 to 10 ms) behind. `bpf_ktime_get_ns` is a helper call
/// (and more calls inside it), a large part of the answer's cost on CPUs where every
/// return is costly; the verifier turns `bpf_jiffies64` into one load.
#[inline(always)]
fn coarse_now(sc: *mut Scratch) -> u64 {
    // SAFETY: helpers without arguments; `sc` is this CPU's scratch value.
    unsafe {
        let j = bpf_jiffies64();
        if core::ptr::read_volatile(&(*sc).clock_jiffies) == j {
            return core::ptr::read_volatile(&(*sc).clock_ns);
        }
        let now = bpf_ktime_get_ns();
        core::ptr::write_volatile(&mut (*sc).clock_jiffies, j);
        core::ptr::write_volatile(&mut (*sc).clock_ns, now);
        now
    }
}

/// The per-source rate limit, per IPv4 address or IPv6 /64 (the first two raw words),
/// in the source's bucket of `IKELB_RATE`.
#[inline(always)]
fn rate_limit(r: &Req) -> Result<(), Stat> {
    let (interval, limit) = (r.cfg.rate_interval_ns, r.cfg.rate_limit_ns);
    if interval == 0 {
        return Ok(());
    }
    let now = coarse_now(r.scratch);
    let w1 = if r.v6 { r.src[1] } else { 0 };
    let b = rate_bucket(&r.cfg.hash_key, r.v6, r.src[0], w1);
    // The index is below RATE_BUCKETS, so the lookup cannot fail.
    let p = RATE.get_ptr_mut(b).ok_or(Stat::DropRateLimited)?;
    // SAFETY: a value of the map; a racing CPU at worst admits one more.
    let tat = unsafe { p.read_volatile() };
    let next = rate_admit(Some(tat), now, interval, limit).ok_or(Stat::DropRateLimited)?;
    unsafe { p.write_volatile(next) };
    Ok(())
}

#[inline(always)]
fn try_respond(ctx: &XdpContext, r: &Req) -> Result<(), Stat> {
    let table = maps::SLOTS
        .get(slot_table_index(r.cfg.active_table, r.v6))
        .ok_or(Stat::PassNoTarget)?;
    if table.len == 0 {
        return Err(Stat::PassNoTarget);
    }
    let cli: [u8; 16] = bytemuck::cast(r.src);
    let spi = r.spi.to_ne_bytes();
    let sport = u16::from_be(r.ports as u16);
    let slot = flow_hash(&r.cfg.hash_key, &cli, sport, &spi) as usize & (SLOTS - 1);
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
    // Never amplify: the answer must be strictly shorter than the request (docs/protocol.md §4.6).
    if reply_ike >= r.ike_len {
        return Err(Stat::PassTooLarge);
    }
    // Last before the rewrite: only requests that would be answered pay for the clock
    // and the lookup (a call), and only they use up the source's allowance.
    rate_limit(r)?;
    let mk = if r.marker { ike::NON_ESP_MARKER_LEN } else { 0 };
    let iph = if r.v6 { ipv6::HLEN } else { ipv4::HLEN };
    let udp_len = udp::HLEN + mk + reply_ike;
    let new_len = r.l2 + iph + udp_len;
    let uoff = r.l2 + iph;
    let id_off = uoff + udp::HLEN + mk + redirect::PREFIX_LEN;

    // No nonce copy (docs/protocol.md §4.3(b)): the answer's headers are written so that
    // they end where the request's Ni data begins, and the frame start moves there.
    // Everything the rewrite overwrites is saved first: MACs, VLAN tags and ethertype
    // here, addresses, ports and SPIi in `r`.
    // Offset and length in forms whose ranges the verifier can see (LLVM knows n's
    // range and would fold a mask of it away, hence the volatile re-read).
    // SAFETY: `r.scratch` is this CPU's scratch value.
    let nm = unsafe { core::ptr::read_volatile(&(*r.scratch).nonce_len) } as usize;
    let nonce_sum = sum_frame(ctx, r.scratch, r.nonce_off & 0x3fff, bounded_len(nm, 0xff))
        .ok_or(Stat::DropTruncated)? as u16;
    let mac: (u64, u32) = (
        load::<u64>(ctx, 0).ok_or(Stat::DropTruncated)?,
        load::<u32>(ctx, 8).ok_or(Stat::DropTruncated)?,
    );
    // Bytes 12..22: tags and ethertype, plus bytes of the IP header that the new one
    // overwrites below.
    let tags: [u16; 5] = load(ctx, 12).ok_or(Stat::DropTruncated)?;
    let head = r.nonce_off as i32 - (id_off + k) as i32;
    // SAFETY: helper calls on our own context; packet pointers are re-derived below.
    unsafe {
        if bpf_xdp_adjust_head(ctx.ctx, head) < 0 {
            return Err(Stat::DropTxError);
        }
        core::ptr::write_volatile(&mut (*r.scratch).head, head);
        let tail = new_len as i32 - (r.frame_len as i32 - head);
        if tail != 0 && bpf_xdp_adjust_tail(ctx.ctx, tail) < 0 {
            return Err(Stat::DropTxError);
        }
        if t.ident_type == redirect::GW_FQDN
            && bpf_xdp_store_bytes(ctx.ctx, id_off as u32, t.ident.as_ptr() as *mut _, k as u32) < 0
        {
            return Err(Stat::DropTxError);
        }
    }

    // Ethernet: swap the 6-byte addresses held in (bytes 0..8, bytes 8..12).
    let dst_mac = mac.0 & 0xffff_ffff_ffff;
    let src_mac = (mac.0 >> 48) | (u64::from(mac.1) << 16);
    store(ctx, 0, src_mac | (dst_mac << 48))?;
    store(ctx, 8, (dst_mac >> 16) as u32)?;
    store(ctx, 12, tags)?;

    // The headers come from `lb_common::wire::answer`, which the reference model uses too.
    let ip = r.l2;
    if r.v6 {
        store(ctx, ip, answer::ipv6_header(r.dst, r.src, udp_len))?;
    } else {
        store(ctx, ip, answer::ipv4_header(r.dst[0], r.src[0], udp_len))?;
    }
    let dport = u16::from_be((r.ports >> 16) as u16);
    let mut sum = sum_addr(&r.dst, r.v6) + sum_addr(&r.src, r.v6);
    sum += u64::from(udp::PROTO) + 2 * udp_len as u64 + u64::from(sport) + u64::from(dport);
    sum += redirect::payload_sum(&spi, t, n as u16, nonce_sum);
    let csum = checksum::finish_udp(sum).to_be();
    // Ports swapped, length, checksum, then a zero word: the marker on 4500, else the
    // start of SPIi, overwritten below.
    let [p, l] = answer::udp_header(r.ports, udp_len, csum);
    store(ctx, uoff, [p, l, 0])?;
    let (words, tail) = redirect::ike_prefix_words(&spi, t.ident_type, t.ident_len, n as u16);
    let pike = uoff + udp::HLEN + mk;
    store(ctx, pike, words)?;
    store(ctx, pike + 36, tail)?;
    match t.ident_type {
        redirect::GW_IPV4 => store(ctx, id_off, t.ident_word(0))?,
        redirect::GW_IPV6 => store(
            ctx,
            id_off,
            [
                t.ident_word(0),
                t.ident_word(1),
                t.ident_word(2),
                t.ident_word(3),
            ],
        )?,
        _ => {}
    }
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
