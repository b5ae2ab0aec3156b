//! Report authentication: HMAC-SHA256 truncated to 128 bits under numbered keys, and the
//! per-sender anti-replay window over the 64-bit sequence number.

use hmac::{Hmac, Mac};
use lb_common::wire::load::{KEY_MIN_LEN, TAG_LEN};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::ClusterError;

type HmacSha256 = Hmac<Sha256>;

/// Bits of the anti-replay window (RFC 4303 §3.4.3 uses 32 or 64).
pub const WINDOW: u64 = 64;

/// The tag of `data` under `key`: the first 128 bits of HMAC-SHA256 (RFC 4868 §2.3
/// truncates the same way).
pub fn tag(key: &[u8], data: &[u8]) -> [u8; TAG_LEN] {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    let full = mac.finalize().into_bytes();
    let mut t = [0; TAG_LEN];
    t.copy_from_slice(&full[..TAG_LEN]);
    t
}

/// Whether `got` is the tag of `data` under `key`, compared in constant time.
pub fn verify(key: &[u8], data: &[u8], got: &[u8]) -> bool {
    if got.len() != TAG_LEN {
        return false;
    }
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.verify_truncated_left(got).is_ok()
}

/// The keys reports are accepted under, and the one ours are sent under. Several keys
/// at once allow a rollover: add the new key everywhere, then switch every sender to
/// it, then remove the old one.
#[derive(Clone, PartialEq, Eq)]
pub struct Keyring {
    keys: Vec<(u16, Zeroizing<Vec<u8>>)>,
    send: u16,
}

impl Keyring {
    /// `keys` as (key id, secret); `send` must be one of them. Ids are unique and every
    /// secret is at least [`KEY_MIN_LEN`] bytes.
    pub fn new(
        send: u16,
        keys: impl IntoIterator<Item = (u16, Vec<u8>)>,
    ) -> Result<Keyring, ClusterError> {
        let mut ring: Vec<(u16, Zeroizing<Vec<u8>>)> = Vec::new();
        for (id, secret) in keys {
            if ring.iter().any(|(i, _)| *i == id) {
                return Err(ClusterError::DuplicateKey(id));
            }
            if secret.len() < KEY_MIN_LEN {
                return Err(ClusterError::ShortKey(id));
            }
            ring.push((id, Zeroizing::new(secret)));
        }
        if !ring.iter().any(|(i, _)| *i == send) {
            return Err(ClusterError::NoSendKey(send));
        }
        ring.sort_by_key(|(i, _)| *i);
        Ok(Keyring { keys: ring, send })
    }

    /// The id reports are sent under.
    pub fn send_id(&self) -> u16 {
        self.send
    }

    /// The accepted key ids, ascending.
    pub fn ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.keys.iter().map(|(i, _)| *i)
    }

    /// The secret of key `id`.
    pub fn get(&self, id: u16) -> Option<&[u8]> {
        self.keys
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, k)| k.as_slice())
    }

    /// The secret reports are sent under.
    pub fn send_key(&self) -> &[u8] {
        self.get(self.send).unwrap_or_default()
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("Keyring")
            .field("ids", &self.ids().collect::<Vec<_>>())
            .field("send", &self.send)
            .finish()
    }
}

/// What the window says about a sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    New,
    /// Seen before, or so far left of the window that it cannot be told apart.
    Replayed,
}

/// RFC 4303 §3.4.3 sliding window: the highest sequence number accepted, and a bitmap of
/// the [`WINDOW`] below it (bit `i` = `top - i`). Check and update only after the tag
/// verified, so forged reports cannot move it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    top: Option<u64>,
    bits: u64,
}

impl ReplayWindow {
    /// Marks `seq` received, or says it was.
    pub fn accept(&mut self, seq: u64) -> Seen {
        let Some(top) = self.top else {
            self.top = Some(seq);
            self.bits = 1;
            return Seen::New;
        };
        if seq > top {
            let shift = seq - top;
            self.bits = if shift >= WINDOW {
                1
            } else {
                (self.bits << shift) | 1
            };
            self.top = Some(seq);
            return Seen::New;
        }
        let back = top - seq;
        if back >= WINDOW || self.bits & (1 << back) != 0 {
            return Seen::Replayed;
        }
        self.bits |= 1 << back;
        Seen::New
    }

    /// The highest sequence number accepted.
    pub fn top(&self) -> Option<u64> {
        self.top
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn rfc4231_case_2_truncated() {
        // RFC 4231 §4.3: key "Jefe"; HMAC-SHA-256 = 5bdcc146…64ec3843.
        let t = tag(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(t, hex!("5bdcc146bf60754e6a042426089575c7"));
        assert!(verify(
            b"Jefe",
            b"what do ya want for nothing?",
            &hex!("5bdcc146bf60754e6a042426089575c7")
        ));
    }

    #[test]
    fn rfc4231_case_5_truncation() {
        // RFC 4231 §4.6: the 128-bit truncation is given by the RFC itself.
        let key = [0x0c; 20];
        let t = tag(&key, b"Test With Truncation");
        assert_eq!(t, hex!("a3b6167473100ee06e0c796c2955552b"));
    }

    #[test]
    fn rfc4231_case_6_long_key() {
        // RFC 4231 §4.7: a 131-byte key is hashed first.
        let key = [0xaa; 131];
        let t = tag(
            &key,
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(t, hex!("60e431591ee0b67f0d8a26aacbf5b77f"));
    }

    #[test]
    fn verify_rejects_any_changed_bit_and_other_lengths() {
        let key = [7u8; 32];
        let t = tag(&key, b"report");
        for i in 0..TAG_LEN * 8 {
            let mut bad = t;
            bad[i / 8] ^= 1 << (i % 8);
            assert!(!verify(&key, b"report", &bad));
        }
        assert!(!verify(&key, b"report", &t[..15]));
        assert!(!verify(&key, b"report", &[]));
        assert!(!verify(&key, b"reporT", &t));
        assert!(!verify(&[8u8; 32], b"report", &t));
    }

    #[test]
    fn keyring_rules() {
        let k = |n: u8| vec![n; KEY_MIN_LEN];
        let r = Keyring::new(2, [(2, k(2)), (1, k(1))]).unwrap();
        assert_eq!(r.ids().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(r.send_key(), &k(2)[..]);
        assert_eq!(r.get(3), None);
        assert_eq!(
            Keyring::new(3, [(1, k(1))]),
            Err(ClusterError::NoSendKey(3))
        );
        assert_eq!(
            Keyring::new(1, [(1, k(1)), (1, k(2))]),
            Err(ClusterError::DuplicateKey(1))
        );
        assert_eq!(
            Keyring::new(1, [(1, vec![0; KEY_MIN_LEN - 1])]),
            Err(ClusterError::ShortKey(1))
        );
        assert!(!format!("{r:?}").contains("2, 2"));
    }

    #[test]
    fn window_accepts_each_number_once() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.accept(1000), Seen::New);
        assert_eq!(w.accept(1000), Seen::Replayed);
        assert_eq!(w.accept(1002), Seen::New);
        // Late but inside the window: once.
        assert_eq!(w.accept(1001), Seen::New);
        assert_eq!(w.accept(1001), Seen::Replayed);
        assert_eq!(w.accept(1002 - WINDOW + 1), Seen::New);
        assert_eq!(w.accept(1002 - WINDOW), Seen::Replayed);
        // A jump clears the bitmap.
        assert_eq!(w.accept(5000), Seen::New);
        assert_eq!(w.accept(4999), Seen::New);
        assert_eq!(w.accept(1002), Seen::Replayed);
        assert_eq!(w.accept(u64::MAX), Seen::New);
        assert_eq!(w.accept(u64::MAX), Seen::Replayed);
        assert_eq!(w.top(), Some(u64::MAX));
    }
}
