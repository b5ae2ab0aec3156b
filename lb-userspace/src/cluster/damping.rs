//! Flap damping in the manner of BGP route flap damping (RFC 2439 §4.2): each time a
//! member leaves the table it earns a penalty that decays exponentially; a member whose
//! penalty reaches the suppress limit is held out, though its reports keep arriving,
//! until the penalty decays to the reuse limit or the longest hold has passed.

use std::time::{Duration, Instant};

/// Damping settings. [`Damping::default`]: three flaps in quick succession hold a member
/// out for about two minutes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Damping {
    /// Penalty per departure; 0 turns damping off.
    pub penalty: f64,
    /// A returning member whose penalty is at least this is held out.
    pub suppress: f64,
    /// A held-out member is let back once its penalty decays to this.
    pub reuse: f64,
    /// Time for the penalty to halve.
    pub half_life: Duration,
    /// Longest time a member is held out, whatever its penalty.
    pub max_hold: Duration,
}

impl Default for Damping {
    fn default() -> Self {
        Damping {
            penalty: 1000.0,
            suppress: 2500.0,
            reuse: 800.0,
            half_life: Duration::from_secs(60),
            max_hold: Duration::from_secs(600),
        }
    }
}

impl Damping {
    /// Off: every member is admitted whenever it reports.
    pub const OFF: Damping = Damping {
        penalty: 0.0,
        suppress: f64::INFINITY,
        reuse: 0.0,
        half_life: Duration::from_secs(1),
        max_hold: Duration::ZERO,
    };
}

/// One member's flap history.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FlapState {
    penalty: f64,
    at: Option<Instant>,
    held_since: Option<Instant>,
    /// Departures counted so far.
    pub flaps: u64,
}

/// Whether a reporting member may be in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Held out; `first` on the report that started the hold.
    HeldOut {
        first: bool,
    },
}

impl FlapState {
    /// The penalty decayed to `now`.
    pub fn penalty(&self, d: &Damping, now: Instant) -> f64 {
        let Some(at) = self.at else {
            return 0.0;
        };
        let half = d.half_life.as_secs_f64().max(1e-9);
        let dt = now.saturating_duration_since(at).as_secs_f64();
        self.penalty * (-dt / half).exp2()
    }

    /// The member left the table at `now`.
    pub fn flap(&mut self, d: &Damping, now: Instant) {
        self.flaps += 1;
        if d.penalty <= 0.0 {
            return;
        }
        self.penalty = self.penalty(d, now) + d.penalty;
        self.at = Some(now);
    }

    /// A report arrived while the member is out of the table.
    pub fn admit(&mut self, d: &Damping, now: Instant) -> Admit {
        let p = self.penalty(d, now);
        match self.held_since {
            Some(since) => {
                if p <= d.reuse || now.saturating_duration_since(since) >= d.max_hold {
                    self.held_since = None;
                    // Past the longest hold, start again from the reuse limit so one
                    // more flap does not hold the member out at once.
                    self.penalty = p.min(d.reuse);
                    self.at = Some(now);
                    Admit::Yes
                } else {
                    Admit::HeldOut { first: false }
                }
            }
            None if p >= d.suppress => {
                self.held_since = Some(now);
                Admit::HeldOut { first: true }
            }
            None => Admit::Yes,
        }
    }

    /// Whether the member is being held out.
    pub fn held(&self) -> bool {
        self.held_since.is_some()
    }

    /// A state with nothing left to remember.
    pub fn idle(&self, d: &Damping, now: Instant) -> bool {
        self.held_since.is_none() && self.penalty(d, now) < 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn decays_by_half_life() {
        let d = Damping::default();
        let t0 = Instant::now();
        let mut f = FlapState::default();
        f.flap(&d, t0);
        assert_eq!(f.penalty(&d, t0), 1000.0);
        assert!((f.penalty(&d, t0 + 60 * S) - 500.0).abs() < 1e-6);
        assert!((f.penalty(&d, t0 + 120 * S) - 250.0).abs() < 1e-6);
    }

    #[test]
    fn third_quick_flap_holds_out_until_reuse() {
        let d = Damping::default();
        let t0 = Instant::now();
        let mut f = FlapState::default();
        for i in 0..2 {
            f.flap(&d, t0 + i * 5 * S);
            assert_eq!(f.admit(&d, t0 + i * 5 * S + S), Admit::Yes);
        }
        f.flap(&d, t0 + 10 * S);
        assert_eq!(f.admit(&d, t0 + 11 * S), Admit::HeldOut { first: true });
        assert_eq!(f.admit(&d, t0 + 12 * S), Admit::HeldOut { first: false });
        assert!(f.held());
        // ≈ 2835 at 10 s; it decays to 800 after log2(2835/800) half-lives ≈ 110 s.
        assert_eq!(f.admit(&d, t0 + 110 * S), Admit::HeldOut { first: false });
        assert_eq!(f.admit(&d, t0 + 125 * S), Admit::Yes);
        assert!(!f.held());
    }

    #[test]
    fn max_hold_bounds_the_hold() {
        let d = Damping {
            max_hold: 30 * S,
            ..Damping::default()
        };
        let t0 = Instant::now();
        let mut f = FlapState::default();
        for i in 0..10 {
            f.flap(&d, t0 + i * S);
        }
        assert_eq!(f.admit(&d, t0 + 10 * S), Admit::HeldOut { first: true });
        assert_eq!(f.admit(&d, t0 + 39 * S), Admit::HeldOut { first: false });
        assert_eq!(f.admit(&d, t0 + 40 * S), Admit::Yes);
        // Back at the reuse limit: one more flap is not enough to hold it out again.
        f.flap(&d, t0 + 41 * S);
        assert_eq!(f.admit(&d, t0 + 42 * S), Admit::Yes);
    }

    #[test]
    fn off_never_holds() {
        let d = Damping::OFF;
        let t0 = Instant::now();
        let mut f = FlapState::default();
        for i in 0..100 {
            f.flap(&d, t0 + i * S);
            assert_eq!(f.admit(&d, t0 + i * S), Admit::Yes);
        }
        assert_eq!(f.flaps, 100);
        assert!(f.idle(&d, t0));
    }
}
