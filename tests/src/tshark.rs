//! Decoding frames with tshark, the independent oracle for what we send and capture.

use std::path::Path;

use anyhow::{Context, Result};

use crate::{cmd, pcap};

/// Decodes Ethernet `frames` with `tshark -V -O isakmp` (full detail for IKE, summary
/// lines for the rest) and returns its text.
pub fn decode(frames: &[&[u8]]) -> Result<String> {
    let dir = std::env::temp_dir().join(format!("ikelb-tshark-{}", crate::netns::unique_tag()));
    std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let file = dir.join("frames.pcap");
    let res = std::fs::write(&file, pcap::write(frames))
        .with_context(|| format!("write {}", file.display()))
        .and_then(|()| decode_file(&file));
    let _ = std::fs::remove_dir_all(&dir);
    res
}

/// `tshark -V -O isakmp -r <file>`; 4500 is decoded as IKE after a non-ESP marker by
/// tshark's own UDP-encapsulation dissector.
pub fn decode_file(file: &Path) -> Result<String> {
    let mut c = cmd::command("tshark", ["-n", "-V", "-O", "isakmp", "-r"]);
    c.arg(file);
    cmd::run(&mut c)
}

/// Decodes one frame.
pub fn decode_one(frame: &[u8]) -> Result<String> {
    decode(&[frame])
}
