//! Key exchange for the KE payload: MODP groups 14 and 15 (RFC 3526) on crypto-bigint's
//! constant-time modular exponentiation, ECP groups 19 and 20 (RFC 5903) on p256/p384,
//! and Curve25519 (RFC 8031) on x25519-dalek.

use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Encoding, U256, U2048, U3072, Uint};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::{CryptoError, Secret};
use crate::ike::types::proposal::DhGroup;

/// RFC 3526 §3, 2048-bit MODP group (IKE group 14); generator 2.
const MODP_2048: U2048 = U2048::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
));

/// RFC 3526 §4, 3072-bit MODP group (IKE group 15); generator 2.
const MODP_3072: U3072 = U3072::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
));

/// Our private exponent for the MODP groups: 256 bits, twice the strength of group 15
/// (RFC 3526 §8).
const MODP_EXPONENT_LEN: usize = 32;

/// Our half of one key exchange. The private value is wiped on drop.
pub struct DhSecret {
    group: DhGroup,
    key: Secret,
}

impl std::fmt::Debug for DhSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhSecret")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl DhSecret {
    /// A fresh private value; the responder makes one per IKE_SA_INIT it accepts.
    pub fn generate(group: DhGroup, rng: &mut impl CryptoRngCore) -> Self {
        let len = match group {
            DhGroup::Modp2048 | DhGroup::Modp3072 => MODP_EXPONENT_LEN,
            DhGroup::Ecp256 | DhGroup::Curve25519 => 32,
            DhGroup::Ecp384 => 48,
        };
        loop {
            let mut key = Zeroizing::new(vec![0; len]);
            rng.fill_bytes(&mut key);
            // Only an ECP scalar of zero or beyond the order fails (p < 2^-128 each try).
            if let Ok(secret) = Self::from_bytes(group, &key) {
                return secret;
            }
        }
    }

    /// A private value from its bytes: the MODP exponent or ECP scalar (big-endian), or
    /// the X25519 scalar (RFC 7748). Fails for an ECP scalar outside 1..n.
    pub fn from_bytes(group: DhGroup, key: &[u8]) -> Result<Self, CryptoError> {
        let ok = match group {
            DhGroup::Modp2048 | DhGroup::Modp3072 => key.len() == MODP_EXPONENT_LEN,
            DhGroup::Ecp256 => p256::SecretKey::from_slice(key).is_ok(),
            DhGroup::Ecp384 => p384::SecretKey::from_slice(key).is_ok(),
            DhGroup::Curve25519 => key.len() == 32,
        };
        if !ok {
            return Err(CryptoError::InvalidPublicValue);
        }
        Ok(DhSecret {
            group,
            key: Zeroizing::new(key.to_vec()),
        })
    }

    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// Our KE payload data: `g^x` padded to the modulus length, the ECP point as
    /// `x | y` without the SEC1 prefix (RFC 5903 §7), or the X25519 public key.
    pub fn public_value(&self) -> Vec<u8> {
        match self.group {
            DhGroup::Modp2048 => modp_pow(&MODP_2048, &Uint::from_u8(2), &self.exponent())
                .to_be_bytes()
                .to_vec(),
            DhGroup::Modp3072 => modp_pow(&MODP_3072, &Uint::from_u8(2), &self.exponent())
                .to_be_bytes()
                .to_vec(),
            DhGroup::Ecp256 => match p256::SecretKey::from_slice(&self.key) {
                Ok(k) => k.public_key().to_encoded_point(false).as_bytes()[1..].to_vec(),
                Err(_) => Vec::new(),
            },
            DhGroup::Ecp384 => match p384::SecretKey::from_slice(&self.key) {
                Ok(k) => k.public_key().to_encoded_point(false).as_bytes()[1..].to_vec(),
                Err(_) => Vec::new(),
            },
            DhGroup::Curve25519 => x25519_dalek::PublicKey::from(&self.x25519())
                .as_bytes()
                .to_vec(),
        }
    }

    /// The shared secret `g^ir` from the client's KE data (RFC 7296 §2.14): MODP padded
    /// to the modulus length, the x coordinate for ECP (RFC 5903 §7), the X25519 output.
    /// Rejects public values that are malformed or degenerate: MODP outside 1 < y < p-1
    /// (RFC 7296 §5), points off the curve, X25519 outputs of all zeros (RFC 8031 §2).
    pub fn shared_secret(&self, peer: &[u8]) -> Result<Secret, CryptoError> {
        if peer.len() != self.group.public_len() {
            return Err(CryptoError::InvalidPublicValue);
        }
        let shared = match self.group {
            DhGroup::Modp2048 => modp_shared(&MODP_2048, peer, &self.exponent())?,
            DhGroup::Modp3072 => modp_shared(&MODP_3072, peer, &self.exponent())?,
            DhGroup::Ecp256 => {
                let k = p256::SecretKey::from_slice(&self.key)
                    .map_err(|_| CryptoError::InvalidPublicValue)?;
                let p = p256::PublicKey::from_sec1_bytes(&[&[4], peer].concat())
                    .map_err(|_| CryptoError::InvalidPublicValue)?;
                let s = p256::ecdh::diffie_hellman(k.to_nonzero_scalar(), p.as_affine());
                s.raw_secret_bytes().to_vec()
            }
            DhGroup::Ecp384 => {
                let k = p384::SecretKey::from_slice(&self.key)
                    .map_err(|_| CryptoError::InvalidPublicValue)?;
                let p = p384::PublicKey::from_sec1_bytes(&[&[4], peer].concat())
                    .map_err(|_| CryptoError::InvalidPublicValue)?;
                let s = p384::ecdh::diffie_hellman(k.to_nonzero_scalar(), p.as_affine());
                s.raw_secret_bytes().to_vec()
            }
            DhGroup::Curve25519 => {
                let mut b = [0; 32];
                b.copy_from_slice(peer);
                let s = self
                    .x25519()
                    .diffie_hellman(&x25519_dalek::PublicKey::from(b));
                if !s.was_contributory() {
                    return Err(CryptoError::InvalidPublicValue);
                }
                s.as_bytes().to_vec()
            }
        };
        Ok(Zeroizing::new(shared))
    }

    fn exponent(&self) -> Zeroizing<U256> {
        Zeroizing::new(U256::from_be_slice(&self.key))
    }

    fn x25519(&self) -> x25519_dalek::StaticSecret {
        let mut b = Zeroizing::new([0; 32]);
        b.copy_from_slice(&self.key);
        x25519_dalek::StaticSecret::from(*b)
    }
}

fn modp_pow<const L: usize>(p: &Uint<L>, base: &Uint<L>, x: &U256) -> Uint<L> {
    // The moduli are odd constants, so `new` cannot panic.
    let params = DynResidueParams::new(p);
    DynResidue::new(base, params).pow(x).retrieve()
}

fn modp_shared<const L: usize>(p: &Uint<L>, peer: &[u8], x: &U256) -> Result<Vec<u8>, CryptoError>
where
    Uint<L>: Encoding,
{
    let y = Uint::<L>::from_be_slice(peer);
    if y <= Uint::ONE || y >= p.wrapping_sub(&Uint::ONE) {
        return Err(CryptoError::InvalidPublicValue);
    }
    let mut s = modp_pow(p, &y, x);
    let out = s.to_be_bytes().as_ref().to_vec();
    zeroize::Zeroize::zeroize(&mut s);
    Ok(out)
}
