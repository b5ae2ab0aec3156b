//! `cargo xtask`: build (installing what is missing), run, lab, test, flood, fuzz, soak,
//! bench, deb.

mod build;
mod cmd;
mod deb;
mod deps;

use std::process::Command;

use anyhow::Result;
use clap::{Parser, Subcommand};

use cmd::{cargo, exec, root};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install missing build dependencies (root), build the eBPF object and `ikelb`.
    Build,
    /// Build, then `ikelb run` with the given arguments (e.g. `-- --iface eth1 --config ikelb.toml`).
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build, then start the netns lab: the VRRP cluster (two VIP candidates and a member,
    /// all strongSwan responders with live load), real clients arriving, the status table
    /// refreshed, `kill-master` at the prompt (Ctrl-C ends it).
    Lab {
        /// Connect every client once, print the result and exit (0 only if all landed).
        #[arg(long)]
        once: bool,
        /// The single-VIP-node lab (static targets, IPv4 and IPv6 clients) instead.
        #[arg(long = "static")]
        static_lab: bool,
        /// Cluster lab: number of IPv4 clients (3..=20, default 6).
        #[arg(long)]
        clients: Option<u32>,
        /// native, skb or auto.
        #[arg(long)]
        xdp_mode: Option<String>,
    },
    /// Everything CI runs: format and lint checks, unit tests, root BPF and netns tests.
    Test,
    /// Build, then flood an XDP_TX reflector, ikelb and libreswan with IKE_SA_INIT
    /// requests from the in-kernel generator (`ikelb flood`, e.g. `-- --json`).
    Flood {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build, then fuzz the fast path: structure-aware mutants of the real-client
    /// corpus and synthetic requests through the XDP program (test_run), the reference
    /// model and the userspace parser, checking every property on each (root).
    Fuzz {
        /// Mutants to run (the CI test runs 20 000 within 40 s).
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        /// Seed of the run (decimal or 0x-hex); the same seed gives the same mutants.
        #[arg(long, default_value = "0x1ce1b5eed0000001")]
        seed: String,
    },
    /// Build, then the chaos soak (root): four ikelb nodes, a steady request stream,
    /// random SIGKILLs, restarts and link cuts; checks the table, the answers, panics
    /// and memory (`cargo xtask test` runs it for 60 s).
    Soak {
        /// How long the soak runs (10..=3600 s).
        #[arg(long, default_value_t = 300)]
        seconds: u64,
        /// Seed of the failure schedule.
        #[arg(long, default_value_t = 0x50a6_0001)]
        seed: u64,
    },
    /// Build, then time the redirect program against an XDP_TX reflector.
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build, then the Debian package (cargo-deb) in target/debian/; arguments after
    /// `--` go to cargo-deb (e.g. `-- --maintainer "Name <mail>" --deb-revision 2`).
    Deb {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Build => {
            build::all()?;
        }
        Cmd::Run { args } => {
            let b = build::all()?;
            let mut c = Command::new(b.ikelb);
            c.arg("run").args(args);
            exec(&mut c)?;
        }
        Cmd::Lab {
            once,
            static_lab,
            clients,
            xdp_mode,
        } => {
            let b = build::all()?;
            // Ctrl-C reaches the lab too (same process group); we wait for its teardown
            // instead of dying first and handing the prompt back mid-teardown.
            // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
            unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
            let mut c = Command::new(b.bin("ikelb-lab"));
            c.arg("--ikelb").arg(&b.ikelb);
            if once {
                c.arg("--once");
            }
            if static_lab {
                c.arg("--static");
            }
            if let Some(n) = clients {
                c.args(["--clients", &n.to_string()]);
            }
            if let Some(m) = xdp_mode {
                c.args(["--xdp-mode", &m]);
            }
            exec(&mut c)?;
        }
        Cmd::Test => test()?,
        Cmd::Flood { args } => {
            let b = build::all()?;
            let mut c = Command::new(&b.ikelb);
            c.arg("flood").args(args);
            exec(&mut c)?;
        }
        Cmd::Fuzz { count, seed } => {
            let b = build::all()?;
            println!("== fuzz: {count} mutants, seed {seed}");
            exec(
                b.env(&mut Command::new(cargo()))
                    .current_dir(root())
                    .env("IKELB_FUZZ", "1")
                    .env("IKELB_MUTANTS", count.to_string())
                    .env("IKELB_MUTATION_SEED", &seed)
                    .args([
                        "test",
                        "--locked",
                        "--release",
                        "-p",
                        "ikelb-tests",
                        "--lib",
                    ])
                    .args([
                        "--",
                        "--exact",
                        "tests::xdp_fixtures_mutation::xdp_fixtures_mutation",
                    ])
                    .args(["--test-threads", "1", "--nocapture"]),
            )?;
        }
        Cmd::Soak { seconds, seed } => {
            let b = build::all()?;
            exec(
                b.env(&mut Command::new(cargo()))
                    .current_dir(root())
                    .env("IKELB_SOAK_SECS", seconds.to_string())
                    .env("IKELB_SOAK_SEED", seed.to_string())
                    .args(["test", "--locked", "-p", "ikelb-tests", "--lib"])
                    .args([
                        "--",
                        "--exact",
                        "tests::soak::soak_random_kills_restarts_and_link_cuts",
                    ])
                    .args(["--test-threads", "1", "--nocapture"]),
            )?;
        }
        Cmd::Bench { args } => {
            let b = build::all()?;
            let mut c = Command::new(&b.ikelb);
            c.arg("bench").args(args);
            exec(&mut c)?;
        }
        Cmd::Deb { args } => {
            let b = build::all()?;
            deb::package(&b, &args)?;
        }
    }
    Ok(())
}

fn test() -> Result<()> {
    let b = build::all()?;
    // Built once here; the package test (tests::package) inspects this one.
    let deb = deb::package(&b, &[])?;
    let cargo = cargo();
    println!("== format");
    exec(
        Command::new(&cargo)
            .current_dir(root())
            .args(["fmt", "--all", "--", "--check"]),
    )?;
    deps::ensure_cargo_deny()?;
    println!("== licences, bans and sources (cargo deny; deny.toml)");
    exec(
        Command::new(&cargo)
            .current_dir(root())
            .args(["deny", "--locked", "check", "licenses", "bans", "sources"]),
    )?;
    println!("== clippy");
    exec(
        b.env(&mut Command::new(&cargo))
            .current_dir(root())
            .args(["clippy", "--locked", "--workspace", "--exclude", "lb-ebpf"])
            .args(["--all-targets", "--", "-D", "warnings"]),
    )?;
    println!("== unit tests");
    exec(
        b.env(&mut Command::new(&cargo))
            .current_dir(root())
            .args(["test", "--locked", "--workspace", "--exclude", "lb-ebpf"])
            .args(["--exclude", "ikelb-tests"]),
    )?;
    println!("== root tests: BPF_PROG_TEST_RUN fixtures and netns end to end");
    exec(
        b.env(&mut Command::new(&cargo))
            .current_dir(root())
            .env("IKELB_DEB", &deb)
            .args(["test", "--locked", "-p", "ikelb-tests"])
            .args(["--", "--test-threads", "1"]),
    )?;
    Ok(())
}
