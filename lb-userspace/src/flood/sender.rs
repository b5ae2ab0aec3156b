//! Which sender makes a flood's requests: live-frames test_run where the kernel runs
//! it, AF_XDP where it refuses (lockdown), and the OS error kept in every message.

use aya::programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp};

use super::{FloodError, Netns, Sender, threads};

/// The sender a flood used, and why when it is not the one asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    pub sender: Sender,
    pub note: Option<String>,
}

/// Picks the sender: `probe` tries a live-frames run and says why it failed.
pub fn choose(
    asked: Sender,
    probe: impl FnOnce() -> Result<(), String>,
) -> Result<Chosen, FloodError> {
    let chosen = |sender, note| Ok(Chosen { sender, note });
    match asked {
        Sender::Afxdp => chosen(Sender::Afxdp, None),
        Sender::Live => match probe() {
            Ok(()) => chosen(Sender::Live, None),
            Err(e) => Err(FloodError::Setup(format!(
                "the kernel refuses live-frames test_run ({e}); use --sender afxdp or auto"
            ))),
        },
        Sender::Auto => match probe() {
            Ok(()) => chosen(Sender::Live, None),
            Err(e) => chosen(
                Sender::Afxdp,
                Some(format!(
                    "live-frames test_run refused ({e}): AF_XDP sender used"
                )),
            ),
        },
    }
}

/// The error and every cause under it: aya's own message drops the OS error.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// One live-frames run of the generator while its (zeroed) limit makes it send
/// nothing: Err names the OS error when the kernel refuses live frames.
pub(super) fn probe_live(prog: &Xdp, ns: &Netns, ifindex: u32) -> Result<(), String> {
    let frame = [0u8; 64];
    let md = threads::xdp_md(frame.len(), ifindex, 0);
    ns.enter(|| {
        prog.test_run(TestRunOptions {
            data_in: Some(&frame),
            ctx_in: Some(&md),
            repeat: 1,
            attrs: TestRunAttrs::new().xdp_live_frames(1),
            ..TestRunOptions::new()
        })
    })
    .map_err(|e| e.to_string())?
    .map(drop)
    .map_err(|e| chain(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_falls_back_to_afxdp_naming_the_error() {
        let refused =
            || Err("`bpf_prog_test_run` failed: Operation not permitted (os error 1)".to_string());
        let c = choose(Sender::Auto, refused).unwrap();
        assert_eq!(c.sender, Sender::Afxdp);
        assert!(c.note.unwrap().contains("os error 1"));
        assert_eq!(
            choose(Sender::Auto, || Ok(())).unwrap(),
            Chosen {
                sender: Sender::Live,
                note: None
            }
        );
        let e = choose(Sender::Live, refused).unwrap_err().to_string();
        assert!(
            e.contains("Operation not permitted") && e.contains("--sender afxdp"),
            "{e}"
        );
        // AF_XDP asked for: no probe at all.
        let c = choose(Sender::Afxdp, || panic!("probed")).unwrap();
        assert_eq!(c.sender, Sender::Afxdp);
    }

    #[test]
    fn chain_keeps_the_os_error() {
        let e = aya::programs::ProgramError::SyscallError(aya::sys::SyscallError {
            call: "bpf_prog_test_run",
            io_error: std::io::Error::from_raw_os_error(libc::EPERM),
        });
        assert!(chain(&e).contains("os error 1"), "{}", chain(&e));
    }
}
