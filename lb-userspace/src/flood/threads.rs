//! Generator threads: one per CPU, pinned, each making long BPF_PROG_TEST_RUN calls with
//! live frames (each call costs ≈25 ms of page-pool setup, docs/testing.md §9.1). A call ends
//! when its repetitions are done, or early when the watcher interrupts it with a signal
//! (the count is reached under pacing, or the time is up).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aya::maps::{MapData, PerCpuArray};
use aya::programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp};
use lb_common::flood::FloodGen;

use super::netlink::Netns;

/// Live-frames batch (the kernel's default, NAPI_POLL_WEIGHT).
const BATCH: u32 = 64;

extern "C" fn interrupt(_: libc::c_int) {}

/// SIGUSR1 with an empty handler and no SA_RESTART: it only makes a test_run call in
/// progress return EINTR.
fn install_interrupt() -> io::Result<()> {
    // SAFETY: a zeroed sigaction with a valid handler and an empty mask.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = interrupt as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

pub(super) fn pin_to(cpu: u32) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t with one bit set, applied to the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// struct xdp_md as test_run's ctx_in: the frame arrives on `ifindex`, queue `queue`,
/// and XDP_TX sends it out there.
pub(super) fn xdp_md(len: usize, ifindex: u32, queue: u32) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[4..8].copy_from_slice(&(len as u32).to_ne_bytes());
    b[12..16].copy_from_slice(&ifindex.to_ne_bytes());
    b[16..20].copy_from_slice(&queue.to_ne_bytes());
    b
}

pub struct Flood<'a> {
    pub prog: &'a Xdp,
    pub ns: &'a Netns,
    pub ifindex: u32,
    pub queues: u32,
    pub cpus: &'a [u32],
    /// Frames each CPU sends (index = position in `cpus`).
    pub limits: &'a [u64],
    pub paced: bool,
    pub frame: &'a [u8],
    pub gen_map: &'a PerCpuArray<MapData, FloodGen>,
    pub max_time: Duration,
}

impl Flood<'_> {
    /// Runs the generators; returns the time from start until the last one stopped.
    pub fn run(&self) -> io::Result<Duration> {
        install_interrupt()?;
        let n = self.cpus.len();
        let stop = AtomicBool::new(false);
        let tids: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
        let done: Vec<AtomicBool> = (0..n).map(|_| AtomicBool::new(false)).collect();
        let start = Instant::now();
        let deadline = start + self.max_time;
        let mut result = Ok(());
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let (stop, tid, done) = (&stop, &tids[i], &done[i]);
                    s.spawn(move || {
                        // SAFETY: pthread_self has no preconditions.
                        tid.store(unsafe { libc::pthread_self() } as u64, Ordering::SeqCst);
                        let r = self.generator(i, stop);
                        done.store(true, Ordering::SeqCst);
                        r
                    })
                })
                .collect();
            self.watch(&stop, &tids, &done, deadline);
            for h in handles {
                match h.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => result = Err(e),
                    Err(_) => result = Err(io::Error::other("generator thread panicked")),
                }
            }
        });
        result.map(|()| start.elapsed())
    }

    fn generator(&self, i: usize, stop: &AtomicBool) -> io::Result<()> {
        let cpu = self.cpus[i];
        pin_to(cpu)?;
        let md = xdp_md(self.frame.len(), self.ifindex, i as u32 % self.queues);
        // Under pacing most repetitions only wait; the watcher ends the call.
        let repeat = if self.paced {
            u32::MAX
        } else {
            u32::try_from(self.limits[i]).unwrap_or(u32::MAX)
        };
        if repeat == 0 {
            return Ok(());
        }
        self.ns.enter(|| -> io::Result<()> {
            while !stop.load(Ordering::SeqCst) {
                let r = self.prog.test_run(TestRunOptions {
                    data_in: Some(self.frame),
                    ctx_in: Some(&md),
                    repeat,
                    attrs: TestRunAttrs::new().xdp_live_frames(BATCH),
                    ..TestRunOptions::new()
                });
                match r {
                    Ok(_) if !self.paced => {
                        if self.sent_on(cpu) >= self.limits[i] {
                            return Ok(());
                        }
                    }
                    Ok(_) => {}
                    Err(e) if is_eintr(&e) => {}
                    Err(e) => {
                        return Err(io::Error::other(format!(
                            "test_run on CPU {cpu}: {}",
                            super::sender::chain(&e)
                        )));
                    }
                }
            }
            Ok(())
        })?
    }

    fn sent_on(&self, cpu: u32) -> u64 {
        self.gen_map
            .get(&0, 0)
            .ok()
            .and_then(|v| v.get(cpu as usize).map(|g| g.seq))
            .unwrap_or(u64::MAX)
    }

    /// Stops the generators when time is up or (paced) every CPU has sent its share,
    /// interrupting calls in progress until each thread has returned.
    fn watch(&self, stop: &AtomicBool, tids: &[AtomicU64], done: &[AtomicBool], deadline: Instant) {
        loop {
            std::thread::sleep(Duration::from_millis(5));
            if done.iter().all(|d| d.load(Ordering::SeqCst)) {
                return;
            }
            let finished = Instant::now() >= deadline
                || (self.paced
                    && self
                        .cpus
                        .iter()
                        .zip(self.limits)
                        .all(|(&c, &l)| self.sent_on(c) >= l));
            if finished {
                stop.store(true, Ordering::SeqCst);
                for (t, d) in tids.iter().zip(done) {
                    let t = t.load(Ordering::SeqCst);
                    if t != 0 && !d.load(Ordering::SeqCst) {
                        // SAFETY: t is a live thread of this scope (not yet done).
                        unsafe { libc::pthread_kill(t as libc::pthread_t, libc::SIGUSR1) };
                    }
                }
            }
        }
    }
}

fn is_eintr(e: &aya::programs::ProgramError) -> bool {
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<io::Error>()
            && io.raw_os_error() == Some(libc::EINTR)
        {
            return true;
        }
        src = s.source();
    }
    false
}
