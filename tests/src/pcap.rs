//! Minimal classic pcap (libpcap 2.4) writer and reader, Ethernet link type only.

use anyhow::{Result, bail};

/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// A pcap file holding `frames` (Ethernet), one per millisecond from t = 0.
pub fn write(frames: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
        let usec = u32::try_from(i % 1000 * 1000).unwrap_or(0);
        let sec = u32::try_from(i / 1000).unwrap_or(0);
        out.extend_from_slice(&sec.to_le_bytes());
        out.extend_from_slice(&usec.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// The frames of a classic pcap file (either byte order, µs or ns timestamps); fails
/// on other link types and on truncated records.
pub fn read(data: &[u8]) -> Result<Vec<Vec<u8>>> {
    let Some(magic) = data.get(..4) else {
        bail!("pcap shorter than its magic");
    };
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => bail!("not a classic pcap file (magic {magic:02x?})"),
    };
    let u32_at = |at: usize| -> Result<u32> {
        let b: [u8; 4] = data
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| anyhow::anyhow!("pcap truncated at {at}"))?;
        Ok(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let link = u32_at(20)?;
    if link != LINKTYPE_ETHERNET {
        bail!("pcap link type {link}, want Ethernet ({LINKTYPE_ETHERNET})");
    }
    let mut frames = Vec::new();
    let mut at = 24;
    while at < data.len() {
        let incl = u32_at(at + 8)? as usize;
        let orig = u32_at(at + 12)? as usize;
        let body = data
            .get(at + 16..at + 16 + incl)
            .ok_or_else(|| anyhow::anyhow!("pcap record at {at} truncated"))?;
        if incl != orig {
            bail!("pcap record at {at} was cut by the snap length ({incl} of {orig})");
        }
        frames.push(body.to_vec());
        at += 16 + incl;
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let a = vec![1u8; 60];
        let b = vec![2u8; 99];
        let file = super::write(&[&a, &b]);
        assert_eq!(super::read(&file).unwrap(), vec![a, b]);
        assert!(super::read(&file[..file.len() - 1]).is_err());
    }
}
