//! Target choice: who clients are redirected to, and in which proportions. Every user
//! of it goes through here:
//!
//! - [`identity`]: the gateway identity, as configured, reported and mapped;
//! - [`Target`] and its [`Owner`]: one identity with its slot-table weight, owned by a
//!   static `[[target]]` or a cluster member;
//! - [`weights`]: the members' shares from their load reports (headroom, the
//!   composition of crypto and system load, in-flight redirects, slow start);
//! - [`tables`]: weighted slot tables per address family, as the XDP program indexes
//!   them;
//! - [`choice`]: the same choice in userspace (the IKE responder's [`TargetChooser`]);
//! - [`simulate`]: the policies compared on a simulated cluster (`ikelb simulate`).

pub mod choice;
pub mod headroom;
pub mod identity;
pub mod simulate;
pub mod tables;
pub mod weights;

pub use choice::{GatewayIdentity, TargetChooser};
pub use identity::Identity;

/// Whose target an entry is: the key of its index in the target map (so counters stay
/// with it across table rebuilds) and of its redirect counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// A configured `[[target]]`, by name.
    Static(String),
    /// A cluster member, by member id.
    Member(u32),
}

impl Owner {
    /// The owner of a printed name (a target-name file a previous process wrote):
    /// `member-<id>` is a member (the name a mixed pool refuses for a static target).
    pub fn from_printed(name: &str) -> Owner {
        match name.strip_prefix("member-").map(str::parse) {
            Some(Ok(id)) => Owner::Member(id),
            _ => Owner::Static(name.to_string()),
        }
    }
}

impl std::fmt::Display for Owner {
    /// The name `ikelb status` and `ikelb stats` print (and Maglev hashes).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Static(name) => f.write_str(name),
            Owner::Member(id) => write!(f, "member-{id}"),
        }
    }
}

/// One gateway identity to install, with its slot-table weight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub owner: Owner,
    pub identity: Identity,
    pub weight: u32,
}

/// A configured `[[target]]`: its entry (weight as configured) and its capacity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticTarget {
    pub target: Target,
    /// SAs it takes, in a mixed pool beside `[cluster]` members: it reports nothing, so
    /// its share is fixed, capacity × weight, as a member's is headroom × weight.
    pub capacity: u32,
}
