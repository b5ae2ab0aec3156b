//! Prometheus `/metrics`: role, members, loads, shares and fast-path counters, encoded
//! with `prometheus-client` from the same report `ikelb status` prints, and served over
//! a minimal HTTP/1.0 listener (loopback unless configured otherwise) under the
//! [`crate::listen`] limits.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::listen::{self, Limits};

type Labels = Vec<(String, String)>;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn txt(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        o => o.to_string(),
    }
}

/// The exposition text of a status report.
pub fn encode_report(r: &Value) -> String {
    let mut reg = Registry::with_prefix("ikelb");
    let role = Family::<Labels, Gauge>::default();
    let vrrp_adverts = Family::<Labels, Counter>::default();
    reg.register(
        "vrrp_active",
        "1 when this node is the VRRP Active for the VRID",
        role.clone(),
    );
    reg.register(
        "vrrp_adverts",
        "VRRP adverts by direction",
        vrrp_adverts.clone(),
    );
    for v in r["vrrp"].as_array().into_iter().flatten() {
        let base = vec![
            ("iface".to_string(), txt(&v["iface"])),
            ("vrid".to_string(), txt(&v["vrid"])),
            ("family".to_string(), txt(&v["family"])),
        ];
        role.get_or_create(&base)
            .set(i64::from(v["state"].as_str() == Some("active")));
        for (dir, key) in [("sent", "sent"), ("accepted", "accepted")] {
            let mut l = base.clone();
            l.push(("direction".into(), dir.into()));
            vrrp_adverts.get_or_create(&l).inc_by(u(&v[key]));
        }
    }
    // The reload state: an alert on a refused reload needs no log scraping.
    if let Some(c) = r.get("config").filter(|c| !c.is_null()) {
        let generation = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        generation.set(i64::try_from(u(&c["generation"])).unwrap_or(i64::MAX));
        reg.register(
            "config_generation",
            "Configuration generation: 1 at start, +1 per applied reload",
            generation,
        );
        let ok = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        ok.set(i64::from(c["last"]["ok"].as_bool() != Some(false)));
        reg.register(
            "config_last_reload_ok",
            "0 when the latest reload was refused (nothing changed), else 1",
            ok,
        );
    }
    let members = Family::<Labels, Gauge>::default();
    let sas = Family::<Labels, Gauge>::default();
    let cap = Family::<Labels, Gauge>::default();
    let share = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    let cpu = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    let memory = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    let slots = Family::<Labels, Gauge>::default();
    let redirects = Family::<Labels, Counter>::default();
    let reports = Family::<Labels, Counter>::default();
    reg.register("cluster_members", "Members in the table", members.clone());
    reg.register(
        "member_active_sas",
        "Active IKE SAs a member reports",
        sas.clone(),
    );
    reg.register("member_capacity", "SAs a member is sized for", cap.clone());
    reg.register("member_cpu_ratio", "CPU load a member reports", cpu.clone());
    reg.register(
        "member_memory_ratio",
        "Memory in use a member reports",
        memory.clone(),
    );
    reg.register(
        "member_share_ratio",
        "Share of the slot table",
        share.clone(),
    );
    reg.register("member_slots", "Slots of the slot table", slots.clone());
    reg.register(
        "member_redirects",
        "Redirects the fast path sent to a member",
        redirects.clone(),
    );
    reg.register(
        "cluster_reports",
        "Load reports by outcome",
        reports.clone(),
    );
    let c = &r["cluster"];
    if !c.is_null() {
        let ms = c["members"].as_array().cloned().unwrap_or_default();
        members
            .get_or_create(&Vec::new())
            .set(i64::try_from(ms.len()).unwrap_or(i64::MAX));
        for m in &ms {
            let l = vec![("member".to_string(), txt(&m["id"]))];
            sas.get_or_create(&l)
                .set(i64::try_from(u(&m["active_sas"])).unwrap_or(0));
            cap.get_or_create(&l)
                .set(i64::try_from(u(&m["capacity"])).unwrap_or(0));
            share
                .get_or_create(&l)
                .set(m["share_pct"].as_f64().unwrap_or(0.0) / 100.0);
            cpu.get_or_create(&l)
                .set(m["cpu_permille"].as_f64().unwrap_or(0.0) / 1000.0);
            memory
                .get_or_create(&l)
                .set(m["memory_permille"].as_f64().unwrap_or(0.0) / 1000.0);
            slots
                .get_or_create(&l)
                .set(i64::try_from(u(&m["slots"])).unwrap_or(0));
            redirects.get_or_create(&l).inc_by(u(&m["redirects"]));
        }
        reports
            .get_or_create(&vec![("outcome".into(), "sent".into())])
            .inc_by(u(&c["sent"]));
        reports
            .get_or_create(&vec![("outcome".into(), "accepted".into())])
            .inc_by(u(&c["accepted"]));
        for d in c["dropped"].as_array().into_iter().flatten() {
            reports
                .get_or_create(&vec![("outcome".into(), format!("dropped_{}", txt(&d[0])))])
                .inc_by(u(&d[1]));
        }
    }
    let fast = Family::<Labels, Counter>::default();
    reg.register("fastpath", "Fast-path counters by reason", fast.clone());
    for x in r["fast_path"]["stats"].as_array().into_iter().flatten() {
        fast.get_or_create(&vec![("reason".into(), txt(&x[0]))])
            .inc_by(u(&x[1]));
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}

/// Serves `GET /metrics` on `listener`, each scrape from a fresh `report()`.
pub async fn serve(
    listener: TcpListener,
    limits: Limits,
    report: impl Fn() -> Value + Send + Sync + 'static,
) {
    let report = std::sync::Arc::new(report);
    listen::serve(listener, limits, move |_uid, req| {
        let report = report.clone();
        async move { scrape(&req, &*report) }
    })
    .await;
}

/// The HTTP answer to one request line.
fn scrape(req: &str, report: &dyn Fn() -> Value) -> Vec<u8> {
    let (code, body) = if req.starts_with("GET /metrics") {
        ("200 OK", encode_report(&report()))
    } else {
        ("404 Not Found", "try /metrics\n".to_string())
    };
    format!(
        "HTTP/1.0 {code}\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_becomes_metrics() {
        let r = serde_json::json!({
            "config": {"generation": 4, "last": {"ok": false, "at": 1, "message": "line 3"}},
            "vrrp": [{"iface": "eth1", "vrid": 51, "family": "ipv4", "state": "active", "sent": 3, "accepted": 1}],
            "cluster": {"sent": 2, "accepted": 4, "dropped": [["bad_tag", 1]],
                        "members": [{"id": 2, "active_sas": 7, "capacity": 100, "share_pct": 25.0, "slots": 256, "redirects": 5,
                                     "cpu_permille": 250, "memory_permille": 500}]},
            "fast_path": {"stats": [["redirected", 9]]}
        });
        let t = encode_report(&r);
        assert!(
            t.contains("ikelb_vrrp_active{iface=\"eth1\",vrid=\"51\",family=\"ipv4\"} 1"),
            "{t}"
        );
        assert!(t.contains("ikelb_member_active_sas{member=\"2\"} 7"), "{t}");
        assert!(
            t.contains("ikelb_member_cpu_ratio{member=\"2\"} 0.25"),
            "{t}"
        );
        assert!(
            t.contains("ikelb_member_memory_ratio{member=\"2\"} 0.5"),
            "{t}"
        );
        assert!(
            t.contains("ikelb_member_share_ratio{member=\"2\"} 0.25"),
            "{t}"
        );
        assert!(
            t.contains("ikelb_fastpath_total{reason=\"redirected\"} 9"),
            "{t}"
        );
        assert!(t.contains("outcome=\"dropped_bad_tag\""), "{t}");
        assert!(t.contains("ikelb_config_generation 4"), "{t}");
        assert!(t.contains("ikelb_config_last_reload_ok 0"), "{t}");
        assert!(t.ends_with("# EOF\n"), "{t}");
    }
}
