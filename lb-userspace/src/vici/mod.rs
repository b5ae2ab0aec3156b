//! Our own client of strongSwan's Versatile IKE Control Interface (VICI), the versioned
//! interface charon serves on a unix socket (`/var/run/charon.vici` by default).
//! `wire` is the format, sans-IO; `sa` the messages ikelb uses (`list-sas` to read the
//! IKE SAs, `redirect` to move one to another gateway); `client` the blocking driver.
//! The load probe counts SAs with it, and `ikelb drain --migrate` moves them.

pub mod client;
pub mod sa;
pub mod wire;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

pub use client::{Client, DEFAULT_SOCKET};
pub use sa::{IkeSa, Redirect, RedirectAnswer};

/// Why a VICI exchange gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ViciError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    #[error("the answer ended before the command's response")]
    Incomplete,
    #[error("charon does not know the {0}")]
    Unknown(&'static str),
    #[error("unexpected VICI packet: {0}")]
    Unexpected(&'static str),
}
