//! `ikelb status`: the daemon's state as one JSON document over a local unix socket,
//! and its text form, laid out like Cisco's `show crypto ikev2 cluster`.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::RUN_DIR;

/// The default control socket of a daemon on `iface` (or of a plain member).
pub fn default_socket(iface: Option<&str>, member_id: Option<u32>) -> PathBuf {
    let name = match (iface, member_id) {
        (Some(i), _) => format!("{i}.sock"),
        (None, Some(id)) => format!("member-{id}.sock"),
        (None, None) => "ikelb.sock".into(),
    };
    Path::new(RUN_DIR).join(name)
}

/// Asks the daemon at `socket` for its state.
pub fn query(socket: &Path) -> io::Result<Value> {
    crate::control::call(socket, crate::control::Command::Status)
}

fn s(v: &Value) -> String {
    match v {
        Value::String(x) => x.clone(),
        Value::Null => "-".into(),
        o => o.to_string(),
    }
}

/// The text form of a [`query`] answer.
pub fn render(r: &Value) -> String {
    let mut o = String::new();
    let mut line = |t: String| {
        o.push_str(&t);
        o.push('\n');
    };
    if let Some(c) = r.get("config").filter(|c| !c.is_null()) {
        let last = match c.get("last").filter(|l| !l.is_null()) {
            None => "none".to_string(),
            Some(l) => format!(
                "{} at {} ({})",
                if l["ok"].as_bool() == Some(true) {
                    "applied"
                } else {
                    "refused"
                },
                s(&l["at"]),
                s(&l["message"])
            ),
        };
        line(format!(
            "Config generation {}, last reload: {last}",
            s(&c["generation"])
        ));
    }
    if let Some(c) = r.get("cluster").filter(|c| !c.is_null()) {
        line(format!(
            "Cluster member {} ({}): reports sent {}, accepted {}, probe errors {}",
            s(&c["member_id"]),
            s(&c["transport"]),
            s(&c["sent"]),
            s(&c["accepted"]),
            s(&c["probe_errors"])
        ));
        if let Some(d) = c["dropped"].as_array() {
            let nz: Vec<String> = d
                .iter()
                .filter(|x| x[1].as_u64().unwrap_or(0) > 0)
                .map(|x| format!("{} {}", s(&x[0]), s(&x[1])))
                .collect();
            if !nz.is_empty() {
                line(format!("  dropped reports: {}", nz.join(", ")));
            }
        }
        if let Some(d) = c["drained"].as_array().filter(|d| !d.is_empty()) {
            let ds: Vec<String> = d
                .iter()
                .map(|x| match x[1].as_u64() {
                    Some(left) => format!("{} (deadline in {left} s)", s(&x[0])),
                    None => s(&x[0]),
                })
                .collect();
            line(format!("  drained here: {}", ds.join(", ")));
        }
    }
    if let Some(vs) = r["vrrp"].as_array() {
        for v in vs {
            let state = s(&v["state"]).to_uppercase();
            let master = match (&v["active"], v["state"].as_str()) {
                (a, Some("active")) => format!("{} (this node)", s(a)),
                (a, _) => s(a),
            };
            line(format!(
                "VRRP {} VRID {} {}: {:<7} priority {} interval {} cs  master {}  VIPs {}",
                s(&v["iface"]),
                s(&v["vrid"]),
                s(&v["family"]),
                state,
                s(&v["priority"]),
                s(&v["interval_cs"]),
                master,
                v["vips"]
                    .as_array()
                    .map(|a| a.iter().map(s).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default()
            ));
        }
    }
    if let Some(ms) = r["cluster"]["members"].as_array() {
        line(String::new());
        line(format!(
            "{:<10} {:<28} {:>10} {:>9} {:>9} {:>6} {:>7} {:>6} {:>11} {:>10}",
            "Member",
            "Identity",
            "Active SAs",
            "Capacity",
            "CPU/Mem %",
            "Weight",
            "Share",
            "Slots",
            "Last heard",
            "Redirects"
        ));
        for m in ms {
            let id = format!(
                "{}{}",
                s(&m["id"]),
                if m["local"].as_bool() == Some(true) {
                    "*"
                } else {
                    ""
                }
            );
            let ids = m["identities"]
                .as_array()
                .map(|a| a.iter().map(s).collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            let flags = if m["drain"].as_bool() == Some(true) {
                " drain"
            } else {
                ""
            };
            let system = format!(
                "{}/{}",
                m["cpu_permille"].as_u64().unwrap_or(0) / 10,
                m["memory_permille"].as_u64().unwrap_or(0) / 10
            );
            line(format!(
                "{:<10} {:<28} {:>10} {:>9} {:>9} {:>6} {:>6.1}% {:>6} {:>9}ms {:>10}{flags}",
                id,
                ids,
                s(&m["active_sas"]),
                s(&m["capacity"]),
                system,
                s(&m["weight"]),
                m["share_pct"].as_f64().unwrap_or(0.0),
                s(&m["slots"]),
                s(&m["last_heard_ms"]),
                s(&m["redirects"]),
            ));
        }
        for t in r["cluster"]["statics"].as_array().into_iter().flatten() {
            line(format!(
                "{:<10} {:<28} {:>10} {:>9} {:>9} {:>6} {:>6.1}% {:>6}",
                format!("[{}]", s(&t["name"])),
                s(&t["identity"]),
                "-",
                "-",
                "-",
                "-",
                t["share_pct"].as_f64().unwrap_or(0.0),
                s(&t["slots"]),
            ));
        }
        line("(* this node, [static target])".into());
    }
    if let Some(fp) = r.get("fast_path").filter(|f| !f.is_null()) {
        line(String::new());
        line(format!(
            "Fast path {} (active: {})",
            s(&r["iface"]),
            s(&fp["active"])
        ));
        if let Some(st) = fp["stats"].as_array() {
            for x in st {
                let v = x[1].as_u64().unwrap_or(0);
                let n = s(&x[0]);
                if v != 0 || n == "seen" || n == "redirected" {
                    line(format!("  {n:<28} {v}"));
                }
            }
        }
        if let Some(ts) = fp["targets"].as_array() {
            for t in ts {
                line(format!(
                    "  target {:<12} {:<40} {}",
                    s(&t["name"]),
                    s(&t["identity"]),
                    s(&t["redirects"])
                ));
            }
        }
        if let Some(fw) = fp["forwarded"].as_array().filter(|a| !a.is_empty()) {
            line(format!(
                "  {:<24} {:<12} {:<14} {:>10} {:>12}",
                "Forwarded to VIP", "member", "kind", "packets", "bytes"
            ));
            for x in fw {
                line(format!(
                    "  {:<24} {:<12} {:<14} {:>10} {:>12}",
                    s(&x["vip"]),
                    s(&x["member"]),
                    s(&x["kind"]),
                    s(&x["packets"]),
                    s(&x["bytes"])
                ));
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_roles_members_and_counters() {
        let r = serde_json::json!({
            "iface": "eth1",
            "config": {"generation": 3, "last": {"ok": false, "at": 1700000000,
                       "message": "ikelb.toml: line 4: `target[0].weight`: must be 1..=1000"}},
            "vrrp": [{"iface": "eth1", "vrid": 51, "family": "ipv4", "state": "active",
                      "priority": 200, "interval_cs": 10, "active": "10.0.0.2",
                      "vips": ["10.0.0.100"]}],
            "cluster": {"member_id": 1, "transport": "multicast 239.255.77.1:4790", "sent": 3,
                        "accepted": 5, "probe_errors": 0, "dropped": [["bad_tag", 2]],
                        "drained": [[2, 30], [3, null]],
                        "statics": [{"name": "lancom", "identity": "198.51.100.9",
                                     "share_pct": 37.5, "slots": 384}],
                        "members": [{"id": 1, "local": true, "identities": ["192.0.2.1"],
                                     "active_sas": 4, "capacity": 100, "weight": 1,
                                     "cpu_permille": 305, "memory_permille": 412,
                                     "share_pct": 62.5, "slots": 640, "last_heard_ms": 0,
                                     "redirects": 9, "drain": false}]},
            "fast_path": {"active": true, "stats": [["seen", 10], ["redirected", 9], ["pass_other", 0]],
                          "targets": [{"name": "member-1", "identity": "192.0.2.1", "redirects": 9}],
                          "forwarded": [{"vip": "10.0.0.100", "member": "member-1",
                                         "kind": "esp_in_udp", "packets": 7, "bytes": 980}]}
        });
        let t = render(&r);
        assert!(t.contains("VRID 51 ipv4: ACTIVE"), "{t}");
        assert!(
            t.contains(
                "Config generation 3, last reload: refused at 1700000000 (ikelb.toml: line 4"
            ),
            "{t}"
        );
        assert!(t.contains("drained here: 2 (deadline in 30 s), 3"), "{t}");
        assert!(t.contains("[lancom]") && t.contains("37.5%"), "{t}");
        assert!(t.contains("master 10.0.0.2 (this node)"), "{t}");
        assert!(t.contains("bad_tag 2"), "{t}");
        assert!(t.contains("62.5%"), "{t}");
        assert!(
            t.lines()
                .any(|l| l.starts_with("1*") && l.contains(" 30/41 ") && l.contains("62.5%")),
            "{t}"
        );
        assert!(t.contains("redirected"), "{t}");
        assert!(!t.contains("pass_other"), "{t}");
        assert!(
            t.lines()
                .any(|l| l.contains("10.0.0.100") && l.contains("esp_in_udp") && l.contains("980")),
            "{t}"
        );
        assert_eq!(
            default_socket(Some("eth1"), None),
            Path::new("/run/ikelb/eth1.sock")
        );
    }
}
