//! Wire formats, map layouts and constants shared by the XDP program (`lb-ebpf`) and
//! userspace (`lb-userspace`). `no_std` so the kernel side can use every byte offset and
//! every map type described here; the `user` feature adds std and `aya::Pod` impls.
#![no_std]

#[cfg(feature = "user")]
extern crate std;

/// `aya::Pod` (what aya needs to copy a map value) for types that derive
/// `bytemuck::Pod`: the derive proves at compile time what `aya::Pod` asks (`repr(C)`,
/// no padding, every bit pattern valid), so no layout claim rests on a comment.
#[macro_export]
#[doc(hidden)]
macro_rules! aya_pod {
    ($($t:ty),* $(,)?) => {
        $(
            #[cfg(feature = "user")]
            const _: () = {
                const fn proven<T: bytemuck::Pod>() {}
                proven::<$t>();
            };
            // SAFETY: `$t` is `bytemuck::Pod`, checked just above.
            #[cfg(feature = "user")]
            unsafe impl aya::Pod for $t {}
        )*
    };
}

pub mod checksum;
pub mod encap;
pub mod flood;
pub mod forward;
pub mod hash;
#[cfg(any(feature = "user", test))]
pub mod maglev;
pub mod maps;
pub mod wire;
