//! What `ikelb flood` prints: one row per responder run, per-core split, ratios.

use serde::Serialize;

/// Frames one CPU sent and answers it received.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CpuSplit {
    pub cpu: u32,
    pub sent: u64,
    pub answered: u64,
}

/// One flood against one responder.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunReport {
    pub responder: String,
    /// "ipv4" or "ipv6".
    pub family: String,
    /// "live" or "afxdp".
    pub sender: String,
    /// AF_XDP only: the answer counter turned each answer into the next request.
    pub recycled: bool,
    /// Why the sender is not the one asked for (live frames refused, with the errno).
    pub sender_note: Option<String>,
    /// The responder answered ≥ 95 % of what the sender alone delivers (the sink, or
    /// for a recycled flood the reflector, the cheapest answer the loop can run
    /// against): its own limit was not reached. `None` when not measured.
    pub generator_bound: Option<bool>,
    pub threads: u32,
    pub queues: u32,
    /// Frames the generator sent (XDP_TX), all kinds.
    pub sent: u64,
    pub sent_ike: u64,
    pub sent_udp: u64,
    pub sent_no_redirect_supported: u64,
    /// Answers to our requests (correct or not) that came back.
    pub answered: u64,
    /// Answers whose SPIi, client address and port, and nonce match a request sent.
    pub correct: u64,
    pub incorrect: u64,
    /// Other frames arriving at the generator (ICMP, reflected background UDP…).
    pub other: u64,
    pub seconds: f64,
    pub pps_sent: f64,
    pub pps_answered: f64,
    pub per_cpu: Vec<CpuSplit>,
    /// The responder's own counters (ikelb's fast path), non-zero ones.
    pub responder_counters: Vec<(String, u64)>,
}

/// The sender alone into an XDP_DROP program.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SinkRun {
    pub sender: String,
    pub threads: u32,
    pub queues: u32,
    pub sent: u64,
    /// Frames the sink program received.
    pub taken: u64,
    pub seconds: f64,
    pub pps_taken: f64,
}

/// Share of the sender's capacity at which a responder counts as generator-bound.
pub const GENERATOR_BOUND: f64 = 0.95;

/// Marks each run generator-bound or not: against the sink, or (recycled floods)
/// against the reflector's run among `runs`.
pub fn mark_generator_bound(runs: &mut [RunReport], sink: &SinkRun) {
    let reflector = runs
        .iter()
        .find(|r| r.responder == "reflector")
        .map(|r| r.pps_answered);
    for r in runs {
        let ceiling = if r.recycled {
            reflector
        } else {
            Some(sink.pps_taken)
        };
        r.generator_bound = ceiling.map(|c| r.pps_answered >= GENERATOR_BOUND * c);
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub machine: String,
    /// Address family of every flood in this report: "ipv4" or "ipv6".
    pub family: String,
    pub kernel: String,
    pub runs: Vec<RunReport>,
    /// The sender alone, once per thread count used (first the main runs').
    pub sinks: Vec<SinkRun>,
    /// Answered-rate ratios: ikelb/reflector, ikelb/libreswan.
    pub ratios: Vec<(String, f64)>,
    /// Answered pps by number of queues and threads.
    pub scale: Vec<RunReport>,
    pub notes: Vec<String>,
}

fn header() {
    println!(
        "{:<13} {:<6} {:>3} {:>3} {:>10} {:>10} {:>10} {:>9} {:>8} {:>7} {:>12} {:>12}  limit",
        "responder",
        "sender",
        "thr",
        "q",
        "sent",
        "answered",
        "correct",
        "incorrect",
        "other",
        "secs",
        "pps sent",
        "pps answered",
    );
}

fn row(r: &RunReport) {
    let sender = if r.recycled { "afxdp*" } else { &r.sender };
    let limit = match r.generator_bound {
        Some(true) => "generator-bound",
        Some(false) => "responder",
        None => "",
    };
    println!(
        "{:<13} {:<6} {:>3} {:>3} {:>10} {:>10} {:>10} {:>9} {:>8} {:>7.3} {:>12.0} {:>12.0}  {}",
        r.responder,
        sender,
        r.threads,
        r.queues,
        r.sent,
        r.answered,
        r.correct,
        r.incorrect,
        r.other,
        r.seconds,
        r.pps_sent,
        r.pps_answered,
        limit
    );
}

fn sink_row(s: &SinkRun) {
    println!(
        "{:<13} {:<6} {:>3} {:>3} {:>10} {:>10} {:>10} {:>9} {:>8} {:>7.3} {:>12.0} {:>12.0}  sender alone",
        "(sink)",
        s.sender,
        s.threads,
        s.queues,
        s.sent,
        s.taken,
        "-",
        "-",
        "-",
        s.seconds,
        s.sent as f64 / s.seconds.max(1e-9),
        s.pps_taken,
    );
}

impl Report {
    /// Answered-pps ratio of two responders' runs, when both ran.
    pub fn ratio(&self, a: &str, b: &str) -> Option<f64> {
        let pps = |n: &str| {
            self.runs
                .iter()
                .find(|r| r.responder == n)
                .map(|r| r.pps_answered)
        };
        let (x, y) = (pps(a)?, pps(b)?);
        (y > 0.0).then(|| x / y)
    }

    pub fn print(&self) {
        println!("machine: {}", self.machine);
        println!("kernel:  {}", self.kernel);
        println!("family:  {}", self.family);
        header();
        if let Some(s) = self.sinks.first() {
            sink_row(s);
        }
        for r in &self.runs {
            row(r);
        }
        for r in &self.runs {
            let split: Vec<String> = r
                .per_cpu
                .iter()
                .map(|c| format!("cpu{} sent {} answered {}", c.cpu, c.sent, c.answered))
                .collect();
            println!("  {:<13} {}", r.responder, split.join(", "));
            if r.sent_udp + r.sent_no_redirect_supported > 0 {
                println!(
                    "  {:<13} mixed: {} IKE with REDIRECT_SUPPORTED, {} background UDP, {} IKE without",
                    "", r.sent_ike, r.sent_udp, r.sent_no_redirect_supported
                );
            }
            if !r.responder_counters.is_empty() {
                let c: Vec<String> = r
                    .responder_counters
                    .iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect();
                println!("  {:<13} counters: {}", "", c.join(" "));
            }
        }
        for (name, v) in &self.ratios {
            println!("{name:<36} {v:>10.3}");
        }
        if !self.scale.is_empty() {
            println!("scale (answered pps by queues = threads):");
            header();
            for s in self.sinks.iter().skip(1) {
                sink_row(s);
            }
            for r in &self.scale {
                row(r);
            }
        }
        if self.runs.iter().chain(&self.scale).any(|r| r.recycled) {
            println!(
                "afxdp*: AF_XDP seeds, the answer counter turns each answer into the next \
                 request; the reflector is that loop's ceiling"
            );
        }
        for n in &self.notes {
            println!("note: {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(responder: &str, pps: f64, recycled: bool) -> RunReport {
        RunReport {
            responder: responder.into(),
            pps_answered: pps,
            recycled,
            ..RunReport::default()
        }
    }

    #[test]
    fn generator_bound_against_the_sink_or_the_reflector() {
        let sink = SinkRun {
            pps_taken: 1000.0,
            ..SinkRun::default()
        };
        let mut runs = [run("ikelb", 960.0, false), run("libreswan", 100.0, false)];
        mark_generator_bound(&mut runs, &sink);
        assert_eq!(runs.map(|r| r.generator_bound), [Some(true), Some(false)]);
        // Recycled: the loop's ceiling is the reflector's rate, not the sink's.
        let mut runs = [
            run("reflector", 4000.0, true),
            run("ikelb", 2000.0, true),
            run("libreswan", 3900.0, true),
        ];
        mark_generator_bound(&mut runs, &sink);
        assert_eq!(
            runs.map(|r| r.generator_bound),
            [Some(true), Some(false), Some(true)]
        );
        let mut alone = [run("ikelb", 2000.0, true)];
        mark_generator_bound(&mut alone, &sink);
        assert_eq!(alone[0].generator_bound, None);
    }
}
