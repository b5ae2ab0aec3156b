//! The blocking fetches behind the [`probe`](super::probe)s: bytes from charon's VICI
//! socket, from the kernel's XFRM netlink family, or from a command. The parsers in
//! `probe.rs` turn them into counts; the driver runs these on a blocking thread.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// The kernel's `XFRM_MSG_NEWSADINFO` answer.
pub fn xfrm_sadinfo() -> io::Result<Vec<u8>> {
    // SAFETY: plain socket(2); owned right away.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_XFRM,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut m = Vec::new();
    m.extend_from_slice(&20u32.to_ne_bytes());
    m.extend_from_slice(&xfrm::XFRM_MSG_GETSADINFO.to_ne_bytes());
    m.extend_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // SAFETY: a zeroed sockaddr_nl addressed to the kernel; m is valid.
    let n = unsafe {
        let mut sa: libc::sockaddr_nl = std::mem::zeroed();
        sa.nl_family = libc::AF_NETLINK as u16;
        libc::sendto(
            fd.as_raw_fd(),
            m.as_ptr().cast(),
            m.len(),
            0,
            (&raw const sa).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 4096];
    // SAFETY: reading into a buffer we own.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
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
