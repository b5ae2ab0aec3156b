//! What ikelb reads and asks of charon over VICI, sans-IO: the IKE SAs of a `list-sas`
//! stream, and the `redirect` command with its answer.

use std::net::IpAddr;

use super::ViciError;
use super::wire::{Message, Packet, split_segment};

/// The event each IKE SA of `list-sas` comes in.
pub const LIST_SA_EVENT: &str = "list-sa";

/// One IKE SA of a `list-sa` event. Fields charon left out or sent malformed are
/// `None`/empty: such an SA is still counted, but not redirected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IkeSa {
    /// The connection's name (the section's name).
    pub name: String,
    /// charon's unique id, the `ike-id` selector of `redirect`.
    pub uniqueid: Option<u32>,
    /// IKE version, 1 or 2.
    pub version: Option<u8>,
    /// `ESTABLISHED`, `CONNECTING`, `REKEYING`, …
    pub state: String,
    /// Whether this end initiated the SA.
    pub initiator: bool,
    pub local_host: Option<IpAddr>,
    pub remote_host: Option<IpAddr>,
    pub remote_id: String,
}

impl IkeSa {
    /// The SA as one top-level section of a `list-sa` message describes it.
    pub fn from_section(name: &[u8], m: &Message) -> IkeSa {
        let ip = |k| m.str(k).and_then(|s| s.parse().ok());
        IkeSa {
            name: String::from_utf8_lossy(name).into_owned(),
            uniqueid: m.str("uniqueid").and_then(|s| s.parse().ok()),
            version: m.str("version").and_then(|s| s.parse().ok()),
            state: m.str("state").unwrap_or_default().to_string(),
            initiator: m.str("initiator") == Some("yes"),
            local_host: ip("local-host"),
            remote_host: ip("remote-host"),
            remote_id: m.str("remote-id").unwrap_or_default().to_string(),
        }
    }

    pub fn established(&self) -> bool {
        self.state == "ESTABLISHED"
    }
}

/// The IKE SAs in the packets charon sends after a client registered for `list-sa`
/// events and sent `list-sas`: an optional EVENT_CONFIRM, one `list-sa` EVENT per IKE
/// SA, and the CMD_RESPONSE that ends the stream. Other events are skipped. Offsets in
/// errors count from the start of `stream`.
pub fn list_sas_stream(stream: &[u8]) -> Result<Vec<IkeSa>, ViciError> {
    let mut at = 0usize;
    let mut sas = Vec::new();
    while let Some((body, used)) = split_segment(&stream[at..]).map_err(|e| e.shifted(at))? {
        let start = at + 4;
        at += used;
        match Packet::decode(body).map_err(|e| e.shifted(start))? {
            Packet::CmdResponse(_) => return Ok(sas),
            Packet::CmdUnknown => return Err(ViciError::Unknown("command list-sas")),
            Packet::EventUnknown => return Err(ViciError::Unknown("event list-sa")),
            Packet::EventConfirm => {}
            Packet::Event { name, msg } => {
                if name == LIST_SA_EVENT.as_bytes() {
                    sas.extend(msg.sections().map(|(n, m)| IkeSa::from_section(n, m)));
                }
            }
            Packet::CmdRequest { .. } | Packet::EventRegister(_) | Packet::EventUnregister(_) => {
                return Err(ViciError::Unexpected("a client's packet"));
            }
        }
    }
    Err(ViciError::Incomplete)
}

/// A `redirect` of one IKE SA: both selectors must match (charon ANDs them), so a
/// unique id that a restarted charon gave to another peer's SA redirects nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub ike_id: u32,
    pub peer_ip: IpAddr,
    /// The gateway identity the REDIRECT names: an IPv4 or IPv6 address or an FQDN.
    pub gateway: String,
}

impl Redirect {
    pub fn message(&self) -> Message {
        Message::default()
            .kv("ike-id", self.ike_id.to_string())
            .kv("peer-ip", self.peer_ip.to_string())
            .kv("gateway", &self.gateway)
    }
}

/// charon's answer to `redirect`. `success` only says that a redirect job was queued
/// for each match: whether the peer follows shows later, in `list-sas`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedirectAnswer {
    pub success: bool,
    pub matches: u32,
    pub errmsg: Option<String>,
}

impl RedirectAnswer {
    pub fn of(m: &Message) -> RedirectAnswer {
        RedirectAnswer {
            success: m.str("success") == Some("yes"),
            matches: m.str("matches").and_then(|s| s.parse().ok()).unwrap_or(0),
            errmsg: m.str("errmsg").map(str::to_string),
        }
    }
}
