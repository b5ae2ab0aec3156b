//! Idempotent installation of what the build and the tests need on a fresh Debian
//! machine: apt packages, then bpf-linker, and the cargo tools the checks and the
//! package need. Each step is skipped when already done.

use std::process::Command;

use anyhow::{Result, bail};

use crate::cmd::{cargo, exec};

/// Debian packages: the bpf `core` and rustc to build the kernel crate, LLVM for
/// bpf-linker, BPF and network tools, and the real peers the tests run.
const APT: &[&str] = &[
    "rustc-web",
    "libstd-rust-web-dev-bpf",
    "llvm-22-dev",
    "clang-22",
    "bpftool",
    "iproute2",
    "ethtool",
    "tcpdump",
    "tshark",
    "libreswan",
    "strongswan-swanctl",
    "libstrongswan-standard-plugins",
    "libnss3-tools",
    "keepalived",
    // RADIUS server for the EAP tests (each test runs its own, with its own config).
    "freeradius",
    // Used by the tests: test PKI (openssl genpkey, pkcs12) and UDP probes (python3).
    "openssl",
    "python3",
    // `cargo xtask deb` and its test: strip (cargo-deb), systemd-analyze, groff.
    "binutils",
    "systemd",
    "groff-base",
];

/// The rustc that ships a precompiled `core` for bpfel-unknown-none.
pub const BPF_RUSTC: &str = "/usr/bin/rustc";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
const BPF_LINKER_VERSION: &str = "0.13.0";
const CARGO_DENY_VERSION: &str = "0.20.2";
const CARGO_DEB_VERSION: &str = "3.8.0";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn bpf_linker_ok() -> bool {
    Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION))
}

/// Installs whatever is missing. Needs root only when something is missing.
pub fn ensure() -> Result<()> {
    let missing: Vec<&str> = APT.iter().copied().filter(|p| !installed(p)).collect();
    let linker = !bpf_linker_ok();
    if missing.is_empty() && !linker {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing build dependencies ({}{}): run this command as root once to install them",
            missing.join(" "),
            if linker { " bpf-linker" } else { "" }
        );
    }
    if !missing.is_empty() {
        println!("== installing {}", missing.join(" "));
        exec(Command::new("apt-get").args(["update", "-q"]))?;
        exec(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&missing),
        )?;
    }
    if linker {
        println!("== installing bpf-linker {BPF_LINKER_VERSION} (a few minutes)");
        exec(
            Command::new(cargo())
                .env("LLVM_PREFIX", LLVM_PREFIX)
                .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
                .args(["--no-default-features", "--features", "llvm-22"]),
        )?;
    }
    Ok(())
}

/// cargo-deny for the licence, ban and source checks of `cargo xtask test`.
pub fn ensure_cargo_deny() -> Result<()> {
    ensure_cargo_tool("deny", CARGO_DENY_VERSION)
}

/// cargo-deb for `cargo xtask deb`.
pub fn ensure_cargo_deb() -> Result<()> {
    ensure_cargo_tool("deb", CARGO_DEB_VERSION)
}

/// Installs `cargo-<name>` at `version` (from the registry, with its own lock file,
/// into the user's cargo bin; no root needed) unless that version answers already.
fn ensure_cargo_tool(name: &str, version: &str) -> Result<()> {
    let ok = Command::new(cargo())
        .args([name, "--version"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(version));
    if !ok {
        println!("== installing cargo-{name} {version} (a few minutes)");
        exec(
            Command::new(cargo())
                .args(["install", &format!("cargo-{name}"), "--locked"])
                .args(["--version", version]),
        )?;
    }
    Ok(())
}
