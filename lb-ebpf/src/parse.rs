//! Request parsing: the rules of `lb_common::wire::request::parse`, in the same order,
//! with a bounds check beside every packet access.

use aya_ebpf::{
    helpers::generated::{bpf_csum_diff, bpf_xdp_load_bytes},
    programs::XdpContext,
};
use core::ptr::{read_volatile, write_volatile};
use lb_common::{
    checksum,
    maps::{Stat, VIP_MODE_AUTH, VipKey},
    wire::{
        ike,
        l2l3::{self, ipv4, ipv6, udp},
        request::ipv6_ext_header,
    },
};

use crate::maps::{self, SCRATCH, Scratch, copy_len};

/// What the responder needs from a request it answers.
pub struct Req {
    pub v6: bool,
    pub l2: usize,
    pub ihl: usize,
    pub marker: bool,
    pub ike_off: usize,
    pub ike_len: usize,
    pub nonce_off: usize,
    pub nonce_len: usize,
    pub scratch: *mut Scratch,
    /// Frame length as received (Ethernet padding included).
    pub frame_len: usize,
    /// Live slot-table generation.
    pub table: u32,
}

/// Reads a `T` at `off` bytes from the frame start, or `None` past the end.
#[inline(always)]
pub fn load<T: Copy>(ctx: &XdpContext, off: usize) -> Option<T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + core::mem::size_of::<T>() > end {
        return None;
    }
    // SAFETY: [start+off, start+off+size) was checked against data_end just above.
    Some(unsafe { ((start + off) as *const T).read_unaligned() })
}

/// One byte through the helper: LLVM turns a 1-byte bounds check into `p >= end`,
/// which the verifier does not accept as a range proof.
#[inline(always)]
fn load_byte(ctx: &XdpContext, off: usize) -> Option<u8> {
    let mut b = 0u8;
    // SAFETY: the helper checks the offset; `b` is a valid 1-byte buffer.
    let rc = unsafe { bpf_xdp_load_bytes(ctx.ctx, off as u32, &mut b as *mut u8 as *mut _, 1) };
    (rc == 0).then_some(b)
}

#[inline(always)]
fn be16_at(ctx: &XdpContext, off: usize) -> Option<u16> {
    load::<u16>(ctx, off).map(u16::from_be)
}

/// One's-complement sum (big-endian words, unfolded) of `len` frame bytes from `off`,
/// copied through the scratch buffer in chunks so the verifier sees constant bounds.
/// `None` if the range is not in the frame or is longer than we verify.
#[inline(always)]
pub fn sum_frame(ctx: &XdpContext, sc: *mut Scratch, off: u32, len: u32) -> Option<u64> {
    const CHUNK: u32 = 256;
    const MAX_CHUNKS: u32 = 36; // 9216 bytes: a jumbo frame
    // SAFETY: `sc` is this CPU's scratch value; offsets below stay inside `buf`. The
    // loop state lives there too, read and written volatile (see `Scratch`).
    unsafe {
        let buf = core::ptr::addr_of_mut!((*sc).buf) as *mut u8;
        write_volatile(&mut (*sc).sum_done, 0);
        write_volatile(&mut (*sc).sum_le, 0);
        for _ in 0..MAX_CHUNKS {
            let done = read_volatile(&(*sc).sum_done);
            if done >= len {
                break;
            }
            let rem = len - done;
            let c = copy_len(if rem > CHUNK { CHUNK } else { rem } as usize) as u32;
            // Zero the word where the chunk ends: csum_diff sums whole words.
            write_volatile(buf.add((c & !3) as usize) as *mut u32, 0);
            if bpf_xdp_load_bytes(ctx.ctx, off + done, buf as *mut _, c) < 0 {
                return None;
            }
            let s = bpf_csum_diff(core::ptr::null_mut(), 0, buf as *mut u32, (c + 3) & !3, 0);
            if s < 0 {
                return None;
            }
            let le = read_volatile(&(*sc).sum_le);
            write_volatile(&mut (*sc).sum_le, le + u64::from(s as u32));
            write_volatile(&mut (*sc).sum_done, done + c);
        }
        if read_volatile(&(*sc).sum_done) != len {
            return None;
        }
        // csum_diff sums host-order (little-endian) words; a byte swap of the folded sum
        // is the big-endian one (RFC 1071 §2(B)). Every chunk but the last is even-sized.
        Some(u64::from(
            checksum::fold(read_volatile(&(*sc).sum_le)).swap_bytes(),
        ))
    }
}

const F_SA: u32 = 1;
const F_KE: u32 = 2;
const F_RS: u32 = 4;
const F_RF: u32 = 8;
const F_NONCE: u32 = 16;

#[inline(always)]
pub fn parse(ctx: &XdpContext) -> Result<Req, Stat> {
    let cfg = maps::CONFIG.get(0).ok_or(Stat::PassInactive)?;
    if cfg.flags & lb_common::maps::FLAG_ACTIVE == 0 {
        return Err(Stat::PassInactive);
    }
    let sc = SCRATCH.get_ptr_mut(0).ok_or(Stat::PassInactive)?;
    let frame_len = ctx.data_end() - ctx.data();

    let mut etype = be16_at(ctx, l2l3::ETH_TYPE).ok_or(Stat::PassNotIp)?;
    let mut l2 = l2l3::ETH_HLEN;
    for _ in 0..l2l3::MAX_VLAN {
        if !l2l3::is_vlan_tpid(etype) {
            break;
        }
        etype = be16_at(ctx, l2 + 2).ok_or(Stat::PassNotIp)?;
        l2 += l2l3::VLAN_HLEN;
    }
    let v6 = match etype {
        l2l3::ETHERTYPE_IPV4 => false,
        l2l3::ETHERTYPE_IPV6 => true,
        _ => return Err(Stat::PassNotIp),
    };
    let ip_avail = frame_len - l2;
    let (ihl, ip_payload, mode, pseudo) = if v6 {
        let h: [u8; ipv6::HLEN] = load(ctx, l2).ok_or(Stat::PassNotIp)?;
        if h[0] >> 4 != 6 {
            return Err(Stat::PassNotIp);
        }
        let mut key = VipKey::v6([0; 16]);
        key.addr.copy_from_slice(&h[ipv6::DST]);
        // SAFETY: lookup result is a map value read once.
        let vip = unsafe { maps::VIPS.get(&key) }.ok_or(Stat::PassNotVip)?;
        let nh = h[ipv6::NEXT_HEADER];
        if nh != udp::PROTO {
            return Err(if ipv6_ext_header(nh) {
                Stat::PassIpv6ExtHeader
            } else {
                Stat::PassNotUdp
            });
        }
        let plen = usize::from(u16::from_be_bytes([h[4], h[5]]));
        if ip_avail < ipv6::HLEN + plen {
            return Err(Stat::DropTruncated);
        }
        let pseudo = checksum::sum_addr(checksum::sum_addr(0, &h[ipv6::SRC]), &h[ipv6::DST]);
        (ipv6::HLEN, plen, vip.mode, pseudo)
    } else {
        let h: [u8; ipv4::HLEN] = load(ctx, l2).ok_or(Stat::PassNotIp)?;
        let ihl = usize::from(h[0] & 0x0f) * 4;
        if h[0] >> 4 != 4 || ihl < ipv4::HLEN {
            return Err(Stat::PassNotIp);
        }
        let key = VipKey::v4([h[16], h[17], h[18], h[19]]);
        // SAFETY: as above.
        let vip = unsafe { maps::VIPS.get(&key) }.ok_or(Stat::PassNotVip)?;
        if h[ipv4::PROTO] != udp::PROTO {
            return Err(Stat::PassNotUdp);
        }
        if u16::from_be_bytes([h[6], h[7]]) & ipv4::FRAG_MASK != 0 {
            return Err(Stat::PassFragment);
        }
        let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if ip_avail < ihl {
            return Err(Stat::DropTruncated);
        }
        if total < ihl {
            return Err(Stat::DropBadLength);
        }
        if ip_avail < total {
            return Err(Stat::DropTruncated);
        }
        let mut hsum = checksum::sum_bytes(0, &h);
        if ihl > ipv4::HLEN {
            let opt = (ihl - ipv4::HLEN) as u32;
            hsum += sum_frame(ctx, sc, (l2 + ipv4::HLEN) as u32, opt).ok_or(Stat::DropTruncated)?;
        }
        if checksum::fold(hsum) != 0xffff {
            return Err(Stat::DropBadChecksum);
        }
        let pseudo = checksum::sum_addr(checksum::sum_addr(0, &h[12..16]), &h[16..20]);
        (ihl, total - ihl, vip.mode, pseudo)
    };
    let uoff = l2 + ihl;
    if ip_payload < udp::HLEN {
        return Err(Stat::DropBadLength);
    }
    let uh: [u8; udp::HLEN] = load(ctx, uoff).ok_or(Stat::DropTruncated)?;
    let marker = match u16::from_be_bytes([uh[2], uh[3]]) {
        ike::PORT_IKE => false,
        ike::PORT_NATT => true,
        _ => return Err(Stat::PassNotIkePort),
    };
    if usize::from(u16::from_be_bytes([uh[4], uh[5]])) != ip_payload {
        return Err(Stat::DropBadLength);
    }
    let csum = u16::from_be_bytes([uh[6], uh[7]]);
    if csum != 0 || v6 {
        if csum == 0 {
            return Err(Stat::DropBadChecksum);
        }
        let s = sum_frame(ctx, sc, uoff as u32, ip_payload as u32).ok_or(Stat::PassTooLarge)?;
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
    let hdr: [u8; ike::HEADER_LEN] = load(ctx, ike_off).ok_or(Stat::DropTruncated)?;
    if hdr[ike::field::VERSION] >> 4 != 2 {
        return Err(Stat::PassNotIkev2);
    }
    if hdr[ike::field::EXCHANGE] != ike::EXCHANGE_IKE_SA_INIT {
        return Err(Stat::PassNotInit);
    }
    let flags = hdr[ike::field::FLAGS];
    let spi_i = u64::from_ne_bytes([
        hdr[0], hdr[1], hdr[2], hdr[3], hdr[4], hdr[5], hdr[6], hdr[7],
    ]);
    let spi_r = u64::from_ne_bytes([
        hdr[8], hdr[9], hdr[10], hdr[11], hdr[12], hdr[13], hdr[14], hdr[15],
    ]);
    let mid = u32::from_ne_bytes([hdr[20], hdr[21], hdr[22], hdr[23]]);
    if flags & ike::FLAG_RESPONSE != 0
        || flags & ike::FLAG_INITIATOR == 0
        || spi_i == 0
        || spi_r != 0
        || mid != 0
    {
        return Err(Stat::DropBadHeader);
    }
    let ike_len = u32::from_be_bytes([hdr[24], hdr[25], hdr[26], hdr[27]]) as usize;
    if ike_len != ike_avail {
        return Err(Stat::DropBadLength);
    }

    // Payload walk, state in the scratch map (see `Scratch`).
    // SAFETY: `sc` is this CPU's scratch value.
    unsafe {
        write_volatile(&mut (*sc).off, ike::HEADER_LEN as u32);
        write_volatile(&mut (*sc).np, u32::from(hdr[ike::field::NEXT_PAYLOAD]));
        write_volatile(&mut (*sc).flags, 0);
        write_volatile(&mut (*sc).nonce_off, 0);
        write_volatile(&mut (*sc).nonce_len, 0);
    }
    for _ in 0..ike::MAX_PAYLOADS {
        // SAFETY: as above.
        let (np, off) = unsafe { (read_volatile(&(*sc).np), read_volatile(&(*sc).off)) };
        if np == u32::from(ike::PAYLOAD_NONE) {
            break;
        }
        let off = (off & 0x3fff) as usize;
        if off + ike::GENERIC_HEADER_LEN > ike_len {
            return Err(Stat::DropBadPayload);
        }
        let ph: [u8; 4] = load(ctx, ike_off + off).ok_or(Stat::DropBadPayload)?;
        let plen = usize::from(u16::from_be_bytes([ph[2], ph[3]]));
        if plen < ike::GENERIC_HEADER_LEN || off + plen > ike_len {
            return Err(Stat::DropBadPayload);
        }
        let set = match np as u8 {
            ike::PAYLOAD_SA => F_SA,
            ike::PAYLOAD_KE => F_KE,
            ike::PAYLOAD_NONCE => {
                let n = plen - ike::GENERIC_HEADER_LEN;
                // SAFETY: as above.
                let seen = unsafe { read_volatile(&(*sc).flags) } & F_NONCE != 0;
                if seen || n < ike::NONCE_MIN || n > ike::NONCE_MAX {
                    return Err(Stat::DropBadNonce);
                }
                unsafe {
                    write_volatile(&mut (*sc).nonce_off, (off + ike::GENERIC_HEADER_LEN) as u32);
                    write_volatile(&mut (*sc).nonce_len, n as u32);
                }
                F_NONCE
            }
            ike::PAYLOAD_NOTIFY => {
                if plen < ike::NOTIFY_FIXED_LEN {
                    return Err(Stat::DropBadPayload);
                }
                match be16_at(ctx, ike_off + off + 6).ok_or(Stat::DropBadPayload)? {
                    ike::NOTIFY_REDIRECT_SUPPORTED => F_RS,
                    ike::NOTIFY_REDIRECTED_FROM => F_RF,
                    _ => 0,
                }
            }
            t if !ike::known_payload(t) && ph[1] & ike::CRITICAL != 0 => {
                return Err(Stat::PassUnknownCritical);
            }
            _ => 0,
        };
        // SAFETY: as above.
        unsafe {
            let f = read_volatile(&(*sc).flags);
            write_volatile(&mut (*sc).flags, f | set);
            write_volatile(&mut (*sc).np, u32::from(ph[0]));
            write_volatile(&mut (*sc).off, (off + plen) as u32);
        }
    }
    // SAFETY: as above.
    let (np, off, f) = unsafe {
        (
            read_volatile(&(*sc).np),
            read_volatile(&(*sc).off) as usize,
            read_volatile(&(*sc).flags),
        )
    };
    if np != u32::from(ike::PAYLOAD_NONE) {
        return Err(Stat::DropBadPayload);
    }
    if off != ike_len {
        return Err(Stat::DropBadLength);
    }
    if f & F_RF != 0 {
        return Err(Stat::PassRedirectedFrom);
    }
    if f & F_RS == 0 {
        return Err(Stat::PassNoRedirectSupported);
    }
    if f & F_NONCE == 0 {
        return Err(Stat::DropBadNonce);
    }
    if f & (F_SA | F_KE) != F_SA | F_KE {
        return Err(Stat::DropNoSaKe);
    }
    // SAFETY: as above.
    let (noff, nlen) = unsafe {
        (
            read_volatile(&(*sc).nonce_off),
            read_volatile(&(*sc).nonce_len),
        )
    };
    Ok(Req {
        v6,
        l2,
        ihl,
        marker,
        ike_off,
        ike_len,
        nonce_off: ike_off + noff as usize,
        nonce_len: nlen as usize,
        scratch: sc,
        frame_len,
        table: cfg.active_table,
    })
}
