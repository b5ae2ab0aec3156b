//! `--static`: the single-VIP-node lab, ikelb on a dedicated VIP node with two
//! strongSwan members and IPv4 and IPv6 clients.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ikelb_tests::esp::{self, Esp};
use ikelb_tests::lab::{
    self, Balancer, ClientDaemon, ClientKind, ClientResult, ClientSpec, Family, Lab, LabConfig,
};

use crate::args::Args;
use crate::console::{clock, prompt_loop, signalled, teardown, verdicts};

/// How often the counters are read while the lab runs.
const STATS_EVERY: Duration = Duration::from_secs(5);

/// The single-VIP-node lab (`--static`).
pub(crate) fn run(args: &Args, bin: PathBuf) -> i32 {
    let esp = match esp::probe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ikelb-lab: probing the kernel for ESP: {e:#}");
            return 1;
        }
    };
    let clients = ClientSpec::standard_set();
    println!(
        "ikelb lab: VIP {} / {} served by {} ({} XDP), 2 strongSwan members, {} clients",
        lab::vip(Family::V4),
        lab::vip(Family::V6),
        bin.display(),
        args.xdp_mode,
        clients.len()
    );
    let t0 = Instant::now();
    let lab = match Lab::up(LabConfig {
        balancer: Balancer::Ikelb {
            bin: bin.clone(),
            xdp_mode: args.xdp_mode.clone(),
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
    let mut lab = lab;
    println!("lab up in {:.1} s\n", t0.elapsed().as_secs_f64());
    print!("{}", topology(&lab));
    if let Some(sig) = signalled() {
        println!("{sig}: tearing the lab down...");
        return teardown(lab, 1);
    }

    println!("\nconnecting {} clients to the VIP...", lab.clients.len());
    let t1 = Instant::now();
    let results = lab.connect_clients();
    println!(
        "done in {:.1} s\n\n{}",
        t1.elapsed().as_secs_f64(),
        lab::results_table(&results, esp)
    );
    print_counters(&lab);
    let ok = verdicts(&results, esp);
    println!();
    if args.once || signalled().is_some() {
        if !ok {
            lab.keep_logs();
        }
        if let Some(sig) = signalled() {
            println!("{sig}: tearing the lab down...");
        }
        return teardown(lab, if ok { 0 } else { 1 });
    }
    serve(&lab, esp);
    // After the terminal's "^C".
    println!(
        "\n{}: tearing the lab down...",
        signalled().unwrap_or("signal")
    );
    teardown(lab, 0)
}

/// One line per node: name, namespace, addresses.
fn topology(lab: &Lab) -> String {
    let xdp = match lab.lb_xdp_attachment() {
        Ok(Some(a)) if a == "xdp" => "native XDP".to_string(),
        Ok(Some(a)) if a == "xdpgeneric" => "generic (skb) XDP".to_string(),
        Ok(Some(a)) => a,
        Ok(None) => "NO XDP program attached".into(),
        Err(e) => format!("XDP mode unknown ({e:#})"),
    };
    let mut s = format!(
        "  {:<6} {:<22} iface {} holds the VIPs, ikelb on it with {xdp}; bridge netns {}\n",
        "lb",
        lab.lb.name(),
        lab.lb_iface,
        lab.bridge.name()
    );
    for m in &lab.members {
        s.push_str(&format!(
            "  {:<6} {:<22} {} {}  strongSwan responder\n",
            m.name,
            m.netns.name(),
            m.v4(),
            m.v6()
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

fn print_counters(lab: &Lab) {
    println!("ikelb counters (ikelb stats --iface {}):", lab.lb_iface);
    match lab.ikelb_stats_text() {
        Ok(t) => {
            for l in t.lines() {
                println!("  {l}");
            }
        }
        Err(e) => println!("  unavailable: {e:#}"),
    }
}

/// The interactive part: instructions, then counters on change and reconnect commands
/// from stdin, until a signal.
fn serve(lab: &Lab, esp: Esp) {
    print!("{}", instructions(lab));
    let mut last = String::new();
    prompt_loop(
        &mut last,
        STATS_EVERY,
        Instant::now(),
        |_, line| command(lab, line, esp),
        |last| {
            let line = match lab.ikelb_stats() {
                Ok(v) => lab::stats_line(&v),
                Err(e) => format!("ikelb stats failed: {e:#}"),
            };
            if line != *last {
                println!("[{}] {line}", clock());
                *last = line;
            }
        },
    );
}

fn command(lab: &Lab, cmd: &str, esp: Esp) {
    match cmd {
        "" => {}
        "stats" => print_counters(lab),
        "help" | "?" => print!("{}", instructions(lab)),
        "all" => {
            let results: Vec<ClientResult> = lab
                .clients
                .iter()
                .filter_map(|c| lab.reconnect(&c.spec.name))
                .collect();
            print!("{}", lab::results_table(&results, esp));
        }
        name => match lab.reconnect(name) {
            Some(r) => print!("{}", lab::results_table(&[r], esp)),
            None => println!(
                "no client {name:?}; clients: {} (or: all, stats, help)",
                lab.clients
                    .iter()
                    .map(|c| c.spec.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    }
}

fn instructions(lab: &Lab) -> String {
    let ikelb = lab
        .ikelb_bin()
        .map_or_else(|| "ikelb".into(), |p| p.display().to_string());
    let mut s = format!(
        "The lab is running; Ctrl-C (or SIGTERM) tears it down. Counters are printed when they \
         change (checked every {} s).\n\
         \x20 counters   bpftool map dump pinned {}/IKELB_STATS\n\
         \x20            nsenter --net={} {ikelb} stats --iface {}\n\
         \x20 reconnect  type a client name (or `all`) and Enter here; `stats` prints every counter\n",
        STATS_EVERY.as_secs(),
        lab.pin_dir().display(),
        lab.lb.path().display(),
        lab.lb_iface,
    );
    let sw = lab.clients.iter().find_map(|c| match &c.daemon {
        ClientDaemon::StrongSwan(ch) => Some(ch),
        ClientDaemon::Libreswan(_) => None,
    });
    if let Some(ch) = sw {
        let conf = ch.dir.join("strongswan.conf");
        s.push_str(&format!(
            "\x20            by hand, strongSwan ({0}):\n\
             \x20              STRONGSWAN_CONF={1} swanctl --uri {2} --terminate --ike vip\n\
             \x20              STRONGSWAN_CONF={1} swanctl --uri {2} --initiate --child svc\n",
            ch.name,
            conf.display(),
            ch.uri()
        ));
    }
    let ls = lab.clients.iter().find_map(|c| match &c.daemon {
        ClientDaemon::Libreswan(p) => Some((c, p)),
        ClientDaemon::StrongSwan(_) => None,
    });
    if let Some((c, p)) = ls {
        // pluto keeps the member it was redirected to as the connection's remote: delete
        // and re-add the connection so the next try goes to the VIP again.
        let ctl = p.dir.join("pluto.ctl");
        s.push_str(&format!(
            "\x20            by hand, libreswan ({0}):\n\
             \x20              ipsec whack --ctlsocket {1} --name vip --delete\n\
             \x20              ip netns exec {2} ipsec addconn --config {3} --ctlsocket {1} vip\n\
             \x20              ipsec whack --ctlsocket {1} --name vip --initiate\n",
            p.name,
            ctl.display(),
            c.netns.name(),
            p.dir.join("ipsec.conf").display()
        ));
    }
    s.push_str(&format!(
        "\x20 shell      ip netns exec <netns> bash   (netns names above)\n\
         \x20 logs       {}/<node>/ (charon.log, pluto.log; lb/ikelb.log)\n",
        lab.run_dir.display()
    ));
    s
}
