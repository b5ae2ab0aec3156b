//! Human-readable views of a lab run: where each client landed, and the counters on one
//! line (for `ikelb-lab`, the binary behind `cargo xtask lab`).

use super::connect::ClientResult;
use super::spec::{ClientKind, Family};
use crate::esp::Esp;

/// What the "ping" column says for a libreswan client when the kernel has no ESP.
pub const LIBRESWAN_NO_ESP: &str = "ESP missing on this kernel (expected for libreswan)";

fn kind_str(k: ClientKind) -> &'static str {
    match k {
        ClientKind::StrongSwan => "strongSwan",
        ClientKind::Libreswan => "libreswan",
    }
}

fn family_str(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The last column: the data path through the tunnel.
fn ping_str(r: &ClientResult, esp: Esp) -> String {
    match (r.ping, r.kind) {
        (Some(true), _) => "ok".into(),
        (Some(false), _) => "FAILED".into(),
        (None, ClientKind::Libreswan) if r.esp_install_failed && esp == Esp::Missing => {
            LIBRESWAN_NO_ESP.into()
        }
        (None, ClientKind::Libreswan) if r.esp_install_failed => {
            "ESP install failed on a kernel with ESP".into()
        }
        (None, ClientKind::Libreswan) => "not tried (libreswan)".into(),
        (None, ClientKind::StrongSwan) => "no tunnel".into(),
    }
}

/// One row per client: kind, family, port, landed on, redirect seen by client/member,
/// CHILD_SA up on the member, ping through the tunnel; a `!` marks rows whose
/// [`ClientResult::verdict`] failed.
pub fn results_table(results: &[ClientResult], esp: Esp) -> String {
    let header = [
        "client",
        "kind",
        "family",
        "port",
        "landed on",
        "redirect client/member",
        "CHILD",
        "ping through the tunnel",
    ];
    let rows: Vec<[String; 8]> = results
        .iter()
        .map(|r| {
            [
                format!(
                    "{}{}",
                    if r.verdict(esp).is_ok() { " " } else { "!" },
                    r.name
                ),
                kind_str(r.kind).into(),
                family_str(r.family).into(),
                r.port.to_string(),
                r.landed_on.clone().unwrap_or_else(|| "-".into()),
                format!(
                    "{}/{}",
                    yes_no(r.client_followed_redirect),
                    yes_no(r.member_saw_redirect)
                ),
                if r.member_child_up { "up" } else { "-" }.into(),
                ping_str(r, esp),
            ]
        })
        .collect();
    let mut h = header.map(String::from);
    h[0] = format!(" {}", h[0]);
    let mut width = h.each_ref().map(String::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[&str]| -> String {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&h.iter().map(String::as_str).collect::<Vec<_>>());
    for row in &rows {
        out.push_str(&line(&row.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    out
}

/// `ikelb stats --json` on one line: `seen`, `redirected`, then every other non-zero
/// counter, then redirects per target (`name=n`).
pub fn stats_line(stats: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    for key in ["seen", "redirected"] {
        parts.push(format!("{key}={}", stats[key].as_u64().unwrap_or(0)));
    }
    if let Some(obj) = stats.as_object() {
        for (k, v) in obj {
            if matches!(k.as_str(), "seen" | "redirected") {
                continue;
            }
            if let Some(n) = v.as_u64().filter(|n| *n != 0) {
                parts.push(format!("{k}={n}"));
            }
        }
    }
    let mut s = parts.join(" ");
    if let Some(targets) = stats["targets"].as_array() {
        let t: Vec<String> = targets
            .iter()
            .map(|t| {
                format!(
                    "{}={}",
                    t["name"].as_str().unwrap_or("?"),
                    t["redirects"].as_u64().unwrap_or(0)
                )
            })
            .collect();
        if !t.is_empty() {
            s.push_str(" | per target: ");
            s.push_str(&t.join(" "));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, kind: ClientKind, landed: bool) -> ClientResult {
        ClientResult {
            name: name.into(),
            kind,
            family: Family::V6,
            port: 500,
            landed_on: landed.then(|| "gw1".into()),
            client_followed_redirect: landed,
            member_saw_redirect: landed,
            member_child_up: landed,
            initiate_ok: landed && kind == ClientKind::StrongSwan,
            ping: (landed && kind == ClientKind::StrongSwan).then_some(true),
            esp_install_failed: landed && kind == ClientKind::Libreswan,
            client_log: String::new(),
        }
    }

    #[test]
    fn table_rows() {
        let t = results_table(
            &[
                result("sw6", ClientKind::StrongSwan, true),
                result("ls6", ClientKind::Libreswan, true),
                result("sw4x", ClientKind::StrongSwan, false),
            ],
            Esp::Missing,
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[0].starts_with(" client"), "{t}");
        assert!(
            lines[1].starts_with(" sw6 ") && lines[1].contains("gw1"),
            "{t}"
        );
        assert!(
            lines[1].contains("yes/yes") && lines[1].contains(" up "),
            "{t}"
        );
        assert!(lines[2].ends_with(LIBRESWAN_NO_ESP), "{t}");
        assert!(
            lines[3].starts_with("!sw4x") && lines[3].ends_with("no tunnel"),
            "{t}"
        );
        // Columns line up.
        let at = lines[0].find("landed on").expect("column");
        assert!(
            lines
                .iter()
                .skip(1)
                .all(|l| l[at..].starts_with("gw1") || l[at..].starts_with('-')),
            "{t}"
        );
    }

    #[test]
    fn one_line_stats() {
        let v = serde_json::json!({
            "drop_truncated": 0, "pass_not_vip": 24, "redirected": 5, "seen": 35,
            "targets": [{"name": "gw1", "identity": "10.200.0.11", "redirects": 5}]
        });
        assert_eq!(
            stats_line(&v),
            "seen=35 redirected=5 pass_not_vip=24 | per target: gw1=5"
        );
    }
}
