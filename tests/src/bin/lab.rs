//! `ikelb-lab`: the network-namespace lab behind `cargo xtask lab`.
//!
//! By default the lab is the VRRP cluster: three strongSwan members, of which `gw1` and
//! `gw2` are VIP candidates running `ikelb run` with VRRPv3 (priority 200 and 190, 10 cs)
//! and `gw3` runs `ikelb member`; every member reports its charon's IKE SAs (VICI) once
//! a second and the master redirects each new client to the member with the most
//! headroom. IPv4 clients (strongSwan on 500 and 4500, libreswan) arrive one after the
//! other; the master's `ikelb status` table is printed as they land and then every few
//! seconds. Typing `kill-master` SIGKILLs the master's ikelb (its tunnels stay up) so
//! the backup takes over; `restart <gw>` starts it again (it preempts).
//!
//! `--static`: the single-VIP-node lab. Brings up a VIP node running `ikelb` (native XDP by default), two strongSwan member
//! gateways and strongSwan and libreswan clients (IPv4, IPv6, port 4500), connects every
//! client through the VIP, prints where each one landed and ikelb's counters, then either
//! exits (`--once`: 0 only if every client was redirected to a member and the strongSwan
//! pings through the tunnels passed) or keeps the lab up, printing the counters when they
//! change, until Ctrl-C or SIGTERM. Everything is torn down on the way out (daemons by
//! pid, namespaces, ikelb's pins), panics included.
//!
//! ```text
//! sudo target/release/ikelb-lab [--once] [--static] [--clients N] [--ikelb <path>]
//!                                [--xdp-mode native|skb]
//! ```

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ikelb_tests::esp::{self, Esp};
use ikelb_tests::lab::{
    self, Balancer, ClientDaemon, ClientKind, ClientResult, ClientSpec, Family, Lab, LabConfig,
};

const USAGE: &str = "\
usage: ikelb-lab [--once] [--static] [--clients N] [--ikelb <path>] [--xdp-mode native|skb]

  --once               connect every client, print the results and exit: 0 only if every
                       client was redirected to a member (and strongSwan pings passed)
  --static             the single-VIP-node lab (ikelb on a dedicated VIP node, static
                       targets, IPv4 and IPv6 clients) instead of the VRRP cluster
  --clients N          cluster: number of IPv4 clients, 3..=20 (default 6)
  --ikelb <path>       the ikelb binary (default: $IKELB_BIN, else the ikelb beside this
                       program, else <workspace>/target/release/ikelb)
  --xdp-mode <mode>    --static: how ikelb attaches XDP on the VIP's interface: native
                       (default) or skb (the cluster's candidates use skb)

Needs root. Without --once the lab stays up until Ctrl-C or SIGTERM.";

/// How often the counters are read while the lab runs.
const STATS_EVERY: Duration = Duration::from_secs(5);

static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::SeqCst);
}

fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction with a handler that only stores to an atomic
        // (async-signal-safe); exec resets it to the default in the children.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

fn signalled() -> Option<&'static str> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        libc::SIGINT => Some("SIGINT"),
        libc::SIGTERM => Some("SIGTERM"),
        libc::SIGHUP => Some("SIGHUP"),
        _ => Some("signal"),
    }
}

struct Args {
    once: bool,
    static_lab: bool,
    clients: usize,
    ikelb: Option<PathBuf>,
    xdp_mode: String,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        once: false,
        static_lab: false,
        clients: 6,
        ikelb: None,
        xdp_mode: "native".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--once" => a.once = true,
            "--static" => a.static_lab = true,
            "--clients" => {
                let v = value("--clients")?;
                a.clients = v
                    .parse()
                    .ok()
                    .filter(|n| (3..=20).contains(n))
                    .ok_or_else(|| format!("--clients must be 3..=20, not {v:?}"))?;
            }
            "--ikelb" => a.ikelb = Some(PathBuf::from(value("--ikelb")?)),
            "--xdp-mode" => {
                let m = value("--xdp-mode")?;
                if !matches!(m.as_str(), "native" | "skb") {
                    return Err(format!("--xdp-mode must be native or skb, not {m:?}"));
                }
                a.xdp_mode = m;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(a)
}

/// `--ikelb`, else `IKELB_BIN`, else `ikelb` beside this program, else the workspace's
/// `target/release/ikelb`.
fn resolve_ikelb(arg: Option<PathBuf>) -> PathBuf {
    if let Some(p) = arg.or_else(|| std::env::var_os("IKELB_BIN").map(PathBuf::from)) {
        return p;
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("ikelb")));
    match beside {
        Some(p) if p.is_file() => p,
        _ => lab::ikelb_bin(),
    }
}

/// Local wall-clock time as `HH:MM:SS`.
fn clock() -> String {
    // SAFETY: time(2) and localtime_r(3) with valid pointers; tm is fully written.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ikelb-lab: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    if !ikelb_tests::is_root() {
        eprintln!(
            "ikelb-lab: needs root (it creates network namespaces, attaches XDP and runs IKE \
             daemons).\nRun it as root: `cargo xtask lab` in a root shell, or `sudo {}`.",
            std::env::args()
                .next()
                .unwrap_or_else(|| "ikelb-lab".into())
        );
        std::process::exit(2);
    }
    let bin = resolve_ikelb(args.ikelb.clone());
    if !bin.is_file() {
        eprintln!(
            "ikelb-lab: ikelb binary {} not found: build it with `cargo xtask build`, or pass \
             --ikelb <path> / set IKELB_BIN",
            bin.display()
        );
        std::process::exit(2);
    }
    install_signal_handlers();
    // The lab (and with it every daemon, namespace and pin) is dropped inside `run`,
    // also when it panics; only then do we exit.
    let code = run(&args, bin);
    std::process::exit(code);
}

fn run(args: &Args, bin: PathBuf) -> i32 {
    if !args.static_lab {
        return cluster::run(args, bin);
    }
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

/// Prints the overall verdict; true when every client passed.
fn verdicts(results: &[ClientResult], esp: Esp) -> bool {
    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| r.verdict(esp).err())
        .collect();
    if failures.is_empty() {
        let pings = results.iter().filter(|r| r.ping == Some(true)).count();
        println!(
            "\nOK: all {} clients were redirected to a member and got their CHILD_SA there; \
             {pings} strongSwan pings through the tunnels passed{}",
            results.len(),
            if esp == Esp::Missing {
                " (libreswan clients cannot install ESP on this kernel: expected)"
            } else {
                ""
            }
        );
        true
    } else {
        println!("\nFAILED:");
        for f in &failures {
            println!("  {f}");
        }
        false
    }
}

/// Reads stdin lines into `on_line` and calls `on_tick` every `period` (first at
/// `first`), until a signal. A closed stdin only stops the commands.
fn prompt_loop<S>(
    state: &mut S,
    period: Duration,
    first: Instant,
    mut on_line: impl FnMut(&mut S, &str),
    mut on_tick: impl FnMut(&mut S),
) {
    let (tx, rx) = mpsc::channel::<String>();
    // Reads stdin until EOF; it is left behind (blocked in read) at exit.
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut next = first;
    let mut stdin_open = true;
    while signalled().is_none() {
        if stdin_open {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => on_line(state, line.trim()),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => stdin_open = false,
            }
        } else {
            std::thread::sleep(Duration::from_millis(200));
        }
        if Instant::now() >= next {
            next = Instant::now() + period;
            on_tick(state);
        }
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

fn teardown(lab: Lab, code: i32) -> i32 {
    let t = Instant::now();
    drop(lab);
    println!(
        "lab torn down in {:.1} s (daemons stopped, namespaces and pins removed)",
        t.elapsed().as_secs_f64()
    );
    code
}

/// The default lab: the VRRP cluster.
mod cluster {
    use super::*;

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

    pub(super) fn run(args: &Args, bin: PathBuf) -> i32 {
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
        super::prompt_loop(
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
}
