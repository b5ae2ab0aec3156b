//! The `xfrm = true` SA probe against the kernel: XFRM netlink needs CAP_NET_ADMIN, so
//! this runs here and not among the unit tests. A fresh namespace holds no SA; one SA
//! (an inbound and an outbound state) counts as one.

use lb_userspace::cluster::fetch;
use lb_userspace::config::ProbeCfg;

use crate::esp::{self, Esp};
use crate::netns::Netns;

fn state(ns: &Netns, src: &str, dst: &str, spi: &str) {
    ns.ip(&[
        "xfrm",
        "state",
        "add",
        "src",
        src,
        "dst",
        dst,
        "proto",
        "esp",
        "spi",
        spi,
        "mode",
        "tunnel",
        "enc",
        "cbc(aes)",
        "0x00112233445566778899aabbccddeeff",
        "auth",
        "hmac(sha256)",
        "0x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    ])
    .expect("ip xfrm state add");
}

fn count(ns: &Netns) -> u32 {
    ns.within(|| {
        fetch::probe(&ProbeCfg::Xfrm)
            .active_sas()
            .map_err(|e| anyhow::anyhow!("{e}"))
    })
    .expect("XFRM_MSG_GETSADINFO answered and parsed")
}

#[test]
fn xfrm_probe_counts_the_kernels_sas() {
    crate::require_root!();
    let ns = Netns::new("xfrm").expect("netns");
    assert_eq!(count(&ns), 0, "a fresh namespace holds no SA");
    if esp::probe().expect("ESP probe") == Esp::Missing {
        eprintln!("no ESP in this kernel: only the empty count was checked");
        return;
    }
    state(&ns, "10.200.1.1", "10.200.1.2", "0x2001");
    state(&ns, "10.200.1.2", "10.200.1.1", "0x2002");
    assert_eq!(count(&ns), 1);
}
