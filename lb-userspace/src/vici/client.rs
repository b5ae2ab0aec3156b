//! A blocking VICI client over charon's unix socket: one command at a time (VICI has no
//! request ids), every read and write under a timeout. Callers run it on a thread of
//! their own (the SA probe, a migration).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::ViciError;
use super::sa::{IkeSa, LIST_SA_EVENT, Redirect, RedirectAnswer, list_sas_stream};
use super::wire::{MAX_SEGMENT, Message, Packet};

/// charon's default socket (`charon.plugins.vici.socket`).
pub const DEFAULT_SOCKET: &str = "/var/run/charon.vici";

/// How much a streamed answer may hold in all: 128 segments of the largest size, far
/// beyond any real `list-sas` of one gateway, and a bound against a runaway peer.
const MAX_STREAM: usize = 128 * MAX_SEGMENT;

pub struct Client {
    s: UnixStream,
}

impl Client {
    /// Connects to the socket at `path`; `timeout` bounds every later read and write.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Client, ViciError> {
        let s = UnixStream::connect(path).map_err(|e| {
            io::Error::new(e.kind(), format!("VICI socket {}: {e}", path.display()))
        })?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        Ok(Client { s })
    }

    fn send(&mut self, p: &Packet) -> Result<(), ViciError> {
        let bytes = p
            .encode()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(self.s.write_all(&bytes)?)
    }

    /// One segment, header included.
    fn recv_raw(&mut self) -> Result<Vec<u8>, ViciError> {
        let mut seg = vec![0u8; 4];
        self.s.read_exact(&mut seg)?;
        let len = u32::from_be_bytes([seg[0], seg[1], seg[2], seg[3]]) as usize;
        if len > MAX_SEGMENT {
            return Err(ViciError::Wire(super::wire::WireError {
                what: "segment length (over 512 KiB)",
                at: 0,
            }));
        }
        seg.resize(4 + len, 0);
        self.s.read_exact(&mut seg[4..])?;
        Ok(seg)
    }

    fn recv(&mut self) -> Result<Packet, ViciError> {
        let seg = self.recv_raw()?;
        Ok(Packet::decode(&seg[4..]).map_err(|e| e.shifted(4))?)
    }

    /// Registers for (or, `on` false, unregisters from) event `name`.
    fn event(&mut self, name: &str, on: bool) -> Result<(), ViciError> {
        let n = name.as_bytes().to_vec();
        self.send(&if on {
            Packet::EventRegister(n)
        } else {
            Packet::EventUnregister(n)
        })?;
        loop {
            match self.recv()? {
                Packet::EventConfirm => return Ok(()),
                Packet::EventUnknown => return Err(ViciError::Unknown("event")),
                // An event of an earlier registration may still arrive.
                Packet::Event { .. } => {}
                _ => return Err(ViciError::Unexpected("answer to an event registration")),
            }
        }
    }

    /// Sends command `name` and returns its response; events in between are skipped.
    pub fn command(&mut self, name: &str, msg: Message) -> Result<Message, ViciError> {
        self.send(&Packet::CmdRequest {
            name: name.as_bytes().to_vec(),
            msg,
        })?;
        loop {
            match self.recv()? {
                Packet::CmdResponse(m) => return Ok(m),
                Packet::CmdUnknown => return Err(ViciError::Unknown("command")),
                Packet::Event { .. } => {}
                _ => return Err(ViciError::Unexpected("answer to a command")),
            }
        }
    }

    /// `list-sas`: the raw segments charon streams (the `list-sa` events and the final
    /// response), for [`list_sas_stream`]. Registers for the event first and
    /// unregisters after, as the protocol asks.
    pub fn list_sas_raw(&mut self) -> Result<Vec<u8>, ViciError> {
        self.event(LIST_SA_EVENT, true)?;
        self.send(&Packet::CmdRequest {
            name: b"list-sas".to_vec(),
            msg: Message::default(),
        })?;
        let mut out = Vec::new();
        loop {
            let seg = self.recv_raw()?;
            let end = matches!(
                seg.get(4).copied(),
                Some(super::wire::packet::CMD_RESPONSE | super::wire::packet::CMD_UNKNOWN)
            );
            out.extend_from_slice(&seg);
            if end {
                break;
            }
            if out.len() > MAX_STREAM {
                return Err(ViciError::Unexpected("list-sas answer over 64 MiB"));
            }
        }
        self.event(LIST_SA_EVENT, false)?;
        Ok(out)
    }

    /// Every IKE SA charon holds.
    pub fn list_sas(&mut self) -> Result<Vec<IkeSa>, ViciError> {
        list_sas_stream(&self.list_sas_raw()?)
    }

    /// Asks charon to redirect one IKE SA (RFC 5685 §5: a REDIRECT in an INFORMATIONAL
    /// of the active session).
    pub fn redirect(&mut self, r: &Redirect) -> Result<RedirectAnswer, ViciError> {
        Ok(RedirectAnswer::of(&self.command("redirect", r.message())?))
    }
}
