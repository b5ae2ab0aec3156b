//! Idempotent installation of what the build and the tests need on a fresh Debian
//! machine: apt packages, then bpf-linker. Each step is skipped when already done.

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
];

/// The rustc that ships a precompiled `core` for bpfel-unknown-none.
pub const BPF_RUSTC: &str = "/usr/bin/rustc";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
const BPF_LINKER_VERSION: &str = "0.13.0";
const CARGO_DENY_VERSION: &str = "0.20.2";

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

/// cargo-deny for the licence, ban and source checks of `cargo xtask test` (from the
/// registry, into the user's cargo bin; no root needed).
pub fn ensure_cargo_deny() -> Result<()> {
    let ok = Command::new(cargo())
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(CARGO_DENY_VERSION));
    if !ok {
        println!("== installing cargo-deny {CARGO_DENY_VERSION} (a few minutes)");
        exec(Command::new(cargo()).args([
            "install",
            "cargo-deny",
            "--locked",
            "--version",
            CARGO_DENY_VERSION,
        ]))?;
    }
    Ok(())
}
