//! The harness of the XDP fixture tables (docs/testing.md §1.2, Katran's tester in
//! Rust): a [`Case`] is a frame and what `ikelb_xdp` must do with it ([`Expect`]). The
//! [`Harness`] loads the program, fills its maps, and keeps the same configuration for
//! the reference model (`lb_common::wire::request::parse`, the target choice and
//! `emit_reply_frame`). [`Harness::check`] first confirms the table's expectation with
//! the model, then runs the program under BPF_PROG_TEST_RUN and checks the action,
//! exactly one outcome counter plus `seen` (per-CPU values summed), and for answers the
//! bytes (byte-equal to the model's, checked field by field in
//! `xdp_fixtures_answer.rs`, shorter than the request, later decoded by tshark). A
//! passed frame must reach the kernel unchanged. Mismatches are collected and
//! [`Harness::finish`] panics with each case's name and frames in hex.

use std::net::IpAddr;

use aya::maps::{MapData, PerCpuArray};
use aya::programs::{TestRun, TestRunOptions};
use lb_common::maps::{self as m, Stat, Target};
use lb_common::wire::request;
use lb_userspace::config::{NoRedirect, RedirectMode, Vip, VlanBinding};
use lb_userspace::dataplane::Dataplane;
use lb_userspace::target::{self, Identity, Owner};

use super::xdp_fixtures_answer::{Answer, check_reply, tshark_check};
use super::xdp_fixtures_frames as fr;
use crate::fixtures::{self, CAPTURED};

pub(super) const XDP_DROP: u32 = 1;
pub(super) const XDP_PASS: u32 = 2;
pub(super) const XDP_TX: u32 = 3;

/// What the program must do with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a table cell: `Copy` keeps the tables literal, and size does not matter here"
)]
pub(super) enum Expect {
    /// XDP_TX with N(REDIRECT) naming this target.
    Redirect(Target),
    /// XDP_PASS, counted under this reason.
    Pass(Stat),
    /// XDP_DROP, counted under this reason.
    Drop(Stat),
}

impl Expect {
    pub(super) fn from_stat(s: Stat) -> Self {
        if s.is_drop() {
            Expect::Drop(s)
        } else {
            Expect::Pass(s)
        }
    }
    pub(super) fn stat(&self) -> Stat {
        match self {
            Expect::Redirect(_) => Stat::Redirected,
            Expect::Pass(s) | Expect::Drop(s) => *s,
        }
    }
    fn action(&self) -> u32 {
        match self {
            Expect::Redirect(_) => XDP_TX,
            Expect::Pass(_) => XDP_PASS,
            Expect::Drop(_) => XDP_DROP,
        }
    }
    pub(super) fn is_redirect(&self) -> bool {
        matches!(self, Expect::Redirect(_))
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Redirect(t) => write!(f, "Redirect({})", ident_text(t)),
            Expect::Pass(s) => write!(f, "Pass({})", s.name()),
            Expect::Drop(s) => write!(f, "Drop({})", s.name()),
        }
    }
}

/// One row of the table.
pub(super) struct Case {
    pub name: String,
    pub frame: Vec<u8>,
    pub expect: Expect,
}

impl Case {
    pub(super) fn new(name: impl Into<String>, frame: Vec<u8>, expect: Expect) -> Self {
        Case {
            name: name.into(),
            frame,
            expect,
        }
    }
}

/// How tshark shows a target's identity.
fn ident_text(t: &Target) -> String {
    let id = t.ident();
    match t.ident_type {
        1 => IpAddr::from(<[u8; 4]>::try_from(id).unwrap_or_default()).to_string(),
        2 => IpAddr::from(<[u8; 16]>::try_from(id).unwrap_or_default()).to_string(),
        _ => String::from_utf8_lossy(id).into_owned(),
    }
}

/// VIPs of every table: the vectors' and each captured fixture's destination.
fn default_vips() -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = vec![
        "198.51.100.1".parse().expect("literal"),
        "2001:db8::1".parse().expect("literal"),
    ];
    for name in CAPTURED {
        let f = fixtures::fixture(name);
        let l = fr::layout(&f).expect("fixture layout");
        let d = if l.v6 {
            IpAddr::from(<[u8; 16]>::try_from(&f[l.l2 + 24..l.l2 + 40]).expect("16"))
        } else {
            IpAddr::from(<[u8; 4]>::try_from(&f[l.l2 + 16..l.l2 + 20]).expect("4"))
        };
        if !v.contains(&d) {
            v.push(d);
        }
    }
    v
}

/// The flow-hash key of every harness: choices are deterministic across runs.
pub(super) const HASH_KEY: [u64; 2] = [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210];

/// A loaded program with its maps filled, plus the same configuration for the model.
pub(super) struct Harness {
    pub dp: Dataplane,
    vips: Vec<Vip>,
    targets: Vec<Target>,
    /// Index of each target in the target array (its per-target counter).
    target_idx: Vec<(Target, u32)>,
    active: bool,
    last: Vec<u64>,
    /// Keep answers for [`Harness::finish`]'s tshark pass.
    pub keep_answers: bool,
    answers: Vec<Answer>,
    failures: Vec<String>,
    pub runs: usize,
    /// Outcomes seen, by counter index.
    pub outcomes: Vec<u64>,
}

impl Harness {
    /// Loads the program: VIPs as [`default_vips`] on every tag stack, active, `targets`
    /// (at most one per family, so the model's choice does not depend on the slot
    /// hash), flow-hash key [`HASH_KEY`], no rate limit.
    pub(super) fn new(targets: &[Identity]) -> Self {
        let mut dp = Dataplane::load(None).unwrap_or_else(|e| panic!("load the XDP object: {e}"));
        dp.set_hash_key(HASH_KEY).expect("set the hash key");
        let mut h = Harness {
            dp,
            vips: Vec::new(),
            targets: Vec::new(),
            target_idx: Vec::new(),
            active: false,
            last: Vec::new(),
            keep_answers: true,
            answers: Vec::new(),
            failures: Vec::new(),
            runs: 0,
            outcomes: vec![0; Stat::COUNT as usize],
        };
        let vips: Vec<_> = default_vips()
            .into_iter()
            .map(|a| (a, RedirectMode::Init))
            .collect();
        h.set_vips(&vips);
        h.set_targets(targets);
        h.set_active(true);
        h.last = h.read_stats();
        h
    }

    /// VIPs on every tag stack (the tables reuse one VIP behind several).
    pub(super) fn set_vips(&mut self, vips: &[(IpAddr, RedirectMode)]) {
        let v: Vec<Vip> = vips
            .iter()
            .map(|(a, r)| Vip {
                address: *a,
                redirect: *r,
                vlans: VlanBinding::Any,
                no_redirect: NoRedirect::Pass,
            })
            .collect();
        self.set_vips_bound(&v);
    }

    /// VIPs with their own VLAN bindings.
    pub(super) fn set_vips_bound(&mut self, vips: &[Vip]) {
        self.dp.set_vips(vips).expect("set VIPs");
        self.vips = vips.to_vec();
    }

    pub(super) fn vips(&self) -> Vec<(IpAddr, RedirectMode)> {
        self.vips.iter().map(|v| (v.address, v.redirect)).collect()
    }

    pub(super) fn set_targets(&mut self, ids: &[Identity]) {
        let entries: Vec<target::Target> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| target::Target {
                owner: Owner::Static(format!("t{i}")),
                identity: id.clone(),
                weight: 1,
            })
            .collect();
        self.dp.set_targets(&entries).expect("set targets");
        self.targets = ids.iter().map(Identity::to_target).collect();
        self.target_idx = self
            .dp
            .target_names()
            .into_iter()
            .map(|(i, _, id)| (id.to_target(), u32::from(i)))
            .collect();
        for v6 in [false, true] {
            assert!(self.targets.iter().filter(|t| t.serves(v6)).count() <= 1);
        }
    }

    pub(super) fn set_active(&mut self, on: bool) {
        self.dp.set_active(on).expect("set active");
        self.active = on;
    }

    /// The target that serves clients of this family, if any.
    pub(super) fn target_for(&self, v6: bool) -> Option<Target> {
        self.targets.iter().find(|t| t.serves(v6)).copied()
    }

    /// What a well-formed request in `frame` gets: an answer when a target serves its
    /// family, else `pass_no_target`.
    pub(super) fn answer(&self, frame: &[u8]) -> Expect {
        let v6 = fr::layout(frame).expect("request layout").v6;
        self.target_for(v6)
            .map_or(Expect::Pass(Stat::PassNoTarget), Expect::Redirect)
    }

    /// A case whose expectation is the reference model's (truncations, overruns); unless
    /// `may_answer`, the model must refuse it.
    pub(super) fn derived(&mut self, name: String, frame: Vec<u8>, may_answer: bool) -> Case {
        let expect = self.model(&frame);
        if expect.is_redirect() && !may_answer {
            self.failures.push(format!(
                "case `{name}`: the reference model answers it\n  request ({} bytes):\n{}",
                frame.len(),
                fr::hex(&frame)
            ));
        }
        Case::new(name, frame, expect)
    }

    /// Redirects counted for target `t` (per-CPU values summed).
    fn target_count(&mut self, t: &Target) -> Option<u64> {
        let idx = self.target_idx.iter().find(|(x, _)| x == t)?.1;
        let map = self.dp.ebpf_mut().map(m::MAP_TGT_STATS)?;
        let a: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map).ok()?;
        Some(a.get(&idx, 0).ok()?.iter().sum())
    }

    fn read_stats(&mut self) -> Vec<u64> {
        let map = self.dp.ebpf_mut().map(m::MAP_STATS).expect("stats map");
        let a: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map).expect("per-CPU array");
        (0..Stat::COUNT)
            .map(|i| a.get(&i, 0).expect("read counter").iter().sum())
            .collect()
    }

    /// The reference model's verdict on `frame` under this harness's configuration.
    pub(super) fn model(&self, frame: &[u8]) -> Expect {
        let vip = |v6: bool, a: &[u8; 16]| {
            self.vips.iter().find_map(|v| {
                let hit = match v.address {
                    IpAddr::V4(x) if !v6 => a[..4] == x.octets(),
                    IpAddr::V6(x) if v6 => *a == x.octets(),
                    _ => false,
                };
                hit.then_some(m::Vip {
                    mode: match v.redirect {
                        RedirectMode::Init => m::VIP_MODE_INIT,
                        RedirectMode::Auth => m::VIP_MODE_AUTH,
                    },
                    vlans: v.vlans.map_value(),
                    // Forwarding is not part of the model's decision (xdp_fixtures_forward).
                    fwd: 0,
                })
            })
        };
        let req = match request::parse(frame, self.active, vip) {
            Ok(r) => r,
            Err(s) => return Expect::from_stat(s),
        };
        let Some(t) = self.targets.iter().find(|t| t.serves(req.v6)) else {
            return Expect::Pass(Stat::PassNoTarget);
        };
        let mut out = vec![0u8; 4096];
        match request::emit_reply_frame(frame, &req, t, &mut out) {
            Ok(_) => Expect::Redirect(*t),
            Err(s) => Expect::from_stat(s),
        }
    }

    /// Runs the program once: action, output frame, counter increments.
    fn run(&mut self, frame: &[u8]) -> Result<(u32, Vec<u8>, Vec<u64>), String> {
        let mut out = vec![0u8; 4096];
        let p = self.dp.program(m::PROG_NAME).expect("program");
        let r = p
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ..TestRunOptions::new()
            })
            .map_err(|e| format!("test_run: {e:#}"))?;
        out.truncate(r.data_size_out as usize);
        let now = self.read_stats();
        let delta = now.iter().zip(&self.last).map(|(a, b)| a - b).collect();
        self.last = now;
        self.runs += 1;
        Ok((r.return_value, out, delta))
    }

    /// Checks one case; a mismatch is recorded (see [`Harness::finish`]), not panicked.
    pub(super) fn check(&mut self, case: &Case) {
        if let Err(e) = self.try_check(case) {
            self.failures.push(format!(
                "case `{}`: {e}\n  request ({} bytes):\n{}",
                case.name,
                case.frame.len(),
                fr::hex(&case.frame)
            ));
        }
    }

    pub(super) fn check_all(&mut self, cases: &[Case]) {
        for c in cases {
            self.check(c);
        }
    }

    fn try_check(&mut self, case: &Case) -> Result<(), String> {
        let model = self.model(&case.frame);
        if model != case.expect {
            return Err(format!(
                "the table says {} but the reference model says {model}",
                case.expect
            ));
        }
        let tgt_before = match &case.expect {
            Expect::Redirect(t) => self.target_count(t),
            _ => None,
        };
        let (action, out, delta) = self.run(&case.frame)?;
        let mut errs = Vec::new();
        if let Expect::Redirect(t) = &case.expect {
            let after = self.target_count(t);
            if tgt_before.is_none() || after != tgt_before.map(|b| b + 1) {
                errs.push(format!(
                    "per-target counter of {} went {tgt_before:?} -> {after:?}",
                    ident_text(t)
                ));
            }
        }
        let outcome = Stat::ALL
            .iter()
            .find(|s| **s != Stat::Seen && delta[**s as usize] > 0);
        if let Some(s) = outcome {
            self.outcomes[*s as usize] += 1;
        }
        if action != case.expect.action() {
            errs.push(format!(
                "program returned {} ({}), expected {}",
                action,
                outcome.map_or("no counter", |s| s.name()),
                case.expect
            ));
        }
        let mut want = vec![0u64; Stat::COUNT as usize];
        want[Stat::Seen as usize] = 1;
        want[case.expect.stat() as usize] += 1;
        if delta != want {
            errs.push(format!(
                "counters {} (expected seen+1, {}+1)",
                counters_text(&delta),
                case.expect.stat().name()
            ));
        }
        let mut want_frame = Vec::new();
        match &case.expect {
            Expect::Redirect(t) if action == XDP_TX => {
                let req = request::parse(&case.frame, true, |_, _| Some(m::Vip::ANY))
                    .map_err(|s| format!("model refuses the request it answers: {s:?}"))?;
                let mut buf = vec![0u8; 4096];
                let n = request::emit_reply_frame(&case.frame, &req, t, &mut buf)
                    .map_err(|s| format!("model cannot answer: {s:?}"))?;
                want_frame = buf[..n].to_vec();
                if out != want_frame {
                    errs.push("answer differs from emit_reply_frame".into());
                }
                errs.extend(check_reply(&case.frame, &out, t));
                if self.keep_answers && errs.is_empty() {
                    self.answers.push(Answer {
                        name: case.name.clone(),
                        frame: out.clone(),
                        ident: ident_text(t),
                        nonce: req.nonce(&case.frame).to_vec(),
                    });
                }
            }
            Expect::Pass(_) if action == XDP_PASS && out != case.frame => {
                errs.push("a passed frame was modified".into());
            }
            _ => {}
        }
        if action == XDP_TX && out.len() >= case.frame.len() {
            errs.push(format!(
                "answer of {} bytes to a request of {}",
                out.len(),
                case.frame.len()
            ));
        }
        if errs.is_empty() {
            return Ok(());
        }
        let mut msg = errs.join("; ");
        msg.push_str(&format!(
            "\n  program output ({} bytes):\n{}",
            out.len(),
            fr::hex(&out)
        ));
        if !want_frame.is_empty() {
            msg.push_str(&format!(
                "\n  expected answer ({} bytes):\n{}",
                want_frame.len(),
                fr::hex(&want_frame)
            ));
        }
        Err(msg)
    }

    /// Checks the kept answers with tshark, then panics listing every failure.
    pub(super) fn finish(mut self, what: &str) {
        if !self.answers.is_empty()
            && let Err(e) = tshark_check(&self.answers)
        {
            self.failures.push(e);
        }
        let n = self.failures.len();
        if n > 0 {
            let shown: Vec<&str> = self.failures.iter().take(25).map(String::as_str).collect();
            panic!(
                "{what}: {n} of {} runs failed (first {} shown)\n\n{}",
                self.runs,
                shown.len(),
                shown.join("\n\n")
            );
        }
        eprintln!(
            "{what}: {} runs, {} answers checked by tshark; outcomes {}",
            self.runs,
            self.answers.len(),
            counters_text(&self.outcomes)
        );
    }
}

fn counters_text(delta: &[u64]) -> String {
    let v: Vec<String> = Stat::ALL
        .iter()
        .filter(|s| delta[**s as usize] > 0)
        .map(|s| format!("{}+{}", s.name(), delta[*s as usize]))
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(",")
    }
}
