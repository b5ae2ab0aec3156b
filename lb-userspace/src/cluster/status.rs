//! The load exchange's part of the status report: what the driver publishes and
//! `ikelb status` and `/metrics` read (data only, so the driver and the mixed-pool
//! arithmetic both depend on it and not on each other).

use std::net::SocketAddr;

use lb_common::wire::load::Figures;

use super::migrate;

/// One row of the member table as `ikelb status` prints it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct MemberRow {
    pub id: u32,
    pub local: bool,
    pub addr: Option<SocketAddr>,
    pub identities: Vec<String>,
    #[serde(flatten)]
    pub figures: Figures,
    /// Percent of the slot table.
    pub share_pct: f64,
    pub slots: u32,
    pub last_heard_ms: u64,
    /// Redirects the fast path sent to it (cumulative).
    pub redirects: u64,
}

/// The exchange's part of `ikelb status`.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Status {
    pub member_id: u32,
    pub transport: String,
    pub sent: u64,
    pub accepted: u64,
    pub dropped: Vec<(String, u64)>,
    pub probe_errors: u64,
    pub members: Vec<MemberRow>,
    pub held_out: Vec<u32>,
    /// Slot-table rebuilds that changed the table.
    pub installs: u64,
    /// Members drained on this node (`ikelb drain`), with the seconds left to their
    /// deadline.
    pub drained: Vec<(u32, Option<u64>)>,
    /// This member's latest migration (`ikelb drain --migrate`).
    pub migration: Option<migrate::Progress>,
    /// A mixed pool's static targets, with their share of the table.
    pub statics: Vec<StaticRow>,
}

/// A static target in a mixed pool, as `ikelb status` shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StaticRow {
    pub name: String,
    pub identity: String,
    pub share_pct: f64,
    pub slots: u32,
}
