//! The TOML configuration: parsed into serde structs, then validated into a typed
//! [`Config`] before anything is applied. Every error names the line and the key.

use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::target::{Identity, Owner, StaticTarget, Target};

mod cluster;
mod fast;
mod ike;
mod no_redirect;
mod radius;
mod status;

pub use cluster::{
    CLUSTER_GROUP_DEFAULT, CLUSTER_PORT_DEFAULT, ClusterCfg, ProbeCfg, RUN_DIR, Transport, VrrpCfg,
};
pub use fast::{RateLimit, VlanBinding};
pub use ike::{IkeCfg, IkePeerCfg, Psk, parse_ike_identity};
pub use no_redirect::NoRedirect;
pub use radius::RadiusCfg;
pub use status::{Group, StatusCfg};

/// How the XDP program is attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpModeCfg {
    /// Native (driver) mode, falling back to generic with a warning.
    #[default]
    Auto,
    Native,
    Skb,
    /// No XDP at all (a machine without it): the userspace responder answers every
    /// request, init-mode VIPs with the fast path's bytes.
    Off,
}

impl std::str::FromStr for XdpModeCfg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "native" | "driver" => Ok(Self::Native),
            "skb" | "generic" => Ok(Self::Skb),
            "off" => Ok(Self::Off),
            _ => Err(format!(
                "unknown XDP mode `{s}` (expected native, skb, auto or off)"
            )),
        }
    }
}

/// Where a VIP redirects: in IKE_SA_INIT (the fast path) or after authentication.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RedirectMode {
    #[default]
    Init,
    Auth,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vip {
    pub address: IpAddr,
    pub redirect: RedirectMode,
    /// The VLAN tag stack it answers on.
    pub vlans: VlanBinding,
    /// Clients without REDIRECT_SUPPORTED (docs/architecture.md §6).
    pub no_redirect: NoRedirect,
}

/// A static target's capacity when none is given (the cluster's default too).
pub const TARGET_CAPACITY_DEFAULT: u32 = 1000;

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub iface: Option<String>,
    pub xdp_mode: XdpModeCfg,
    /// `[dataplane] rate-per-source`, `burst-per-source`.
    pub rate_limit: RateLimit,
    /// `[dataplane] forward-encap = "ipip"`: forwarded clients reach the members inside
    /// IP-in-IP (docs/architecture.md §6.4) instead of on the segment.
    pub forward_encap: bool,
    pub vips: Vec<Vip>,
    pub targets: Vec<StaticTarget>,
    /// The load exchange; with it, targets come from the members' reports.
    pub cluster: Option<ClusterCfg>,
    /// VRRP instances owning the VIPs; without any, the fast path is always active.
    pub vrrp: Vec<VrrpCfg>,
    pub status: StatusCfg,
    /// The userspace IKE responder: `[ike]` and each auth-mode VIP's method.
    pub ike: IkeCfg,
    /// `[security] strict-permissions`: refuse secret files that group or others can
    /// read, instead of warning.
    pub strict_permissions: bool,
    /// What was accepted but should be fixed (secret files group or others can read);
    /// [`Config::load`] logs each.
    pub warnings: Vec<String>,
}

/// The permission check of files that hold secrets: the configuration (it may hold
/// PSKs), `psk-file`s and `private-key`. One that its group or others can read is a
/// warning, or an error with `[security] strict-permissions = true`.
pub(crate) struct SecretFiles {
    strict: bool,
    warnings: Vec<String>,
}

impl SecretFiles {
    /// Checks `path`. A file that cannot be inspected passes here: reading it reports
    /// why.
    pub(crate) fn check(&mut self, path: &Path) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return Ok(());
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o044 == 0 {
            return Ok(());
        }
        let msg = format!(
            "{}: mode {mode:04o} lets group or others read this secret (chmod go-rw)",
            path.display()
        );
        if self.strict {
            return Err(msg);
        }
        self.warnings.push(msg);
        Ok(())
    }
}

/// A configuration error, already formatted with file, line and key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    #[serde(default)]
    dataplane: Option<RawDataplane>,
    #[serde(default)]
    vip: Vec<RawVip>,
    #[serde(default)]
    target: Vec<RawTarget>,
    cluster: Option<cluster::RawCluster>,
    #[serde(default)]
    vrrp: Vec<cluster::RawVrrp>,
    status: Option<status::RawStatus>,
    ike: Option<ike::RawIke>,
    security: Option<RawSecurity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSecurity {
    #[serde(default)]
    strict_permissions: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDataplane {
    iface: Option<Spanned<String>>,
    xdp_mode: Option<Spanned<String>>,
    rate_per_source: Option<Spanned<i64>>,
    burst_per_source: Option<Spanned<i64>>,
    forward_encap: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawVip {
    address: Spanned<String>,
    redirect: Option<Spanned<String>>,
    no_redirect: Option<Spanned<String>>,
    #[serde(alias = "auth_redirect")]
    auth_redirect: Option<Spanned<String>>,
    vlans: Option<Spanned<fast::RawVlans>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTarget {
    name: Spanned<String>,
    identity: Spanned<String>,
    weight: Option<Spanned<i64>>,
    capacity: Option<Spanned<i64>>,
}

/// Most targets one config may list (the map holds `MAX_TARGETS`).
pub const MAX_TARGETS: usize = lb_common::maps::MAX_TARGETS as usize;

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        let mut c =
            Self::parse(&text).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))?;
        let mut files = SecretFiles {
            strict: c.strict_permissions,
            warnings: Vec::new(),
        };
        files.check(path).map_err(ConfigError)?;
        c.warnings.splice(0..0, files.warnings);
        for w in &c.warnings {
            tracing::warn!("{w}");
        }
        Ok(c)
    }

    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!("line {}: ", line_of(text, s.start)))
                .unwrap_or_default();
            ConfigError(format!("{at}{}", e.message()))
        })?;
        let err = |span: std::ops::Range<usize>, key: &str, msg: String| {
            ConfigError(format!(
                "line {}: `{key}`: {msg}",
                line_of(text, span.start)
            ))
        };
        let (iface, xdp_mode, rate_limit, forward_encap) = match raw.dataplane {
            None => (None, XdpModeCfg::default(), RateLimit::default(), false),
            Some(d) => {
                let rate =
                    RateLimit::parse(d.rate_per_source.as_ref(), d.burst_per_source.as_ref())
                        .map_err(|(span, key, msg)| err(span, key, msg))?;
                let encap = match d.forward_encap {
                    None => false,
                    Some(e) if e.get_ref() == "ipip" => true,
                    Some(e) => {
                        return Err(err(
                            e.span(),
                            "dataplane.forward-encap",
                            "the only encapsulation is \"ipip\"".into(),
                        ));
                    }
                };
                let mode = match d.xdp_mode {
                    None => XdpModeCfg::default(),
                    Some(m) => m
                        .get_ref()
                        .parse()
                        .map_err(|e| err(m.span(), "dataplane.xdp-mode", e))?,
                };
                let iface = match d.iface {
                    Some(i) if i.get_ref().is_empty() || i.get_ref().len() > 15 => {
                        return Err(err(
                            i.span(),
                            "dataplane.iface",
                            "an interface name is 1 to 15 bytes".into(),
                        ));
                    }
                    i => i.map(Spanned::into_inner),
                };
                (iface, mode, rate, encap)
            }
        };
        if raw.vip.is_empty() && raw.cluster.is_none() {
            return Err(ConfigError("no [[vip]] configured".into()));
        }
        if raw.vip.len() > lb_common::maps::MAX_VIPS as usize {
            return Err(ConfigError(format!(
                "{} [[vip]] entries: at most {}",
                raw.vip.len(),
                lb_common::maps::MAX_VIPS
            )));
        }
        let mut vips = Vec::new();
        let mut vip_ike = Vec::new();
        for (i, v) in raw.vip.into_iter().enumerate() {
            let key = format!("vip[{i}].address");
            let address: IpAddr =
                v.address.get_ref().parse().map_err(|_| {
                    err(v.address.span(), &key, "not an IPv4 or IPv6 address".into())
                })?;
            if address.is_unspecified() || address.is_multicast() {
                return Err(err(v.address.span(), &key, "not a unicast address".into()));
            }
            if vips.iter().any(|x: &Vip| x.address == address) {
                return Err(err(
                    v.address.span(),
                    &key,
                    format!("{address} listed twice"),
                ));
            }
            let redirect_span = v.redirect.as_ref().map_or(v.address.span(), |r| r.span());
            let redirect = match v.redirect {
                None => RedirectMode::Init,
                Some(r) => match r.get_ref().as_str() {
                    "init" => RedirectMode::Init,
                    "auth" => RedirectMode::Auth,
                    o => {
                        return Err(err(
                            r.span(),
                            &format!("vip[{i}].redirect"),
                            format!("`{o}`: expected \"init\" or \"auth\""),
                        ));
                    }
                },
            };
            vip_ike.push(ike::VipIke {
                index: i,
                address,
                redirect,
                span: redirect_span,
                auth_redirect: v.auth_redirect,
            });
            let vlans = fast::vlans(v.vlans.as_ref()).map_err(|m| {
                let span = v.vlans.as_ref().map_or(v.address.span(), Spanned::span);
                err(span, &format!("vip[{i}].vlans"), m)
            })?;
            let no_redirect = no_redirect::parse(
                v.no_redirect.as_ref().map(|x| x.get_ref().as_str()),
                redirect,
            )
            .map_err(|e| {
                let span = v
                    .no_redirect
                    .as_ref()
                    .map_or(v.address.span(), |x| x.span());
                err(span, &format!("vip[{i}].no-redirect"), e)
            })?;
            vips.push(Vip {
                address,
                redirect,
                vlans,
                no_redirect,
            });
        }
        if raw.target.len() > MAX_TARGETS {
            return Err(ConfigError(format!(
                "{} [[target]] entries: at most {MAX_TARGETS}",
                raw.target.len()
            )));
        }
        let mut targets: Vec<StaticTarget> = Vec::new();
        for (i, t) in raw.target.into_iter().enumerate() {
            let owner = Owner::Static(t.name.get_ref().clone());
            if t.name.get_ref().is_empty() || targets.iter().any(|x| x.target.owner == owner) {
                return Err(err(
                    t.name.span(),
                    &format!("target[{i}].name"),
                    "names must be non-empty and unique".into(),
                ));
            }
            let identity = Identity::parse(t.identity.get_ref())
                .map_err(|m| err(t.identity.span(), &format!("target[{i}].identity"), m))?;
            let ctx = cluster::Ctx { text };
            let weight = ctx.int(&t.weight, &format!("target[{i}].weight"), 1..=1000, 1u32)?;
            let capacity = ctx.int(
                &t.capacity,
                &format!("target[{i}].capacity"),
                1..=10_000_000,
                TARGET_CAPACITY_DEFAULT,
            )?;
            // Status and stats print a member's targets as `member-<id>`: a static one
            // of that name would read as the member's.
            let shown_as_member = t
                .name
                .get_ref()
                .strip_prefix("member-")
                .is_some_and(|id| id.parse::<u32>().is_ok());
            if raw.cluster.is_some() && shown_as_member {
                return Err(err(
                    t.name.span(),
                    &format!("target[{i}].name"),
                    "`member-<id>` names are the cluster members' own".into(),
                ));
            }
            targets.push(StaticTarget {
                target: Target {
                    owner,
                    identity,
                    weight,
                },
                capacity,
            });
        }
        let ctx = cluster::Ctx { text };
        // With both, a mixed pool: the static targets beside the reporting members.
        let mut cluster = raw.cluster.map(|c| ctx.cluster(c)).transpose()?;
        let vrrp = raw
            .vrrp
            .into_iter()
            .enumerate()
            .map(|(i, v)| ctx.vrrp(i, v))
            .collect::<Result<Vec<_>, _>>()?;
        let fast: Vec<IpAddr> = vips.iter().map(|v| v.address).collect();
        ctx.cross(&vrrp, &fast)?;
        if let Some(c) = &mut cluster {
            // A member advertising a VIP would send clients back to the balancer.
            c.trust.refused = fast
                .iter()
                .chain(vrrp.iter().flat_map(|v| &v.vips))
                .copied()
                .collect();
        }
        let status = raw
            .status
            .map(|s| ctx.status(s))
            .transpose()?
            .unwrap_or_default();
        let strict_permissions = raw.security.is_some_and(|s| s.strict_permissions);
        let mut files = SecretFiles {
            strict: strict_permissions,
            warnings: Vec::new(),
        };
        let ike = ike::build(text, raw.ike, vip_ike, &mut files)?;
        Ok(Config {
            iface,
            xdp_mode,
            rate_limit,
            forward_encap,
            vips,
            targets,
            cluster,
            vrrp,
            status,
            ike,
            strict_permissions,
            warnings: files.warnings,
        })
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[dataplane]
xdp-mode = "native"

[[vip]]
address = "192.0.2.1"

[[vip]]
address = "2001:db8::1"
redirect = "auth"

[[target]]
name = "gw1"
identity = "198.51.100.11"
weight = 2

[[target]]
name = "gw2"
identity = "2001:db8::12"

[[target]]
name = "gw3"
identity = "gw3.example.net"

[ike]
identity = "vpn.example.net"

[[ike.peer]]
id = "client.example.net"
psk = "a pre-shared key"
"#;

    #[test]
    fn parses_a_full_config() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.xdp_mode, XdpModeCfg::Native);
        assert_eq!(c.vips.len(), 2);
        assert_eq!(c.vips[1].redirect, RedirectMode::Auth);
        assert_eq!(c.targets[0].target.weight, 2);
        assert_eq!(
            c.targets[2].target.identity,
            Identity::Fqdn("gw3.example.net".into())
        );
    }

    fn error_of(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = error_of(
            "[[vip]]\naddress = \"192.0.2.1\"\n[[target]]\nname = \"a\"\nidentity = \"bad_name!\"\n",
        );
        assert!(
            e.contains("line 5") && e.contains("target[0].identity"),
            "{e}"
        );
        let e = error_of("[[vip]]\naddress = \"300.1.1.1\"\n");
        assert!(e.contains("line 2") && e.contains("vip[0].address"), "{e}");
        let e = error_of("[[vip]]\naddress = \"192.0.2.1\"\nbogus = 1\n");
        assert!(e.contains("line 3") && e.contains("bogus"), "{e}");
        let e = error_of("[dataplane]\nxdp-mode = \"fast\"\n[[vip]]\naddress = \"192.0.2.1\"\n");
        assert!(e.contains("line 2") && e.contains("xdp-mode"), "{e}");
        let e = error_of(
            "[[vip]]\naddress = \"192.0.2.1\"\n[[target]]\nname = \"a\"\nidentity = \"1.2.3.4\"\nweight = 0\n",
        );
        assert!(e.contains("line 6") && e.contains("weight"), "{e}");
        assert!(error_of("").contains("no [[vip]]"));
        let e = error_of("[[vip]]\naddress = \"192.0.2.1\"\n[[vip]]\naddress = \"192.0.2.1\"\n");
        assert!(e.contains("twice"), "{e}");
    }
}
