//! Captures the first IKE_SA_INIT request of real clients (strongSwan, libreswan with
//! `accept-redirect=yes`, so both send N(REDIRECT_SUPPORTED)) and writes them as
//! `tests/fixtures/<case>.hex`. Run as root:
//!
//! ```text
//! cargo run -p ikelb-tests --bin capture-fixtures [-- [--out DIR] [CASE...]]
//! ```
//!
//! Each case builds a client and a server namespace joined by a veth pair, turns tx
//! checksum offload off on the client (so captured UDP checksums are complete), starts
//! tcpdump on the server side with nothing answering IKE, lets the client initiate, and
//! keeps the first frame. Every frame must be one the reference parser
//! (`lb_common::wire::request::parse`) would answer, and tshark must see
//! REDIRECT_SUPPORTED in it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ikelb_tests::capture::Capture;
use ikelb_tests::netns::{self, Netns, Veth};
use ikelb_tests::peers::libreswan::{self, ClientConn, Pluto};
use ikelb_tests::peers::strongswan::{Charon, CharonOptions, Conn, swanctl_conf};
use ikelb_tests::peers::{self, PSK};
use ikelb_tests::{cmd, fixtures, tshark};
use lb_common::maps::Vip;
use lb_common::wire::request;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Impl {
    StrongSwan,
    Libreswan,
}

struct Case {
    name: &'static str,
    imp: Impl,
    v6: bool,
    port: u16,
}

const CASES: &[Case] = &[
    Case {
        name: "strongswan_v4_500",
        imp: Impl::StrongSwan,
        v6: false,
        port: 500,
    },
    Case {
        name: "strongswan_v6_500",
        imp: Impl::StrongSwan,
        v6: true,
        port: 500,
    },
    Case {
        name: "strongswan_v4_4500",
        imp: Impl::StrongSwan,
        v6: false,
        port: 4500,
    },
    Case {
        name: "libreswan_v4_500",
        imp: Impl::Libreswan,
        v6: false,
        port: 500,
    },
    Case {
        name: "libreswan_v6_500",
        imp: Impl::Libreswan,
        v6: true,
        port: 500,
    },
    Case {
        name: "libreswan_v4_4500",
        imp: Impl::Libreswan,
        v6: false,
        port: 4500,
    },
];

const CLI_V4: &str = "10.200.9.1";
const SRV_V4: &str = "10.200.9.2";
const CLI_V6: &str = "fd00:200:9::1";
const SRV_V6: &str = "fd00:200:9::2";

fn main() -> Result<()> {
    if !ikelb_tests::is_root() {
        bail!("capture-fixtures needs root (namespaces, tcpdump, IKE daemons)");
    }
    let mut out_dir = fixtures::dir();
    let mut only = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--out" {
            out_dir = PathBuf::from(args.next().context("--out needs a directory")?);
        } else {
            only.push(a);
        }
    }
    netns::remove_stale();
    std::fs::create_dir_all(&out_dir)?;
    let versions = Versions::get()?;
    for case in CASES {
        if !only.is_empty() && !only.iter().any(|o| o == case.name) {
            continue;
        }
        let frame = capture(case).with_context(|| format!("case {}", case.name))?;
        let dst = if case.v6 { SRV_V6 } else { SRV_V4 };
        check(case, &frame, dst)?;
        let client = match case.imp {
            Impl::StrongSwan => format!("strongSwan {} charon", versions.strongswan),
            Impl::Libreswan => format!("libreswan {} pluto", versions.libreswan),
        };
        let how = match (case.imp, case.port) {
            (Impl::StrongSwan, 4500) => " (local_port=remote_port=4500: non-ESP marker)",
            (Impl::Libreswan, 4500) => " (rightikeport=4500: non-ESP marker)",
            (Impl::Libreswan, _) => " (accept-redirect=yes)",
            _ => "",
        };
        let desc = format!(
            "{client}{how}: first IKE_SA_INIT request with N(REDIRECT_SUPPORTED), \
             {} -> {}:{}, {} bytes, full UDP checksum (tx offload off)",
            if case.v6 { CLI_V6 } else { CLI_V4 },
            dst,
            case.port,
            frame.len()
        );
        let path = out_dir.join(format!("{}.hex", case.name));
        std::fs::write(&path, fixtures::format(&desc, &frame))?;
        println!("wrote {} ({} bytes)", path.display(), frame.len());
    }
    Ok(())
}

struct Versions {
    strongswan: String,
    libreswan: String,
}

impl Versions {
    fn get() -> Result<Self> {
        let q = |pkg: &str| {
            cmd::run(&mut cmd::command(
                "dpkg-query",
                ["-W", "-f", "${Version}", pkg],
            ))
            .map(|v| v.trim().to_string())
        };
        // The private root is unpacked from the same version as the installed swanctl.
        Ok(Versions {
            strongswan: q("strongswan-swanctl")?,
            libreswan: q("libreswan")?,
        })
    }
}

/// The reference parser must answer it, and tshark must see the marker notify.
fn check(case: &Case, frame: &[u8], dst: &str) -> Result<()> {
    let vip: std::net::IpAddr = dst.parse()?;
    let mut want = [0u8; 16];
    match vip {
        std::net::IpAddr::V4(a) => want[..4].copy_from_slice(&a.octets()),
        std::net::IpAddr::V6(a) => want.copy_from_slice(&a.octets()),
    }
    let req = request::parse(frame, true, |v6, d| {
        (v6 == case.v6 && *d == want).then_some(Vip::ANY)
    })
    .map_err(|s| anyhow::anyhow!("reference parser does not answer it: {s:?}"))?;
    if req.dport != case.port || req.marker != (case.port == 4500) {
        bail!("captured port {} marker {}", req.dport, req.marker);
    }
    let text = tshark::decode_one(frame)?;
    if !text.contains("REDIRECT_SUPPORTED") || !text.contains("IKE_SA_INIT") {
        bail!("tshark does not show IKE_SA_INIT with REDIRECT_SUPPORTED:\n{text}");
    }
    Ok(())
}

fn capture(case: &Case) -> Result<Vec<u8>> {
    let tag = netns::unique_tag();
    let dir = std::env::temp_dir().join(format!("ikelb-capture-{tag}"));
    std::fs::create_dir_all(&dir)?;
    let res = capture_in(case, &dir);
    if res.is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("capture {}: files kept in {}", case.name, dir.display());
    }
    res
}

fn capture_in(case: &Case, dir: &std::path::Path) -> Result<Vec<u8>> {
    let cli = Netns::new("capcli")?;
    let srv = Netns::new("capsrv")?;
    let _veth = Veth::new(
        &cli,
        "eth0",
        Some("02:00:c8:09:00:01"),
        &srv,
        "eth0",
        Some("02:00:c8:09:00:02"),
    )?;
    for (ns, a4, a6) in [(&cli, CLI_V4, CLI_V6), (&srv, SRV_V4, SRV_V6)] {
        ns.addr_add("eth0", &format!("{a4}/24"))?;
        ns.addr_add("eth0", &format!("{a6}/64"))?;
    }
    cli.addr_add("lo", "10.66.9.1/32")?;
    cli.addr_add("lo", "fd66:9::1/128")?;
    cli.tx_csum_off("eth0")?;
    let mut tcpdump = Capture::start(
        &srv,
        "eth0",
        "udp and (dst port 500 or dst port 4500)",
        Some(1),
        dir,
        "capture",
    )?;
    let (local, remote, inner, service) = if case.v6 {
        (CLI_V6, SRV_V6, "fd66:9::1/128", "fd77::1/128")
    } else {
        (CLI_V4, SRV_V4, "10.66.9.1/32", "10.77.0.1/32")
    };
    // Keep the client alive until tcpdump has its frame.
    let _client: Box<dyn std::any::Any> = match case.imp {
        Impl::StrongSwan => {
            let opts = CharonOptions {
                retransmit_tries: 1,
                ..CharonOptions::default()
            };
            let charon = Charon::start(&cli, "capcli", &dir.join("charon"), &opts)?;
            let port = (case.port == 4500).then_some(4500);
            let conn = Conn {
                name: "vip".into(),
                remote_addrs: remote.into(),
                local_addrs: local.into(),
                local_id: "client.ikelb.test".into(),
                remote_id: "gw.ikelb.test".into(),
                local_port: port,
                remote_port: port,
                child: "svc".into(),
                local_ts: vec![inner.into()],
                remote_ts: vec![service.into()],
                ..Conn::default()
            };
            charon.load(&swanctl_conf(&[conn], PSK))?;
            let _ = charon.initiate("svc", Duration::from_secs(2))?;
            Box::new(charon)
        }
        Impl::Libreswan => {
            let conn = ClientConn {
                name: "vip".into(),
                left: local.into(),
                leftid: "@client.ikelb.test".into(),
                leftsubnet: inner.into(),
                right: remote.into(),
                rightid: "@gw.ikelb.test".into(),
                rightsubnet: service.into(),
                rightikeport: (case.port == 4500).then_some(4500),
                ..ClientConn::default()
            };
            let secrets = libreswan::psk_secret("@client.ikelb.test", "@gw.ikelb.test", peers::PSK);
            let p = Pluto::start(
                &cli,
                "capcli",
                &dir.join("pluto"),
                "",
                &conn.to_conf(),
                &secrets,
            )?;
            let _ = p.initiate("vip", Duration::from_secs(2))?;
            Box::new(p)
        }
    };
    tcpdump.wait_done(Duration::from_secs(10))?;
    let frames = tcpdump.finish()?;
    frames.into_iter().next().context("tcpdump wrote no frame")
}
