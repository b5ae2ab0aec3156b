//! The status report as types: what the daemon serializes on the control socket, what
//! `ikelb status` renders and `/metrics` encodes. One definition, so a field renamed in
//! the daemon cannot silently vanish from the text or the metrics.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::cluster::io::Status as ClusterStatus;
use crate::dataplane::forward::FwdRow;
use crate::vrrp::io::Status as VrrpStatus;

/// The whole report (`ikelb status --json` prints it as it comes).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// The interface of the fast path; `None` for a plain member.
    pub iface: Option<String>,
    pub config: ReloadState,
    pub vrrp: Vec<VrrpStatus>,
    pub cluster: Option<ClusterStatus>,
    pub fast_path: Option<FastPath>,
}

/// The outcome of the latest reload.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReloadState {
    /// Starts at 1 with the configuration read at startup; +1 per applied reload.
    pub generation: u64,
    /// `None` before the first reload.
    pub last: Option<LastReload>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LastReload {
    pub ok: bool,
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// What changed, or why nothing did.
    pub message: String,
}

/// The XDP program's side: its counters, read from the pinned maps.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FastPath {
    /// Whether it answers (VRRP Active, or no VRRP).
    pub active: bool,
    /// Why the counters could not be read (then the lists are empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `(name, value)` of every outcome counter, in index order.
    #[serde(default)]
    pub stats: Vec<(String, u64)>,
    #[serde(default)]
    pub targets: Vec<TargetRow>,
    /// Non-zero forwarded counters (`no-redirect = "forward"`).
    #[serde(default)]
    pub forwarded: Vec<FwdRow>,
    /// Why the forwarded counters could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_error: Option<String>,
}

/// One redirect target of the slot tables.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetRow {
    pub index: u16,
    pub name: String,
    pub identity: String,
    pub redirects: u64,
}

/// Addresses print as they parse back.
pub fn addr_text(a: Option<IpAddr>) -> String {
    a.map_or_else(|| "-".into(), |a| a.to_string())
}

/// A report with every part filled, for the renderers' tests.
#[cfg(test)]
pub fn sample() -> Report {
    serde_json::from_value(serde_json::json!({
        "iface": "eth1",
        "config": {"generation": 3, "last": {"ok": false, "at": 1700000000,
                   "message": "ikelb.toml: line 4: `target[0].weight`: must be 1..=1000"}},
        "vrrp": [{"iface": "eth1", "vrid": 51, "family": "ipv4", "state": "active",
                  "priority": 200, "interval_cs": 10, "primary": "10.0.0.2",
                  "active": "10.0.0.2", "vips": ["10.0.0.100"], "accepted": 1, "sent": 3,
                  "became_active": 1, "dropped": [["bad_ttl", 0]]}],
        "cluster": {"member_id": 1, "transport": "multicast 239.255.77.1:4790", "sent": 3,
                    "accepted": 5, "probe_errors": 0, "dropped": [["bad_tag", 2]],
                    "held_out": [], "installs": 2,
                    "drained": [[2, 30], [3, null]],
                    "migration": {"state": "running", "total": 12, "migrated": 5,
                                  "failed": 1, "ended": 0, "remaining": 6, "in_flight": 2,
                                  "skipped": 0, "waiting": false, "batches": 2,
                                  "targets": {"2": 3, "3": 2}, "batch": 3,
                                  "interval_ms": 1000},
                    "statics": [{"name": "lancom", "identity": "198.51.100.9",
                                 "share_pct": 37.5, "slots": 384}],
                    "members": [{"id": 1, "local": true, "addr": null,
                                 "identities": ["192.0.2.1"], "active_sas": 4,
                                 "capacity": 100, "weight": 1, "cpu_permille": 305,
                                 "memory_permille": 412, "crypto_overload_pct": 90,
                                 "system_overload_pct": 100, "crypto_load_weight": 100,
                                 "system_load_weight": 50, "drain": false, "share_pct": 62.5,
                                 "slots": 640, "last_heard_ms": 0, "redirects": 9}]},
        "fast_path": {"active": true,
                      "stats": [["seen", 10], ["redirected", 9], ["pass_other", 0]],
                      "targets": [{"index": 0, "name": "member-1", "identity": "192.0.2.1",
                                   "redirects": 9}],
                      "forwarded": [{"vip": "10.0.0.100", "member": "member-1",
                                     "kind": "esp_in_udp", "packets": 7, "bytes": 980}]}
    }))
    .expect("the sample is a report")
}
