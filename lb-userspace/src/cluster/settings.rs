//! The exchange's settings from the validated configuration.

use super::{Config, Keyring, LocalMember};
use crate::config::ClusterCfg;

/// The exchange's settings from the validated config.
pub fn exchange_config(c: &ClusterCfg) -> Result<Config, super::ClusterError> {
    let keys = Keyring::new(c.send_key, c.keys.iter().cloned())?;
    let mut x = Config::new(c.member_id, keys);
    x.interval = c.interval;
    x.holdtime = c.holdtime;
    x.max_skew = c.max_skew;
    x.trust = c.trust.clone();
    if !c.identities.is_empty() {
        x.local = Some(LocalMember {
            identities: c.identities.clone(),
            figures: c.figures,
        });
    }
    x.validate()?;
    Ok(x)
}
