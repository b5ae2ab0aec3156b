//! The Encrypted and Authenticated payload (RFC 7296 §3.14) and its fragment form
//! (RFC 7383 §2.5): AES-GCM with an 8-byte explicit IV and 16-byte ICV (RFC 5282), or
//! AES-CBC with HMAC-SHA2 integrity over the whole message (RFC 4868).

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use lb_common::wire::ike as wire;
use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::prf::IkeSaKeys;
use super::{CryptoError, Secret};
use crate::ike::types::codec::MessageError;
use crate::ike::types::message::{Header, Message, Payload, emit_chain, parse_chain};
use crate::ike::types::proposal::{Encr, IkeSuite, Integ, Prf};

/// GCM salt from the end of SK_e* (RFC 5282 §7.1).
const GCM_SALT_LEN: usize = 4;
const GCM_IV_LEN: usize = 8;
const GCM_ICV_LEN: usize = 16;
const AES_BLOCK: usize = 16;
/// SKF adds Fragment Number and Total Fragments after the generic header.
const SKF_FIXED_LEN: usize = 4;

/// Why an SK or SKF message could not be opened. Only [`SkError::Inner`] comes from a
/// message whose integrity was verified, so only it may be answered (INVALID_SYNTAX or
/// UNSUPPORTED_CRITICAL_PAYLOAD, RFC 7296 §2.21.2); the others are dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkError {
    #[error("outer message: {0}")]
    Outer(MessageError),
    #[error("no SK or SKF payload at the end of the message")]
    NotEncrypted,
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("decrypted payloads: {0}")]
    Inner(MessageError),
}

/// One direction's SK keys: the responder opens with [`SkCipher::initiator`] and seals
/// with [`SkCipher::responder`], whichever side sends the request.
pub struct SkCipher {
    encr: Encr,
    integ: Option<Integ>,
    key: Secret,
    integ_key: Secret,
}

/// A decrypted SKF payload: the fragment's place and its share of the inner payloads.
#[derive(Debug)]
pub struct OpenFragment {
    pub header: Header,
    pub number: u16,
    pub total: u16,
    /// First inner payload type; only fragment 1 carries it (0 elsewhere).
    pub first: u8,
    pub data: Secret,
}

impl SkCipher {
    /// Keys protecting what the original initiator sends (SK_ei, SK_ai).
    pub fn initiator(keys: &IkeSaKeys, suite: &IkeSuite) -> Self {
        Self::new(suite, &keys.sk_ei, &keys.sk_ai)
    }

    /// Keys protecting what the original responder sends (SK_er, SK_ar).
    pub fn responder(keys: &IkeSaKeys, suite: &IkeSuite) -> Self {
        Self::new(suite, &keys.sk_er, &keys.sk_ar)
    }

    fn new(suite: &IkeSuite, sk_e: &[u8], sk_a: &[u8]) -> Self {
        SkCipher {
            encr: suite.encr,
            integ: suite.integ,
            key: Zeroizing::new(sk_e.to_vec()),
            integ_key: Zeroizing::new(sk_a.to_vec()),
        }
    }

    fn iv_len(&self) -> usize {
        if self.encr.is_aead() {
            GCM_IV_LEN
        } else {
            AES_BLOCK
        }
    }

    fn icv_len(&self) -> usize {
        self.integ.map_or(GCM_ICV_LEN, Integ::icv_len)
    }

    /// Bytes that `n` bytes of inner payloads take once encrypted (IV, padding, Pad
    /// Length, ICV), for sizing fragments.
    pub fn overhead(&self, n: usize) -> usize {
        let block = if self.encr.is_aead() { 1 } else { AES_BLOCK };
        let padded = (n + 1).div_ceil(block) * block;
        self.iv_len() + (padded - n) + self.icv_len()
    }

    /// Builds a whole message `HDR, SK{inner}` (§3.14). GCM pads to a block size of 1,
    /// as strongSwan does, so only the Pad Length byte is added.
    pub fn seal(
        &self,
        header: &Header,
        inner: &[Payload],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, MessageError> {
        let mut plain = Zeroizing::new(Vec::new());
        let first = emit_chain(inner, &mut plain)?;
        self.seal_raw(header, first, None, &plain, rng)
    }

    /// Builds one fragment message `HDR, SKF{chunk}` (RFC 7383 §2.5); `first` is the
    /// first inner payload type in fragment 1 and 0 in the others.
    pub fn seal_fragment(
        &self,
        header: &Header,
        (number, total): (u16, u16),
        first: u8,
        chunk: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, MessageError> {
        self.seal_raw(header, first, Some((number, total)), chunk, rng)
    }

    fn seal_raw(
        &self,
        header: &Header,
        first: u8,
        fragment: Option<(u16, u16)>,
        plain: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, MessageError> {
        let prefix =
            wire::HEADER_LEN + wire::GENERIC_HEADER_LEN + fragment.map_or(0, |_| SKF_FIXED_LEN);
        let total = prefix + plain.len() + self.overhead(plain.len());
        let payload_len =
            u16::try_from(total - wire::HEADER_LEN).map_err(|_| MessageError::TooLong)?;
        let mut out = Vec::with_capacity(total);
        header.emit(
            if fragment.is_some() {
                wire::PAYLOAD_SKF
            } else {
                wire::PAYLOAD_SK
            },
            total,
            &mut out,
        )?;
        out.extend_from_slice(&[first, 0]);
        out.extend_from_slice(&payload_len.to_be_bytes());
        if let Some((number, count)) = fragment {
            out.extend_from_slice(&number.to_be_bytes());
            out.extend_from_slice(&count.to_be_bytes());
        }
        let mut iv = vec![0; self.iv_len()];
        rng.fill_bytes(&mut iv);
        out.extend_from_slice(&iv);

        let pad = total - prefix - self.iv_len() - self.icv_len() - plain.len() - 1;
        let mut buf = Zeroizing::new(Vec::with_capacity(plain.len() + pad + 1));
        buf.extend_from_slice(plain);
        buf.resize(plain.len() + pad, 0);
        buf.push(pad as u8);
        let icv = self
            .encrypt(&out[..prefix], &iv, &mut buf)
            .map_err(|_| MessageError::TooLong)?;
        out.extend_from_slice(&buf);
        match icv {
            Some(tag) => out.extend_from_slice(&tag),
            None => {
                let mac = self.mac(&out);
                out.extend_from_slice(&mac);
            }
        }
        Ok(out)
    }

    /// Encrypts in place; returns the GCM tag, or `None` for CBC (whose ICV is an HMAC
    /// over the finished message).
    fn encrypt(
        &self,
        aad: &[u8],
        iv: &[u8],
        buf: &mut [u8],
    ) -> Result<Option<Vec<u8>>, CryptoError> {
        let len = buf.len();
        match self.encr {
            Encr::AesGcm16_128 | Encr::AesGcm16_256 => {
                let (key, salt) = self.key.split_at(self.key.len() - GCM_SALT_LEN);
                let nonce = [salt, iv].concat();
                let tag = match self.encr {
                    Encr::AesGcm16_128 => Aes128Gcm::new_from_slice(key)
                        .map_err(|_| CryptoError::Encode)?
                        .encrypt_in_place_detached(nonce.as_slice().into(), aad, buf),
                    _ => Aes256Gcm::new_from_slice(key)
                        .map_err(|_| CryptoError::Encode)?
                        .encrypt_in_place_detached(nonce.as_slice().into(), aad, buf),
                };
                tag.map(|t| Some(t.to_vec()))
                    .map_err(|_| CryptoError::Encode)
            }
            Encr::AesCbc128 => cbc::Encryptor::<aes::Aes128>::new_from_slices(&self.key, iv)
                .map_err(|_| CryptoError::Encode)?
                .encrypt_padded_mut::<NoPadding>(buf, len)
                .map(|_| None)
                .map_err(|_| CryptoError::Encode),
            Encr::AesCbc256 => cbc::Encryptor::<aes::Aes256>::new_from_slices(&self.key, iv)
                .map_err(|_| CryptoError::Encode)?
                .encrypt_padded_mut::<NoPadding>(buf, len)
                .map(|_| None)
                .map_err(|_| CryptoError::Encode),
        }
    }

    fn mac(&self, data: &[u8]) -> Secret {
        let (prf, integ) = match self.integ {
            Some(i @ Integ::HmacSha256_128) => (Prf::HmacSha256, i),
            Some(i @ Integ::HmacSha384_192) => (Prf::HmacSha384, i),
            Some(i @ Integ::HmacSha512_256) => (Prf::HmacSha512, i),
            None => return Zeroizing::new(Vec::new()),
        };
        let mut mac = prf.compute(&self.integ_key, &[data]);
        mac.truncate(integ.icv_len());
        mac
    }

    /// Verifies and decrypts a message whose last payload is SK, returning the header
    /// and the inner payloads.
    pub fn open(&self, raw: &[u8]) -> Result<Message, SkError> {
        let outer = Message::parse(raw).map_err(SkError::Outer)?;
        let Some(Payload::Encrypted(e)) = outer.payloads.last() else {
            return Err(SkError::NotEncrypted);
        };
        let plain = self.open_raw(raw, raw.len() - e.data.len())?;
        let payloads = parse_chain(e.first, &plain).map_err(SkError::Inner)?;
        Ok(Message {
            header: outer.header,
            payloads,
        })
    }

    /// Verifies and decrypts one SKF message (RFC 7383 §2.6); reassembly is the caller's.
    pub fn open_fragment(&self, raw: &[u8]) -> Result<OpenFragment, SkError> {
        let outer = Message::parse(raw).map_err(SkError::Outer)?;
        let Some(Payload::EncryptedFragment(f)) = outer.payloads.last() else {
            return Err(SkError::NotEncrypted);
        };
        let data = self.open_raw(raw, raw.len() - f.data.len())?;
        Ok(OpenFragment {
            header: outer.header,
            number: f.number,
            total: f.total,
            first: f.first,
            data,
        })
    }

    /// `raw[..prefix]` is everything before the IV (the associated data for GCM).
    fn open_raw(&self, raw: &[u8], prefix: usize) -> Result<Secret, CryptoError> {
        let (iv_len, icv_len) = (self.iv_len(), self.icv_len());
        let body = &raw[prefix..];
        if body.len() < iv_len + icv_len + 1 {
            return Err(CryptoError::BadCiphertextLength);
        }
        let (iv, rest) = body.split_at(iv_len);
        let (ct, icv) = rest.split_at(rest.len() - icv_len);
        let mut buf = Zeroizing::new(ct.to_vec());
        match self.encr {
            Encr::AesGcm16_128 | Encr::AesGcm16_256 => {
                let (key, salt) = self.key.split_at(self.key.len() - GCM_SALT_LEN);
                let nonce = [salt, iv].concat();
                let aad = &raw[..prefix];
                let ok = match self.encr {
                    Encr::AesGcm16_128 => Aes128Gcm::new_from_slice(key)
                        .map_err(|_| CryptoError::Integrity)?
                        .decrypt_in_place_detached(
                            nonce.as_slice().into(),
                            aad,
                            &mut buf,
                            icv.into(),
                        ),
                    _ => Aes256Gcm::new_from_slice(key)
                        .map_err(|_| CryptoError::Integrity)?
                        .decrypt_in_place_detached(
                            nonce.as_slice().into(),
                            aad,
                            &mut buf,
                            icv.into(),
                        ),
                };
                ok.map_err(|_| CryptoError::Integrity)?;
            }
            Encr::AesCbc128 | Encr::AesCbc256 => {
                if ct.len() % AES_BLOCK != 0 {
                    return Err(CryptoError::BadCiphertextLength);
                }
                let expected = self.mac(&raw[..raw.len() - icv_len]);
                if !bool::from(expected.as_slice().ct_eq(icv)) {
                    return Err(CryptoError::Integrity);
                }
                let done = match self.encr {
                    Encr::AesCbc128 => {
                        cbc::Decryptor::<aes::Aes128>::new_from_slices(&self.key, iv)
                            .map_err(|_| CryptoError::Integrity)?
                            .decrypt_padded_mut::<NoPadding>(&mut buf)
                            .map(|_| ())
                    }
                    _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(&self.key, iv)
                        .map_err(|_| CryptoError::Integrity)?
                        .decrypt_padded_mut::<NoPadding>(&mut buf)
                        .map(|_| ()),
                };
                done.map_err(|_| CryptoError::BadCiphertextLength)?;
            }
        }
        let pad = usize::from(buf.last().copied().unwrap_or(0));
        let keep = buf.len().checked_sub(pad + 1).ok_or(CryptoError::Padding)?;
        buf.truncate(keep);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use hex_literal::hex;

    use super::*;

    fn cipher(encr: Encr, integ: Option<Integ>, key: &[u8], integ_key: &[u8]) -> SkCipher {
        SkCipher {
            encr,
            integ,
            key: Zeroizing::new(key.to_vec()),
            integ_key: Zeroizing::new(integ_key.to_vec()),
        }
    }

    /// GCM spec (McGrew–Viega) test cases 4 and 16, as NIST publishes them, through the
    /// RFC 5282 nonce layout: salt `cafebabe` from the key material, explicit IV after it.
    #[test]
    fn gcm_matches_nist_vectors_with_rfc5282_nonce() {
        let p = hex!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
        );
        let aad = hex!("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let iv = hex!("facedbaddecaf888");
        type Case<'a> = (Encr, &'a [u8], [u8; 60], [u8; 16]);
        let cases: [Case<'_>; 2] = [
            (
                Encr::AesGcm16_128,
                &hex!("feffe9928665731c6d6a8f9467308308 cafebabe"),
                hex!(
                    "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
                    "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091"
                ),
                hex!("5bc94fbc3221a5db94fae95ae7121a47"),
            ),
            (
                Encr::AesGcm16_256,
                &hex!("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308 cafebabe"),
                hex!(
                    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
                ),
                hex!("76fc6ece0f4e1768cddf8853bb2d551b"),
            ),
        ];
        for (encr, key, ct, tag) in cases {
            let c = cipher(encr, None, key, &[]);
            let mut buf = p.to_vec();
            let got = c.encrypt(&aad, &iv, &mut buf).unwrap();
            assert_eq!(buf, ct, "{encr:?}");
            assert_eq!(got.as_deref(), Some(&tag[..]), "{encr:?}");
        }
    }

    /// NIST SP 800-38A F.2.1 and F.2.5 (CBC-AES128/256.Encrypt).
    #[test]
    fn cbc_matches_sp800_38a() {
        let iv = hex!("000102030405060708090a0b0c0d0e0f");
        let p = hex!(
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
            "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
        );
        let cases: [(Encr, &[u8], [u8; 64]); 2] = [
            (
                Encr::AesCbc128,
                &hex!("2b7e151628aed2a6abf7158809cf4f3c"),
                hex!(
                    "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
                    "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7"
                ),
            ),
            (
                Encr::AesCbc256,
                &hex!("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"),
                hex!(
                    "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
                    "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b"
                ),
            ),
        ];
        for (encr, key, ct) in cases {
            let c = cipher(encr, Some(Integ::HmacSha256_128), key, &[]);
            let mut buf = p.to_vec();
            assert_eq!(c.encrypt(&[], &iv, &mut buf).unwrap(), None);
            assert_eq!(buf, ct, "{encr:?}");
        }
    }

    /// RFC 4231 test case 2 truncated as RFC 4868 specifies (128, 192 and 256 bits).
    #[test]
    fn integrity_is_truncated_hmac() {
        let data = b"what do ya want for nothing?";
        let cases = [
            (
                Integ::HmacSha256_128,
                &hex!("5bdcc146bf60754e6a042426089575c7")[..],
            ),
            (
                Integ::HmacSha384_192,
                &hex!("af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47")[..],
            ),
            (
                Integ::HmacSha512_256,
                &hex!("164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554")[..],
            ),
        ];
        for (integ, icv) in cases {
            let c = cipher(Encr::AesCbc128, Some(integ), &[0; 16], b"Jefe");
            assert_eq!(c.mac(data).as_slice(), icv, "{integ:?}");
        }
    }
}
