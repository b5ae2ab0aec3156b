//! The `ikelb` command line: its definition ([`Cli`]), from which `main.rs` runs and
//! the man pages and shell completions are rendered ([`generate`]), and the log setup.

pub mod generate;
pub mod logging;

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::XdpModeCfg;
use generate::Generate;

/// What the binary was asked to do: a documented command, or the hidden `generate`.
pub enum Invocation {
    Cli(Cli),
    Generate(Generate),
}

/// The parser of the binary: [`Cli`] and the hidden `generate`, which stays out of the
/// pages and completions it renders (they describe [`Cli`] alone).
pub fn command() -> clap::Command {
    Cli::command().subcommand(Generate::command())
}

/// Parses the process arguments; exits with clap's message on an error or `--help`.
pub fn parse() -> Invocation {
    let m = command().get_matches();
    let r = match m.subcommand() {
        Some(("generate", g)) => Generate::from_arg_matches(g).map(Invocation::Generate),
        _ => Cli::from_arg_matches(&m).map(Invocation::Cli),
    };
    r.unwrap_or_else(|e| e.format(&mut command()).exit())
}

/// The documented command line.
#[derive(Parser)]
#[command(
    name = "ikelb",
    version,
    about = "IKEv2 cluster load balancer (XDP RFC 5685 redirects)",
    long_about = "IKEv2 cluster load balancer. Several gateways share a virtual IP (VIP): an \
        XDP program on the VIP owner answers IKE_SA_INIT with an RFC 5685 REDIRECT to a \
        member gateway, VRRPv3 elects the owner, the members report their load over an \
        authenticated exchange, and clients that cannot follow a redirect are forwarded \
        in XDP.\n\n`ikelb run` is the daemon on a VIP node, `ikelb member` the load \
        reporter of a gateway that never owns the VIP; the other commands inspect and \
        steer a running instance through its control socket."
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Load and attach the fast path on an interface (or take over the one a handover
    /// kept) and serve until SIGINT/SIGTERM; SIGHUP reloads the configuration, SIGUSR2
    /// hands over as `ikelb restart` does.
    Run {
        /// Network interface carrying the VIP (overrides [dataplane].iface).
        #[arg(long)]
        iface: Option<String>,
        /// TOML configuration file.
        #[arg(long)]
        config: PathBuf,
        /// native, skb or auto (overrides [dataplane].xdp-mode).
        #[arg(long)]
        xdp_mode: Option<XdpModeCfg>,
        /// TEST ONLY: write the IKE session keys of the userspace responder to this
        /// new file (it must not exist; mode 0600) as tshark `ikev2_decryption_table`
        /// rows. Only this flag enables it, never the environment.
        #[arg(long)]
        ike_keylog: Option<PathBuf>,
        /// Replace the program on a kept link even when it is the same build (it is
        /// replaced anyway when it differs); resets its unpinned state (rate buckets).
        #[arg(long)]
        replace_program: bool,
    },
    /// Exit leaving the fast path (XDP program, maps, table) and the VIPs to the next
    /// `ikelb run` on the interface, which takes them over without a gap. Exit status
    /// 75: with systemd, `RestartForceExitStatus=75` starts the next one at once.
    Restart {
        #[command(flatten)]
        at: Socket,
    },
    /// Remove what a handover left on an interface that no `ikelb run` took over: the
    /// XDP link, the pinned maps and the VIPs it held.
    Detach {
        #[arg(long)]
        iface: String,
    },
    /// Print the fast-path counters of a running instance (from its pinned maps).
    Stats {
        #[arg(long)]
        iface: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Validate a configuration file and print what it would install.
    CheckConfig { config: PathBuf },
    /// Time the redirect program against an XDP_TX reflector with BPF_PROG_TEST_RUN.
    Bench {
        /// Single-repetition runs per program.
        #[arg(long, default_value_t = 200_000)]
        calls: u32,
        /// Repetitions of the restore harness.
        #[arg(long, default_value_t = 1_000_000)]
        repeat: u32,
        #[arg(long)]
        json: bool,
        /// Also time the `ikelb_xdp` of this object file (e.g. one built from an older
        /// commit, with the same maps) in the same run, for a before/after comparison.
        #[arg(long)]
        baseline_object: Option<PathBuf>,
    },
    /// Simulate the target choice (10 000 clients in bursts onto 8 members of unequal
    /// capacity, 1 s reports): max/mean utilisation for ikelb, round robin and "always
    /// the least loaded". Also part of `ikelb bench`; needs no BPF.
    Simulate {
        #[arg(long)]
        json: bool,
    },
    /// Run only the cluster's load reporter ([cluster] of the config): a member that
    /// is not a VIP candidate.
    Member {
        /// The cluster configuration; optional with --decap alone.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Unwrap the balancer's IP-in-IP to this member's addresses in XDP (the kernel
        /// needs no tunnel modules; docs/architecture.md §6.4).
        #[arg(long)]
        decap: bool,
        /// The interface for --decap (default: the configuration's [dataplane].iface).
        #[arg(long)]
        iface: Option<String>,
    },
    /// Show a running instance's state: config generation and last reload, roles,
    /// members, fast-path counters.
    Status {
        #[command(flatten)]
        at: Socket,
        #[arg(long)]
        json: bool,
    },
    /// Re-read the running instance's configuration file and apply it all or nothing
    /// (as SIGHUP does), without detaching XDP.
    Reload {
        #[command(flatten)]
        at: Socket,
    },
    /// Stop new redirects to a cluster member from the next table rebuild on; its
    /// established tunnels stay. A member drains itself through its own socket.
    Drain {
        /// The member id ([cluster] member-id).
        member: u32,
        /// Log, this many seconds from now, how many SAs the member still holds.
        #[arg(long, value_name = "SECONDS")]
        deadline: Option<u64>,
        #[command(flatten)]
        migrate: MigrateArgs,
        #[command(flatten)]
        at: Socket,
    },
    /// Give a drained member new clients again.
    Undrain {
        member: u32,
        #[command(flatten)]
        at: Socket,
    },
    /// Flood responders (XDP_TX reflector, ikelb, libreswan) with IKE_SA_INIT requests
    /// from an in-kernel generator over a veth pair in fresh namespaces; count answers.
    Flood(crate::flood::cli::Args),
    /// Attach a pass-through XDP program (for a veth peer, so XDP_TX frames arrive)
    /// and hold it until SIGINT/SIGTERM.
    AttachPass {
        #[arg(long)]
        iface: String,
    },
}

/// `ikelb drain --migrate` and its pacing.
#[derive(Args)]
pub struct MigrateArgs {
    /// Also move the member's established IKE SAs to the other members (RFC 5685
    /// redirects of the active sessions, over strongSwan's VICI); only through the
    /// member's own socket. Prints the progress until it ends.
    #[arg(long)]
    pub migrate: bool,
    /// SAs redirected per batch.
    #[arg(long, default_value_t = 50, requires = "migrate")]
    pub batch: u32,
    /// Time between batches (500ms, 1s, 2m).
    #[arg(long, default_value = "1s", requires = "migrate",
          value_parser = crate::cluster::migrate::cli::parse_interval)]
    pub interval: std::time::Duration,
    /// Return once the migration has started instead of following its progress.
    #[arg(long, requires = "migrate")]
    pub no_wait: bool,
}

/// Which running instance a control command goes to.
#[derive(Args)]
pub struct Socket {
    /// The instance on this interface (socket /run/ikelb/<iface>.sock).
    #[arg(long)]
    iface: Option<String>,
    /// The control socket ([status].socket), e.g. a member's.
    #[arg(long)]
    socket: Option<PathBuf>,
}

impl Socket {
    /// The socket named, or the default one of the interface (or of a plain `ikelb`).
    pub fn path(self) -> PathBuf {
        self.socket.unwrap_or_else(|| {
            crate::status::default_socket(self.iface.as_deref().or(Some("ikelb")), None)
        })
    }
}
