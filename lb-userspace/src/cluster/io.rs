//! The tokio driver of the [`LoadExchange`]: a UDP socket (multicast group or unicast
//! peers), the SA probe on its own thread, and, on a node that redirects, the slot
//! table rebuilt from [`weights::weights_mixed`] and [`InFlight`] on every accepted report and
//! every [`ClusterCfg::rebuild`] in between. The daemon's [`Cmd`]s drain members and
//! reload the settings. A receive error ends the task with that error (and so the
//! daemon): a table that stopped following the reports must not go on redirecting.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lb_common::maps::SLOTS;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use super::adopt::{Adopted, drain_events};
use super::drain::{DrainCmd, Drains, Reply, drained_rows};
use super::migrate;
use super::mixed::{fixed, mix_statics};
pub use super::settings::exchange_config;
pub use super::status::{MemberRow, Status};
use super::system::Sampler;
use super::{DropReason, LoadExchange, Member};
use crate::config::{ClusterCfg, Transport};
use crate::target::weights::{self, InFlight, Policy};
use crate::target::{Identity, Owner, StaticTarget, Target};

/// Time since the Unix epoch (zero before it).
fn unix_now() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// One target per identity of every weighted member (the dataplane puts each into the
/// tables of the families it serves).
pub fn targets(members: &[Member], weights: &[(u32, u32)]) -> Vec<Target> {
    let mut out = Vec::new();
    for &(id, weight) in weights {
        let Some(m) = members.iter().find(|m| m.id == id) else {
            continue;
        };
        for identity in &m.identities {
            out.push(Target {
                owner: Owner::Member(id),
                identity: identity.clone(),
                weight,
            });
        }
    }
    out
}

/// Cumulative redirects per member id from the per-target counters.
pub fn redirects_by_member(
    names: &[(u16, Owner, Identity)],
    per_target: &[u64],
) -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    for (i, owner, _) in names {
        if let Owner::Member(id) = owner {
            *out.entry(*id).or_insert(0) += per_target.get(usize::from(*i)).copied().unwrap_or(0);
        }
    }
    out
}

/// Where the slot table goes: the daemon's dataplane task, or a test double.
pub trait Table: Send {
    /// Cumulative redirects per member id.
    fn redirects(&mut self) -> BTreeMap<u32, u64>;
    /// Hands a new table over; an error means it can no longer be installed.
    fn install(&mut self, targets: Vec<Target>) -> io::Result<()>;
}

/// What the daemon asks of the running exchange.
#[derive(Debug)]
pub enum Cmd {
    /// Drain `member` (no new clients from the next rebuild on) or undrain it. On the
    /// member itself, its reports carry the drain flag, so every balancer hears it.
    Drain {
        member: u32,
        drain: bool,
        /// When to log how many SAs the member still holds.
        deadline: Option<Duration>,
        /// On the member itself: move its IKE SAs to the other members.
        migrate: Option<migrate::Options>,
        reply: Reply,
    },
    /// New settings and static targets from a reload, checked by the daemon (valid,
    /// nothing that needs a restart changed).
    Reload(Box<ClusterCfg>, Vec<StaticTarget>, oneshot::Sender<()>),
}

async fn open_socket(
    c: &ClusterCfg,
    iface: Option<&str>,
) -> io::Result<(UdpSocket, Vec<SocketAddr>)> {
    let v6 = match &c.transport {
        Transport::Multicast(g) => g.is_ipv6(),
        Transport::Unicast(p) => p[0].is_ipv6(),
    };
    let any: IpAddr = if v6 {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    };
    let sock = UdpSocket::bind(SocketAddr::new(any, c.port)).await?;
    let dsts = match &c.transport {
        Transport::Multicast(g) => {
            let idx = match iface {
                Some(i) => crate::net::ifindex(i)?,
                None => 0,
            };
            match g {
                IpAddr::V4(g4) => {
                    let index = socket2::InterfaceIndexOrAddress::Index(idx);
                    socket2::SockRef::from(&sock).join_multicast_v4_n(g4, &index)?;
                    crate::net::set_multicast_if_v4(&sock, idx)?;
                    sock.set_multicast_loop_v4(false)?;
                    sock.set_multicast_ttl_v4(1)?;
                }
                IpAddr::V6(g6) => {
                    sock.join_multicast_v6(g6, idx)?;
                    sock.set_multicast_loop_v6(false)?;
                }
            }
            vec![SocketAddr::new(*g, c.port)]
        }
        Transport::Unicast(peers) => peers.iter().map(|p| SocketAddr::new(*p, c.port)).collect(),
    };
    Ok((sock, dsts))
}

/// Runs the exchange until the daemon drops `commands`' sender. With `table`, this node
/// redirects: the slot table follows the reports, `statics` (a mixed pool's static
/// targets) beside the members; `kept` names the members of a table taken over from
/// the previous process, which stays until they reported again ([`Adopted`]).
pub async fn run(
    c: ClusterCfg,
    iface: Option<String>,
    mut table: Option<Box<dyn Table>>,
    mut statics: Vec<StaticTarget>,
    mut commands: mpsc::Receiver<Cmd>,
    status: watch::Sender<Status>,
    kept: Option<BTreeSet<u32>>,
) -> io::Result<()> {
    let cfg = exchange_config(&c)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let iface = c.iface.clone().or(iface);
    let (sock, dsts) = open_socket(&c, iface.as_deref()).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("load-exchange socket, port {}: {e}", c.port),
        )
    })?;
    let mut lx = LoadExchange::new(cfg, Instant::now(), unix_now())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let mut kept = kept.map(|k| Adopted::new(k, Instant::now(), c.holdtime));
    info!(member = c.member_id, transport = ?c.transport, port = c.port, redirects = table.is_some(), "load exchange starting");

    // The probe blocks (sockets, commands): its own thread, samples over a channel.
    let (sample_tx, mut samples) = mpsc::channel::<Result<u32, String>>(4);
    if lx.config().local.is_some() {
        let mut probe = super::fetch::probe(&c.probe);
        let every = c.interval;
        std::thread::Builder::new()
            .name("ikelb-probe".into())
            .spawn(move || {
                loop {
                    let r = probe.active_sas().map_err(|e| e.to_string());
                    if sample_tx.blocking_send(r).is_err() {
                        return;
                    }
                    std::thread::sleep(every);
                }
            })?;
    }
    let mut policy = Policy {
        include_local: c.include_local,
        slow_start_reports: c.slow_start_reports,
    };
    let mut drains = Drains::default();
    let mut inflight = InFlight::default();
    let mut installed: Option<Vec<Target>> = None;
    let mut shares: Vec<(u32, u32)> = Vec::new();
    let mut static_entries: Vec<Target> = Vec::new();
    let mut redirects: BTreeMap<u32, u64> = BTreeMap::new();
    let mut rebuild = tokio::time::interval(c.rebuild);
    rebuild.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut system = Sampler::default();
    let mut probe_errors = 0u64;
    let mut installs = 0u64;
    let mut buf = vec![0u8; 2048];
    let transport = match &c.transport {
        Transport::Multicast(g) => format!("multicast {g}:{}", c.port),
        Transport::Unicast(p) => format!("unicast {p:?}:{}", c.port),
    };
    loop {
        while let Some(t) = lx.poll_transmit() {
            for d in &dsts {
                if let Err(e) = sock.send_to(&t.payload, d).await {
                    debug!(dst = %d, error = %e, "report not sent");
                }
            }
        }
        let changed = drain_events(&mut lx, kept.as_mut());
        let deadline = lx.poll_timeout();
        let drain_due = drains.drained.values().filter_map(|d| d.deadline).min();
        let mut do_rebuild = changed;
        // Re-read the wall clock every time round: a node started before its clock was
        // set (NTP) would otherwise judge every report's timestamp against the wrong time.
        lx.set_wall_clock(Instant::now(), unix_now());
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let (n, from) = r.map_err(|e| {
                    io::Error::new(e.kind(), format!("receiving load reports: {e}"))
                })?;
                if lx.handle_report(Instant::now(), from, &buf[..n]).is_ok() {
                    do_rebuild = true;
                }
            }
            s = samples.recv() => match s {
                Some(Ok(n)) => lx.handle_local_sample(Instant::now(), system.sample(n)),
                Some(Err(e)) => {
                    probe_errors += 1;
                    if probe_errors.is_power_of_two() {
                        warn!(error = %e, errors = probe_errors, "SA probe failed");
                    }
                }
                None => {}
            },
            () = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            } => lx.handle_timeout(Instant::now()),
            _ = rebuild.tick(), if table.is_some() => do_rebuild = true,
            () = sleep_until_opt(drain_due) => {
                let now = Instant::now();
                let members = lx.members();
                for (id, d) in &mut drains.drained {
                    if d.deadline.is_some_and(|t| t <= now) {
                        d.deadline = None;
                        let sas = members.iter().find(|m| m.id == *id).map(|m| m.figures.active_sas);
                        warn!(member = id, active_sas = ?sas, "drain deadline passed");
                    }
                }
            }
            cmd = commands.recv() => match cmd {
                // The daemon is stopping.
                None => {
                    info!("load exchange stopped");
                    return Ok(());
                }
                Some(Cmd::Drain { member, drain, deadline, migrate, reply }) => {
                    let deadline = deadline.map(|d| Instant::now() + d);
                    let cmd = DrainCmd { member, drain, deadline, migrate };
                    do_rebuild |= drains.command(&mut lx, &c, table.is_some(), cmd, reply);
                }
                Some(Cmd::Reload(new, new_statics, reply)) => {
                    statics = new_statics;
                    match exchange_config(&new) {
                        Ok(x) => lx.reconfigure(x),
                        // The daemon validated it: this cannot happen, and the old
                        // settings stay if it does.
                        Err(e) => warn!(error = %e, "reload of the load exchange refused"),
                    }
                    policy = Policy { include_local: new.include_local, slow_start_reports: new.slow_start_reports };
                    do_rebuild = true;
                    let _ = reply.send(());
                }
            },
        }
        do_rebuild |= drain_events(&mut lx, kept.as_mut());
        let members = lx.members();
        drains.members(&members);
        let holds = kept
            .as_mut()
            .is_some_and(|k| k.holds(Instant::now(), &members));
        if let Some(t) = table.as_mut()
            && do_rebuild
            && !holds
        {
            let loads: Vec<weights::Load> = members
                .iter()
                .map(|m| {
                    let mut l = m.load();
                    l.figures.drain |= drains.drained.contains_key(&m.id);
                    kept.as_ref()
                        .map_or(l, |k| k.ramp(l, policy.slow_start_reports))
                })
                .collect();
            redirects = t.redirects();
            let fl = inflight.update(&loads, &redirects);
            let (w, fw) = weights::weights_mixed(&policy, &loads, &fl, &fixed(&statics));
            shares = w;
            static_entries = statics
                .iter()
                .zip(fw)
                .map(|(t, weight)| Target {
                    weight,
                    ..t.target.clone()
                })
                .collect();
            let mut entries = targets(&members, &shares);
            entries.extend(static_entries.iter().cloned());
            if installed.as_ref() != Some(&entries) {
                t.install(entries.clone())?;
                installs += 1;
                installed = Some(entries);
            }
        }
        status.send_replace(snapshot(
            &lx,
            &members,
            &shares,
            &redirects,
            &transport,
            probe_errors,
            installs,
        ));
        status.send_modify(|s| {
            s.drained = drained_rows(&drains.drained);
            s.migration = drains
                .migration
                .as_ref()
                .map(migrate::run::Handle::progress);
            mix_statics(s, &shares, &static_entries);
        });
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

fn snapshot(
    lx: &LoadExchange,
    members: &[Member],
    weights: &[(u32, u32)],
    redirects: &BTreeMap<u32, u64>,
    transport: &str,
    probe_errors: u64,
    installs: u64,
) -> Status {
    let total: u64 = weights.iter().map(|&(_, w)| u64::from(w)).sum();
    let now = Instant::now();
    let st = lx.stats();
    Status {
        member_id: lx.config().member_id,
        transport: transport.into(),
        sent: st.sent,
        accepted: st.accepted,
        dropped: DropReason::ALL
            .iter()
            .map(|r| (r.name().to_string(), st.dropped(*r)))
            .collect(),
        probe_errors,
        members: members
            .iter()
            .map(|m| {
                let w = weights
                    .iter()
                    .find(|x| x.0 == m.id)
                    .map_or(0, |x| u64::from(x.1));
                let share = if total == 0 {
                    0.0
                } else {
                    w as f64 / total as f64
                };
                MemberRow {
                    id: m.id,
                    local: m.local,
                    addr: m.addr,
                    identities: m.identities.iter().map(ToString::to_string).collect(),
                    figures: m.figures,
                    share_pct: share * 100.0,
                    slots: (share * SLOTS as f64).round() as u32,
                    last_heard_ms: if m.local {
                        0
                    } else {
                        u64::try_from(now.saturating_duration_since(m.last_heard).as_millis())
                            .unwrap_or(u64::MAX)
                    },
                    redirects: redirects.get(&m.id).copied().unwrap_or(0),
                }
            })
            .collect(),
        held_out: lx.held_out(),
        installs,
        drained: Vec::new(),
        migration: None,
        statics: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn member(id: u32, ids: &[&str]) -> Member {
        Member::for_test(id, ids, 100, 10, Instant::now())
    }

    #[test]
    fn targets_per_identity_and_back() {
        let ms = [
            member(1, &["192.0.2.1", "2001:db8::1"]),
            member(2, &["gw2.example"]),
        ];
        let t = targets(&ms, &[(1, 10), (2, 0)]);
        assert_eq!(t.len(), 3);
        let owners: Vec<&Owner> = t.iter().map(|e| &e.owner).collect();
        assert_eq!(
            owners,
            [&Owner::Member(1), &Owner::Member(1), &Owner::Member(2)]
        );
        assert_eq!(t[2].weight, 0);
        let mut names: Vec<(u16, Owner, Identity)> = t
            .iter()
            .enumerate()
            .map(|(i, e)| (i as u16, e.owner.clone(), e.identity.clone()))
            .collect();
        // A static target's redirects are nobody's, whatever its name.
        names.push((
            3,
            Owner::Static("member-2".into()),
            ms[1].identities[0].clone(),
        ));
        let r = redirects_by_member(&names, &[5, 7, 11, 13]);
        assert_eq!(r[&1], 12);
        assert_eq!(r[&2], 11);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn exchange_config_from_cluster_section() {
        let c = crate::config::Config::parse(
            "[cluster]\nmember-id = 4\nidentities = [\"192.0.2.4\"]\ninterval-ms = 100\n\
             [[cluster.key]]\nid = 9\nsecret = \"0123456789abcdef\"\n",
        )
        .unwrap()
        .cluster
        .unwrap();
        let x = exchange_config(&c).unwrap();
        assert_eq!(x.member_id, 4);
        assert_eq!(x.keys.send_id(), 9);
        assert_eq!(x.holdtime, Duration::from_millis(300));
        assert_eq!(x.local.unwrap().figures.capacity, 1000);
    }
}
