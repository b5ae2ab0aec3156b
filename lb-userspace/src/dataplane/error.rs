//! What can go wrong between the daemon and the kernel's BPF and XDP interfaces.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error(
        "this ikelb binary was built without its eBPF object: build it with `cargo xtask build`"
    )]
    NoObject,
    #[error("loading the eBPF object: {0}")]
    Load(String),
    #[error("{path}: {what}")]
    Pin { path: PathBuf, what: String },
    #[error("map {0}: {1}")]
    Map(String, String),
    #[error("program {0}: {1}")]
    Program(String, String),
    #[error("attach XDP to {iface} ({mode}): {what}")]
    Attach {
        iface: String,
        mode: &'static str,
        what: String,
    },
    #[error("keeping the fast path for the next process: {0}")]
    Keep(String),
    #[error("taking over the fast path the previous process kept: {0}")]
    TakeOver(String),
    #[error("{0}")]
    Io(String),
}

pub(super) fn map_err(name: &str) -> impl Fn(aya::maps::MapError) -> DataplaneError + '_ {
    move |e| DataplaneError::Map(name.into(), e.to_string())
}
