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
use tokio::net::TcpListener;

use crate::listen::{self, Limits};
use crate::status::Report;

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

fn gauge_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The exposition text of a status report.
pub fn encode_report(r: &Report) -> String {
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
    for v in &r.vrrp {
        let base = labels(&[
            ("iface", v.iface.clone()),
            ("vrid", v.vrid.to_string()),
            ("family", v.family.clone()),
        ]);
        role.get_or_create(&base)
            .set(i64::from(v.state == "active"));
        for (dir, n) in [("sent", v.sent), ("accepted", v.accepted)] {
            let mut l = base.clone();
            l.push(("direction".into(), dir.into()));
            vrrp_adverts.get_or_create(&l).inc_by(n);
        }
    }
    // The reload state: an alert on a refused reload needs no log scraping.
    let generation = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
    generation.set(gauge_i64(r.config.generation));
    reg.register(
        "config_generation",
        "Configuration generation: 1 at start, +1 per applied reload",
        generation,
    );
    let ok = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
    ok.set(i64::from(r.config.last.as_ref().is_none_or(|l| l.ok)));
    reg.register(
        "config_last_reload_ok",
        "0 when the latest reload was refused (nothing changed), else 1",
        ok,
    );
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
    if let Some(c) = &r.cluster {
        members
            .get_or_create(&Vec::new())
            .set(gauge_i64(c.members.len() as u64));
        for m in &c.members {
            let l = labels(&[("member", m.id.to_string())]);
            let f = &m.figures;
            sas.get_or_create(&l).set(i64::from(f.active_sas));
            cap.get_or_create(&l).set(i64::from(f.capacity));
            share.get_or_create(&l).set(m.share_pct / 100.0);
            cpu.get_or_create(&l)
                .set(f64::from(f.cpu_permille) / 1000.0);
            memory
                .get_or_create(&l)
                .set(f64::from(f.memory_permille) / 1000.0);
            slots.get_or_create(&l).set(i64::from(m.slots));
            redirects.get_or_create(&l).inc_by(m.redirects);
        }
        let outcome = |o: String| labels(&[("outcome", o)]);
        reports
            .get_or_create(&outcome("sent".into()))
            .inc_by(c.sent);
        reports
            .get_or_create(&outcome("accepted".into()))
            .inc_by(c.accepted);
        for (why, n) in &c.dropped {
            reports
                .get_or_create(&outcome(format!("dropped_{why}")))
                .inc_by(*n);
        }
    }
    let fast = Family::<Labels, Counter>::default();
    reg.register("fastpath", "Fast-path counters by reason", fast.clone());
    let fwd_packets = Family::<Labels, Counter>::default();
    let fwd_bytes = Family::<Labels, Counter>::default();
    reg.register(
        "forwarded_packets",
        "Packets forwarded to a member (no-redirect = forward) by VIP and kind",
        fwd_packets.clone(),
    );
    reg.register(
        "forwarded_bytes",
        "Bytes forwarded to a member by VIP and kind",
        fwd_bytes.clone(),
    );
    if let Some(fp) = &r.fast_path {
        for (reason, n) in &fp.stats {
            fast.get_or_create(&labels(&[("reason", reason.clone())]))
                .inc_by(*n);
        }
        for x in &fp.forwarded {
            let l = labels(&[
                ("vip", x.vip.to_string()),
                ("member", x.member.clone()),
                ("kind", x.kind.clone()),
            ]);
            fwd_packets.get_or_create(&l).inc_by(x.packets);
            fwd_bytes.get_or_create(&l).inc_by(x.bytes);
        }
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
    report: impl Fn() -> Report + Send + Sync + 'static,
) {
    let report = std::sync::Arc::new(report);
    listen::serve(listener, limits, move |_uid, req| {
        let report = report.clone();
        async move { scrape(&req, &*report) }
    })
    .await;
}

/// The HTTP answer to one request line.
fn scrape(req: &str, report: &dyn Fn() -> Report) -> Vec<u8> {
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
        let r = crate::status::sample();
        let t = encode_report(&r);
        assert!(
            t.contains("ikelb_vrrp_active{iface=\"eth1\",vrid=\"51\",family=\"ipv4\"} 1"),
            "{t}"
        );
        assert!(t.contains("ikelb_member_active_sas{member=\"1\"} 4"), "{t}");
        assert!(
            t.contains("ikelb_member_share_ratio{member=\"1\"} 0.625"),
            "{t}"
        );
        assert!(
            t.contains("ikelb_member_cpu_ratio{member=\"1\"} 0.305"),
            "{t}"
        );
        assert!(
            t.contains("ikelb_member_memory_ratio{member=\"1\"} 0.412"),
            "{t}"
        );
        assert!(
            t.contains("ikelb_fastpath_total{reason=\"redirected\"} 9"),
            "{t}"
        );
        assert!(t.contains("outcome=\"dropped_bad_tag\""), "{t}");
        assert!(
            t.contains(
                "ikelb_forwarded_bytes_total{vip=\"10.0.0.100\",member=\"member-1\",kind=\"esp_in_udp\"} 980"
            ),
            "{t}"
        );
        assert!(t.contains("ikelb_config_generation 3"), "{t}");
        assert!(t.contains("ikelb_config_last_reload_ok 0"), "{t}");
        assert!(t.ends_with("# EOF\n"), "{t}");
    }
}
