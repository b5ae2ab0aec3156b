//! ikelb's XDP fast path: answers IKE_SA_INIT requests that carry
//! N(REDIRECT_SUPPORTED) with an RFC 5685 N(REDIRECT), built in place (XDP_TX).
//!
//! The decision rules are `lb_common::wire::request::parse`; this file keeps them in the
//! shape the verifier accepts: bounded loops, a bounds check beside every access, loop
//! state in a per-CPU map value so the verifier does not fork on it.
#![no_std]
#![no_main]

mod encap;
mod flood;
mod forward;
mod maps;
mod parse;
mod respond;

use aya_ebpf::{
    bindings::xdp_action::{XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX},
    helpers::generated::{
        bpf_xdp_adjust_head, bpf_xdp_adjust_tail, bpf_xdp_get_buff_len, bpf_xdp_store_bytes,
    },
    macros::xdp,
    programs::XdpContext,
};
use lb_common::maps::{BENCH_FRAME_MAX, Stat};

#[xdp]
pub fn ikelb_xdp(ctx: XdpContext) -> u32 {
    redirect(&ctx)
}

#[inline(always)]
fn redirect(ctx: &XdpContext) -> u32 {
    let outcome = match parse::parse(ctx) {
        Ok(req) => respond::respond(ctx, &req),
        Err(stat) => stat,
    };
    maps::count(Stat::Seen);
    if let Some(action) = forward::forward(ctx, outcome) {
        maps::count(Stat::Forwarded);
        return action;
    }
    maps::count(outcome);
    match outcome {
        Stat::Redirected => XDP_TX,
        s if s.is_drop() => XDP_DROP,
        _ => XDP_PASS,
    }
}

/// On a member behind a router (`ikelb member --decap`): unwraps the balancer's
/// IP-in-IP (docs/architecture.md §6.4).
#[xdp]
pub fn ikelb_decap(ctx: XdpContext) -> u32 {
    encap::decap(&ctx)
}

/// Passes everything: attached to a veth peer so that XDP_TX frames sent to it are
/// delivered (veth drops them unless the peer runs an XDP program), and the empty
/// baseline of `cargo xtask bench`.
#[xdp]
pub fn ikelb_pass(_ctx: XdpContext) -> u32 {
    XDP_PASS
}

/// The physical limit of the path: swaps MACs, IPs and UDP ports and sends the frame
/// back unchanged otherwise (the bench and flood baseline).
#[xdp]
pub fn ikelb_reflect(ctx: XdpContext) -> u32 {
    respond::reflect(&ctx)
}

/// Bench harness: BPF_PROG_TEST_RUN does not restore the frame between repetitions,
/// so this rewrites the template request (`IKELB_BENCH`) first, then runs the program
/// the template's mode names. Timing each mode in one run isolates the program's cost.
#[xdp]
pub fn ikelb_bench(ctx: XdpContext) -> u32 {
    let Some(t) = maps::BENCH.get(0) else {
        return XDP_ABORTED;
    };
    let Some(sc) = maps::SCRATCH.get_ptr_mut(0) else {
        return XDP_ABORTED;
    };
    let len = maps::bounded_len(t.len as usize, BENCH_FRAME_MAX - 1);
    // SAFETY: helpers on our own context; `len` ≤ 512 = the template's size; `sc` is
    // this CPU's scratch value. The answer may have moved the frame start: move it
    // back (in every mode, so that the restore-only time includes this call).
    unsafe {
        let head = core::ptr::read_volatile(&(*sc).head);
        core::ptr::write_volatile(&mut (*sc).head, 0);
        if bpf_xdp_adjust_head(ctx.ctx, -head) < 0 {
            return XDP_ABORTED;
        }
        let cur = bpf_xdp_get_buff_len(ctx.ctx) as i32;
        if bpf_xdp_adjust_tail(ctx.ctx, len as i32 - cur) < 0
            || bpf_xdp_store_bytes(ctx.ctx, 0, t.frame.as_ptr() as *mut _, len as u32) < 0
        {
            return XDP_ABORTED;
        }
    }
    match t.mode {
        lb_common::maps::BENCH_REFLECT => respond::reflect(&ctx),
        lb_common::maps::BENCH_REDIRECT => redirect(&ctx),
        _ => XDP_TX,
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
