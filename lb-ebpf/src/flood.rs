//! `ikelb flood`: an in-kernel IKE_SA_INIT generator run by BPF_PROG_TEST_RUN with live
//! frames (the xdp-trafficgen technique), and the counter that checks what comes back.
//!
//! The live-frames page pool recycles pages without restoring them, and a responder
//! shrinks its page in place, so the generator rewrites the whole frame (and its length)
//! on every run. Each CPU owns its template in a per-CPU map value: the varied fields and
//! checksums are written there, then the frame is stored into the packet in one call.

use aya_ebpf::{
    bindings::xdp_action::{XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX},
    helpers::generated::{
        bpf_ktime_get_ns, bpf_xdp_adjust_head, bpf_xdp_adjust_tail, bpf_xdp_get_buff_len,
        bpf_xdp_load_bytes, bpf_xdp_store_bytes,
    },
    macros::{map, xdp},
    maps::{Array, PerCpuArray},
    programs::XdpContext,
};
use lb_common::{
    checksum,
    flood::{
        self, Answer, FRAME_BYTES, FloodCheck, FloodGen, KIND_NO_RS, KIND_UDP, NONCE_WORDS_MAX,
        OFF_MASK,
    },
    wire::{
        ike,
        l2l3::{self, ipv4, ipv6, udp},
    },
};

use crate::{maps::bounded_len, parse::load};

#[map(name = "IKELB_FLOOD_GEN")]
static GEN: PerCpuArray<FloodGen> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "IKELB_FLOOD_CHK")]
static CHECK: Array<FloodCheck> = Array::with_max_entries(1, 0);

#[map(name = "IKELB_FLOOD_CNT")]
static COUNT: PerCpuArray<u64> = PerCpuArray::with_max_entries(Answer::COUNT, 0);

#[map(name = "IKELB_FLOOD_SNK")]
static SINK: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

type Frame = [u8; FRAME_BYTES];

/// Stores `v` at the template offset `off`; the mask keeps it inside the frame array.
#[inline(always)]
fn put<T>(frame: &mut Frame, off: u32, v: T) {
    let o = (off & OFF_MASK) as usize;
    // SAFETY: o ≤ 511 and size_of::<T>() ≤ 8 < FRAME_SLACK: inside the array. BPF has
    // no alignment requirement for map values on the JITs we run on.
    unsafe { (frame.as_mut_ptr().add(o) as *mut T).write(v) }
}

/// Sum of a raw (wire-order) word in host word order, for `checksum::fold`.
#[inline(always)]
const fn halves(x: u64) -> u64 {
    (x & 0xffff_ffff) + (x >> 32)
}

/// Sends the next request of this CPU (XDP_TX), or XDP_DROP when the count is reached or
/// the pacing clock says wait: a dropped frame is not sent.
#[xdp]
pub fn ikelb_flood_gen(ctx: XdpContext) -> u32 {
    let Some(g) = GEN.get_ptr_mut(0) else {
        return XDP_ABORTED;
    };
    // SAFETY: this CPU's value; only this program writes it during a run.
    generate(&ctx, unsafe { &mut *g })
}

#[inline(always)]
fn generate(ctx: &XdpContext, g: &mut FloodGen) -> u32 {
    let seq = g.seq;
    if seq >= g.limit {
        return XDP_DROP;
    }
    if g.interval_ns != 0 {
        // SAFETY: helper without arguments.
        let now = unsafe { bpf_ktime_get_ns() };
        if g.next_ns > now {
            g.paced += 1;
            return XDP_DROP;
        }
        let floor = now.saturating_sub(flood::BURST * g.interval_ns);
        g.next_ns = if g.next_ns > floor { g.next_ns } else { floor } + g.interval_ns;
    }
    g.seq = seq + 1;
    let kind = flood::kind(seq, g.mix_udp, g.mix_no_rs);
    let idx = flood::client_index(g.cpu, g.ncpu, seq);
    let (host, port) = flood::client(idx, g.host_base, g.host_count, g.port_base, g.port_count);
    let spi = flood::spi(g.tag, g.cpu, seq);
    let dport = if kind == KIND_UDP {
        g.bg_dport
    } else {
        g.ike_dport
    } as u16;
    let rs = if kind == KIND_NO_RS {
        ike::NOTIFY_FRAGMENTATION_SUPPORTED
    } else {
        ike::NOTIFY_REDIRECT_SUPPORTED
    };

    let f = &mut g.frame;
    let (hw, pw, dw, rw, sw) = (
        host.to_be(),
        port.to_be(),
        dport.to_be(),
        rs.to_be(),
        spi.to_be(),
    );
    put(f, g.src_off, hw);
    put(f, g.udp_off, pw);
    put(f, g.udp_off + 2, dw);
    put(f, g.spi_off, sw);
    put(f, g.rs_off, rw);
    let mut usum = u64::from(g.udp_sum)
        + halves(u64::from(hw))
        + u64::from(pw)
        + u64::from(dw)
        + u64::from(rw)
        + halves(sw);
    for k in 0..NONCE_WORDS_MAX {
        if k >= g.nonce_words {
            break;
        }
        let w = flood::nonce_word(spi, k).to_be();
        put(f, g.nonce_off + 8 * k, w);
        usum += halves(w);
    }
    // Checksum fields hold the complement of the host-order fold (see parse.rs).
    let c = !checksum::fold(usum);
    put(f, g.udp_off + 6, if c == 0 { 0xffff } else { c });
    if g.v6 == 0 {
        let isum = u64::from(g.ip_sum) + halves(u64::from(hw));
        put(f, g.ip_off + ipv4::CHECKSUM as u32, !checksum::fold(isum));
    }

    let len = bounded_len(g.len as usize, OFF_MASK as usize);
    // SAFETY: helpers on our own context; `len` ≤ 512 ≤ the frame array.
    unsafe {
        let cur = bpf_xdp_get_buff_len(ctx.ctx) as i32;
        if (cur != len as i32 && bpf_xdp_adjust_tail(ctx.ctx, len as i32 - cur) < 0)
            || bpf_xdp_store_bytes(ctx.ctx, 0, f.as_ptr() as *mut _, len as u32) < 0
        {
            return XDP_ABORTED;
        }
    }
    match kind {
        KIND_UDP => g.sent[1] += 1,
        KIND_NO_RS => g.sent[2] += 1,
        _ => g.sent[0] += 1,
    }
    XDP_TX
}

/// Counts what comes back to the generator: answers to our requests are checked
/// against the request (SPIi, client address and port, nonce) and dropped; anything
/// else is counted as `Other` and passed. With `recycle` set (the AF_XDP sender's
/// loop), a correct answer is rewritten in place into this CPU's next request and sent
/// back: requests then flow at the speed of the responder and this counter, with no
/// syscall per frame, as with live frames.
#[xdp]
pub fn ikelb_flood_count(ctx: XdpContext) -> u32 {
    let a = classify(&ctx);
    if let Some(p) = COUNT.get_ptr_mut(a as u32) {
        // SAFETY: this CPU's counter; no concurrent writer.
        unsafe { *p += 1 };
    }
    match a {
        Answer::Other => XDP_PASS,
        Answer::RedirectOk | Answer::EchoOk if CHECK.get(0).is_some_and(|c| c.recycle != 0) => {
            match GEN.get_ptr_mut(0) {
                Some(g) => {
                    // SAFETY: this CPU's value; the generator program does not run in
                    // this mode, so the counter is its only writer.
                    let g = unsafe { &mut *g };
                    // A responder that answered by moving the head forward (ikelb)
                    // leaves the room at the front: take it back there, or the frame
                    // creeps toward its end a little on every round. Where the head
                    // has no room, `generate` grows the tail instead.
                    let len = bounded_len(g.len as usize, OFF_MASK as usize) as i32;
                    // SAFETY: helpers on our own context.
                    unsafe {
                        let cur = bpf_xdp_get_buff_len(ctx.ctx) as i32;
                        if cur < len {
                            bpf_xdp_adjust_head(ctx.ctx, cur - len);
                        }
                    }
                    generate(&ctx, g)
                }
                None => XDP_DROP,
            }
        }
        _ => XDP_DROP,
    }
}

/// Takes whatever the sender delivers, counted per CPU: the sender's own capacity, to
/// tell a responder that kept up from a generator that could not offer more.
#[xdp]
pub fn ikelb_flood_sink(_ctx: XdpContext) -> u32 {
    if let Some(p) = SINK.get_ptr_mut(0) {
        // SAFETY: this CPU's counter; no concurrent writer.
        unsafe { *p += 1 };
    }
    XDP_DROP
}

#[inline(always)]
fn classify(ctx: &XdpContext) -> Answer {
    let Some(c) = CHECK.get(0) else {
        return Answer::Other;
    };
    let l3 = l2l3::ETH_HLEN;
    let Some(etype) = load::<u16>(ctx, l2l3::ETH_TYPE) else {
        return Answer::Other;
    };
    // The client's address: the destination of an answer or a reflected request, the
    // source of a forwarded one (as is its port).
    let fwd = c.forwarded != 0;
    let (uoff, client_word) = if c.v6 != 0 {
        let Some(w) = load::<[u32; 10]>(ctx, l3) else {
            return Answer::Other;
        };
        if u16::from_be(etype) != l2l3::ETHERTYPE_IPV6 || (w[1] >> 16) as u8 != udp::PROTO {
            return Answer::Other;
        }
        (l3 + ipv6::HLEN, if fwd { w[5] } else { w[9] })
    } else {
        let Some(w) = load::<[u32; 5]>(ctx, l3) else {
            return Answer::Other;
        };
        if u16::from_be(etype) != l2l3::ETHERTYPE_IPV4
            || w[0] as u8 != 0x45
            || (w[2] >> 8) as u8 != udp::PROTO
        {
            return Answer::Other;
        }
        (l3 + ipv4::HLEN, if fwd { w[3] } else { w[4] })
    };
    let Some(uh) = load::<[u16; 4]>(ctx, uoff) else {
        return Answer::Other;
    };
    let ike_off = uoff + udp::HLEN;
    let Some(h) = load::<[u32; 7]>(ctx, ike_off) else {
        return Answer::Other;
    };
    let w4 = h[4];
    if (w4 >> 8) as u8 != ike::VERSION_2_0 || (w4 >> 16) as u8 != ike::EXCHANGE_IKE_SA_INIT {
        return Answer::Other;
    }
    let flags = (w4 >> 24) as u8;
    let response = flags & ike::FLAG_RESPONSE != 0;
    let (ok, bad) = if response {
        (Answer::RedirectOk, Answer::RedirectBad)
    } else {
        (Answer::EchoOk, Answer::EchoBad)
    };
    let spi = u64::from_be(u64::from(h[0]) | (u64::from(h[1]) << 32));
    let (tag, cpu, seq) = flood::spi_parts(spi);
    if tag != c.tag || cpu >= c.ncpu || seq >= c.limit {
        return bad;
    }
    let idx = flood::client_index(cpu, c.ncpu, seq);
    let (host, port) = flood::client(idx, c.host_base, c.host_count, c.port_base, c.port_count);
    let client_port = if fwd { uh[0] } else { uh[1] };
    if client_word != host.to_be() || client_port != port.to_be() {
        return bad;
    }
    let nw = c.nonce_words;
    let nonce_off = if response {
        // One N(REDIRECT): generic header, protocol, SPI size, type, GW identity type
        // and length, the identity, then the initiator's nonce (RFC 5685 §8).
        let Some(n) = load::<[u32; 3]>(ctx, ike_off + ike::HEADER_LEN) else {
            return bad;
        };
        let plen = u32::from(u16::from_be((n[0] >> 16) as u16));
        let k = (n[2] >> 8) & 0xff;
        if flags & ike::FLAG_INITIATOR != 0
            || w4 as u8 != ike::PAYLOAD_NOTIFY
            || h[5] != 0
            || u16::from_be((n[1] >> 16) as u16) != ike::NOTIFY_REDIRECT
            || plen != ike::NOTIFY_FIXED_LEN as u32 + 2 + k + 8 * nw
        {
            return bad;
        }
        ike_off + ike::HEADER_LEN + ike::NOTIFY_FIXED_LEN + 2 + k as usize
    } else {
        if flags & ike::FLAG_INITIATOR == 0 {
            return bad;
        }
        c.echo_nonce_off as usize
    };
    let mut buf = [0u64; NONCE_WORDS_MAX as usize];
    let len = bounded_len(nw as usize * 8, 63);
    // SAFETY: `buf` holds 64 bytes and len ≤ 64; the helper checks the packet range.
    let rc = unsafe {
        bpf_xdp_load_bytes(
            ctx.ctx,
            nonce_off as u32,
            buf.as_mut_ptr() as *mut _,
            len as u32,
        )
    };
    if rc < 0 {
        return bad;
    }
    for k in 0..NONCE_WORDS_MAX {
        if k >= nw {
            break;
        }
        if u64::from_be(buf[k as usize]) != flood::nonce_word(spi, k) {
            return bad;
        }
    }
    ok
}
