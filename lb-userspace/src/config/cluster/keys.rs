//! `[[cluster.key]]`, `[[cluster.member]]` and `identity-prefixes`: the secrets reports
//! are signed with and who may use them.

use std::net::IpAddr;

use lb_common::wire::load::KEY_MIN_LEN;
use toml::Spanned;

use super::{ConfigError, Ctx, RawCluster};
use crate::cluster::Trust;

/// What [`Ctx::keys`] reads: (id, secret) pairs, the id reports are sent under, and
/// the trust rules.
pub(super) struct Keys {
    pub(super) keys: Vec<(u16, Vec<u8>)>,
    pub(super) send_key: u16,
    pub(super) trust: Trust,
}

impl Ctx<'_> {
    /// The keys, the send key and the trust rules of a `[cluster]` section.
    pub(super) fn keys(&self, c: &RawCluster) -> Result<Keys, ConfigError> {
        if c.key.is_empty() {
            return Err(ConfigError(
                "[cluster] needs at least one [[cluster.key]]".into(),
            ));
        }
        let mut keys: Vec<(u16, Vec<u8>)> = Vec::new();
        let mut trust = Trust::default();
        for (i, k) in c.key.iter().enumerate() {
            let id: u16 = self.int(
                &Some(k.id.clone()),
                &format!("cluster.key[{i}].id"),
                0..=0xffff,
                0,
            )?;
            if keys.iter().any(|(x, _)| *x == id) {
                return Err(self.err(k.id.span(), &format!("cluster.key[{i}].id"), "listed twice"));
            }
            let secret = match (&k.secret, &k.secret_file) {
                (Some(s), None) => s.get_ref().as_bytes().to_vec(),
                (None, Some(f)) => {
                    let mut b = std::fs::read(f.get_ref()).map_err(|e| {
                        self.err(
                            f.span(),
                            &format!("cluster.key[{i}].secret-file"),
                            e.to_string(),
                        )
                    })?;
                    while b.last().is_some_and(u8::is_ascii_whitespace) {
                        b.pop();
                    }
                    b
                }
                _ => {
                    return Err(self.err(
                        k.id.span(),
                        &format!("cluster.key[{i}]"),
                        "give exactly one of `secret` and `secret-file`",
                    ));
                }
            };
            if secret.len() < KEY_MIN_LEN {
                let span = k
                    .secret
                    .as_ref()
                    .or(k.secret_file.as_ref())
                    .map_or(k.id.span(), Spanned::span);
                return Err(self.err(
                    span,
                    &format!("cluster.key[{i}]"),
                    format!("a secret has at least {} bytes", KEY_MIN_LEN),
                ));
            }
            keys.push((id, secret));
            if let Some(ms) = &k.members {
                let key = format!("cluster.key[{i}].members");
                let ids = ms
                    .get_ref()
                    .iter()
                    .map(|&m| {
                        u32::try_from(m).map_err(|_| self.err(ms.span(), &key, "out of range"))
                    })
                    .collect::<Result<Vec<u32>, _>>()?;
                if ids.is_empty() {
                    return Err(self.err(ms.span(), &key, "name at least one member id"));
                }
                trust.key_members.insert(id, ids);
            }
        }
        for (i, m) in c.member.iter().enumerate() {
            let key = format!("cluster.member[{i}]");
            let id: u32 = self.int(
                &Some(m.id.clone()),
                &format!("{key}.id"),
                0..=0xffff_ffff,
                0,
            )?;
            if trust.sources.contains_key(&id) {
                return Err(self.err(m.id.span(), &format!("{key}.id"), "listed twice"));
            }
            let sources = self.addrs(&m.sources, &format!("{key}.sources"))?;
            if sources.is_empty() {
                return Err(self.err(
                    m.sources.span(),
                    &format!("{key}.sources"),
                    "name at least one address",
                ));
            }
            trust.sources.insert(id, sources);
        }
        if let Some(ps) = &c.identity_prefixes {
            for p in ps.get_ref() {
                let bad = || {
                    self.err(
                        ps.span(),
                        "cluster.identity-prefixes",
                        format!("`{p}` is not a prefix like 198.51.100.0/24"),
                    )
                };
                let (a, l) = p.split_once('/').ok_or_else(bad)?;
                let a: IpAddr = a.parse().map_err(|_| bad())?;
                let l: u8 = l.parse().map_err(|_| bad())?;
                if l > if a.is_ipv4() { 32 } else { 128 } {
                    return Err(bad());
                }
                trust.identity_prefixes.push((a, l));
            }
        }
        let send_key = match &c.send_key {
            None => keys[0].0,
            Some(s) => {
                let id: u16 = self.int(&Some(s.clone()), "cluster.send-key", 0..=0xffff, 0)?;
                if !keys.iter().any(|(x, _)| *x == id) {
                    return Err(self.err(s.span(), "cluster.send-key", "not among the keys"));
                }
                id
            }
        };
        Ok(Keys {
            keys,
            send_key,
            trust,
        })
    }
}
