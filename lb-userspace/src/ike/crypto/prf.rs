//! Everything built on the negotiated PRF (RFC 7296 §2.13–§2.15): prf, prf+, SKEYSEED
//! and the SK_* keys, the octets AUTH signs and shared-key AUTH; and the NAT detection
//! hash (§2.23). On RustCrypto's HMAC and SHA-2.

use std::net::{IpAddr, SocketAddr};

use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};
use sha2::{Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{CryptoError, Secret};
use crate::ike::types::proposal::{IkeSuite, Prf};

macro_rules! hmac_parts {
    ($hash:ty, $key:expr, $parts:expr) => {{
        // HMAC accepts keys of any length (RFC 2104 §2), so this never fails.
        match <Hmac<$hash> as Mac>::new_from_slice($key) {
            Ok(mut mac) => {
                $parts.iter().for_each(|p| mac.update(p));
                Zeroizing::new(mac.finalize().into_bytes().to_vec())
            }
            Err(_) => Zeroizing::new(Vec::new()),
        }
    }};
}

impl Prf {
    /// `prf(key, parts[0] | parts[1] | …)` (§2.13).
    pub fn compute(self, key: &[u8], parts: &[&[u8]]) -> Secret {
        match self {
            Prf::HmacSha256 => hmac_parts!(Sha256, key, parts),
            Prf::HmacSha384 => hmac_parts!(Sha384, key, parts),
            Prf::HmacSha512 => hmac_parts!(Sha512, key, parts),
        }
    }
}

/// `prf+(K, S) = T1 | T2 | …` cut to `len` bytes, with `T1 = prf(K, S | 0x01)` and
/// `Tn = prf(K, Tn-1 | S | n)` (§2.13). At most 255 blocks.
pub fn prf_plus(prf: Prf, key: &[u8], seed: &[u8], len: usize) -> Result<Secret, CryptoError> {
    if len > 255 * prf.output_len() {
        return Err(CryptoError::KeymatTooLong(len));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(len + prf.output_len()));
    let mut t = Zeroizing::new(Vec::new());
    let mut n = 1u8;
    while out.len() < len {
        t = prf.compute(key, &[&t, seed, &[n]]);
        out.extend_from_slice(&t);
        n = n.wrapping_add(1);
    }
    out.truncate(len);
    Ok(out)
}

/// `SKEYSEED = prf(Ni | Nr, g^ir)` with the raw nonce data (§2.14).
pub fn skeyseed(prf: Prf, ni: &[u8], nr: &[u8], g_ir: &[u8]) -> Secret {
    let key = Zeroizing::new([ni, nr].concat());
    prf.compute(&key, &[g_ir])
}

/// The seven IKE SA keys (§2.14). `sk_ai`/`sk_ar` are empty for AEAD; `sk_ei`/`sk_er`
/// end with the 4-byte salt for GCM (RFC 5282 §7.1).
#[derive(Debug)]
pub struct IkeSaKeys {
    pub sk_d: Secret,
    pub sk_ai: Secret,
    pub sk_ar: Secret,
    pub sk_ei: Secret,
    pub sk_er: Secret,
    pub sk_pi: Secret,
    pub sk_pr: Secret,
}

impl IkeSaKeys {
    /// Derives the keys once IKE_SA_INIT is done: SKEYSEED from the nonces and the DH
    /// shared secret, then `prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)` split in the order
    /// SK_d, SK_ai, SK_ar, SK_ei, SK_er, SK_pi, SK_pr.
    pub fn derive(
        suite: &IkeSuite,
        ni: &[u8],
        nr: &[u8],
        g_ir: &[u8],
        spi_i: &[u8; 8],
        spi_r: &[u8; 8],
    ) -> Result<Self, CryptoError> {
        let seed = skeyseed(suite.prf, ni, nr, g_ir);
        let p = suite.prf.output_len();
        let a = suite.integ.map_or(0, |i| i.key_len());
        let e = suite.encr.key_material_len();
        let stream = prf_plus(
            suite.prf,
            &seed,
            &[ni, nr, spi_i, spi_r].concat(),
            3 * p + 2 * a + 2 * e,
        )?;
        let mut rest: &[u8] = &stream;
        let mut next = |n: usize| {
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Zeroizing::new(head.to_vec())
        };
        Ok(IkeSaKeys {
            sk_d: next(p),
            sk_ai: next(a),
            sk_ar: next(a),
            sk_ei: next(e),
            sk_er: next(e),
            sk_pi: next(p),
            sk_pr: next(p),
        })
    }
}

/// The pad string of shared-key AUTH, 17 bytes without a NUL (§2.15).
pub const KEY_PAD: &[u8; 17] = b"Key Pad for IKEv2";

/// The octets an AUTH payload signs (§2.15): `message | nonce | prf(SK_p, ID')`.
/// For our own AUTH: IKE_SA_INIT response as sent, the client's Ni, SK_pr and our IDr
/// body. To verify the client: its IKE_SA_INIT request as received, our Nr, SK_pi and
/// its IDi body. `id_body` is [`crate::ike::types::payload::Identification::body`].
pub fn signed_octets(
    prf: Prf,
    message: &[u8],
    nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
) -> Vec<u8> {
    let maced_id = prf.compute(sk_p, &[id_body]);
    [message, nonce, &maced_id].concat()
}

/// Shared-key AUTH data: `prf(prf(PSK, "Key Pad for IKEv2"), signed_octets)` (§2.15).
pub fn psk_auth(prf: Prf, psk: &[u8], octets: &[u8]) -> Secret {
    let key = prf.compute(psk, &[KEY_PAD]);
    prf.compute(&key, &[octets])
}

/// Checks a client's shared-key AUTH data in constant time.
pub fn verify_psk_auth(prf: Prf, psk: &[u8], octets: &[u8], received: &[u8]) -> bool {
    psk_auth(prf, psk, octets).as_slice().ct_eq(received).into()
}

/// NAT_DETECTION_*_IP data: `SHA1(SPIi | SPIr | IP | port)` (§2.23). SPIr is all zero
/// in the IKE_SA_INIT request. SOURCE hashes the sender's address, DESTINATION the
/// receiver's.
pub fn nat_detection_hash(spi_i: &[u8; 8], spi_r: &[u8; 8], addr: SocketAddr) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(spi_i);
    h.update(spi_r);
    match addr.ip() {
        IpAddr::V4(a) => h.update(a.octets()),
        IpAddr::V6(a) => h.update(a.octets()),
    }
    h.update(addr.port().to_be_bytes());
    h.finalize().into()
}
