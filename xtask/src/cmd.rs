//! What every task runs commands with: the workspace root, the cargo that runs us, and
//! `exec`, which fails with the command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent directory")
        .to_path_buf()
}

/// The cargo that runs us (rustup's), or `cargo`.
pub fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| "cargo".into(), PathBuf::from)
}

/// Runs `cmd`, failing with its full command line when it fails.
pub fn exec(cmd: &mut Command) -> Result<()> {
    let line = format!("{cmd:?}");
    let st = cmd.status().with_context(|| format!("spawn {line}"))?;
    if !st.success() {
        bail!("{line} failed: {st}");
    }
    Ok(())
}
