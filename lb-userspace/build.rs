//! Embeds the XDP object named by IKELB_EBPF_OBJ (set by `cargo xtask build`); without
//! it an empty stub is embedded so check, clippy and unit tests work on a fresh clone.
use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=IKELB_EBPF_OBJ");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR")).join("ikelb.bpf.o");
    match env::var_os("IKELB_EBPF_OBJ") {
        Some(src) => {
            println!("cargo:rerun-if-changed={}", PathBuf::from(&src).display());
            fs::copy(&src, &out).expect("copy the eBPF object named by IKELB_EBPF_OBJ");
        }
        None => {
            println!(
                "cargo:warning=IKELB_EBPF_OBJ unset: embedding an empty eBPF object (use `cargo xtask build`)"
            );
            fs::write(&out, b"").expect("write the stub object");
        }
    }
}
