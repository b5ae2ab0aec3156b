//! `ikelb status`: the daemon's state as one JSON document over a local unix socket,
//! and its text form, laid out like Cisco's `show crypto ikev2 cluster`.

use std::io;
use std::path::{Path, PathBuf};

mod report;

#[cfg(test)]
pub use report::sample;
pub use report::{FastPath, LastReload, ReloadState, Report, TargetRow};

use crate::config::RUN_DIR;
use report::addr_text;

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
pub fn query(socket: &Path) -> io::Result<Report> {
    let v = crate::control::call(socket, crate::control::Command::Status)?;
    serde_json::from_value(v).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a status report this build cannot read: {e}"),
        )
    })
}

/// The text form of a [`query`] answer.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let mut line = |t: String| {
        o.push_str(&t);
        o.push('\n');
    };
    let c = &r.config;
    let last = match &c.last {
        None => "none".to_string(),
        Some(l) => format!(
            "{} at {} ({})",
            if l.ok { "applied" } else { "refused" },
            l.at,
            l.message
        ),
    };
    line(format!(
        "Config generation {}, last reload: {last}",
        c.generation
    ));
    if let Some(c) = &r.cluster {
        line(format!(
            "Cluster member {} ({}): reports sent {}, accepted {}, probe errors {}",
            c.member_id, c.transport, c.sent, c.accepted, c.probe_errors
        ));
        let nz: Vec<String> = c
            .dropped
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(why, n)| format!("{why} {n}"))
            .collect();
        if !nz.is_empty() {
            line(format!("  dropped reports: {}", nz.join(", ")));
        }
        if !c.drained.is_empty() {
            let ds: Vec<String> = c
                .drained
                .iter()
                .map(|(id, left)| match left {
                    Some(left) => format!("{id} (deadline in {left} s)"),
                    None => id.to_string(),
                })
                .collect();
            line(format!("  drained here: {}", ds.join(", ")));
        }
        if let Some(p) = &c.migration {
            line(format!("  {}", p.summary()));
        }
    }
    for v in &r.vrrp {
        let master = match v.state.as_str() {
            "active" => format!("{} (this node)", addr_text(v.active)),
            _ => addr_text(v.active),
        };
        let vips: Vec<String> = v.vips.iter().map(ToString::to_string).collect();
        line(format!(
            "VRRP {} VRID {} {}: {:<7} priority {} interval {} cs  master {}  VIPs {}",
            v.iface,
            v.vrid,
            v.family,
            v.state.to_uppercase(),
            v.priority,
            v.interval_cs,
            master,
            vips.join(" ")
        ));
    }
    if let Some(c) = &r.cluster {
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
        for m in &c.members {
            let id = format!("{}{}", m.id, if m.local { "*" } else { "" });
            let f = &m.figures;
            let flags = if f.drain { " drain" } else { "" };
            let system = format!("{}/{}", f.cpu_permille / 10, f.memory_permille / 10);
            line(format!(
                "{:<10} {:<28} {:>10} {:>9} {:>9} {:>6} {:>6.1}% {:>6} {:>9}ms {:>10}{flags}",
                id,
                m.identities.join(","),
                f.active_sas,
                f.capacity,
                system,
                f.weight,
                m.share_pct,
                m.slots,
                m.last_heard_ms,
                m.redirects,
            ));
        }
        for t in &c.statics {
            line(format!(
                "{:<10} {:<28} {:>10} {:>9} {:>9} {:>6} {:>6.1}% {:>6}",
                format!("[{}]", t.name),
                t.identity,
                "-",
                "-",
                "-",
                "-",
                t.share_pct,
                t.slots,
            ));
        }
        line("(* this node, [static target])".into());
    }
    if let Some(fp) = &r.fast_path {
        line(String::new());
        line(format!(
            "Fast path {} (active: {})",
            r.iface.as_deref().unwrap_or("-"),
            fp.active
        ));
        if let Some(e) = &fp.error {
            line(format!("  counters unreadable: {e}"));
        }
        for (n, v) in &fp.stats {
            if *v != 0 || n == "seen" || n == "redirected" {
                line(format!("  {n:<28} {v}"));
            }
        }
        for t in &fp.targets {
            line(format!(
                "  target {:<12} {:<40} {}",
                t.name, t.identity, t.redirects
            ));
        }
        if let Some(e) = &fp.forwarded_error {
            line(format!("  forwarded counters unreadable: {e}"));
        }
        if !fp.forwarded.is_empty() {
            line(format!(
                "  {:<24} {:<12} {:<14} {:>10} {:>12}",
                "Forwarded to VIP", "member", "kind", "packets", "bytes"
            ));
            for x in &fp.forwarded {
                line(format!(
                    "  {:<24} {:<12} {:<14} {:>10} {:>12}",
                    x.vip.to_string(),
                    x.member,
                    x.kind,
                    x.packets,
                    x.bytes
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
        let r = report::sample();
        // What the daemon sends is what the CLI reads back, field for field.
        let back: Report = serde_json::from_value(serde_json::to_value(&r).expect("serialize"))
            .expect("deserialize");
        assert_eq!(render(&back), render(&r));
        let t = render(&r);
        assert!(t.contains("VRID 51 ipv4: ACTIVE"), "{t}");
        assert!(
            t.contains(
                "Config generation 3, last reload: refused at 1700000000 (ikelb.toml: line 4"
            ),
            "{t}"
        );
        assert!(t.contains("drained here: 2 (deadline in 30 s), 3"), "{t}");
        assert!(
            t.contains(
                "migration running: 5 of 12 migrated, 1 failed, 0 ended, 6 remaining \
                 (2 in flight), 0 skipped; batches of 3 every 1000 ms; redirected to \
                 member 2: 3, member 3: 2"
            ),
            "{t}"
        );
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
