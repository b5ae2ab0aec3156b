//! Wire formats, map layouts and constants shared by the XDP program (`lb-ebpf`) and
//! userspace (`lb-userspace`). `no_std` so the kernel side can use every byte offset and
//! every map type described here; the `user` feature adds std and `aya::Pod` impls.
#![no_std]

#[cfg(feature = "user")]
extern crate std;

pub mod checksum;
pub mod encap;
pub mod flood;
pub mod forward;
#[cfg(any(feature = "user", test))]
pub mod maglev;
pub mod maps;
pub mod wire;
