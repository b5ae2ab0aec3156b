//! A restart that keeps the fast path (docs/architecture.md §3.4): the process that
//! exits hands its instances over without the priority-0 advert and without releasing
//! the VIPs, and the next process resumes an Active role before any Backup can have
//! taken over, so the Backups see one Active throughout and never change state.

use std::time::Instant;

use tracing::info;

use super::{Event, State, Vrrp, centiseconds};

impl Vrrp {
    /// The Handover event, in place of [`Vrrp::shutdown`] when the next process takes
    /// over: no priority-0 advert, and the VIPs stay. A Backup is done at once; an
    /// Active ends right after its next advert (at once when an interval has passed
    /// since the last one), so the Backups' Active_Down_Timer runs from as late as
    /// possible. Emits [`Event::HandedOver`] when done.
    pub fn hand_over(&mut self, now: Instant) {
        match self.state {
            State::Initialize => {}
            State::Backup => self.finish_handover(false),
            State::Active => {
                self.handing_over = true;
                self.send_advert(now);
                self.finish_handover_after(now);
            }
        }
    }

    /// Ends a pending handover once the Active's advert of `now` went out, or at once
    /// when the instance is no longer Active (a higher priority took over meanwhile).
    pub(super) fn finish_handover_after(&mut self, now: Instant) {
        if !self.handing_over {
            return;
        }
        match self.state {
            State::Active if self.last_sent == Some(now) => self.finish_handover(true),
            State::Active => {}
            State::Backup | State::Initialize => self.finish_handover(false),
        }
    }

    fn finish_handover(&mut self, active: bool) {
        info!(
            vrid = self.cfg.vrid,
            active, "handed over: the VIPs stay for the next process"
        );
        self.handing_over = false;
        self.state = State::Initialize;
        self.timer = None;
        self.active = None;
        self.events.push_back(Event::HandedOver { active });
    }

    /// When the last advert went out (the handover's record of it).
    pub fn last_advert(&self) -> Option<Instant> {
        self.last_sent
    }

    /// The Startup event after a handover by an Active whose last advert left at `last`
    /// with Max Adver Int `interval_cs`. Every Backup waits at least three such
    /// intervals after that advert before it takes over, so until then this instance
    /// is Active again at once, its VIPs untouched, and its next advert follows `last`
    /// by one interval as if the process had never changed. Later it starts as
    /// [`Vrrp::start`] does and the protocol decides (preemption as configured).
    pub fn resume(&mut self, now: Instant, last: Instant, interval_cs: u16) {
        if self.state != State::Initialize {
            return;
        }
        let within = now
            .checked_duration_since(last)
            .filter(|d| *d < centiseconds(3 * u64::from(interval_cs)));
        let Some(since) = within else {
            info!(
                vrid = self.cfg.vrid,
                "the handover is older than three advert intervals: starting as at boot"
            );
            return self.start(now);
        };
        info!(
            vrid = self.cfg.vrid,
            since_last_advert_ms = since.as_millis() as u64,
            "resuming as active after a handover"
        );
        self.started = Some(now);
        self.last_sent = Some(last);
        self.become_active(now);
    }
}
