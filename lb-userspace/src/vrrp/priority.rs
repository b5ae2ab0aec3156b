//! A priority change while the instance runs (a reload): the next advert carries it,
//! and the peers' rules decide from there (a Backup with preemption takes over from an
//! Active whose priority fell below its own; a Backup's Active_Down_Interval follows
//! its new priority at the next advert it hears).

use std::time::Instant;

use tracing::info;

use super::{PRIORITY_OWNER, PRIORITY_STOP, Vrrp, VrrpError};

impl Vrrp {
    /// Sets the priority. The address owner's 255 can be neither set nor left this way:
    /// an owner becomes Active at startup without waiting (RFC 9568 §6.4.1), which a
    /// running instance cannot redo.
    pub fn set_priority(&mut self, _now: Instant, priority: u8) -> Result<(), VrrpError> {
        check_priority_change(self.cfg.priority, priority)?;
        if priority != self.cfg.priority {
            info!(
                vrid = self.cfg.vrid,
                from = self.cfg.priority,
                to = priority,
                "priority changed"
            );
            self.cfg.priority = priority;
        }
        Ok(())
    }
}

/// Whether a running instance may go from priority `from` to `to`.
pub fn check_priority_change(from: u8, to: u8) -> Result<(), VrrpError> {
    if to == PRIORITY_STOP {
        return Err(VrrpError::Priority);
    }
    if from != to && (from == PRIORITY_OWNER || to == PRIORITY_OWNER) {
        return Err(VrrpError::OwnerChange);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use super::*;
    use crate::vrrp::{Config, State};

    #[test]
    fn the_next_advert_carries_the_new_priority() {
        let vip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        let mut c = Config::new(10, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)), vec![vip]);
        c.priority = 100;
        c.interval_cs = 10;
        let mut v = Vrrp::new(c).unwrap();
        let t0 = Instant::now();
        v.start(t0);
        // Alone on the link: Active after the Active_Down_Interval.
        let t1 = v.poll_timeout().unwrap();
        v.handle_timeout(t1);
        assert_eq!(v.state(), State::Active);
        while v.poll_transmit().is_some() {}
        v.set_priority(t1, 150).unwrap();
        let t2 = v.poll_timeout().unwrap();
        assert!(t2 <= t1 + Duration::from_millis(100));
        v.handle_timeout(t2);
        let adv = v.poll_transmit().expect("an advert");
        // VRRPv3: version/type, VRID, priority.
        assert_eq!(adv.payload[2], 150);
        assert_eq!(v.config().priority, 150);
        assert!(matches!(v.set_priority(t2, 0), Err(VrrpError::Priority)));
        assert!(matches!(
            v.set_priority(t2, 255),
            Err(VrrpError::OwnerChange)
        ));
        assert_eq!(v.config().priority, 150);
        assert!(check_priority_change(255, 255).is_ok());
        assert!(check_priority_change(255, 200).is_err());
    }
}
