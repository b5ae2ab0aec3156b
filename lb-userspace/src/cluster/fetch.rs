//! The blocking fetches behind the [`probe`](super::probe)s: bytes from charon's VICI
//! socket, from the kernel's XFRM netlink family, or from a command. The parsers in
//! `probe.rs` turn them into counts; the driver runs these on a blocking thread.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use netlink_packet_core::{Emitable, NLM_F_REQUEST, NetlinkHeader};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_XFRM};

use super::probe::{
    CommandProbe, Fixed, ProbeError, SaProbe, ViciFormat, ViciProbe, XfrmFormat, XfrmProbe, xfrm,
};
use crate::config::ProbeCfg;

const TIMEOUT: Duration = Duration::from_secs(2);

/// Everything charon streams for `list-sas` (our VICI client registers for `list-sa`
/// events, sends the command, reads up to its response and unregisters).
pub fn vici_list_sas(socket: &Path) -> io::Result<Vec<u8>> {
    let raw = crate::vici::Client::connect(socket, TIMEOUT).and_then(|mut c| c.list_sas_raw());
    raw.map_err(|e| match e {
        crate::vici::ViciError::Io(e) => e,
        e => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
    })
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
    fn command_probe_runs_the_shell() {
        let mut p = probe(&ProbeCfg::Command("echo 42".into()));
        assert_eq!(p.active_sas().unwrap(), 42);
        let mut p = probe(&ProbeCfg::Command("exit 3".into()));
        assert!(p.active_sas().is_err());
        let mut p = probe(&ProbeCfg::Fixed(7));
        assert_eq!(p.active_sas().unwrap(), 7);
    }
}
