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

mod args;
mod cluster;
mod console;
mod static_lab;

use std::path::PathBuf;

use args::{Args, USAGE, parse_args, resolve_ikelb};
use console::install_signal_handlers;

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
    if args.static_lab {
        static_lab::run(args, bin)
    } else {
        cluster::run(args, bin)
    }
}
