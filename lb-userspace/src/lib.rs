//! ikelb daemon library: configuration, dataplane control and the protocol state
//! machines. `main.rs` is only the CLI on top.
pub mod bench;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod flood;
pub mod frames;
pub mod ike;
pub mod listen;
pub mod metrics;
pub mod net;
pub mod radius;
pub mod rtnl;
pub mod status;
pub mod target;
pub mod vici;
pub mod vrrp;
