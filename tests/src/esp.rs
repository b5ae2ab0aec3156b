//! Does this kernel hold ESP SAs? (docs/testing.md §3.1: CONFIG_INET_ESP may be
//! missing.)

use std::sync::OnceLock;

use anyhow::Result;

use crate::netns::Netns;

/// Result of [`probe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Esp {
    /// `ip xfrm state add … proto esp` works: clients can install their own ESP SAs.
    Available,
    /// It fails (netlink error 38, ENOSYS, without CONFIG_INET_ESP): strongSwan needs
    /// kernel-libipsec and a libreswan client cannot install its CHILD SA.
    Missing,
}

/// Probes once per process, in a scratch namespace: add a throwaway ESP state, then flush.
pub fn probe() -> Result<Esp> {
    static CACHE: OnceLock<Esp> = OnceLock::new();
    if let Some(e) = CACHE.get() {
        return Ok(*e);
    }
    let ns = Netns::new("espprobe")?;
    let added = ns.ip(&[
        "xfrm",
        "state",
        "add",
        "src",
        "10.200.255.1",
        "dst",
        "10.200.255.2",
        "proto",
        "esp",
        "spi",
        "0x1000",
        "mode",
        "tunnel",
        "enc",
        "cbc(aes)",
        "0x00112233445566778899aabbccddeeff",
        "auth",
        "hmac(sha256)",
        "0x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    ]);
    let _ = ns.ip(&["xfrm", "state", "flush"]);
    let esp = if added.is_ok() {
        Esp::Available
    } else {
        Esp::Missing
    };
    Ok(*CACHE.get_or_init(|| esp))
}
