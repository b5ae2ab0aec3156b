//! Captured client requests (`tests/fixtures/*.hex`), made by the `capture-fixtures`
//! binary from real strongSwan and libreswan initiators.
//!
//! Format: a first line `# <description>`, then the whole Ethernet frame as
//! whitespace-separated hex bytes (further `#` lines are comments).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// Every captured fixture, by name (file stem).
pub const CAPTURED: &[&str] = &[
    "strongswan_v4_500",
    "strongswan_v6_500",
    "strongswan_v4_4500",
    "libreswan_v4_500",
    "libreswan_v6_500",
    "libreswan_v4_4500",
];

/// `<crate>/fixtures`.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The frame of fixture `name` (e.g. `"strongswan_v4_500"`). Panics with the path when it
/// is missing or malformed: fixtures are committed, so that is a bug, not a condition.
pub fn fixture(name: &str) -> Vec<u8> {
    match load(name) {
        Ok((_, frame)) => frame,
        Err(e) => panic!("fixture {name}: {e:#}"),
    }
}

/// Description and frame of fixture `name`.
pub fn load(name: &str) -> Result<(String, Vec<u8>)> {
    let path = dir().join(format!("{name}.hex"));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    parse(&text).with_context(|| format!("parse {}", path.display()))
}

/// Parses the fixture format.
pub fn parse(text: &str) -> Result<(String, Vec<u8>)> {
    let mut desc = None;
    let mut frame = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(c) = line.strip_prefix('#') {
            desc.get_or_insert_with(|| c.trim().to_string());
            continue;
        }
        for word in line.split_whitespace() {
            if word.len() % 2 != 0 {
                bail!("odd-length hex word {word:?}");
            }
            for i in (0..word.len()).step_by(2) {
                let b = u8::from_str_radix(&word[i..i + 2], 16)
                    .with_context(|| format!("bad hex {word:?}"))?;
                frame.push(b);
            }
        }
    }
    let Some(desc) = desc else {
        bail!("no `# description` line");
    };
    if frame.is_empty() {
        bail!("no frame bytes");
    }
    Ok((desc, frame))
}

/// Formats a fixture: description line, then 16 bytes per line.
pub fn format(desc: &str, frame: &[u8]) -> String {
    let mut s = format!("# {}\n", desc.replace('\n', " "));
    for chunk in frame.chunks(16) {
        let words: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        s.push_str(&words.join(" "));
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn format_round_trip() {
        let frame: Vec<u8> = (0..=255u8).chain(0..7).collect();
        let text = super::format("a frame", &frame);
        assert_eq!(super::parse(&text).unwrap(), ("a frame".into(), frame));
        assert!(super::parse("00 11\n").is_err());
        assert!(super::parse("# x\n0 11\n").is_err());
    }
}
