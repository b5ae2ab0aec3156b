//! The default lab: the VRRP cluster, three strongSwan members of which two run `ikelb
//! run` with VRRPv3 and one `ikelb member`; clients arrive one after the other, and
//! `kill-master` / `restart <gw>` move the VIP.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ikelb_tests::esp::{self, Esp};
use ikelb_tests::lab::{
    self, Balancer, ClientKind, ClientResult, ClientSpec, Family, Lab, LabConfig,
};

use crate::args::Args;
use crate::console::{clock, prompt_loop, signalled, teardown, verdicts};

/// How often the status table is printed while the lab runs.
const STATUS_EVERY: Duration = Duration::from_secs(5);
/// Between two client arrivals.
const ARRIVAL_GAP: Duration = Duration::from_millis(700);

/// strongSwan on 500 and 4500 and libreswan first, then more strongSwan clients.
fn clients(n: usize) -> Vec<ClientSpec> {
    use ClientKind::{Libreswan, StrongSwan};
    let mut v = vec![
        ClientSpec::new("sw4", StrongSwan, Family::V4, 500),
        ClientSpec::new("sw4n", StrongSwan, Family::V4, 4500),
        ClientSpec::new("ls4", Libreswan, Family::V4, 500),
    ];
    for i in v.len() + 1..=n {
        v.push(ClientSpec::new(
            &format!("c{i}"),
            StrongSwan,
            Family::V4,
            500,
        ));
    }
    v
}

/// The cluster lab (the default).
pub(crate) fn run(args: &Args, bin: PathBuf) -> i32 {
    let esp = match esp::probe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ikelb-lab: probing the kernel for ESP: {e:#}");
            return 1;
        }
    };
    let clients = clients(args.clients);
    println!(
        "ikelb lab (cluster): VIP {} owned by the VRRP master of gw1/gw2 running {}, \
         3 strongSwan members reporting live load, {} clients",
        lab::vip(Family::V4),
        bin.display(),
        clients.len()
    );
    let t0 = Instant::now();
    let mut lab = match Lab::up(LabConfig {
        members: 3,
        balancer: Balancer::IkelbCluster {
            bin: bin.clone(),
            candidates: 2,
        },
        clients,
        ..LabConfig::default()
    }) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ikelb-lab: bringing the lab up failed: {e:#}");
            return 1;
        }
    };
    println!("lab up in {:.1} s\n", t0.elapsed().as_secs_f64());
    print!("{}", topology(&lab));
    println!("\n{}", lab.cluster_status_text());
    if let Some(sig) = signalled() {
        println!("{sig}: tearing the lab down...");
        return teardown(lab, 1);
    }
    println!(
        "clients arriving, one every {} ms...",
        ARRIVAL_GAP.as_millis()
    );
    let mut results = Vec::new();
    for c in lab
        .clients
        .iter()
        .map(|c| c.spec.name.clone())
        .collect::<Vec<_>>()
    {
        if signalled().is_some() {
            break;
        }
        std::thread::sleep(ARRIVAL_GAP);
        if let Some(r) = lab.connect(&c) {
            println!(
                "[{}] {c} -> {}",
                clock(),
                r.landed_on.as_deref().unwrap_or("nowhere")
            );
            results.push(r);
        }
    }
    println!("\n{}", lab::results_table(&results, esp));
    // Let every member report its new SA count.
    std::thread::sleep(Duration::from_millis(1200));
    println!("{}", lab.cluster_status_text());
    let ok = results.len() == lab.clients.len() && verdicts(&results, esp);
    println!();
    if args.once || signalled().is_some() {
        if !ok {
            lab.keep_logs();
            eprintln!("{}", lab.cluster_logs(20));
        }
        if let Some(sig) = signalled() {
            println!("{sig}: tearing the lab down...");
        }
        return teardown(lab, if ok { 0 } else { 1 });
    }
    serve(&mut lab, esp);
    println!(
        "\n{}: tearing the lab down...",
        signalled().unwrap_or("signal")
    );
    teardown(lab, 0)
}

fn topology(lab: &Lab) -> String {
    let mut s = format!(
        "  {:<6} {:<22} {} plain host (no VIP); bridge netns {}\n",
        "lb",
        lab.lb.name(),
        lab::probe_host_addr(),
        lab.bridge.name()
    );
    for m in &lab.members {
        let role = match lab.cluster.iter().find(|c| c.member == m.name) {
            Some(c) => match c.priority {
                Some(p) => format!("VIP candidate (ikelb run, VRRP priority {p})"),
                None => "member (ikelb member)".into(),
            },
            None => "no ikelb".into(),
        };
        s.push_str(&format!(
            "  {:<6} {:<22} {} iface {}  strongSwan responder, {role}\n",
            m.name,
            m.netns.name(),
            m.v4(),
            m.iface
        ));
    }
    for c in &lab.clients {
        let kind = match c.spec.kind {
            ClientKind::StrongSwan => "strongSwan",
            ClientKind::Libreswan => "libreswan",
        };
        s.push_str(&format!(
            "  {:<6} {:<22} {} -> VIP port {}  {kind} client\n",
            c.spec.name,
            c.netns.name(),
            c.addr(),
            c.spec.port
        ));
    }
    s
}

fn instructions(lab: &Lab) -> String {
    let sock = |name: &str| {
        lab.cluster
            .iter()
            .find(|c| c.member == name)
            .map_or_else(String::new, |c| c.socket.display().to_string())
    };
    format!(
        "The lab is running; Ctrl-C (or SIGTERM) tears it down. The master's status table \
         is printed every {} s. Type here, then Enter:\n\
         \x20 kill-master    SIGKILL the master's ikelb (tunnels stay up); the backup takes \
         over within ~0.4 s\n\
         \x20                by hand: {}\n\
         \x20 restart <gw>   start that member's ikelb again (gw1 preempts: priority 200)\n\
         \x20 status         print the status table now\n\
         \x20 <client>|all   reconnect a client (or every client) through the VIP\n\
         \x20 by hand        ikelb status --socket {}   (gw2: {})\n\
         \x20 shell          ip netns exec <netns> bash   (netns names above)\n\
         \x20 logs           {}/<gw>-ikelb/ikelb.log, {}/<node>/charon.log\n",
        STATUS_EVERY.as_secs(),
        lab.kill_master_command()
            .unwrap_or_else(|| "(no master now)".into()),
        sock("gw1"),
        sock("gw2"),
        lab.run_dir.display(),
        lab.run_dir.display(),
    )
}

fn serve(lab: &mut Lab, esp: Esp) {
    print!("{}", instructions(lab));
    prompt_loop(
        lab,
        STATUS_EVERY,
        Instant::now() + STATUS_EVERY,
        |lab, line| command(lab, line, esp),
        |lab| println!("[{}] {}", clock(), lab.cluster_status_text()),
    );
}

fn command(lab: &mut Lab, cmd: &str, esp: Esp) {
    let mut words = cmd.split_whitespace();
    match (words.next(), words.next()) {
        (None, _) => {}
        (Some("help" | "?"), _) => print!("{}", instructions(lab)),
        (Some("status"), _) => println!("{}", lab.cluster_status_text()),
        (Some("kill-master"), _) => match lab.kill_cluster_master() {
            Some(old) => {
                let t = Instant::now();
                let new = loop {
                    match lab.cluster_master() {
                        Some(m) if m != old => break Some(m),
                        _ if t.elapsed() > Duration::from_secs(3) => break None,
                        _ => std::thread::sleep(Duration::from_millis(10)),
                    }
                };
                match new {
                    Some(m) => println!(
                        "[{}] killed ikelb on {old}; {m} holds the VIP after {} ms \
                         (tunnels on {old} stay up)",
                        clock(),
                        t.elapsed().as_millis()
                    ),
                    None => println!("[{}] killed ikelb on {old}; no new master yet", clock()),
                }
                println!("{}", lab.cluster_status_text());
            }
            None => println!("no master holds the VIP"),
        },
        (Some("restart"), Some(gw)) => match lab.restart_cluster_node(gw) {
            Ok(()) => println!("[{}] ikelb on {gw} restarted", clock()),
            Err(e) => println!("restart {gw}: {e:#}"),
        },
        (Some("all"), _) => {
            let names: Vec<String> = lab.clients.iter().map(|c| c.spec.name.clone()).collect();
            let results: Vec<ClientResult> =
                names.iter().filter_map(|n| lab.reconnect(n)).collect();
            print!("{}", lab::results_table(&results, esp));
        }
        (Some(name), _) => match lab.reconnect(name) {
            Some(r) => print!("{}", lab::results_table(&[r], esp)),
            None => println!(
                "no client {name:?}; clients: {} (or: kill-master, restart <gw>, status, \
                 all, help)",
                lab.clients
                    .iter()
                    .map(|c| c.spec.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    }
}
