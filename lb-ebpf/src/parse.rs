//! Request parsing: the rules of `lb_common::wire::request::parse`, in the same order,
//! with a bounds check beside every packet access.

use aya_ebpf::{helpers::generated::bpf_csum_diff, programs::XdpContext};
use core::ptr::{addr_of_mut, read_volatile, write_volatile};
use lb_common::{
    checksum,
    maps::{Config, Stat, VIP_GEN_MASK, VIP_GEN_SHIFT, VIP_MODE_AUTH, VLAN_ANY, Vip, vlan_push},
    wire::{
        ike,
        l2l3::{self, ipv4, ipv6, udp},
        request::ipv6_ext_header,
    },
};

use crate::maps::{self, SCRATCH, Scratch};

/// What the responder needs from a request it answers. Addresses, ports and SPIi are
/// kept as raw words (bytes in wire order, read as little-endian integers): the program
/// moves words, not bytes.
pub struct Req {
    pub v6: bool,
    pub l2: usize,
    pub marker: bool,
    pub ike_len: usize,
    pub nonce_off: usize,
    pub nonce_len: usize,
    pub scratch: *mut Scratch,
    /// Frame length as received (Ethernet padding included).
    pub frame_len: usize,
    /// The configuration word read at the start: slot-table generation, flow-hash key,
    /// rate limit.
    pub cfg: &'static Config,
    /// Client and VIP addresses (IPv4: first word only).
    pub src: [u32; 4],
    pub dst: [u32; 4],
    /// UDP source and destination ports, raw.
    pub ports: u32,
    /// SPIi, raw.
    pub spi: u64,
}

/// The EtherType after up to `MAX_VLAN` tags, and the offset of the L3 header (for the
/// programs that only need to find the IP header: forwarding and decapsulation).
#[inline(always)]
pub fn l3_of(ctx: &XdpContext) -> Option<(u16, usize)> {
    let mut etype = u16::from_be(load::<u16>(ctx, l2l3::ETH_TYPE)?);
    let mut l2 = l2l3::ETH_HLEN;
    for _ in 0..l2l3::MAX_VLAN {
        if !l2l3::is_vlan_tpid(etype) {
            break;
        }
        etype = u16::from_be(load::<u16>(ctx, l2 + 2)?);
        l2 += l2l3::VLAN_HLEN;
    }
    Some((etype, l2))
}

/// A `T` at `off` bytes from the frame start, or `None` past the end. A plain (aligned)
/// load so LLVM emits one instruction instead of a byte loop; BPF on the JITs we run
/// on has no alignment requirement for packet memory.
#[inline(always)]
pub fn load<T: Copy>(ctx: &XdpContext, off: usize) -> Option<T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + core::mem::size_of::<T>() > end {
        return None;
    }
    // SAFETY: [start+off, start+off+size) was checked against data_end just above.
    Some(unsafe { ((start + off) as *const T).read() })
}

/// The byte at `off` (1 ≤ off < 16384), as the high half of the 2-byte load that ends
/// there: LLVM turns a 1-byte bounds check into `p >= end`, which the verifier does not
/// accept as a range proof, and a helper call costs more than the load. The mask keeps
/// LLVM from folding the `- 1` into the load's offset, which the verifier would refuse
/// as negative.
#[inline(always)]
fn load_byte(ctx: &XdpContext, off: usize) -> Option<u8> {
    load::<u16>(ctx, (off - 1) & 0x3fff).map(|w| (w >> 8) as u8)
}

#[inline(always)]
fn be16_at(ctx: &XdpContext, off: usize) -> Option<u16> {
    load::<u16>(ctx, off).map(u16::from_be)
}

/// Big-endian one's-complement sum of raw words (RFC 1071 §2(B): the little-endian sum
/// folded and byte-swapped).
#[inline(always)]
pub fn sum_words<const N: usize>(w: &[u32; N]) -> u64 {
    let mut le = 0u64;
    for x in w {
        le += u64::from(*x);
    }
    u64::from(checksum::fold(le).swap_bytes())
}

/// Big-endian sum of an address held as raw words (IPv4: the first word only). Fixed
/// indices: a loop over a variable-length slice of the stack defeats the verifier.
#[inline(always)]
pub fn sum_addr(a: &[u32; 4], v6: bool) -> u64 {
    if v6 { sum_words(a) } else { sum_words(&[a[0]]) }
}

/// Adds the little-endian partial sum of the next 256 bytes to the running sum, with
/// `bpf_csum_diff` straight on the packet. Position, remainder and sum live in the
/// scratch map (read and written volatile) so that every path leaves the verifier the
/// same unknown state to prune, instead of one state per combination of block sizes.
/// A helper call here, not word loads: 36 iterations of 64 loads made the verifier
/// walk more than twice as many instructions (850k of its 1M limit).
#[inline(always)]
fn csum_step_256(ctx: &XdpContext, sc: *mut Scratch) -> Option<()> {
    const N: usize = 256;
    // SAFETY: `sc` is this CPU's scratch value.
    unsafe {
        let off = read_volatile(&(*sc).sum_off) as usize & 0x3fff;
        let p = ctx.data() + off;
        if p + N > ctx.data_end() {
            return None;
        }
        // [p, p+N) is inside the frame (checked above); N is a multiple of 4.
        let s = bpf_csum_diff(core::ptr::null_mut(), 0, p as *mut u32, N as u32, 0);
        if s < 0 {
            return None;
        }
        let le = read_volatile(&(*sc).sum_le);
        let rem = read_volatile(&(*sc).sum_rem);
        write_volatile(&mut (*sc).sum_le, le + u64::from(s as u32));
        write_volatile(&mut (*sc).sum_off, (off + N) as u32);
        write_volatile(&mut (*sc).sum_rem, rem - N as u32);
    }
    Some(())
}

/// As [`csum_step_256`] for `4 * M` bytes if at least that many remain, summed with `M`
/// word loads: on CPUs whose mitigations make every call and return costly (AMD with
/// SRSO), a helper call costs more than these loads.
#[inline(always)]
fn csum_step_words<const M: usize>(ctx: &XdpContext, sc: *mut Scratch) -> Option<()> {
    // SAFETY: `sc` is this CPU's scratch value.
    unsafe {
        let rem = read_volatile(&(*sc).sum_rem) as usize;
        if rem < 4 * M {
            return Some(());
        }
        let off = read_volatile(&(*sc).sum_off) as usize & 0x3fff;
        let p = ctx.data() + off;
        if p + 4 * M > ctx.data_end() {
            return None;
        }
        // [p, p+4M) is inside the frame (checked above).
        let w = (p as *const [u32; M]).read();
        let mut le = read_volatile(&(*sc).sum_le);
        for x in w {
            le += u64::from(x);
        }
        write_volatile(&mut (*sc).sum_le, le);
        write_volatile(&mut (*sc).sum_off, (off + 4 * M) as u32);
        write_volatile(&mut (*sc).sum_rem, (rem - 4 * M) as u32);
    }
    Some(())
}

/// One's-complement sum (big-endian words, unfolded) of `len` frame bytes from `off`,
/// straight on the packet (no copy): 256-byte blocks through the helper, then a
/// 128/64/32/16/8/4-byte cascade of word loads, each a constant size the verifier can
/// check, then the last 0..3 bytes.
/// `None` past the frame end or beyond a jumbo frame's length.
#[inline(always)]
pub fn sum_frame(ctx: &XdpContext, sc: *mut Scratch, off: usize, len: usize) -> Option<u64> {
    const MAX_BLOCKS: usize = 36; // 9216 bytes
    if len >= MAX_BLOCKS * 256 {
        return None;
    }
    // SAFETY: `sc` is this CPU's scratch value.
    unsafe {
        write_volatile(&mut (*sc).sum_off, off as u32);
        write_volatile(&mut (*sc).sum_rem, len as u32);
        write_volatile(&mut (*sc).sum_le, 0);
    }
    for _ in 0..MAX_BLOCKS {
        // SAFETY: as above.
        if unsafe { read_volatile(&(*sc).sum_rem) } < 256 {
            break;
        }
        csum_step_256(ctx, sc)?;
    }
    csum_step_words::<32>(ctx, sc)?;
    csum_step_words::<16>(ctx, sc)?;
    csum_step_words::<8>(ctx, sc)?;
    csum_step_words::<4>(ctx, sc)?;
    csum_step_words::<2>(ctx, sc)?;
    csum_step_words::<1>(ctx, sc)?;
    // SAFETY: as above.
    let mut le = unsafe { read_volatile(&(*sc).sum_le) };
    let tail = len & 3;
    let end = off + len;
    if tail >= 2 {
        // Little-endian lane of two bytes.
        // `end - tail`, in a form the verifier sees as non-negative.
        le += u64::from(load::<u16>(ctx, off + (len & !3))?);
    }
    if tail & 1 == 1 {
        // The last byte: the low half of its little-endian 16-bit lane.
        le += u64::from(load_byte(ctx, end - 1)?);
    }
    // The blocks sum host-order (little-endian) words; a byte swap of the folded sum is
    // the big-endian one (RFC 1071 §2(B)). Every block but the tail is even-sized.
    Some(u64::from(checksum::fold(le).swap_bytes()))
}

/// Byte indices in `Scratch.seen`.
const S_SA: usize = 0;
const S_KE: usize = 1;
const S_RS: usize = 2;
const S_RF: usize = 3;
const S_NONE: usize = 4;

/// A VIP's mode if the frame's tag stack `vlans` is the one the VIP lives behind.
#[inline(always)]
fn bound(vip: Vip, vlans: u32) -> Result<u32, Stat> {
    if vip.vlans == VLAN_ANY || vip.vlans == vlans {
        Ok(vip.mode)
    } else {
        Err(Stat::PassOtherVlan)
    }
}

/// `lb_common::wire::request::unicast_source` on an IPv4 address held as a raw word
/// (its first byte is the low byte).
#[inline(always)]
fn unicast4(a: u32) -> bool {
    let b = a as u8;
    b != 0 && b != 127 && b < 224
}

/// `lb_common::wire::request::unicast_source` on raw words (IPv4: the first only), with
/// plain compares.
#[inline(always)]
fn unicast_source(v6: bool, src: &[u32; 4], dst: &[u32; 4]) -> bool {
    if !v6 {
        return src[0] != dst[0] && unicast4(src[0]);
    }
    let same = (src[0] ^ dst[0]) | (src[1] ^ dst[1]) | (src[2] ^ dst[2]) | (src[3] ^ dst[3]);
    if same == 0 || src[0] as u8 == 0xff {
        return false;
    }
    if src[0] | src[1] != 0 {
        return true;
    }
    match src[2] {
        // ::, ::1 (bytes 00 00 00 01 read little-endian).
        0 => src[3] != 0 && src[3] != 0x0100_0000,
        // ::ffff:a.b.c.d (bytes 00 00 ff ff).
        0xffff_0000 => unicast4(src[3]),
        _ => true,
    }
}

#[inline(always)]
pub fn parse(ctx: &XdpContext) -> Result<Req, Stat> {
    let cfg = maps::CONFIG.get(0).ok_or(Stat::PassInactive)?;
    if cfg.flags & lb_common::maps::FLAG_ACTIVE == 0 {
        return Err(Stat::PassInactive);
    }
    let sc = SCRATCH.get_ptr_mut(0).ok_or(Stat::PassInactive)?;
    let vip_stamp = ((cfg.flags >> VIP_GEN_SHIFT) & VIP_GEN_MASK) + 1;
    let frame_len = ctx.data_end() - ctx.data();

    let mut etype = be16_at(ctx, l2l3::ETH_TYPE).ok_or(Stat::PassNotIp)?;
    let mut l2 = l2l3::ETH_HLEN;
    let mut vlans = 0;
    for _ in 0..l2l3::MAX_VLAN {
        if !l2l3::is_vlan_tpid(etype) {
            break;
        }
        // TCI and the next EtherType in one load.
        let tag: u32 = load(ctx, l2).ok_or(Stat::PassNotIp)?;
        vlans = vlan_push(vlans, u16::from_be(tag as u16));
        etype = u16::from_be((tag >> 16) as u16);
        l2 += l2l3::VLAN_HLEN;
    }
    let v6 = match etype {
        l2l3::ETHERTYPE_IPV4 => false,
        l2l3::ETHERTYPE_IPV6 => true,
        _ => return Err(Stat::PassNotIp),
    };
    let ip_avail = frame_len - l2;
    // Addresses are built whole in each branch: zeroing arrays first made LLVM call a
    // byte-loop memset subprogram.
    let (ihl, ip_payload, mode, src, dst) = if v6 {
        let w: [u32; 10] = load(ctx, l2).ok_or(Stat::PassNotIp)?;
        if w[0] as u8 >> 4 != 6 {
            return Err(Stat::PassNotIp);
        }
        let src = [w[2], w[3], w[4], w[5]];
        let dst = [w[6], w[7], w[8], w[9]];
        // SAFETY: `sc` is this CPU's scratch value; the lookup result is a map value
        // read once.
        let vip = maps::vip_value(unsafe { addr_of_mut!((*sc).vip6) }, vip_stamp, &dst, || {
            unsafe { maps::VIPS6.get(&dst) }.copied()
        })
        .ok_or(Stat::PassNotVip)?;
        let mode = bound(vip, vlans)?;
        let nh = (w[1] >> 16) as u8;
        if nh != udp::PROTO {
            return Err(if ipv6_ext_header(nh) {
                Stat::PassIpv6ExtHeader
            } else {
                Stat::PassNotUdp
            });
        }
        let plen = usize::from(u16::from_be(w[1] as u16));
        if ip_avail < ipv6::HLEN + plen {
            return Err(Stat::DropTruncated);
        }
        (ipv6::HLEN, plen, mode, src, dst)
    } else {
        let w: [u32; 5] = load(ctx, l2).ok_or(Stat::PassNotIp)?;
        let vihl = w[0] as u8;
        let ihl = usize::from(vihl & 0x0f) * 4;
        if vihl >> 4 != 4 || ihl < ipv4::HLEN {
            return Err(Stat::PassNotIp);
        }
        // SAFETY: as above.
        let vip = maps::vip_value(
            unsafe { addr_of_mut!((*sc).vip4) },
            vip_stamp,
            &[w[4]],
            || unsafe { maps::VIPS4.get(&w[4]) }.copied(),
        )
        .ok_or(Stat::PassNotVip)?;
        let mode = bound(vip, vlans)?;
        if (w[2] >> 8) as u8 != udp::PROTO {
            return Err(Stat::PassNotUdp);
        }
        if u16::from_be((w[1] >> 16) as u16) & ipv4::FRAG_MASK != 0 {
            return Err(Stat::PassFragment);
        }
        let total = usize::from(u16::from_be((w[0] >> 16) as u16));
        if ip_avail < ihl {
            return Err(Stat::DropTruncated);
        }
        if total < ihl {
            return Err(Stat::DropBadLength);
        }
        if ip_avail < total {
            return Err(Stat::DropTruncated);
        }
        let mut hsum = sum_words(&w);
        if ihl > ipv4::HLEN {
            let opt = ihl - ipv4::HLEN;
            hsum += sum_frame(ctx, sc, l2 + ipv4::HLEN, opt).ok_or(Stat::DropTruncated)?;
        }
        if checksum::fold(hsum) != 0xffff {
            return Err(Stat::DropBadChecksum);
        }
        (ihl, total - ihl, mode, [w[3], 0, 0, 0], [w[4], 0, 0, 0])
    };
    let pseudo = sum_addr(&src, v6) + sum_addr(&dst, v6);
    let uoff = l2 + ihl;
    if ip_payload < udp::HLEN {
        return Err(Stat::DropBadLength);
    }
    let uh: [u32; 2] = load(ctx, uoff).ok_or(Stat::DropTruncated)?;
    let marker = match u16::from_be((uh[0] >> 16) as u16) {
        ike::PORT_IKE => false,
        ike::PORT_NATT => true,
        _ => return Err(Stat::PassNotIkePort),
    };
    if uh[0] as u16 == 0 || !unicast_source(v6, &src, &dst) {
        return Err(Stat::DropBadSource);
    }
    if usize::from(u16::from_be(uh[1] as u16)) != ip_payload {
        return Err(Stat::DropBadLength);
    }
    let csum = (uh[1] >> 16) as u16;
    if csum != 0 || v6 {
        if csum == 0 {
            return Err(Stat::DropBadChecksum);
        }
        let s = sum_frame(ctx, sc, uoff, ip_payload).ok_or(Stat::PassTooLarge)?;
        if checksum::fold(s + pseudo + u64::from(udp::PROTO) + ip_payload as u64) != 0xffff {
            return Err(Stat::DropBadChecksum);
        }
    }
    let mut ike_off = uoff + udp::HLEN;
    let mut ike_avail = ip_payload - udp::HLEN;
    if marker {
        if ike_avail == 1 && load_byte(ctx, ike_off) == Some(0xff) {
            return Err(Stat::PassKeepalive);
        }
        if ike_avail < ike::NON_ESP_MARKER_LEN || load::<u32>(ctx, ike_off) != Some(0) {
            return Err(Stat::PassEsp);
        }
        ike_off += ike::NON_ESP_MARKER_LEN;
        ike_avail -= ike::NON_ESP_MARKER_LEN;
    }
    if mode == VIP_MODE_AUTH {
        return Err(Stat::PassAuthMode);
    }
    if ike_avail < ike::HEADER_LEN {
        return Err(Stat::DropTruncated);
    }
    // SPIi, SPIr, (next, version, exchange, flags), message ID, length.
    let h: [u32; 7] = load(ctx, ike_off).ok_or(Stat::DropTruncated)?;
    let spi_i = u64::from(h[0]) | (u64::from(h[1]) << 32);
    let spi_r = u64::from(h[2]) | (u64::from(h[3]) << 32);
    let (w4, mid, len_raw) = (h[4], h[5], h[6]);
    if (w4 >> 8) as u8 >> 4 != 2 {
        return Err(Stat::PassNotIkev2);
    }
    if (w4 >> 16) as u8 != ike::EXCHANGE_IKE_SA_INIT {
        return Err(Stat::PassNotInit);
    }
    let flags = (w4 >> 24) as u8;
    if flags & ike::FLAG_RESPONSE != 0
        || flags & ike::FLAG_INITIATOR == 0
        || spi_i == 0
        || spi_r != 0
        || mid != 0
    {
        return Err(Stat::DropBadHeader);
    }
    let ike_len = u32::from_be(len_raw) as usize;
    if ike_len != ike_avail {
        return Err(Stat::DropBadLength);
    }

    // Payload walk. What it has seen goes to the scratch map, one byte per fact, so
    // the verifier sees no flag combinations in registers (see `Scratch`).
    // SAFETY: `sc` is this CPU's scratch value.
    let seen = unsafe { core::ptr::addr_of_mut!((*sc).seen) } as *mut u8;
    unsafe {
        write_volatile(seen as *mut u32, 0);
        write_volatile(&mut (*sc).nonce_len, 0);
    }
    let mut np = w4 & 0xff;
    let mut off = ike::HEADER_LEN;
    for _ in 0..ike::MAX_PAYLOADS {
        if np == u32::from(ike::PAYLOAD_NONE) {
            break;
        }
        off &= 0x3fff;
        if off + ike::GENERIC_HEADER_LEN > ike_len {
            return Err(Stat::DropBadPayload);
        }
        let ph: u32 = load(ctx, ike_off + off).ok_or(Stat::DropBadPayload)?;
        let plen = usize::from(u16::from_be((ph >> 16) as u16));
        if plen < ike::GENERIC_HEADER_LEN || off + plen > ike_len {
            return Err(Stat::DropBadPayload);
        }
        let fact = match np as u8 {
            ike::PAYLOAD_SA => S_SA,
            ike::PAYLOAD_KE => S_KE,
            ike::PAYLOAD_NONCE => {
                let n = plen - ike::GENERIC_HEADER_LEN;
                // SAFETY: as above.
                let dup = unsafe { read_volatile(&(*sc).nonce_len) } != 0;
                if dup || n < ike::NONCE_MIN || n > ike::NONCE_MAX {
                    return Err(Stat::DropBadNonce);
                }
                unsafe {
                    write_volatile(&mut (*sc).nonce_off, (off + ike::GENERIC_HEADER_LEN) as u32);
                    write_volatile(&mut (*sc).nonce_len, n as u32);
                }
                S_NONE
            }
            ike::PAYLOAD_NOTIFY => {
                if plen < ike::NOTIFY_FIXED_LEN {
                    return Err(Stat::DropBadPayload);
                }
                // Protocol ID, SPI Size, type.
                let n: u32 = load(ctx, ike_off + off + 4).ok_or(Stat::DropBadPayload)?;
                match u16::from_be((n >> 16) as u16) {
                    // RFC 5685 §4 (docs/protocol.md §2.1).
                    ike::NOTIFY_REDIRECT_SUPPORTED
                        if plen != ike::NOTIFY_FIXED_LEN || n as u16 != 0 =>
                    {
                        return Err(Stat::DropBadRedirectSupported);
                    }
                    ike::NOTIFY_REDIRECT_SUPPORTED => S_RS,
                    ike::NOTIFY_REDIRECTED_FROM => S_RF,
                    _ => S_NONE,
                }
            }
            t if !ike::known_payload(t) && (ph >> 8) as u8 & ike::CRITICAL != 0 => {
                return Err(Stat::PassUnknownCritical);
            }
            _ => S_NONE,
        };
        if fact != S_NONE {
            // SAFETY: `fact` < 4, inside the `seen` word.
            unsafe { write_volatile(seen.add(fact), 1) };
        }
        np = ph & 0xff;
        off += plen;
    }
    // SAFETY: as above.
    let f = unsafe { read_volatile(seen as *const u32) }.to_le_bytes();
    if np != u32::from(ike::PAYLOAD_NONE) {
        return Err(Stat::DropBadPayload);
    }
    if off != ike_len {
        return Err(Stat::DropBadLength);
    }
    if f[S_RF] != 0 {
        return Err(Stat::PassRedirectedFrom);
    }
    if f[S_RS] == 0 {
        return Err(Stat::PassNoRedirectSupported);
    }
    // SAFETY: as above.
    let (noff, nlen) = unsafe {
        (
            read_volatile(&(*sc).nonce_off),
            read_volatile(&(*sc).nonce_len),
        )
    };
    if nlen == 0 {
        return Err(Stat::DropBadNonce);
    }
    if f[S_SA] == 0 || f[S_KE] == 0 {
        return Err(Stat::DropNoSaKe);
    }
    Ok(Req {
        v6,
        l2,

        marker,
        ike_len,
        nonce_off: ike_off + noff as usize,
        nonce_len: nlen as usize,
        scratch: sc,
        frame_len,
        cfg,
        src,
        dst,
        ports: uh[0],
        spi: spi_i,
    })
}
