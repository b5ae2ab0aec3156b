//! This node's CPU load for its reports.

/// A sampler of CPU load in per mille, from `/proc/stat` deltas.
#[derive(Default)]
pub(super) struct Cpu {
    last: Option<(u64, u64)>,
}

impl Cpu {
    pub(super) fn sample(&mut self) -> u16 {
        let Ok(s) = std::fs::read_to_string("/proc/stat") else {
            return 0;
        };
        let Some(line) = s.lines().next() else {
            return 0;
        };
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let total: u64 = v.iter().sum();
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        let r = match self.last {
            Some((t0, i0)) if total > t0 => {
                let dt = total - t0;
                let busy = dt.saturating_sub(idle.saturating_sub(i0));
                u16::try_from(busy * 1000 / dt).unwrap_or(1000)
            }
            _ => 0,
        };
        self.last = Some((total, idle));
        r
    }
}
