//! The packaged daemons with exactly their units' privileges: the command lines of
//! ExecStart and ExecReload (packaged paths inside the unpacked tree, `%I` set) run
//! under `setpriv` with the unit's CapabilityBoundingSet and no new privileges, which
//! is what systemd gives a root service. `ikelb@<iface>` (XDP, VRRP, the cluster over
//! XFRM, the IKE ports, a control socket given to a group) must answer real requests
//! and reload; `ikelb-member` (XFRM load, socket group) must report and reload. The
//! node logs to a stream that JOURNAL_STREAM names, as under systemd: no timestamps
//! and no colour codes; the member, without it, stamps its lines.
//!
//! Root only; the package as in `package`.

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::ops_net::{need_root, stream, tally};
use super::package::{Unpacked, deb, need_tool, unit_values};
use crate::cmd::{self, wait_for};
use crate::daemon::Daemon;
use crate::netns::{Netns, Veth, unique_tag};

const VIP: &str = "10.98.0.100";
const NODE_ID: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 21));
const MEMBER_ID: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 22));
const KEY: &str = "the package test's cluster key.";

/// setpriv's `--bounding-set` for the unit's CapabilityBoundingSet.
fn bounding_set(unit: &str) -> Result<String> {
    let caps: Vec<String> = unit_values(unit, "CapabilityBoundingSet")
        .iter()
        .flat_map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .map(|c| {
            c.strip_prefix("CAP_")
                .map(|n| format!("+{}", n.to_lowercase()))
                .with_context(|| format!("capability {c}"))
        })
        .collect::<Result<_>>()?;
    if caps.is_empty() {
        bail!("the unit sets no CapabilityBoundingSet");
    }
    Ok(format!("-all,{}", caps.join(",")))
}

/// A command line of the unit, confined as systemd would, in `ns`.
fn confined(
    u: &Unpacked,
    ns: &Netns,
    unit: &str,
    key: &str,
    iface: &str,
    pid: Option<u32>,
) -> Result<Command> {
    let [line] = &unit_values(unit, key)[..] else {
        bail!("the unit has not exactly one {key}");
    };
    let argv: Vec<String> = line
        .split_whitespace()
        .map(|t| {
            let t = t
                .replace("%I", iface)
                .replace("$MAINPID", &pid.unwrap_or(0).to_string());
            if t.starts_with("/usr/sbin/") || t.starts_with("/etc/ikelb/") {
                u.at(&t).to_string_lossy().into_owned()
            } else {
                t
            }
        })
        .collect();
    let mut c = ns.nsenter("setpriv");
    c.args(["--no-new-privs", "--inh-caps=-all"])
        .arg(format!("--bounding-set={}", bounding_set(unit)?))
        .arg("--")
        .args(argv)
        .env("RUST_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NO_COLOR");
    Ok(c)
}

fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

fn cluster_part(id: u32, identity: IpAddr) -> String {
    format!(
        "[cluster]\nmember-id = {id}\nidentities = [\"{identity}\"]\nxfrm = true\n\
         capacity = 100\ncrypto-overload-pct = 1000\ninterval-ms = 100\n\n\
         [[cluster.key]]\nid = 1\nsecret = \"{KEY}\"\n\n"
    )
}

/// Log lines that are warnings or errors.
fn complaints(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(" WARN ") || l.contains("ERROR"))
        .collect()
}

#[test]
fn packaged_daemons_run_with_their_units_capabilities() {
    need_root();
    need_tool("setpriv", "util-linux");
    need_tool("dpkg-deb", "dpkg");
    let u = Unpacked::new(&deb()).unwrap();
    let node_unit = u.unit("ikelb@.service").unwrap();
    let member_unit = u.unit("ikelb-member.service").unwrap();
    let tag = unique_tag();
    let node_ns = Netns::new("pkg-node").unwrap();
    let member_ns = Netns::new("pkg-memb").unwrap();
    let (iface, peer) = (format!("pk{tag}n"), format!("pk{tag}m"));
    let _veth = Veth::new(&node_ns, &iface, None, &member_ns, &peer, None).unwrap();
    node_ns.addr_add(&iface, "10.98.0.2/24").unwrap();
    member_ns.addr_add(&peer, "10.98.0.3/24").unwrap();
    // The member's namespace also sends the requests: full UDP checksums on the wire.
    member_ns.tx_csum_off(&peer).unwrap();

    // The configurations where the units look for them.
    write_private(
        &u.at(&format!("/etc/ikelb/{iface}.toml")),
        &format!(
            "[dataplane]\nxdp-mode = \"skb\"\nrate-per-source = 1000000\n\n\
             [[vip]]\naddress = \"{VIP}\"\n\n[[vrrp]]\nvrid = 61\npriority = 200\n\
             interval-cs = 10\nvips = [\"{VIP}\"]\n\n{}[status]\ngroup = \"nogroup\"\n",
            cluster_part(1, NODE_ID)
        ),
    )
    .unwrap();
    let member_sock = u.dir.file("member.sock");
    write_private(
        &u.at("/etc/ikelb/member.toml"),
        &format!(
            "[dataplane]\niface = \"{peer}\"\n\n{}[status]\nsocket = \"{}\"\n\
             group = \"nogroup\"\n",
            cluster_part(2, MEMBER_ID),
            member_sock.display()
        ),
    )
    .unwrap();

    // The node's stderr is a stream JOURNAL_STREAM names, as systemd connects it.
    let node_log = u.dir.file("node.log");
    std::fs::File::create(&node_log).unwrap();
    let st = std::fs::metadata(&node_log).unwrap();
    let mut c = confined(&u, &node_ns, &node_unit, "ExecStart", &iface, None).unwrap();
    c.env("JOURNAL_STREAM", format!("{}:{}", st.dev(), st.ino()));
    let mut node = Daemon::spawn("ikelb@ (packaged)", c, &node_log).unwrap();
    node.wait_log("became active", Duration::from_secs(10))
        .unwrap();
    let c = confined(&u, &member_ns, &member_unit, "ExecStart", &peer, None).unwrap();
    let mut member =
        Daemon::spawn("ikelb-member (packaged)", c, &u.dir.file("member.log")).unwrap();
    member.wait_log("ready", Duration::from_secs(10)).unwrap();

    // The node's table: both members with slots (the member's XFRM load arrived).
    let bin = u.at("/usr/sbin/ikelb");
    let status = |args: &[&str]| -> Result<serde_json::Value> {
        let out = cmd::run(Command::new(&bin).args(["status", "--json"]).args(args))?;
        Ok(serde_json::from_str(&out)?)
    };
    wait_for(
        "both members in the node's table with slots",
        Duration::from_secs(10),
        || {
            Ok(status(&["--iface", &iface]).is_ok_and(|r| {
                r["cluster"]["members"].as_array().is_some_and(|ms| {
                    ms.len() == 2
                        && ms
                            .iter()
                            .all(|m| m["slots"].as_u64().is_some_and(|s| s > 0))
                })
            }))
        },
    )
    .with_context(|| cmd::tail(&node_log, 20))
    .unwrap();
    assert!(status(&["--socket", &member_sock.to_string_lossy()]).is_ok());
    let gid = std::fs::metadata(&member_sock).unwrap().gid();
    assert_ne!(gid, 0, "the member's socket was not given to its group");

    // Real requests get redirects from the fast path, to either member.
    let stop = AtomicBool::new(false);
    let sent = std::thread::scope(|s| {
        let h = s.spawn(|| stream(&member_ns, VIP, &stop));
        std::thread::sleep(Duration::from_millis(600));
        stop.store(true, Ordering::Relaxed);
        h.join().expect("stream thread").unwrap()
    });
    let first = sent
        .iter()
        .find(|s| s.gateway.is_some())
        .expect("no answer at all")
        .at;
    let (by, lost) = tally(&sent, first, None);
    assert_eq!(lost, 0, "unanswered requests; answers {by:?}");
    assert!(
        by.keys().all(|g| *g == NODE_ID || *g == MEMBER_ID),
        "{by:?}"
    );
    assert!(by.values().sum::<usize>() >= 20, "{by:?}");

    // ExecReload of both units, confined like ExecStart.
    let mut c = confined(&u, &node_ns, &node_unit, "ExecReload", &iface, None).unwrap();
    cmd::run(&mut c).unwrap();
    node.wait_log("configuration reloaded", Duration::from_secs(5))
        .unwrap();
    let mut c = confined(
        &u,
        &member_ns,
        &member_unit,
        "ExecReload",
        &peer,
        Some(member.pid()),
    )
    .unwrap();
    cmd::run(&mut c).unwrap();
    member
        .wait_log("configuration reloaded", Duration::from_secs(5))
        .unwrap();

    // A clean stop: exit status 0, so Restart=on-failure leaves it stopped.
    let node_exit = node.stop().expect("node exit status");
    let member_exit = member.stop().expect("member exit status");
    let node_text = std::fs::read_to_string(&node_log).unwrap();
    let member_text = std::fs::read_to_string(u.dir.file("member.log")).unwrap();
    assert!(node_exit.success(), "node: {node_exit}\n{node_text}");
    assert!(
        member_exit.success(),
        "member: {member_exit}\n{member_text}"
    );
    assert!(node_text.contains("XDP detached"), "{node_text}");
    // Missing privileges show as warnings (IKE ports, SA probes) or errors.
    assert!(complaints(&node_text).is_empty(), "{node_text}");
    assert!(complaints(&member_text).is_empty(), "{member_text}");

    // Journal format on the node: each line starts with its level, no escape codes.
    assert!(!node_text.contains('\x1b'), "{node_text}");
    for l in node_text.lines().filter(|l| !l.trim().is_empty()) {
        let first = l.split_whitespace().next().unwrap_or_default();
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&first),
            "not journal-formatted (a timestamp?): {l}"
        );
    }
    // Without JOURNAL_STREAM the member stamps its lines (so the check above can fail).
    let stamped = member_text.lines().next().unwrap_or_default();
    assert!(
        stamped.starts_with(|c: char| c.is_ascii_digit()),
        "member line without a timestamp: {stamped}"
    );
}
