//! The responder's SAs: by our SPI, by the client's address and SPIi (to spot a
//! retransmitted IKE_SA_INIT), and by the time each one wakes up next. An SA is taken
//! out while a handler works on it and put back after, which files it under its new
//! wake-up time or forgets it.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Instant;

use rand_core::RngCore;

use super::core::{Core, Rng};
use super::sa::{IkeSa, SaState};

#[derive(Default)]
pub(in crate::ike) struct Table {
    /// By our SPI (SPIr).
    sas: HashMap<[u8; 8], IkeSa>,
    /// (client address, SPIi) → SPIr, to spot retransmitted IKE_SA_INIT requests.
    by_init: HashMap<(SocketAddr, [u8; 8]), [u8; 8]>,
    /// (wake-up time, SPIr) of every SA.
    timers: BTreeSet<(Instant, [u8; 8])>,
}

impl Table {
    pub(super) fn len(&self) -> usize {
        self.sas.len()
    }

    /// Whether an IKE_SA_INIT from `remote` with `spi_i` created an SA that is not gone
    /// (`Some`), and that SA if it is in the table now.
    pub(super) fn by_init(&self, remote: SocketAddr, spi_i: [u8; 8]) -> Option<Option<&IkeSa>> {
        self.by_init
            .get(&(remote, spi_i))
            .map(|spi_r| self.sas.get(spi_r))
    }

    /// Takes an SA out to work on it; [`Table::put_back`] returns it.
    pub(super) fn take(&mut self, spi_r: &[u8; 8]) -> Option<IkeSa> {
        self.sas.remove(spi_r)
    }

    /// The earliest wake-up time of any SA.
    pub(super) fn next_wake(&self) -> Option<Instant> {
        self.timers.first().map(|&(at, _)| at)
    }

    /// Takes out an SA whose wake-up time is `now` or earlier, if there is one.
    pub(super) fn take_due(&mut self, now: Instant) -> Option<IkeSa> {
        while let Some(&(at, spi)) = self.timers.first() {
            if at > now {
                return None;
            }
            self.timers.remove(&(at, spi));
            if let Some(mut sa) = self.sas.remove(&spi) {
                sa.scheduled = None;
                return Some(sa);
            }
        }
        None
    }

    /// Stores an SA taken out of the table back, or forgets it if it is gone, and
    /// (re)schedules its timer.
    pub(super) fn put_back(&mut self, mut sa: IkeSa) {
        if let Some(at) = sa.scheduled.take() {
            self.timers.remove(&(at, sa.spi_r));
        }
        if sa.state == SaState::Gone {
            self.by_init.remove(&(sa.init_remote, sa.spi_i));
            return;
        }
        let at = sa.wake_at();
        self.timers.insert((at, sa.spi_r));
        sa.scheduled = Some(at);
        self.sas.insert(sa.spi_r, sa);
    }

    /// Files a new half-open SA, counted against the limits and the state bound.
    pub(in crate::ike) fn insert_half_open(&mut self, core: &mut Core, sa: IkeSa) {
        core.enter_half_open(&sa);
        self.by_init.insert((sa.init_remote, sa.spi_i), sa.spi_r);
        self.put_back(sa);
    }

    /// A fresh non-zero SPI not in use.
    pub(super) fn new_spi(&self, rng: &mut Rng) -> [u8; 8] {
        loop {
            let mut spi = [0; 8];
            rng.fill_bytes(&mut spi);
            if spi != [0; 8] && !self.sas.contains_key(&spi) {
                return spi;
            }
        }
    }
}
