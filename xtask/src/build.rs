//! Builds the eBPF object with Debian's rustc (precompiled bpf `core`, no rust-src
//! needed) and bpf-linker, then userspace with the object embedded.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::cmd::{cargo, exec, root};
use crate::deps;

/// What a build produced.
pub struct Built {
    pub ebpf_obj: PathBuf,
    pub ikelb: PathBuf,
}

impl Built {
    /// A release binary of the workspace.
    pub fn bin(&self, name: &str) -> PathBuf {
        target_dir().join("release").join(name)
    }
    /// Sets the variables every cargo call needs to see the same build (a change in
    /// IKELB_EBPF_OBJ would rebuild lb-userspace).
    pub fn env<'a>(&self, c: &'a mut Command) -> &'a mut Command {
        c.env("IKELB_EBPF_OBJ", &self.ebpf_obj)
            .env("IKELB_BIN", &self.ikelb)
    }
}

/// Cargo's target directory: CARGO_TARGET_DIR if set, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => root().join(d),
        None => root().join("target"),
    }
}

/// Dependencies, eBPF object, then `ikelb` and the lab binaries in release mode.
pub fn all() -> Result<Built> {
    deps::ensure()?;
    let ebpf_obj = ebpf()?;
    let b = Built {
        ikelb: target_dir().join("release/ikelb"),
        ebpf_obj,
    };
    println!("== building ikelb");
    exec(
        b.env(&mut Command::new(cargo()))
            .current_dir(root())
            .args(["build", "--release", "--locked", "-p", "lb-userspace"])
            .args(["-p", "ikelb-tests", "--bins"]),
    )?;
    Ok(b)
}

fn ebpf() -> Result<PathBuf> {
    println!("== building the XDP object");
    let mut c = Command::new(cargo());
    c.current_dir(root().join("lb-ebpf"))
        .env("RUSTC", deps::BPF_RUSTC)
        // aya-ebpf uses a feature gate; Debian's rustc is a stable one.
        .env("RUSTC_BOOTSTRAP", "1")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "bpfel-unknown-none",
        ])
        .args([
            "--target-dir",
            "../target/ebpf",
            "--message-format=json-render-diagnostics",
        ])
        .args([
            "--config",
            r#"target.bpfel-unknown-none.linker="bpf-linker""#,
        ])
        .args([
            "--config",
            r#"target.bpfel-unknown-none.rustflags=["-C","debuginfo=2","-C","link-arg=--btf","-D","warnings"]"#,
        ])
        .stdout(Stdio::piped());
    let line = format!("{c:?}");
    let out = c.output().with_context(|| format!("spawn {line}"))?;
    if !out.status.success() {
        bail!("{line} failed: {}", out.status);
    }
    let mut obj = None;
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
            continue;
        };
        if v["reason"] == "compiler-artifact" && v["target"]["name"] == "ikelb" {
            obj = v["executable"].as_str().map(PathBuf::from);
        }
    }
    obj.context("the eBPF build produced no `ikelb` object")
}
