//! Forwarding to members (docs/architecture.md §6): frames to a forward-mode VIP that
//! the redirect parser does not answer but `FwdKind::of` names (a request without
//! REDIRECT_SUPPORTED, later IKE, ESP-in-UDP, keepalives, ESP, fragments) go out again
//! (`XDP_TX`) to the client's member with only the Ethernet addresses changed.

use aya_ebpf::{
    bindings::xdp_action::{XDP_PASS, XDP_TX},
    macros::map,
    maps::{Array, LruHashMap, PerCpuArray},
    programs::XdpContext,
};
use lb_common::{
    forward::{
        CONN_ENTRIES, ConnKey, ConnValue, FWD_STAT_ENTRIES, FWD_TABLE_ENTRIES, FwdCount, FwdKind,
        FwdMember, MAX_FWD_VIPS, MEMBER_ALIVE, MEMBER_ENCAP, MEMBER_LOCAL, NO_MEMBER, client_hash,
        stat_index, table_index,
    },
    maps::{MAX_TARGETS, Stat},
    wire::l2l3,
};

use crate::maps;
use crate::parse::{l3_of, load};

#[map(name = "IKELB_FWD_TABLE")]
static FWD_TABLE: Array<u16> = Array::with_max_entries(FWD_TABLE_ENTRIES, 0);

#[map(name = "IKELB_FWD_MEMB")]
static FWD_MEMBERS: Array<FwdMember> = Array::with_max_entries(MAX_TARGETS, 0);

#[map(name = "IKELB_FWD_CONN")]
static FWD_CONN: LruHashMap<ConnKey, ConnValue> = LruHashMap::with_max_entries(CONN_ENTRIES, 0);

#[map(name = "IKELB_FWD_STATS")]
static FWD_STATS: PerCpuArray<FwdCount> = PerCpuArray::with_max_entries(FWD_STAT_ENTRIES, 0);

/// Whether the parser's `outcome` can be a forwarded kind at all: most frames (those
/// answered, and those to no VIP) leave here without another header read.
#[inline(always)]
const fn candidate(outcome: Stat) -> bool {
    matches!(
        outcome,
        Stat::PassNoRedirectSupported
            | Stat::PassNotInit
            | Stat::PassEsp
            | Stat::PassKeepalive
            | Stat::PassFragment
            | Stat::PassNotUdp
            | Stat::PassIpv6ExtHeader
    )
}

/// The member a live entry names, if alive.
#[inline(always)]
fn alive(member: u32) -> Option<&'static FwdMember> {
    FWD_MEMBERS
        .get(member)
        .filter(|m| m.flags & MEMBER_ALIVE != 0)
}

/// Forwards the frame if it is to a forward-mode VIP and of a forwarded kind: returns
/// the action, `XDP_TX` after rewriting it for a member on the segment, `XDP_PASS`
/// unchanged for this host's own member (the VIP is local here too, and a frame sent
/// to our own MAC would not come back); `None` keeps `outcome`.
#[inline(always)]
pub fn forward(ctx: &XdpContext, outcome: Stat) -> Option<u32> {
    if !candidate(outcome) {
        return None;
    }
    let (etype, l2) = l3_of(ctx)?;
    // The parser has validated these headers already (it reached a pass outcome past
    // its VIP check); only what the choice needs is read again.
    let (key, proto, fwd) = if etype == l2l3::ETHERTYPE_IPV6 {
        let Some(w) = load::<[u32; 10]>(ctx, l2) else {
            return None;
        };
        let dst = [w[6], w[7], w[8], w[9]];
        // SAFETY: a map value read once.
        let Some(v) = (unsafe { maps::VIPS6.get(&dst) }) else {
            return None;
        };
        let key = ConnKey {
            v6: 1,
            client: [w[2], w[3], w[4], w[5]],
            vip: dst,
        };
        (key, (w[1] >> 16) as u8, v.fwd)
    } else {
        let Some(w) = load::<[u32; 5]>(ctx, l2) else {
            return None;
        };
        // SAFETY: as above.
        let Some(v) = (unsafe { maps::VIPS4.get(&w[4]) }) else {
            return None;
        };
        let key = ConnKey {
            v6: 0,
            client: [w[3], 0, 0, 0],
            vip: [w[4], 0, 0, 0],
        };
        (key, (w[2] >> 8) as u8, v.fwd)
    };
    if fwd == 0 || fwd > MAX_FWD_VIPS {
        return None;
    }
    let Some(kind) = FwdKind::of(outcome, proto) else {
        return None;
    };
    let Some(member) = choose(&key) else {
        return None;
    };
    let Some(m) = alive(member) else {
        return None;
    };
    let start = ctx.data();
    if start + l2l3::ETH_HLEN > ctx.data_end() {
        return None;
    }
    let bytes = (ctx.data_end() - start) as u64;
    let local = m.flags & MEMBER_LOCAL != 0;
    let action = if local {
        XDP_PASS
    } else if m.flags & MEMBER_ENCAP != 0 {
        crate::encap::encap(ctx, l2, key.v6 != 0, m)?
    } else {
        // SAFETY: the 14-byte Ethernet header is inside the frame (checked just above).
        unsafe {
            let p = start as *mut u8;
            let ours = (p as *const [u8; 6]).read_unaligned();
            (p.add(6) as *mut [u8; 6]).write_unaligned(ours);
            (p as *mut [u8; 6]).write_unaligned(m.mac);
        }
        XDP_TX
    };
    let idx = stat_index(fwd - 1, member % MAX_TARGETS, kind);
    if let Some(c) = FWD_STATS.get_ptr_mut(idx) {
        // SAFETY: this CPU's value; no concurrent writer.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
        }
    }
    Some(action)
}

/// The member of `key`'s client: its pinned member while that is alive, else the
/// live Maglev entry, which then becomes the pin.
#[inline(always)]
fn choose(key: &ConnKey) -> Option<u32> {
    // SAFETY: a map value read once.
    if let Some(c) = unsafe { FWD_CONN.get(key) } {
        let member = c.member;
        if alive(member).is_some() {
            return Some(member);
        }
    }
    let generation = maps::CONFIG.get(0)?.active_table;
    let m = *FWD_TABLE.get(table_index(generation, key.v6, client_hash(&key.client)))?;
    if m == NO_MEMBER {
        return None;
    }
    let v = ConnValue {
        member: u32::from(m),
    };
    // A full table evicts its least recently used entry; an error leaves the client
    // unpinned, placed by the table again on its next packet.
    let _ = FWD_CONN.insert(key, &v, 0);
    Some(v.member)
}
