//! Stateless COOKIE challenge (RFC 7296 §2.6): `version | HMAC(secret, Ni | IPi | SPIi)`,
//! with a secret that rotates and the previous one still accepted, so a cookie handed
//! out just before a rotation stays good for one more period.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::ike::types::proposal::Prf;

/// MAC bytes kept in a cookie; with the version byte the cookie is 17 bytes, within the
/// 1..=64 that RFC 7296 §3.10.1 allows.
const MAC_LEN: usize = 16;

/// The cookie secrets: the current one and the one before it.
pub(super) struct Cookies {
    current: Zeroizing<[u8; 32]>,
    previous: Zeroizing<[u8; 32]>,
    version: u8,
    period: Duration,
    rotate_at: Option<Instant>,
}

impl Cookies {
    pub(super) fn new(period: Duration, rng: &mut impl CryptoRngCore) -> Self {
        let mut c = Cookies {
            current: Zeroizing::new([0; 32]),
            previous: Zeroizing::new([0; 32]),
            version: 0,
            period,
            rotate_at: None,
        };
        rng.fill_bytes(c.current.as_mut());
        rng.fill_bytes(c.previous.as_mut());
        c
    }

    /// Rotates the secret when its period is over. Called lazily before each use: a
    /// secret nobody used needs no timer.
    pub(super) fn maybe_rotate(&mut self, now: Instant, rng: &mut impl CryptoRngCore) {
        match self.rotate_at {
            None => self.rotate_at = Some(now + self.period),
            Some(at) if now >= at => {
                *self.previous = *self.current;
                rng.fill_bytes(self.current.as_mut());
                self.version = self.version.wrapping_add(1);
                self.rotate_at = Some(now + self.period);
            }
            Some(_) => {}
        }
    }

    fn mac(secret: &[u8], spi_i: &[u8; 8], ni: &[u8], ip: IpAddr) -> Zeroizing<Vec<u8>> {
        let ip = match ip {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let mut mac = Prf::HmacSha256.compute(secret, &[ni, &ip, spi_i]);
        mac.truncate(MAC_LEN);
        mac
    }

    /// The cookie for this request.
    pub(super) fn make(&self, spi_i: &[u8; 8], ni: &[u8], ip: IpAddr) -> Vec<u8> {
        let mut out = vec![self.version];
        out.extend_from_slice(&Self::mac(self.current.as_ref(), spi_i, ni, ip));
        out
    }

    /// Did we hand out this cookie for this request, under the current or the previous
    /// secret?
    pub(super) fn check(&self, cookie: &[u8], spi_i: &[u8; 8], ni: &[u8], ip: IpAddr) -> bool {
        let Some((&version, mac)) = cookie.split_first() else {
            return false;
        };
        let secret = if version == self.version {
            &self.current
        } else if version == self.version.wrapping_sub(1) {
            &self.previous
        } else {
            return false;
        };
        mac.len() == MAC_LEN && bool::from(Self::mac(secret.as_ref(), spi_i, ni, ip).ct_eq(mac))
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use rand_core::OsRng;

    use super::*;

    #[test]
    fn cookie_survives_one_rotation_not_two() {
        let t0 = Instant::now();
        let period = Duration::from_secs(60);
        let mut c = Cookies::new(period, &mut OsRng);
        c.maybe_rotate(t0, &mut OsRng);
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let (spi, ni) = ([1; 8], [7u8; 32]);
        let cookie = c.make(&spi, &ni, ip);
        assert_eq!(cookie.len(), 1 + MAC_LEN);
        assert!(c.check(&cookie, &spi, &ni, ip));
        assert!(!c.check(&cookie, &[2; 8], &ni, ip));
        assert!(!c.check(&cookie, &spi, &[8; 32], ip));
        assert!(!c.check(&cookie, &spi, &ni, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))));
        assert!(!c.check(&cookie[..5], &spi, &ni, ip));
        assert!(!c.check(&[], &spi, &ni, ip));
        c.maybe_rotate(t0 + period, &mut OsRng);
        assert!(c.check(&cookie, &spi, &ni, ip));
        c.maybe_rotate(t0 + 2 * period, &mut OsRng);
        assert!(!c.check(&cookie, &spi, &ni, ip));
    }
}
