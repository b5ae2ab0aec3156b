//! tcpdump inside a namespace, as a guard: start it, do something, take the frames.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cmd;
use crate::daemon::Daemon;
use crate::netns::Netns;
use crate::pcap;

/// A running `tcpdump -U -w` on one interface of a namespace.
#[derive(Debug)]
pub struct Capture {
    daemon: Daemon,
    pcap: PathBuf,
}

impl Capture {
    /// Starts tcpdump on `ns:iface` with BPF `filter`, writing `<dir>/<name>.pcap`; stops
    /// by itself after `count` frames when given. Returns once tcpdump is listening.
    pub fn start(
        ns: &Netns,
        iface: &str,
        filter: &str,
        count: Option<u32>,
        dir: &Path,
        name: &str,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
        let pcap = dir.join(format!("{name}.pcap"));
        let _ = std::fs::remove_file(&pcap);
        let mut c = ns.exec("tcpdump");
        c.args(["-i", iface, "-n", "-U", "--immediate-mode", "-s", "0"]);
        if let Some(n) = count {
            c.args(["-c", &n.to_string()]);
        }
        c.arg("-w").arg(&pcap).arg(filter);
        let mut daemon = Daemon::spawn(
            &format!("tcpdump {name}"),
            c,
            &dir.join(format!("{name}.tcpdump.log")),
        )?;
        daemon.wait_log("listening on", Duration::from_secs(10))?;
        Ok(Capture { daemon, pcap })
    }

    /// Waits up to `timeout` for tcpdump to stop on its own (after `count` frames).
    pub fn wait_done(&mut self, timeout: Duration) -> Result<()> {
        let log = self.daemon.log.clone();
        cmd::wait_for("tcpdump to capture its frames", timeout, || {
            Ok(self.daemon.exited().is_some())
        })
        .with_context(|| cmd::tail(&log, 10))
    }

    /// Stops tcpdump (if still running) and returns the frames it wrote.
    pub fn finish(mut self) -> Result<Vec<Vec<u8>>> {
        // -U writes each packet as it comes; give the last one a moment before SIGTERM.
        std::thread::sleep(Duration::from_millis(100));
        self.daemon.stop();
        let data =
            std::fs::read(&self.pcap).with_context(|| format!("read {}", self.pcap.display()))?;
        pcap::read(&data)
    }

    pub fn pcap_path(&self) -> &Path {
        &self.pcap
    }
}
