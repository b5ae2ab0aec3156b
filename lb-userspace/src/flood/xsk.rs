//! The AF_XDP sender: one pinned thread per CPU, each with its own socket on its own
//! veth queue, building the same requests as the generator program
//! ([`template::request`]). Two ways to run:
//! - straight: each thread sends its share of the count, paced or as fast as it can
//!   (paced floods, and the sink measurement of the sender alone);
//! - recycled: the threads only seed a window of requests; the answer counter turns
//!   every correct answer into the next request in the kernel (`recycle`), so the
//!   flood runs at the speed of the responder and the counter, not of a syscall per
//!   batch. Seeds that cannot come back (background UDP, requests without
//!   REDIRECT_SUPPORTED, frames lost on the path) are replaced by new seeds.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lb_common::flood::{self as fl, FloodGen};

use super::afxdp::XskTx;
use super::netlink::Netns;
use super::template;
use super::threads::pin_to;

/// Frames queued per kick at most.
const BATCH: u32 = 64;
/// Requests each thread keeps in flight in a recycled flood: a quarter of a veth
/// queue's ring (256), so the loop never overfills it.
pub const WINDOW: u64 = 64;
/// Longest wait for the kernel to take the last queued frames.
const DRAIN: Duration = Duration::from_secs(1);

/// What the in-kernel loop reports and how to stop it (recycled floods).
pub struct Recycle<'a> {
    /// Total requests to send, seeds and recycled together.
    pub count: u64,
    /// Requests the counter has generated so far, and (socket seeds excluded) how
    /// many of them can never come back (background UDP, no REDIRECT_SUPPORTED).
    pub generated: &'a (dyn Fn() -> (u64, u64) + Sync),
    /// Correct answers counted so far.
    pub answered: &'a (dyn Fn() -> u64 + Sync),
    /// Ends the loop in the kernel.
    pub stop: &'a (dyn Fn() + Sync),
}

pub struct XskFlood<'a> {
    pub ns: &'a Netns,
    pub ifindex: u32,
    pub queues: u32,
    pub cpus: &'a [u32],
    /// Frames each thread sends (straight floods).
    pub limits: &'a [u64],
    /// Template; thread `i` sends as generator index `first_index + i`.
    pub template: &'a FloodGen,
    pub first_index: u32,
    /// Total frames/s (straight floods); `None` = as fast as possible.
    pub rate: Option<u64>,
    pub recycle: Option<Recycle<'a>>,
    pub max_time: Duration,
}

/// Frames one thread sent, by kind (IKE, background UDP, IKE without REDIRECT_SUPPORTED).
pub type Kinds = [u64; 3];

/// Per-thread state shared with the watcher.
struct Shared {
    stop: AtomicBool,
    /// Seeds the watcher asks for (recycled floods); threads take them in batches.
    seeds: AtomicU64,
    sent: Vec<AtomicU64>,
    done: Vec<AtomicBool>,
}

impl XskFlood<'_> {
    /// Runs the threads; returns the time until the flood ended and what each sent.
    pub fn run(&self) -> io::Result<(Duration, Vec<Kinds>)> {
        let n = self.cpus.len();
        let sh = Shared {
            stop: AtomicBool::new(false),
            seeds: AtomicU64::new(if self.recycle.is_some() {
                WINDOW * n as u64
            } else {
                0
            }),
            sent: (0..n).map(|_| AtomicU64::new(0)).collect(),
            done: (0..n).map(|_| AtomicBool::new(false)).collect(),
        };
        let start = Instant::now();
        let mut kinds = Vec::with_capacity(n);
        let mut result = Ok(());
        let mut elapsed = Duration::ZERO;
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let sh = &sh;
                    s.spawn(move || {
                        let r = self.thread(i, sh, start);
                        sh.done[i].store(true, Ordering::SeqCst);
                        r
                    })
                })
                .collect();
            elapsed = self.watch(&sh, start);
            for h in handles {
                match h.join() {
                    Ok(Ok(k)) => kinds.push(k),
                    Ok(Err(e)) => result = Err(e),
                    Err(_) => result = Err(io::Error::other("AF_XDP sender thread panicked")),
                }
            }
        });
        result.map(|()| (elapsed, kinds))
    }

    /// Ends the flood when every thread is done (straight), or when the count is
    /// reached or time is up; in a recycled flood also asks for new seeds where
    /// requests cannot come back or the loop stalled.
    fn watch(&self, sh: &Shared, start: Instant) -> Duration {
        let deadline = start + self.max_time;
        let (mut last_answered, mut replaced, mut quiet) = (0, 0, 0);
        loop {
            std::thread::sleep(Duration::from_millis(1));
            let all_done = sh.done.iter().all(|d| d.load(Ordering::SeqCst));
            let socket: u64 = sh.sent.iter().map(|s| s.load(Ordering::Relaxed)).sum();
            let mut finished = all_done || Instant::now() >= deadline;
            if let Some(r) = &self.recycle {
                let (generated, lost) = (r.generated)();
                finished |= socket + generated >= r.count;
                let answered = (r.answered)();
                quiet = if answered == last_answered {
                    quiet + 1
                } else {
                    0
                };
                last_answered = answered;
                let mut want = lost - replaced.min(lost);
                replaced += want;
                // Nothing came back for 5 ms: the window was lost on the path.
                if quiet >= 5 {
                    want += WINDOW * self.cpus.len() as u64;
                    quiet = 0;
                }
                sh.seeds.fetch_add(want, Ordering::SeqCst);
                if finished {
                    (r.stop)();
                }
            }
            if finished {
                let elapsed = start.elapsed();
                sh.stop.store(true, Ordering::SeqCst);
                return elapsed;
            }
        }
    }

    fn thread(&self, i: usize, sh: &Shared, start: Instant) -> io::Result<Kinds> {
        pin_to(self.cpus[i])?;
        let queue = i as u32 % self.queues;
        let mut x = self.ns.enter(|| XskTx::new(self.ifindex, queue))??;
        let index = self.first_index + i as u32;
        let g = self.template;
        let mut kinds: Kinds = [0; 3];
        let mut seq = 0u64;
        // Per-thread interval between frames under pacing.
        let interval_ns = self
            .rate
            .map(|r| self.cpus.len() as u64 * 1_000_000_000 / r.max(1));
        while !sh.stop.load(Ordering::SeqCst) {
            let want = if self.recycle.is_some() {
                take(&sh.seeds, u64::from(BATCH))
            } else {
                let left = self.limits[i] - seq;
                if left == 0 {
                    break;
                }
                match interval_ns {
                    Some(iv) => {
                        let due =
                            (start.elapsed().as_nanos() as u64 / iv.max(1) + 1).min(self.limits[i]);
                        due.saturating_sub(seq)
                    }
                    None => left,
                }
            };
            if want == 0 {
                x.kick()?;
                x.complete();
                std::thread::sleep(Duration::from_micros(20));
                continue;
            }
            let queued = x.send(want.min(u64::from(BATCH)) as u32, |buf| {
                let n = template::request(g, index, seq, buf);
                kinds[fl::kind(seq, g.mix_udp, g.mix_no_rs) as usize] += 1;
                seq += 1;
                n
            })?;
            if self.recycle.is_some() && u64::from(queued) < want {
                // Give back the seeds this thread could not queue now.
                sh.seeds
                    .fetch_add(want - u64::from(queued), Ordering::SeqCst);
            }
            sh.sent[i].fetch_add(u64::from(queued), Ordering::Relaxed);
            if queued == 0 {
                std::thread::yield_now();
            }
        }
        // Frames still queued are sent (and counted) before the thread ends.
        let t = Instant::now();
        while x.outstanding() > 0 && t.elapsed() < DRAIN {
            x.kick()?;
            x.complete();
            std::thread::yield_now();
        }
        Ok(kinds)
    }
}

/// Takes up to `max` from `a`.
fn take(a: &AtomicU64, max: u64) -> u64 {
    let mut got = 0;
    let _ = a.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
        got = v.min(max);
        Some(v - got)
    });
    got
}
