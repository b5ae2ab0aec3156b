//! Root-only test support for ikelb: network namespaces, real IKE peers (strongSwan
//! charon, libreswan pluto), packet decoding with tshark, captured client fixtures and a
//! reusable lab topology ([`lab::Lab`]) that the end-to-end tests and `cargo xtask lab`
//! share.
//!
//! Everything that touches the system runs external tools (`ip`, `ethtool`, `tcpdump`,
//! `swanctl`, `ipsec`) with the whole command line in its error, and every resource is a
//! guard that undoes itself on drop, panics included. Daemons are stopped by the pid we
//! recorded, never by name.
//!
//! Running (as root; the crate is not a default member):
//!
//! ```text
//! cargo xtask build                  # or IKELB_BIN=/path/to/ikelb
//! cargo test -p ikelb-tests          # unit + fixtures + lab + e2e, ~5 s once built
//! cargo test -p ikelb-tests e2e      # only the ikelb end-to-end tests
//! cargo run -p ikelb-tests --bin capture-fixtures   # re-capture tests/fixtures/*.hex
//! cargo run --release -p ikelb-tests --bin ikelb-lab -- [--once] [--xdp-mode skb]
//!                                    # the interactive lab behind `cargo xtask lab`
//! ```
//!
//! The first run downloads Debian's strongSwan charon packages with `apt-get download`
//! into `<workspace>/target/peers/` (docs/testing.md §4.1). Non-root runs skip everything that
//! needs root. `IKELB_TESTS_KEEP=1` keeps every lab's configs and logs (they are always
//! kept when a test panics; the failure message names the directory).

pub mod capture;
pub mod cmd;
pub mod daemon;
pub mod esp;
pub mod fixtures;
pub mod lab;
pub mod netns;
pub mod pcap;
pub mod peers;
pub mod ping;
pub mod tshark;

pub use fixtures::fixture;

use std::path::PathBuf;

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .map_or(here.clone(), std::path::Path::to_path_buf)
}

/// `<workspace>/target`: where the peers' private root lives and where `ikelb` is built.
/// Fixed on purpose, whatever `CARGO_TARGET_DIR` says, so every build shares one root.
pub fn workspace_target() -> PathBuf {
    workspace_root().join("target")
}

/// True when running as root (needed for namespaces, XDP and the IKE daemons).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Returns early from a test, with a message, unless it runs as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            eprintln!(
                "SKIPPED {}: needs root (network namespaces, XDP, IKE daemons)",
                module_path!()
            );
            return;
        }
    };
}

#[cfg(test)]
mod tests;
