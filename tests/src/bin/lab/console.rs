//! What both labs share at the console: signals, the clock, the prompt loop, the verdict
//! and the teardown.

use std::io::BufRead;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ikelb_tests::esp::Esp;
use ikelb_tests::lab::{ClientResult, Lab};

static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::SeqCst);
}

pub(crate) fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction with a handler that only stores to an atomic
        // (async-signal-safe); exec resets it to the default in the children.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

pub(crate) fn signalled() -> Option<&'static str> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        libc::SIGINT => Some("SIGINT"),
        libc::SIGTERM => Some("SIGTERM"),
        libc::SIGHUP => Some("SIGHUP"),
        _ => Some("signal"),
    }
}

/// Local wall-clock time as `HH:MM:SS`.
pub(crate) fn clock() -> String {
    // SAFETY: time(2) and localtime_r(3) with valid pointers; tm is fully written.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
    }
}

/// Prints the overall verdict; true when every client passed.
pub(crate) fn verdicts(results: &[ClientResult], esp: Esp) -> bool {
    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| r.verdict(esp).err())
        .collect();
    if failures.is_empty() {
        let pings = results.iter().filter(|r| r.ping == Some(true)).count();
        println!(
            "\nOK: all {} clients were redirected to a member and got their CHILD_SA there; \
             {pings} strongSwan pings through the tunnels passed{}",
            results.len(),
            if esp == Esp::Missing {
                " (libreswan clients cannot install ESP on this kernel: expected)"
            } else {
                ""
            }
        );
        true
    } else {
        println!("\nFAILED:");
        for f in &failures {
            println!("  {f}");
        }
        false
    }
}

/// Reads stdin lines into `on_line` and calls `on_tick` every `period` (first at
/// `first`), until a signal. A closed stdin only stops the commands.
pub(crate) fn prompt_loop<S>(
    state: &mut S,
    period: Duration,
    first: Instant,
    mut on_line: impl FnMut(&mut S, &str),
    mut on_tick: impl FnMut(&mut S),
) {
    let (tx, rx) = mpsc::channel::<String>();
    // Reads stdin until EOF; it is left behind (blocked in read) at exit.
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut next = first;
    let mut stdin_open = true;
    while signalled().is_none() {
        if stdin_open {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => on_line(state, line.trim()),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => stdin_open = false,
            }
        } else {
            std::thread::sleep(Duration::from_millis(200));
        }
        if Instant::now() >= next {
            next = Instant::now() + period;
            on_tick(state);
        }
    }
}

pub(crate) fn teardown(lab: Lab, code: i32) -> i32 {
    let t = Instant::now();
    drop(lab);
    println!(
        "lab torn down in {:.1} s (daemons stopped, namespaces and pins removed)",
        t.elapsed().as_secs_f64()
    );
    code
}
