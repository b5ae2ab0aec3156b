//! This node's system load for its reports: CPU from `/proc/stat` deltas, memory in use
//! from `/proc/meminfo`. What cannot be read counts as 0 (idle): the crypto load still
//! guards the member, and a missing file must not take it out of the table.

use super::LocalLoad;

/// Samples this node's load; the CPU share is over the time since the last sample.
#[derive(Default)]
pub(super) struct Sampler {
    /// (total, idle) jiffies of the last sample.
    cpu_last: Option<(u64, u64)>,
}

impl Sampler {
    /// A sample with `active_sas` from the SA probe.
    pub(super) fn sample(&mut self, active_sas: u32) -> LocalLoad {
        let read = |p| std::fs::read_to_string(p).unwrap_or_default();
        LocalLoad {
            active_sas,
            cpu_permille: self.cpu(&read("/proc/stat")),
            memory_permille: memory_permille(&read("/proc/meminfo")).unwrap_or(0),
        }
    }

    /// Busy per mille of all CPUs since the last call, from `/proc/stat` text (its
    /// first line: user nice system idle iowait …); 0 on the first call.
    fn cpu(&mut self, stat: &str) -> u16 {
        let Some(line) = stat.lines().next().filter(|l| l.starts_with("cpu ")) else {
            return 0;
        };
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let total: u64 = v.iter().sum();
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        let r = match self.cpu_last {
            Some((t0, i0)) if total > t0 => {
                let dt = total - t0;
                let busy = dt.saturating_sub(idle.saturating_sub(i0));
                u16::try_from(busy * 1000 / dt).unwrap_or(1000)
            }
            _ => 0,
        };
        self.cpu_last = Some((total, idle));
        r
    }
}

/// Memory in use per mille, `1 − MemAvailable / MemTotal`, from `/proc/meminfo` text.
fn memory_permille(meminfo: &str) -> Option<u16> {
    let kib = |key: &str| -> Option<u64> {
        let line = meminfo.lines().find(|l| l.starts_with(key))?;
        line[key.len()..].split_whitespace().next()?.parse().ok()
    };
    let total = kib("MemTotal:").filter(|t| *t > 0)?;
    let available = kib("MemAvailable:")?.min(total);
    u16::try_from((total - available) * 1000 / total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_the_busy_share_between_samples() {
        let mut s = Sampler::default();
        assert_eq!(s.cpu("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3\n"), 0);
        // 1000 jiffies later, 250 of them idle or waiting.
        assert_eq!(s.cpu("cpu  400 0 350 900 150 200 0 0 0 0\n"), 750);
        // Nothing moved, or the file is not what we expect: 0.
        assert_eq!(s.cpu("cpu  400 0 350 900 150 200 0 0 0 0\n"), 0);
        assert_eq!(s.cpu("intr 5\n"), 0);
        assert_eq!(s.cpu(""), 0);
    }

    #[test]
    fn memory_in_use_from_meminfo() {
        let m = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\n\
                 MemAvailable:    4000000 kB\nBuffers:  10 kB\n";
        assert_eq!(memory_permille(m), Some(750));
        assert_eq!(
            memory_permille("MemTotal: 100 kB\nMemAvailable: 200 kB\n"),
            Some(0)
        );
        assert_eq!(
            memory_permille("MemTotal: 0 kB\nMemAvailable: 0 kB\n"),
            None
        );
        assert_eq!(memory_permille("MemTotal: 100 kB\n"), None);
        assert_eq!(memory_permille("garbage"), None);
        // This machine's, if there is one: within range.
        if let Ok(real) = std::fs::read_to_string("/proc/meminfo") {
            assert!(memory_permille(&real).is_some_and(|m| m <= 1000));
        }
    }
}
