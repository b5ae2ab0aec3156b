//! The fast path's own limits in the configuration: the VLAN tag stack each VIP lives
//! behind (`[[vip]] vlans`) and the per-source rate (`[dataplane] rate-per-source`,
//! `burst-per-source`).

use serde::Deserialize;
use toml::Spanned;

/// The VLAN tag stack a VIP answers on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VlanBinding {
    /// Exactly this stack, outer VLAN ID first; empty: untagged frames only (the
    /// default, so an untagged configuration keeps working and a VIP never answers on a
    /// trunk's VLANs by accident).
    Stack(Vec<u16>),
    /// Every stack (`vlans = "any"`): only where every VLAN on the link is trusted to
    /// use the VIP's address for the VIP.
    Any,
}

impl Default for VlanBinding {
    fn default() -> Self {
        VlanBinding::Stack(Vec::new())
    }
}

impl VlanBinding {
    /// `lb_common::maps::Vip.vlans`.
    pub fn map_value(&self) -> u32 {
        match self {
            VlanBinding::Stack(ids) => lb_common::maps::vlan_stack(ids),
            VlanBinding::Any => lb_common::maps::VLAN_ANY,
        }
    }
}

/// `vlans`: a list of VLAN IDs or the word "any".
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawVlans {
    Ids(Vec<i64>),
    Word(String),
}

/// Parses `vip[i].vlans`; the error is the message for that key.
pub(super) fn vlans(raw: Option<&Spanned<RawVlans>>) -> Result<VlanBinding, String> {
    let Some(raw) = raw else {
        return Ok(VlanBinding::default());
    };
    match raw.get_ref() {
        RawVlans::Word(w) if w == "any" => Ok(VlanBinding::Any),
        RawVlans::Word(w) => Err(format!(
            "`{w}`: expected a list of VLAN IDs (outer first) or \"any\""
        )),
        RawVlans::Ids(ids) if ids.len() > lb_common::wire::l2l3::MAX_VLAN => Err(format!(
            "{} tags: at most {} (802.1ad outer, 802.1Q inner)",
            ids.len(),
            lb_common::wire::l2l3::MAX_VLAN
        )),
        RawVlans::Ids(ids) => ids
            .iter()
            .map(|&v| {
                u16::try_from(v)
                    .ok()
                    .filter(|v| (1..=4094).contains(v))
                    .ok_or_else(|| format!("VLAN ID {v}: must be 1..=4094"))
            })
            .collect::<Result<_, _>>()
            .map(VlanBinding::Stack),
    }
}

/// The per-source rate limit of answers in the fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Answers per second to one IPv4 address or IPv6 /64; 0: no limit.
    pub per_second: u32,
    /// Answers one source may get back to back.
    pub burst: u32,
}

impl Default for RateLimit {
    /// 100 answers a second, 200 at once: well above what the clients behind one
    /// address (a NAT) start, while a source flooding the VIP, or an address spoofed to
    /// turn the VIP into a reflector, gets at most that many answers (each shorter than
    /// its request).
    fn default() -> Self {
        RateLimit {
            per_second: 100,
            burst: 200,
        }
    }
}

/// Most answers per second the limit can express (1 µs apart).
const RATE_MAX: i64 = 1_000_000;

/// How far apart two CPUs' rate-limit clocks may be: each reads the time once per
/// jiffy (docs/architecture.md §2.1), and a jiffy is at most 10 ms (HZ = 100). The
/// limit tolerates that much on top of the burst, or a source well under its rate
/// whose requests land on two CPUs would be dropped whenever the burst's time is
/// shorter than a jiffy (a high rate with a small burst).
pub const CLOCK_SLACK_NS: u64 = 10_000_000;

impl RateLimit {
    /// `Config.rate_interval_ns` and `rate_limit_ns` (both 0 when off).
    pub fn map_values(&self) -> (u64, u64) {
        if self.per_second == 0 {
            return (0, 0);
        }
        let interval = 1_000_000_000 / u64::from(self.per_second);
        (interval, interval * u64::from(self.burst) + CLOCK_SLACK_NS)
    }

    /// From `[dataplane] rate-per-source` and `burst-per-source`; the error names the
    /// key at fault.
    pub(super) fn parse(
        rate: Option<&Spanned<i64>>,
        burst: Option<&Spanned<i64>>,
    ) -> Result<Self, (std::ops::Range<usize>, &'static str, String)> {
        let d = RateLimit::default();
        let get = |v: Option<&Spanned<i64>>, key, min, dflt: u32| match v {
            None => Ok(dflt),
            Some(s) => u32::try_from(*s.get_ref())
                .ok()
                .filter(|x| (min..=RATE_MAX).contains(&i64::from(*x)))
                .ok_or_else(|| (s.span(), key, format!("must be {min}..={RATE_MAX}"))),
        };
        Ok(RateLimit {
            per_second: get(rate, "dataplane.rate-per-source", 0, d.per_second)?,
            burst: get(burst, "dataplane.burst-per-source", 1, d.burst)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn vip(extra: &str) -> Result<Config, String> {
        Config::parse(&format!("[[vip]]\naddress = \"192.0.2.1\"\n{extra}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn vlans_default_to_untagged() {
        let c = vip("").unwrap();
        assert_eq!(c.vips[0].vlans, VlanBinding::Stack(vec![]));
        assert_eq!(c.vips[0].vlans.map_value(), 0);
        let c = vip("vlans = [100]").unwrap();
        assert_eq!(c.vips[0].vlans, VlanBinding::Stack(vec![100]));
        let c = vip("vlans = [100, 200]").unwrap();
        assert_eq!(
            c.vips[0].vlans.map_value(),
            lb_common::maps::vlan_stack(&[100, 200])
        );
        assert_eq!(
            vip("vlans = \"any\"").unwrap().vips[0].vlans,
            VlanBinding::Any
        );
        for bad in ["[0]", "[4095]", "[1, 2, 3]", "\"all\"", "[-1]"] {
            let e = vip(&format!("vlans = {bad}")).unwrap_err();
            assert!(e.contains("line 3") && e.contains("vip[0].vlans"), "{e}");
        }
    }

    #[test]
    fn a_source_under_its_rate_passes_on_clocks_a_jiffy_apart() {
        // 10 000/s with a burst of 2 (0.2 ms): requests at 5 000/s alternate between a
        // CPU whose clock is current and one whose clock is a whole jiffy behind.
        let (interval, limit) = RateLimit {
            per_second: 10_000,
            burst: 2,
        }
        .map_values();
        let mut tat = None;
        for i in 0..1000u64 {
            let now = 1_000_000_000 + i * 200_000;
            let seen = if i % 2 == 0 {
                now
            } else {
                now - CLOCK_SLACK_NS
            };
            tat = Some(
                lb_common::maps::rate_admit(tat, seen, interval, limit)
                    .unwrap_or_else(|| panic!("request {i} dropped")),
            );
        }
        // Still a limit: back to back, the burst and the slack's worth pass, no more.
        let now = 5_000_000_000;
        let mut tat = None;
        let admitted = (0..1000)
            .take_while(|_| {
                lb_common::maps::rate_admit(tat, now, interval, limit)
                    .map(|t| tat = Some(t))
                    .is_some()
            })
            .count();
        assert_eq!(admitted, 2 + 100);
    }

    #[test]
    fn rate_limit_defaults_and_bounds() {
        let c = vip("").unwrap();
        assert_eq!(c.rate_limit, RateLimit::default());
        assert_eq!(
            c.rate_limit.map_values(),
            (10_000_000, 2_000_000_000 + CLOCK_SLACK_NS)
        );
        let with = |d: &str| vip(&format!("[dataplane]\n{d}\n"));
        let c = with("rate-per-source = 0").unwrap();
        assert_eq!(c.rate_limit.map_values(), (0, 0));
        let c = with("rate-per-source = 1000\nburst-per-source = 1").unwrap();
        assert_eq!(
            c.rate_limit.map_values(),
            (1_000_000, 1_000_000 + CLOCK_SLACK_NS)
        );
        for (bad, key) in [
            ("rate-per-source = -1", "rate-per-source"),
            ("rate-per-source = 1000001", "rate-per-source"),
            ("burst-per-source = 0", "burst-per-source"),
        ] {
            let e = with(bad).unwrap_err();
            assert!(e.contains("line 4") && e.contains(key), "{e}");
        }
    }
}
