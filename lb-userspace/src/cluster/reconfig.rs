//! A reload's new exchange settings while the exchange runs: keys (a rollover keeps
//! several key ids valid while the nodes move from one send key to the next), trust,
//! clock skew and this member's load figures. What the exchange's timing or identity
//! rests on (member id, interval, holdtime) needs a restart: a peer would see a
//! member change its id or cadence mid-stream.

use crate::config::ClusterCfg;

use super::{Config, LoadExchange};

impl LoadExchange {
    /// Applies `new` (from [`super::settings::exchange_config`], so valid); this member's
    /// drain state stays as it was. Takes effect with the next report sent and the next
    /// report received.
    pub fn reconfigure(&mut self, mut new: Config) {
        let drain = self.config.local.as_ref().is_some_and(|l| l.figures.drain);
        if let Some(l) = &mut new.local {
            l.figures.drain = drain;
        }
        new.member_id = self.config.member_id;
        new.interval = self.config.interval;
        new.holdtime = self.config.holdtime;
        self.config = new;
    }
}

/// The first `[cluster]` key whose change needs a restart, if any.
pub fn restart_only(old: &ClusterCfg, new: &ClusterCfg) -> Option<&'static str> {
    let checks: [(&'static str, bool); 10] = [
        ("cluster.member-id", old.member_id == new.member_id),
        ("cluster.interval-ms", old.interval == new.interval),
        ("cluster.holdtime-ms", old.holdtime == new.holdtime),
        ("cluster.group/peers", old.transport == new.transport),
        ("cluster.port", old.port == new.port),
        ("cluster.iface", old.iface == new.iface),
        ("cluster.vici/command/xfrm/sas", old.probe == new.probe),
        ("cluster.rebuild-ms", old.rebuild == new.rebuild),
        // The probe thread runs only for a member with identities.
        (
            "cluster.identities (adding or removing all)",
            old.identities.is_empty() == new.identities.is_empty(),
        ),
        (
            "cluster.include-local",
            old.include_local == new.include_local,
        ),
    ];
    checks.iter().find(|(_, same)| !same).map(|(k, _)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::settings::exchange_config;

    fn cfg(extra: &str) -> ClusterCfg {
        crate::config::Config::parse(&format!(
            "[cluster]\nmember-id = 4\nidentities = [\"192.0.2.4\"]\n{extra}\
             [[cluster.key]]\nid = 1\nsecret = \"0123456789abcdef\"\n\
             [[cluster.key]]\nid = 2\nsecret = \"fedcba9876543210\"\n"
        ))
        .unwrap()
        .cluster
        .unwrap()
    }

    #[test]
    fn keys_and_load_change_identity_and_timing_need_a_restart() {
        let old = cfg("");
        let mut lx = LoadExchange::new(
            exchange_config(&old).unwrap(),
            std::time::Instant::now(),
            std::time::Duration::from_secs(1_800_000_000),
        )
        .unwrap();
        lx.set_drain(std::time::Instant::now(), true);
        let new = cfg("send-key = 2\ncapacity = 50\n");
        assert_eq!(restart_only(&old, &new), None);
        lx.reconfigure(exchange_config(&new).unwrap());
        assert_eq!(lx.config().keys.send_id(), 2);
        let local = lx.config().local.clone().unwrap();
        assert_eq!(local.figures.capacity, 50);
        assert!(local.figures.drain, "the drain state survives a reload");
        assert_eq!(
            restart_only(&old, &cfg("interval-ms = 200\n")),
            Some("cluster.interval-ms")
        );
        assert_eq!(
            restart_only(&old, &cfg("port = 4999\n")),
            Some("cluster.port")
        );
    }

    /// The load composition reloads: the next report carries the new weights and
    /// limits, the samples and the drain flag stay.
    #[test]
    fn load_weights_and_limits_reload_into_the_next_report() {
        use crate::cluster::LocalLoad;
        use lb_common::wire::load::{Packet, Repr};
        let old = cfg("");
        let t0 = std::time::Instant::now();
        let mut lx = LoadExchange::new(
            exchange_config(&old).unwrap(),
            t0,
            std::time::Duration::from_secs(1_800_000_000),
        )
        .unwrap();
        let sample = LocalLoad {
            active_sas: 12,
            cpu_permille: 300,
            memory_permille: 400,
        };
        lx.handle_local_sample(t0, sample);
        lx.set_drain(t0, true);
        let new = cfg("crypto-load-weight = 60\nsystem-load-weight = 0\n\
             crypto-overload-pct = 150\nsystem-overload-pct = 80\n");
        assert_eq!(restart_only(&old, &new), None);
        lx.reconfigure(exchange_config(&new).unwrap());
        while lx.poll_transmit().is_some() {}
        lx.handle_timeout(t0 + std::time::Duration::from_secs(1));
        let sent = lx.poll_transmit().expect("a report").payload;
        let p = Packet::new_checked(&sent[..]).unwrap();
        let f = Repr::parse(&p).unwrap().figures;
        assert_eq!((f.crypto_load_weight, f.system_load_weight), (60, 0));
        assert_eq!((f.crypto_overload_pct, f.system_overload_pct), (150, 80));
        assert_eq!(
            (f.active_sas, f.cpu_permille, f.memory_permille),
            (12, 300, 400)
        );
        assert!(f.drain);
        // And this node's own row weighs them.
        let me = lx.members().into_iter().find(|m| m.local).unwrap();
        assert_eq!(me.figures, f);
    }
}
