//! `cargo xtask deb`: the Debian package. cargo-deb packages what `cargo xtask build`
//! built (the XDP object is embedded in `ikelb`), with the man pages and completions
//! that the built binary renders from its own command line (`ikelb generate`).
//! The package's contents are listed in `lb-userspace/Cargo.toml`
//! ([package.metadata.deb]); units, example configs and maintainer scripts in `dist/`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::build::{self, Built};
use crate::{deps, exec, root};

/// Renders the generated files, then packages the build `b`; returns the .deb's path.
pub fn package(b: &Built, cargo_deb_args: &[String]) -> Result<PathBuf> {
    deps::ensure_cargo_deb()?;
    println!("== man pages and completions (ikelb generate)");
    // The metadata's `target/release/ikelb-dist/...`: cargo-deb maps `target/release`
    // to the real target directory, as we do.
    let dist = build::target_dir().join("release/ikelb-dist");
    // A page of a command that is gone must not ship.
    match std::fs::remove_dir_all(&dist) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", dist.display()));
        }
        _ => {}
    }
    let man = Command::new(&b.ikelb)
        .args(["generate", "man", "--out"])
        .arg(dist.join("man"))
        .output()
        .context("spawn ikelb generate man")?;
    if !man.status.success() {
        bail!("ikelb generate man failed: {}", man.status);
    }
    // Debian ships pages compressed (cargo-deb compresses only pages from the source
    // tree); -n keeps name and time out, so the package is reproducible.
    let pages: Vec<&str> = std::str::from_utf8(&man.stdout)?.lines().collect();
    if pages.is_empty() {
        bail!("ikelb generate man wrote no page");
    }
    exec(Command::new("gzip").args(["-9nf"]).args(&pages))?;
    for shell in ["bash", "zsh", "fish"] {
        exec(
            Command::new(&b.ikelb)
                .args(["generate", "completions", shell, "--out"])
                .arg(dist.join("completions"))
                .stdout(Stdio::null()),
        )?;
    }
    println!("== packaging (cargo deb)");
    let mut c = Command::new(crate::cmd::cargo());
    c.current_dir(root())
        .args(["deb", "--locked", "--no-build", "-p", "lb-userspace"])
        .args(cargo_deb_args)
        .stderr(Stdio::inherit());
    let line = format!("{c:?}");
    let out = c.output().with_context(|| format!("spawn {line}"))?;
    if !out.status.success() {
        bail!("{line} failed: {}", out.status);
    }
    // cargo-deb prints the path of the package it wrote, last.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let deb = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.ends_with(".deb"))
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .with_context(|| format!("{line} named no package it wrote: {stdout}"))?;
    println!("{}", deb.display());
    Ok(deb)
}
