//! Support of the operations tests (`ops_*`): a segment of namespaces on one bridge, a
//! request stream that waits for each request's own answer and records the gateway it
//! was sent to, and the `ikelb` control commands.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lb_userspace::frames::RequestSpec;

use crate::netns::{Netns, Veth, unique_tag};

/// Namespaces `names` on one bridge, `10.81.0.<2+i>/24` each, checksums on the wire.
pub(super) struct Segment {
    pub nodes: Vec<(Netns, String)>,
    _veths: Vec<Veth>,
    _sw: Netns,
}

impl Segment {
    pub(super) fn new(names: &[&str]) -> Result<Self> {
        let tag = unique_tag();
        let sw = Netns::new("osw")?;
        sw.ip(&["link", "add", "br0", "type", "bridge"])?;
        sw.ip(&["link", "set", "br0", "up"])?;
        let mut nodes = Vec::new();
        let mut veths = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let ns = Netns::new(&format!("o{n}"))?;
            let inner = format!("o{n}{tag}");
            let outer = format!("p{n}{tag}");
            veths.push(Veth::new(&ns, &inner, None, &sw, &outer, None)?);
            sw.ip(&["link", "set", &outer, "master", "br0"])?;
            ns.addr_add(&inner, &format!("{}/24", Self::addr(i)))?;
            // Full UDP checksums on the wire: the fast path checks them.
            ns.tx_csum_off(&inner)?;
            nodes.push((ns, inner));
        }
        Ok(Segment {
            nodes,
            _veths: veths,
            _sw: sw,
        })
    }

    /// The address of node `i`.
    pub(super) fn addr(i: usize) -> String {
        format!("10.81.0.{}", 2 + i)
    }
}

/// One request of a [`stream`]: when it was sent and the gateway its answer named
/// (`None`: no answer within the wait).
#[derive(Clone, Debug)]
pub(super) struct Sent {
    pub at: Instant,
    pub gateway: Option<IpAddr>,
}

/// The IPv4 gateway of an IKE_SA_INIT response's N(REDIRECT) (type 16407): GW Ident
/// Type 1, length 4, then the address.
pub(super) fn redirect_gateway(m: &[u8]) -> Option<IpAddr> {
    if m.len() <= 28 || m[18] != 34 || m[19] & 0x20 == 0 {
        return None;
    }
    let i = m.windows(2).position(|w| w == [0x40, 0x17])?;
    let g = m.get(i + 2..i + 8)?;
    (g[0] == 1 && g[1] == 4).then(|| IpAddr::V4(Ipv4Addr::new(g[2], g[3], g[4], g[5])))
}

/// Sends IKE_SA_INIT requests to `vip`:500 from `ns` one after the other until `stop`,
/// each waiting up to 200 ms for the answer carrying its own SPIi.
pub(super) fn stream(ns: &Netns, vip: &str, stop: &AtomicBool) -> Result<Vec<Sent>> {
    let f = std::fs::File::open(ns.path()).context("open client netns")?;
    // SAFETY: setns on this thread only (a netns is per thread), with a valid fd.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error()).context("setns");
    }
    let sock = UdpSocket::bind("0.0.0.0:500").context("bind client :500")?;
    sock.set_read_timeout(Some(Duration::from_millis(20)))?;
    let dst = format!("{vip}:500");
    let mut spec = RequestSpec::default();
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        spec.spi_i = (0x0b5e_0000_0000_0000u64 | n).to_be_bytes();
        let at = Instant::now();
        sock.send_to(&spec.ike(), &dst).context("send")?;
        let mut gateway = None;
        while at.elapsed() < Duration::from_millis(200) {
            match sock.recv_from(&mut buf) {
                Ok((len, _)) if buf[..len].starts_with(&spec.spi_i) => {
                    gateway = redirect_gateway(&buf[..len]);
                    if gateway.is_some() {
                        break;
                    }
                }
                _ => {}
            }
        }
        out.push(Sent { at, gateway });
        // About 250 requests a second: steady, and light on a shared machine.
        std::thread::sleep(Duration::from_millis(4));
    }
    Ok(out)
}

/// Requests sent from `from` on (to `until`, if given) per gateway, and unanswered.
pub(super) fn tally(
    sent: &[Sent],
    from: Instant,
    until: Option<Instant>,
) -> (std::collections::BTreeMap<IpAddr, usize>, usize) {
    let mut by = std::collections::BTreeMap::new();
    let mut lost = 0;
    for s in sent
        .iter()
        .filter(|s| s.at >= from && until.is_none_or(|u| s.at < u))
    {
        match s.gateway {
            Some(g) => *by.entry(g).or_insert(0) += 1,
            None => lost += 1,
        }
    }
    (by, lost)
}

/// `ikelb <args> --socket <socket>`: stdout on success, else the error with stderr.
pub(super) fn ikelb_ctl(args: &[&str], socket: &Path) -> Result<String> {
    let out = std::process::Command::new(crate::lab::ikelb_bin())
        .args(args)
        .arg("--socket")
        .arg(socket)
        .output()
        .context("run ikelb")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("ikelb {args:?} failed ({}): {stderr}", out.status);
    }
    Ok(stdout)
}

/// Fails the test at once when not root: these tests are not skipped silently.
pub(super) fn need_root() {
    assert!(
        crate::is_root(),
        "the operations tests need root (network namespaces, XDP)"
    );
}
