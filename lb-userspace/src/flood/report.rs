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

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub machine: String,
    /// Address family of every flood in this report: "ipv4" or "ipv6".
    pub family: String,
    pub kernel: String,
    pub runs: Vec<RunReport>,
    /// Answered-rate ratios: ikelb/reflector, ikelb/libreswan.
    pub ratios: Vec<(String, f64)>,
    /// Answered pps by number of queues and threads.
    pub scale: Vec<RunReport>,
    pub notes: Vec<String>,
}

fn header() {
    println!(
        "{:<10} {:>3} {:>3} {:>10} {:>10} {:>10} {:>9} {:>8} {:>7} {:>12} {:>12}",
        "responder",
        "thr",
        "q",
        "sent",
        "answered",
        "correct",
        "incorrect",
        "other",
        "secs",
        "pps sent",
        "pps answered"
    );
}

fn row(r: &RunReport) {
    println!(
        "{:<10} {:>3} {:>3} {:>10} {:>10} {:>10} {:>9} {:>8} {:>7.3} {:>12.0} {:>12.0}",
        r.responder,
        r.threads,
        r.queues,
        r.sent,
        r.answered,
        r.correct,
        r.incorrect,
        r.other,
        r.seconds,
        r.pps_sent,
        r.pps_answered
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
        for r in &self.runs {
            row(r);
        }
        for r in &self.runs {
            let split: Vec<String> = r
                .per_cpu
                .iter()
                .map(|c| format!("cpu{} sent {} answered {}", c.cpu, c.sent, c.answered))
                .collect();
            println!("  {:<10} {}", r.responder, split.join(", "));
            if r.sent_udp + r.sent_no_redirect_supported > 0 {
                println!(
                    "  {:<10} mixed: {} IKE with REDIRECT_SUPPORTED, {} background UDP, {} IKE without",
                    "", r.sent_ike, r.sent_udp, r.sent_no_redirect_supported
                );
            }
            if !r.responder_counters.is_empty() {
                let c: Vec<String> = r
                    .responder_counters
                    .iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect();
                println!("  {:<10} counters: {}", "", c.join(" "));
            }
        }
        for (name, v) in &self.ratios {
            println!("{name:<36} {v:>10.3}");
        }
        if !self.scale.is_empty() {
            println!("scale (answered pps by queues = threads):");
            header();
            for r in &self.scale {
                row(r);
            }
        }
        for n in &self.notes {
            println!("note: {n}");
        }
    }
}
