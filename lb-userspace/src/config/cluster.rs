//! The `[cluster]`, `[[vrrp]]` and `[status]` sections: raw serde forms and their
//! validation into typed settings. Errors name the line and the key, like the rest of
//! [`crate::config`].

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use lb_common::wire::load::Figures;
use lb_common::wire::vrrp::{ChecksumForm, Family};
use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use crate::cluster::Trust;
use crate::target::Identity;

/// Default UDP port of the load exchange.
pub const CLUSTER_PORT_DEFAULT: u16 = 4790;
/// Default multicast group of the load exchange (administratively scoped).
pub const CLUSTER_GROUP_DEFAULT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(239, 255, 77, 1));
/// Default directory of the control socket.
pub const RUN_DIR: &str = "/run/ikelb";

/// Where the active-SA count comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeCfg {
    /// A fixed count (members without IKE daemon, tests).
    Fixed(u32),
    /// strongSwan's VICI socket: `list-sas`, established IKE SAs.
    Vici(PathBuf),
    /// The kernel's XFRM state count over netlink, two states per SA.
    Xfrm,
    /// A shell command printing one integer.
    Command(String),
}

/// How the load reports travel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    Multicast(IpAddr),
    Unicast(Vec<IpAddr>),
}

/// The validated `[cluster]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterCfg {
    pub member_id: u32,
    /// (id, secret); the first listed (or `send-key`) is the one reports go out under.
    pub keys: Vec<(u16, Vec<u8>)>,
    pub send_key: u16,
    pub interval: Duration,
    pub holdtime: Duration,
    /// `None`: no timestamp check (clocks not synchronised).
    pub max_skew: Option<Duration>,
    pub transport: Transport,
    pub port: u16,
    /// Interface for multicast (default: the dataplane's).
    pub iface: Option<String>,
    pub probe: ProbeCfg,
    /// Identities this member hands out; empty: it only listens (a VIP candidate that
    /// takes no clients itself).
    pub identities: Vec<Identity>,
    /// What this member reports besides its samples: capacity, weight, the load
    /// weights and overload limits (`crate::target::headroom`).
    pub figures: Figures,
    pub include_local: bool,
    pub slow_start_reports: u32,
    /// How often the slot table is rebuilt between reports.
    pub rebuild: Duration,
    /// Which member may use which key, from where, and advertise what (the VIPs are
    /// added to the refused identities when the whole config is read).
    pub trust: Trust,
}

/// One validated `[[vrrp]]` instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpCfg {
    /// Default: the dataplane's interface.
    pub iface: Option<String>,
    pub vrid: u8,
    pub priority: u8,
    pub interval_cs: u16,
    pub vips: Vec<IpAddr>,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub peers: Vec<IpAddr>,
    pub checksum: ChecksumForm,
    /// Source address; default the interface's primary IPv4 or IPv6 link-local one.
    pub source: Option<IpAddr>,
    /// Prefix length the VIPs are added with (default /32 or /128).
    pub prefix_len: Option<u8>,
}

impl VrrpCfg {
    pub fn family(&self) -> Family {
        Family::of(self.vips[0])
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawCluster {
    member_id: Spanned<i64>,
    #[serde(default)]
    key: Vec<RawKey>,
    send_key: Option<Spanned<i64>>,
    interval_ms: Option<Spanned<i64>>,
    holdtime_ms: Option<Spanned<i64>>,
    max_skew_ms: Option<Spanned<i64>>,
    group: Option<Spanned<String>>,
    peers: Option<Spanned<Vec<String>>>,
    port: Option<Spanned<i64>>,
    iface: Option<Spanned<String>>,
    vici: Option<Spanned<String>>,
    command: Option<Spanned<String>>,
    xfrm: Option<Spanned<bool>>,
    sas: Option<Spanned<i64>>,
    identities: Option<Spanned<Vec<String>>>,
    capacity: Option<Spanned<i64>>,
    weight: Option<Spanned<i64>>,
    crypto_load_weight: Option<Spanned<i64>>,
    system_load_weight: Option<Spanned<i64>>,
    crypto_overload_pct: Option<Spanned<i64>>,
    system_overload_pct: Option<Spanned<i64>>,
    /// Replaced by the two limits above: refused with a pointer to them.
    overload_pct: Option<Spanned<i64>>,
    include_local: Option<bool>,
    slow_start_reports: Option<Spanned<i64>>,
    rebuild_ms: Option<Spanned<i64>>,
    #[serde(default)]
    member: Vec<RawMember>,
    identity_prefixes: Option<Spanned<Vec<String>>>,
}

/// `[[cluster.member]]`: where a member's reports may come from.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawMember {
    id: Spanned<i64>,
    sources: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawKey {
    id: Spanned<i64>,
    secret: Option<Spanned<String>>,
    secret_file: Option<Spanned<String>>,
    /// Member ids that may report under this key (default: every member).
    members: Option<Spanned<Vec<i64>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawVrrp {
    iface: Option<Spanned<String>>,
    vrid: Spanned<i64>,
    priority: Option<Spanned<i64>>,
    interval_cs: Option<Spanned<i64>>,
    vips: Spanned<Vec<String>>,
    preempt: Option<bool>,
    preempt_delay_ms: Option<Spanned<i64>>,
    peers: Option<Spanned<Vec<String>>>,
    checksum: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    prefix_len: Option<Spanned<i64>>,
}

/// Formats an error at a span.
pub(super) struct Ctx<'a> {
    pub(super) text: &'a str,
}

impl Ctx<'_> {
    pub(super) fn err(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        msg: impl Into<String>,
    ) -> ConfigError {
        ConfigError(format!(
            "line {}: `{key}`: {}",
            super::line_of(self.text, span.start),
            msg.into()
        ))
    }

    pub(super) fn int<T: TryFrom<i64>>(
        &self,
        v: &Option<Spanned<i64>>,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
        default: T,
    ) -> Result<T, ConfigError> {
        match v {
            None => Ok(default),
            Some(s) => {
                let x = *s.get_ref();
                if !range.contains(&x) {
                    return Err(self.err(
                        s.span(),
                        key,
                        format!("must be {}..={}", range.start(), range.end()),
                    ));
                }
                T::try_from(x).map_err(|_| self.err(s.span(), key, "out of range"))
            }
        }
    }

    fn addr(&self, s: &Spanned<String>, key: &str) -> Result<IpAddr, ConfigError> {
        s.get_ref()
            .parse()
            .map_err(|_| self.err(s.span(), key, "not an IPv4 or IPv6 address"))
    }

    fn addrs(&self, s: &Spanned<Vec<String>>, key: &str) -> Result<Vec<IpAddr>, ConfigError> {
        let mut out = Vec::new();
        for (i, a) in s.get_ref().iter().enumerate() {
            let ip: IpAddr = a.parse().map_err(|_| {
                self.err(s.span(), key, format!("entry {i}: `{a}` is not an address"))
            })?;
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(self.err(s.span(), key, format!("{ip} is not a unicast address")));
            }
            if out.contains(&ip) {
                return Err(self.err(s.span(), key, format!("{ip} listed twice")));
            }
            out.push(ip);
        }
        Ok(out)
    }

    fn iface(&self, s: &Option<Spanned<String>>, key: &str) -> Result<Option<String>, ConfigError> {
        match s {
            Some(i) if i.get_ref().is_empty() || i.get_ref().len() > 15 => {
                Err(self.err(i.span(), key, "an interface name is 1 to 15 bytes"))
            }
            i => Ok(i.as_ref().map(|i| i.get_ref().clone())),
        }
    }

    pub(super) fn cluster(&self, c: RawCluster) -> Result<ClusterCfg, ConfigError> {
        let member_id = self.int(
            &Some(c.member_id.clone()),
            "cluster.member-id",
            1..=0xffff_ffff,
            0u32,
        )?;
        let keys::Keys {
            keys,
            send_key,
            trust,
        } = self.keys(&c)?;
        let figures = self.load(&c)?;
        let interval_ms: u64 =
            self.int(&c.interval_ms, "cluster.interval-ms", 10..=60_000, 1000)?;
        let interval = Duration::from_millis(interval_ms);
        let holdtime_ms: u64 = self.int(
            &c.holdtime_ms,
            "cluster.holdtime-ms",
            10..=600_000,
            interval_ms * 3,
        )?;
        if holdtime_ms < interval_ms {
            let span = c.holdtime_ms.as_ref().map_or(0..0, Spanned::span);
            return Err(self.err(span, "cluster.holdtime-ms", "shorter than the interval"));
        }
        let skew_ms: u64 =
            self.int(&c.max_skew_ms, "cluster.max-skew-ms", 0..=3_600_000, 10_000)?;
        let transport = match (&c.group, &c.peers) {
            (Some(g), Some(p)) => {
                let _ = g;
                return Err(self.err(
                    p.span(),
                    "cluster.peers",
                    "give either `group` (multicast) or `peers` (unicast)",
                ));
            }
            (None, Some(p)) => {
                let v = self.addrs(p, "cluster.peers")?;
                if v.is_empty() {
                    return Err(self.err(p.span(), "cluster.peers", "empty"));
                }
                Transport::Unicast(v)
            }
            (Some(g), None) => {
                let a = self.addr(g, "cluster.group")?;
                if !a.is_multicast() {
                    return Err(self.err(g.span(), "cluster.group", "not a multicast group"));
                }
                Transport::Multicast(a)
            }
            (None, None) => Transport::Multicast(CLUSTER_GROUP_DEFAULT),
        };
        let port = self.int(&c.port, "cluster.port", 1..=65535, CLUSTER_PORT_DEFAULT)?;
        let iface = self.iface(&c.iface, "cluster.iface")?;
        let n = [
            c.vici.is_some(),
            c.command.is_some(),
            c.xfrm.as_ref().is_some_and(|x| *x.get_ref()),
            c.sas.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if n > 1 {
            return Err(ConfigError(
                "[cluster]: give at most one SA probe (`vici`, `command`, `xfrm` or `sas`)".into(),
            ));
        }
        let probe = if let Some(v) = &c.vici {
            if v.get_ref().is_empty() {
                return Err(self.err(v.span(), "cluster.vici", "empty socket path"));
            }
            ProbeCfg::Vici(v.get_ref().into())
        } else if let Some(cmd) = &c.command {
            if cmd.get_ref().trim().is_empty() {
                return Err(self.err(cmd.span(), "cluster.command", "empty command"));
            }
            ProbeCfg::Command(cmd.get_ref().clone())
        } else if c.xfrm.as_ref().is_some_and(|x| *x.get_ref()) {
            ProbeCfg::Xfrm
        } else {
            ProbeCfg::Fixed(self.int(&c.sas, "cluster.sas", 0..=0xffff_ffff, 0)?)
        };
        let mut identities = Vec::new();
        let ids = c
            .identities
            .unwrap_or_else(|| Spanned::new(0..0, Vec::new()));
        if ids.get_ref().len() > lb_common::wire::load::IDENTITIES_MAX {
            return Err(self.err(ids.span(), "cluster.identities", "at most 4"));
        }
        for s in ids.get_ref() {
            let id =
                Identity::parse(s).map_err(|m| self.err(ids.span(), "cluster.identities", m))?;
            if identities.contains(&id) {
                return Err(self.err(
                    ids.span(),
                    "cluster.identities",
                    format!("{s} listed twice"),
                ));
            }
            identities.push(id);
        }
        Ok(ClusterCfg {
            member_id,
            keys,
            send_key,
            interval,
            holdtime: Duration::from_millis(holdtime_ms),
            max_skew: (skew_ms > 0).then(|| Duration::from_millis(skew_ms)),
            transport,
            port,
            iface,
            probe,
            identities,
            figures,
            include_local: c.include_local.unwrap_or(true),
            slow_start_reports: self.int(
                &c.slow_start_reports,
                "cluster.slow-start-reports",
                0..=1000,
                5,
            )?,
            rebuild: Duration::from_millis(self.int(
                &c.rebuild_ms,
                "cluster.rebuild-ms",
                10..=10_000,
                100,
            )?),
            trust,
        })
    }

    pub(super) fn vrrp(&self, i: usize, v: RawVrrp) -> Result<VrrpCfg, ConfigError> {
        let k = |f: &str| format!("vrrp[{i}].{f}");
        let vrid = self.int(&Some(v.vrid.clone()), &k("vrid"), 1..=255, 0u8)?;
        let priority = self.int(&v.priority, &k("priority"), 1..=255, 100u8)?;
        let interval_cs = self.int(&v.interval_cs, &k("interval-cs"), 1..=4095, 100u16)?;
        let vips = self.addrs(&v.vips, &k("vips"))?;
        if vips.is_empty() || vips.len() > 255 {
            return Err(self.err(v.vips.span(), &k("vips"), "list 1 to 255 addresses"));
        }
        let family = Family::of(vips[0]);
        if vips.iter().any(|a| Family::of(*a) != family) {
            return Err(self.err(
                v.vips.span(),
                &k("vips"),
                "mixes IPv4 and IPv6 (one family per instance)",
            ));
        }
        let praw = v.peers.unwrap_or_else(|| Spanned::new(0..0, Vec::new()));
        let peers = self.addrs(&praw, &k("peers"))?;
        if peers.iter().any(|a| Family::of(*a) != family) {
            return Err(self.err(praw.span(), &k("peers"), "not of the VIPs' family"));
        }
        let checksum = match &v.checksum {
            None => ChecksumForm::Pseudo,
            Some(c) => match c.get_ref().as_str() {
                "pseudo" => ChecksumForm::Pseudo,
                "plain" if family == Family::V4 => ChecksumForm::Plain,
                "plain" => {
                    return Err(self.err(
                        c.span(),
                        &k("checksum"),
                        "IPv6 always has the pseudo-header",
                    ));
                }
                o => {
                    return Err(self.err(
                        c.span(),
                        &k("checksum"),
                        format!("`{o}`: expected \"pseudo\" or \"plain\""),
                    ));
                }
            },
        };
        let source = match &v.source {
            None => None,
            Some(s) => {
                let a = self.addr(s, &k("source"))?;
                if Family::of(a) != family {
                    return Err(self.err(s.span(), &k("source"), "not of the VIPs' family"));
                }
                Some(a)
            }
        };
        let max_len = if family == Family::V4 { 32 } else { 128 };
        let prefix_len = match &v.prefix_len {
            None => None,
            Some(_) => Some(self.int(&v.prefix_len, &k("prefix-len"), 1..=max_len, 0u8)?),
        };
        Ok(VrrpCfg {
            iface: self.iface(&v.iface, &k("iface"))?,
            vrid,
            priority,
            interval_cs,
            vips,
            preempt: v.preempt.unwrap_or(true),
            preempt_delay: Duration::from_millis(self.int(
                &v.preempt_delay_ms,
                &k("preempt-delay-ms"),
                0..=3_600_000,
                0,
            )?),
            peers,
            checksum,
            source,
            prefix_len,
        })
    }

    /// Checks across sections: unique (iface, vrid, family), VIP addresses known to the
    /// fast path.
    pub(super) fn cross(&self, vrrp: &[VrrpCfg], fast_vips: &[IpAddr]) -> Result<(), ConfigError> {
        for (i, a) in vrrp.iter().enumerate() {
            for b in &vrrp[..i] {
                if a.iface == b.iface && a.vrid == b.vrid && a.family() == b.family() {
                    return Err(ConfigError(format!(
                        "vrrp[{i}]: VRID {} is configured twice on one interface",
                        a.vrid
                    )));
                }
            }
            // The IPv6 link-local VIP (RFC 9568 §5.2.9) is advertised, never redirected.
            let link_local =
                |v: &IpAddr| matches!(v, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80);
            if let Some(v) = a
                .vips
                .iter()
                .find(|v| !fast_vips.contains(v) && !link_local(v))
            {
                return Err(ConfigError(format!(
                    "vrrp[{i}]: VIP {v} has no [[vip]] entry (the fast path would not answer on it)"
                )));
            }
        }
        Ok(())
    }
}

mod keys;
mod load;
#[cfg(test)]
mod tests;
