//! The blocking fetches behind the [`probe`](super::probe)s: bytes from charon's VICI
//! socket, from the kernel's XFRM netlink family, or from a command. The parsers in
//! `probe.rs` turn them into counts; the driver runs these on a blocking thread.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use netlink_packet_core::{Emitable, NLM_F_REQUEST, NetlinkHeader};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_XFRM};

use super::probe::{
    CommandProbe, Fixed, ProbeError, SaProbe, ViciFormat, ViciProbe, XfrmFormat, XfrmProbe, vici,
    xfrm,
};
use crate::config::ProbeCfg;

const TIMEOUT: Duration = Duration::from_secs(2);

fn vici_packet(kind: u8, name: &str) -> Vec<u8> {
    let mut body = vec![kind, name.len() as u8];
    body.extend_from_slice(name.as_bytes());
    let mut p = (body.len() as u32).to_be_bytes().to_vec();
    p.extend_from_slice(&body);
    p
}

/// Registers for `list-sa` events, sends `list-sas` and returns everything charon
/// wrote up to and including the command's response.
pub fn vici_list_sas(socket: &Path) -> io::Result<Vec<u8>> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    s.write_all(&vici_packet(vici::EVENT_REGISTER, "list-sa"))?;
    s.write_all(&vici_packet(vici::CMD_REQUEST, "list-sas"))?;
    let mut out = Vec::new();
    loop {
        let mut len = [0u8; 4];
        s.read_exact(&mut len)?;
        let n = u32::from_be_bytes(len) as usize;
        if n > 16 << 20 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "VICI packet too large",
            ));
        }
        let mut body = vec![0u8; n];
        s.read_exact(&mut body)?;
        let kind = body.first().copied();
        out.extend_from_slice(&len);
        out.extend_from_slice(&body);
        if let Some(vici::CMD_RESPONSE | vici::CMD_UNKNOWN) = kind {
            return Ok(out);
        }
    }
}

/// The kernel's `XFRM_MSG_NEWSADINFO` answer. The request stays hand-built: a netlink
/// header and one u32, whose answer the sans-IO parser in `probe.rs` reads as bytes.
pub fn xfrm_sadinfo() -> io::Result<Vec<u8>> {
    let sock = Socket::new(NETLINK_XFRM)?;
    sock.connect(&SocketAddr::new(0, 0))?;
    let mut h = NetlinkHeader::default();
    h.length = 20;
    h.message_type = xfrm::XFRM_MSG_GETSADINFO;
    h.flags = NLM_F_REQUEST;
    h.sequence_number = 1;
    // The body: a u32 of flags, none.
    let mut m = vec![0u8; 20];
    h.emit(&mut m);
    sock.send(&m, 0)?;
    let mut buf = vec![0u8; 4096];
    let n = sock.recv(&mut &mut buf[..], 0)?;
    buf.truncate(n.min(4096));
    Ok(buf)
}

/// `sh -c command`'s standard output; a failing command is an error.
pub fn command(cmd: &str) -> io::Result<Vec<u8>> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "`{cmd}` exited with {}",
            out.status
        )));
    }
    Ok(out.stdout)
}

/// The probe a config names.
pub fn probe(cfg: &ProbeCfg) -> Box<dyn SaProbe + Send> {
    match cfg.clone() {
        ProbeCfg::Fixed(n) => Box::new(Fixed(n)),
        ProbeCfg::Vici(path) => {
            let path: PathBuf = path;
            Box::new(ViciProbe {
                fetch: move || vici_list_sas(&path),
                format: ViciFormat::Stream,
            })
        }
        ProbeCfg::Xfrm => Box::new(XfrmProbe {
            fetch: xfrm_sadinfo,
            format: XfrmFormat::SadInfo,
            states_per_sa: 2,
        }),
        ProbeCfg::Command(c) => Box::new(CommandProbe {
            fetch: move || command(&c),
        }),
    }
}

/// For callers that want the error type spelled out.
pub type ProbeResult = Result<u32, ProbeError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vici_request_packets() {
        let p = vici_packet(vici::CMD_REQUEST, "list-sas");
        assert_eq!(&p[..4], &10u32.to_be_bytes());
        assert_eq!(p[4], vici::CMD_REQUEST);
        assert_eq!(p[5], 8);
        assert_eq!(&p[6..], b"list-sas");
    }

    #[test]
    fn command_probe_runs_the_shell() {
        let mut p = probe(&ProbeCfg::Command("echo 42".into()));
        assert_eq!(p.active_sas().unwrap(), 42);
        let mut p = probe(&ProbeCfg::Command("exit 3".into()));
        assert!(p.active_sas().is_err());
        let mut p = probe(&ProbeCfg::Fixed(7));
        assert_eq!(p.active_sas().unwrap(), 7);
    }
}
