//! Flood generator (`ikelb_flood_gen`) and answer counter (`ikelb_flood_count`): the
//! map layouts and the pure functions both sides derive per-request fields from. Every
//! request field that varies (client address, client port, SPIi, Ni) is a function of
//! (CPU, sequence number), so the counter checks each answer without keeping state.

/// Map names (≤ 15 bytes, BPF_OBJ_NAME_LEN).
pub const MAP_GEN: &str = "IKELB_FLOOD_GEN";
pub const MAP_CHECK: &str = "IKELB_FLOOD_CHK";
pub const MAP_COUNT: &str = "IKELB_FLOOD_CNT";
pub const MAP_SINK: &str = "IKELB_FLOOD_SNK";
/// Program names.
pub const PROG_GEN: &str = "ikelb_flood_gen";
pub const PROG_COUNT: &str = "ikelb_flood_count";
pub const PROG_SINK: &str = "ikelb_flood_sink";

/// Largest template frame.
pub const FRAME_MAX: usize = 512;
/// Spare bytes after the frame so a masked offset plus an 8-byte store stays inside.
pub const FRAME_SLACK: usize = 64;
/// Bytes of the template array.
pub const FRAME_BYTES: usize = FRAME_MAX + FRAME_SLACK;
/// Mask applied to template offsets (FRAME_MAX - 1).
pub const OFF_MASK: u32 = FRAME_MAX as u32 - 1;
/// Longest nonce the generator derives, in 8-byte words.
pub const NONCE_WORDS_MAX: u32 = 8;
/// SPIi layout: 16-bit run tag, 8-bit CPU, 40-bit sequence number.
pub const SEQ_BITS: u32 = 40;
pub const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
/// Most generator CPUs (the CPU field of SPIi is 8 bits).
pub const CPUS_MAX: u32 = 256;
/// Frames queued ahead of the pacing clock at most.
pub const BURST: u64 = 32;

/// Request kinds of a mixed flood, counted separately in `FloodGen`.
pub const KIND_IKE: u32 = 0;
/// Background UDP to `bg_dport` (not IKE: the pass path).
pub const KIND_UDP: u32 = 1;
/// IKE_SA_INIT without REDIRECT_SUPPORTED (valid IKE that must not be answered).
pub const KIND_NO_RS: u32 = 2;

/// Per-CPU value of `IKELB_FLOOD_GEN`: parameters written by userspace before a run,
/// the state the generator keeps, and the template frame it rewrites in place (each
/// CPU owns its copy) and stores into the packet on every run.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FloodGen {
    /// Frames this CPU sends, at most.
    pub limit: u64,
    /// Pacing interval (ns between frames on this CPU); 0 = full speed.
    pub interval_ns: u64,
    pub cpu: u32,
    pub ncpu: u32,
    pub tag: u32,
    pub len: u32,
    pub v6: u32,
    pub ip_off: u32,
    /// Offset of the varied 32-bit word of the source address (IPv6: its last word).
    pub src_off: u32,
    pub udp_off: u32,
    pub spi_off: u32,
    pub nonce_off: u32,
    pub nonce_words: u32,
    /// Offset of the Notify Message Type of N(REDIRECT_SUPPORTED).
    pub rs_off: u32,
    /// Folded one's-complement sums in host (little-endian) word order, taken with
    /// every varied field and the checksum zeroed: IPv4 header; pseudo-header + UDP.
    pub ip_sum: u32,
    pub udp_sum: u32,
    pub host_base: u32,
    pub host_count: u32,
    pub port_base: u32,
    pub port_count: u32,
    /// Mixed flood: fractions (of 65 536) of background UDP and of IKE without
    /// REDIRECT_SUPPORTED.
    pub mix_udp: u32,
    pub mix_no_rs: u32,
    pub bg_dport: u32,
    pub ike_dport: u32,
    /// State, written by the program.
    pub seq: u64,
    pub sent: [u64; 3],
    pub paced: u64,
    pub next_ns: u64,
    pub frame: [u8; FRAME_BYTES],
}

impl Default for FloodGen {
    fn default() -> Self {
        Self {
            limit: 0,
            interval_ns: 0,
            cpu: 0,
            ncpu: 1,
            tag: 0,
            len: 0,
            v6: 0,
            ip_off: 0,
            src_off: 0,
            udp_off: 0,
            spi_off: 0,
            nonce_off: 0,
            nonce_words: 0,
            rs_off: 0,
            ip_sum: 0,
            udp_sum: 0,
            host_base: 0,
            host_count: 1,
            port_base: 0,
            port_count: 1,
            mix_udp: 0,
            mix_no_rs: 0,
            bg_dport: 0,
            ike_dport: 0,
            seq: 0,
            sent: [0; 3],
            paced: 0,
            next_ns: 0,
            frame: [0; FRAME_BYTES],
        }
    }
}

/// Single entry of `IKELB_FLOOD_CHK`: what the counter needs to recompute a request.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FloodCheck {
    /// Largest sequence number + 1 any CPU may send.
    pub limit: u64,
    pub tag: u32,
    pub ncpu: u32,
    pub v6: u32,
    pub nonce_words: u32,
    pub host_base: u32,
    pub host_count: u32,
    pub port_base: u32,
    pub port_count: u32,
    /// Offset of Ni in a request frame (for checking reflected requests).
    pub echo_nonce_off: u32,
    /// Non-zero: the counter turns each correct answer into its CPU's next request
    /// (the AF_XDP sender's in-kernel loop); userspace clears it to stop the loop.
    pub recycle: u16,
    /// Non-zero: requests come back forwarded, not reflected (ikelb's `no-redirect =
    /// "forward"`): addresses and ports unchanged, so the client is the source.
    pub forwarded: u16,
}

/// Counter indices of the per-CPU `IKELB_FLOOD_CNT` array (by the CPU that received).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// N(REDIRECT) answer to one of our requests, SPIi, client and nonce all right.
    RedirectOk = 0,
    /// An IKE_SA_INIT response that fails a check.
    RedirectBad,
    /// Our request reflected back (MAC/IP/port swap) or forwarded, fields intact.
    EchoOk,
    /// A reflected request that fails a check.
    EchoBad,
    /// Anything else arriving (passed to the stack).
    Other,
}

impl Answer {
    pub const ALL: [Answer; 5] = [
        Answer::RedirectOk,
        Answer::RedirectBad,
        Answer::EchoOk,
        Answer::EchoBad,
        Answer::Other,
    ];
    pub const COUNT: u32 = Self::ALL.len() as u32;
    pub const fn name(self) -> &'static str {
        match self {
            Answer::RedirectOk => "redirect_ok",
            Answer::RedirectBad => "redirect_bad",
            Answer::EchoOk => "echo_ok",
            Answer::EchoBad => "echo_bad",
            Answer::Other => "other",
        }
    }
}

/// SPIi of request `seq` from `cpu`: never 0 (the tag is never 0).
#[inline(always)]
pub const fn spi(tag: u32, cpu: u32, seq: u64) -> u64 {
    ((tag as u64 & 0xffff) << 48) | ((cpu as u64 & 0xff) << SEQ_BITS) | (seq & SEQ_MASK)
}

/// (tag, cpu, seq) of a SPIi.
#[inline(always)]
pub const fn spi_parts(spi: u64) -> (u32, u32, u64) {
    (
        (spi >> 48) as u32,
        ((spi >> SEQ_BITS) & 0xff) as u32,
        spi & SEQ_MASK,
    )
}

/// Word `k` of the nonce sent with `spi` (a splitmix64 step: deterministic, spread).
#[inline(always)]
pub const fn nonce_word(spi: u64, k: u32) -> u64 {
    let mut z = spi.wrapping_add((k as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Client index of request `seq` from `cpu` among `ncpu` generator CPUs.
#[inline(always)]
pub const fn client_index(cpu: u32, ncpu: u32, seq: u64) -> u64 {
    seq * ncpu as u64 + cpu as u64
}

/// Client (address word, port) of a client index: the address walks the prefix first,
/// the port moves on once every address was used.
#[inline(always)]
pub const fn client(
    idx: u64,
    host_base: u32,
    host_count: u32,
    port_base: u32,
    port_count: u32,
) -> (u32, u16) {
    let hc = if host_count == 0 {
        1
    } else {
        host_count as u64
    };
    let pc = if port_count == 0 {
        1
    } else {
        port_count as u64
    };
    let host = host_base.wrapping_add((idx % hc) as u32);
    let port = port_base.wrapping_add(((idx / hc) % pc) as u32);
    (host, port as u16)
}

/// Kind of request `seq` in a mixed flood (a hash of `seq` against the fractions).
#[inline(always)]
pub const fn kind(seq: u64, mix_udp: u32, mix_no_rs: u32) -> u32 {
    if mix_udp == 0 && mix_no_rs == 0 {
        return KIND_IKE;
    }
    let h = ((seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) & 0xffff) as u32;
    if h < mix_udp {
        KIND_UDP
    } else if h < mix_udp + mix_no_rs {
        KIND_NO_RS
    } else {
        KIND_IKE
    }
}

crate::aya_pod!(FloodGen, FloodCheck);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_have_no_implicit_padding() {
        assert_eq!(
            core::mem::size_of::<FloodGen>(),
            16 + 22 * 4 + 6 * 8 + FRAME_MAX + FRAME_SLACK
        );
        assert_eq!(core::mem::size_of::<FloodCheck>(), 8 + 10 * 4);
    }

    #[test]
    fn spi_round_trip_and_never_zero() {
        let s = spi(0xbeef, 3, 12345);
        assert_eq!(spi_parts(s), (0xbeef, 3, 12345));
        assert_ne!(spi(1, 0, 0), 0);
    }

    #[test]
    fn nonces_differ_per_spi_and_word() {
        let a = spi(7, 0, 1);
        let b = spi(7, 0, 2);
        assert_ne!(nonce_word(a, 0), nonce_word(b, 0));
        assert_ne!(nonce_word(a, 0), nonce_word(a, 1));
        assert_eq!(nonce_word(a, 2), nonce_word(a, 2));
    }

    #[test]
    fn clients_walk_the_prefix_then_ports() {
        assert_eq!(client(0, 100, 10, 1024, 5), (100, 1024));
        assert_eq!(client(9, 100, 10, 1024, 5), (109, 1024));
        assert_eq!(client(10, 100, 10, 1024, 5), (100, 1025));
        assert_eq!(client(50, 100, 10, 1024, 5), (100, 1024));
        assert_eq!(client_index(1, 2, 5), 11);
    }

    #[test]
    fn mix_fractions() {
        let (mut u, mut n) = (0u32, 0u32);
        for s in 0..65_536u64 {
            match kind(s, 6554, 6554) {
                KIND_UDP => u += 1,
                KIND_NO_RS => n += 1,
                _ => {}
            }
        }
        assert!((5_500..7_500).contains(&u), "{u}");
        assert!((5_500..7_500).contains(&n), "{n}");
        assert_eq!(kind(3, 0, 0), KIND_IKE);
    }

    #[test]
    fn names_fit_bpf_obj_name() {
        for n in [MAP_GEN, MAP_CHECK, MAP_COUNT, MAP_SINK] {
            assert!(n.len() <= 15, "{n}");
        }
    }
}
