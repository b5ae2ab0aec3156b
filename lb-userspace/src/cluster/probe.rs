//! Where a member's active-SA count comes from: a [`SaProbe`] the driver polls before
//! each report. Each probe here is a fetch (bytes from a socket or a command, supplied
//! by the driver as a closure) and a pure parser of those bytes, which is what the
//! tests cover:
//! - strongSwan VICI `list-sas`: [`vici_list_sas`] over the raw response stream
//!   ([`crate::vici`] decodes it), or
//!   [`swanctl_list_sas_raw`] over `swanctl --list-sas --raw` text;
//! - the kernel's XFRM state count: [`xfrm_sadinfo`] over the `XFRM_MSG_NEWSADINFO`
//!   answer to `XFRM_MSG_GETSADINFO`, or [`xfrm_dump`] over an `XFRM_MSG_GETSA` dump;
//! - a command's output: [`command_output`], one integer.

use std::io;

use crate::vici::ViciError;

/// Why no count came out.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("fetching the SA count: {0}")]
    Io(#[from] io::Error),
    #[error("malformed {what} at byte {at}")]
    Malformed { what: &'static str, at: usize },
    #[error("the answer ended before the command's response")]
    Incomplete,
    #[error("the daemon does not know the command or event")]
    Unknown,
    #[error("`{0}` is not a count")]
    NotANumber(String),
}

/// Counts from a `list-sas` answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaCount {
    /// Every IKE SA listed.
    pub ike_sas: u32,
    /// Those in state ESTABLISHED: the load a member reports.
    pub established: u32,
}

/// Something that says how many IKE SAs this member carries.
pub trait SaProbe {
    fn active_sas(&mut self) -> Result<u32, ProbeError>;
}

/// A fixed count: for members without a probe, and for tests.
#[derive(Clone, Copy, Debug)]
pub struct Fixed(pub u32);

impl SaProbe for Fixed {
    fn active_sas(&mut self) -> Result<u32, ProbeError> {
        Ok(self.0)
    }
}

/// The form of a strongSwan answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViciFormat {
    /// The packets charon wrote on the VICI socket after `list-sas`.
    Stream,
    /// `swanctl --list-sas --raw` output.
    SwanctlRaw,
}

/// strongSwan: established IKE SAs from `list-sas`.
pub struct ViciProbe<F> {
    pub fetch: F,
    pub format: ViciFormat,
}

impl<F: FnMut() -> io::Result<Vec<u8>>> SaProbe for ViciProbe<F> {
    fn active_sas(&mut self) -> Result<u32, ProbeError> {
        let bytes = (self.fetch)()?;
        let c = match self.format {
            ViciFormat::Stream => vici_list_sas(&bytes)?,
            ViciFormat::SwanctlRaw => swanctl_list_sas_raw(&String::from_utf8_lossy(&bytes)),
        };
        Ok(c.established)
    }
}

/// The form of a netlink XFRM answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XfrmFormat {
    /// `XFRM_MSG_NEWSADINFO` (one message, the kernel's own count).
    SadInfo,
    /// An `XFRM_MSG_GETSA` dump, counted message by message.
    Dump,
}

/// The kernel's SA count, divided by `states_per_sa` (2 for one CHILD_SA per IKE SA:
/// an inbound and an outbound state).
pub struct XfrmProbe<F> {
    pub fetch: F,
    pub format: XfrmFormat,
    pub states_per_sa: u32,
}

impl<F: FnMut() -> io::Result<Vec<u8>>> SaProbe for XfrmProbe<F> {
    fn active_sas(&mut self) -> Result<u32, ProbeError> {
        let bytes = (self.fetch)()?;
        let states = match self.format {
            XfrmFormat::SadInfo => xfrm_sadinfo(&bytes)?,
            XfrmFormat::Dump => xfrm_dump(&bytes)?,
        };
        Ok(states / self.states_per_sa.max(1))
    }
}

/// A command's standard output, one integer.
pub struct CommandProbe<F> {
    pub fetch: F,
}

impl<F: FnMut() -> io::Result<Vec<u8>>> SaProbe for CommandProbe<F> {
    fn active_sas(&mut self) -> Result<u32, ProbeError> {
        command_output(&(self.fetch)()?)
    }
}

/// Counts the IKE SAs in the VICI stream charon sends after a client registered for
/// `list-sa` events and sent `list-sas` ([`crate::vici::sa::list_sas_stream`]).
pub fn vici_list_sas(stream: &[u8]) -> Result<SaCount, ProbeError> {
    let sas = crate::vici::sa::list_sas_stream(stream)?;
    let n = |k: usize| u32::try_from(k).unwrap_or(u32::MAX);
    Ok(SaCount {
        ike_sas: n(sas.len()),
        established: n(sas.iter().filter(|s| s.established()).count()),
    })
}

impl From<ViciError> for ProbeError {
    fn from(e: ViciError) -> Self {
        match e {
            ViciError::Io(e) => ProbeError::Io(e),
            ViciError::Wire(w) => ProbeError::Malformed {
                what: w.what,
                at: w.at,
            },
            ViciError::Incomplete => ProbeError::Incomplete,
            ViciError::Unknown(_) => ProbeError::Unknown,
            ViciError::Unexpected(what) => ProbeError::Malformed { what, at: 0 },
        }
    }
}

/// Counts the IKE SAs in `swanctl --list-sas --raw` output: lines
/// `list-sa event {NAME {… state=ESTABLISHED … child-sas {…}}}`. Text formatting is
/// not a stable interface (values are printed unquoted, so an identity with braces
/// confuses it): prefer [`vici_list_sas`] where the socket is reachable.
pub fn swanctl_list_sas_raw(text: &str) -> SaCount {
    let mut count = SaCount::default();
    for line in text.lines() {
        let Some(body) = line.trim_start().strip_prefix("list-sa event") else {
            continue;
        };
        // `{` opens the message (depth 1), then each IKE SA (depth 2), then deeper
        // sections; a key at depth 2 follows a space or the IKE SA's `{`.
        let b = body.as_bytes();
        let mut depth = 0usize;
        for (i, &c) in b.iter().enumerate() {
            match c {
                b'{' => {
                    depth += 1;
                    if depth == 2 {
                        count.ike_sas += 1;
                    }
                }
                b'}' => depth = depth.saturating_sub(1),
                b's' if depth == 2 && i > 0 && matches!(b[i - 1], b' ' | b'{') => {
                    let rest = &b[i..];
                    let end = rest
                        .iter()
                        .position(|&c| c == b' ' || c == b'}')
                        .unwrap_or(rest.len());
                    if &rest[..end] == b"state=ESTABLISHED" {
                        count.established += 1;
                    }
                }
                _ => {}
            }
        }
    }
    count
}

/// Netlink and XFRM numbers (`linux/netlink.h`, `linux/xfrm.h`).
pub mod xfrm {
    pub const NLMSG_HDRLEN: usize = 16;
    pub const NLMSG_ERROR: u16 = 2;
    pub const NLMSG_DONE: u16 = 3;
    pub const XFRM_MSG_NEWSA: u16 = 0x10;
    pub const XFRM_MSG_NEWSADINFO: u16 = 0x22;
    pub const XFRM_MSG_GETSADINFO: u16 = 0x23;
    /// `XFRMA_SAD_CNT` in `enum xfrm_sadattr_type_t`: a u32.
    pub const XFRMA_SAD_CNT: u16 = 1;
}

/// Netlink messages in `buf` (native byte order, 4-byte aligned): (type, payload).
fn netlink_messages(buf: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), ProbeError>> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at >= buf.len() {
            return None;
        }
        let err = ProbeError::Malformed {
            what: "netlink message",
            at,
        };
        let Some(h) = buf.get(at..at + xfrm::NLMSG_HDRLEN) else {
            at = buf.len();
            return Some(Err(err));
        };
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let kind = u16::from_ne_bytes([h[4], h[5]]);
        let Some(payload) = (len >= xfrm::NLMSG_HDRLEN)
            .then(|| buf.get(at + xfrm::NLMSG_HDRLEN..at + len))
            .flatten()
        else {
            at = buf.len();
            return Some(Err(err));
        };
        at += len.next_multiple_of(4);
        Some(Ok((kind, payload)))
    })
}

/// The kernel's SA count from the `XFRM_MSG_NEWSADINFO` answer (what `ip xfrm state
/// count` prints): a u32 of flags, then attributes, of which `XFRMA_SAD_CNT`.
pub fn xfrm_sadinfo(buf: &[u8]) -> Result<u32, ProbeError> {
    for m in netlink_messages(buf) {
        let (kind, payload) = m?;
        match kind {
            xfrm::XFRM_MSG_NEWSADINFO => {
                let mut at = 4;
                while let Some(h) = payload.get(at..at + 4) {
                    let len = usize::from(u16::from_ne_bytes([h[0], h[1]]));
                    let ty = u16::from_ne_bytes([h[2], h[3]]) & 0x3fff;
                    let bad = ProbeError::Malformed {
                        what: "XFRM attribute",
                        at,
                    };
                    let v = payload
                        .get(at + 4..at + len)
                        .filter(|_| len >= 4)
                        .ok_or(bad)?;
                    if ty == xfrm::XFRMA_SAD_CNT {
                        let v: [u8; 4] = v.try_into().map_err(|_| ProbeError::Malformed {
                            what: "XFRMA_SAD_CNT",
                            at,
                        })?;
                        return Ok(u32::from_ne_bytes(v));
                    }
                    at += len.next_multiple_of(4);
                }
                return Err(ProbeError::Malformed {
                    what: "XFRM_MSG_NEWSADINFO without XFRMA_SAD_CNT",
                    at: 0,
                });
            }
            xfrm::NLMSG_ERROR => return Err(ProbeError::Unknown),
            _ => {}
        }
    }
    Err(ProbeError::Incomplete)
}

/// Counts the `XFRM_MSG_NEWSA` messages of a dump up to its `NLMSG_DONE`.
pub fn xfrm_dump(buf: &[u8]) -> Result<u32, ProbeError> {
    let mut n = 0u32;
    for m in netlink_messages(buf) {
        match m?.0 {
            xfrm::XFRM_MSG_NEWSA => n += 1,
            xfrm::NLMSG_DONE => return Ok(n),
            xfrm::NLMSG_ERROR => return Err(ProbeError::Unknown),
            _ => {}
        }
    }
    Err(ProbeError::Incomplete)
}

/// A command's output: one unsigned integer, surrounding whitespace allowed.
pub fn command_output(out: &[u8]) -> Result<u32, ProbeError> {
    let s = String::from_utf8_lossy(out);
    let t = s.trim();
    t.parse()
        .map_err(|_| ProbeError::NotANumber(t.chars().take(40).collect()))
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
