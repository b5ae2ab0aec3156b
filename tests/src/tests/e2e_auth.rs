//! End to end, redirect after authentication: ikelb's VIPs in
//! `redirect = "auth"` mode, real clients authenticate ikelb with the lab PSK, are
//! redirected by the VIP's `auth-redirect` method and build IKE + CHILD on a strongSwan
//! member (docs/testing.md §8, docs/protocol.md §2.5, §2.6, §2.10):
//! - strongSwan 5.9.8, `"informational"`: IKE_AUTH completes at ikelb, then an
//!   INFORMATIONAL request SK{N(REDIRECT)} moves it to the member; ping through it.
//! - libreswan 4.10, `"ike_auth"`: N(REDIRECT) in the IKE_AUTH response; IKE + CHILD
//!   at the member (its own ESP install fails with errno 38 on a kernel without ESP).
//!
//! The clients' wire is captured and decoded with tshark, the encrypted messages with
//! the keys ikelb wrote to its test-only key log (`ikelb run --ike-keylog`, tshark's
//! `ikev2_decryption_table`): the REDIRECT must be visible inside them.
//!
//! Also the slow path of an init-mode VIP: an IKE_SA_INIT too big for one frame arrives
//! in IP fragments, which the XDP program passes; the userspace responder answers it
//! with exactly the fast path's bytes.
//!
//! Root only. Uses the `ikelb` binary from `IKELB_BIN`, else
//! `<workspace>/target/release/ikelb` (`cargo xtask build`).

use std::net::IpAddr;
use std::path::Path;

use lb_common::maps::Target;
use lb_common::wire::redirect;

use crate::capture::Capture;
use crate::cmd;
use crate::esp;
use crate::lab::{
    Balancer, CertKey, ClientKind, ClientResult, ClientSpec, Family, Lab, LabConfig, ikelb_bin, vip,
};

pub(super) fn require_ikelb() {
    let bin = ikelb_bin();
    assert!(
        bin.exists(),
        "ikelb binary {} not found: run `cargo xtask build` or set IKELB_BIN",
        bin.display()
    );
}

/// `tshark -V -O isakmp` over `pcap`, with every row of `keylog` as an
/// `ikev2_decryption_table` entry.
pub(super) fn decode_with_keys(pcap: &Path, keylog: &Path) -> String {
    let rows = std::fs::read_to_string(keylog)
        .unwrap_or_else(|e| panic!("key log {}: {e}", keylog.display()));
    let mut c = cmd::command("tshark", ["-n", "-V", "-O", "isakmp"]);
    for row in rows.lines().filter(|l| !l.is_empty()) {
        c.arg("-o").arg(format!("uat:ikev2_decryption_table:{row}"));
    }
    c.arg("-r").arg(pcap);
    cmd::run(&mut c).unwrap_or_else(|e| panic!("{e:#}"))
}

/// tshark's per-packet blocks (each starts with a `Frame N:` line).
pub(super) fn packets(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in text.lines() {
        if l.starts_with("Frame ") || out.is_empty() {
            out.push(String::new());
        }
        if let Some(p) = out.last_mut() {
            p.push_str(l);
            p.push('\n');
        }
    }
    out
}

/// Per-target redirect counters from `ikelb stats --json`, summed.
pub(super) fn target_redirects(stats: &serde_json::Value) -> u64 {
    stats["targets"]
        .as_array()
        .map(|ts| ts.iter().filter_map(|t| t["redirects"].as_u64()).sum())
        .unwrap_or(0)
}

/// Brings up a lab with ikelb's VIPs in auth mode (`method`; certificates of type
/// `cert` everywhere, else PSK), captures each client's traffic to the VIP, connects
/// every client and checks the verdict, the key log and ikelb's counters; returns the
/// lab, the clients' results and, per client, the decrypted tshark text of its capture.
pub(super) fn auth_lab(
    method: &str,
    cert: Option<CertKey>,
    clients: Vec<ClientSpec>,
) -> (Lab, Vec<ClientResult>, Vec<(String, String)>) {
    require_ikelb();
    let esp = esp::probe().expect("ESP probe");
    let lab = Lab::up(LabConfig {
        balancer: Balancer::ikelb_default(),
        clients,
        ikelb_auth: Some(method.into()),
        ikelb_auth_cert: cert,
        ..LabConfig::default()
    })
    .unwrap_or_else(|e| panic!("lab up: {e:#}"));
    let caps: Vec<(String, Capture)> = lab
        .clients
        .iter()
        .map(|c| {
            let filter = format!("udp and host {}", vip(c.spec.family));
            let cap = Capture::start(&c.netns, "eth0", &filter, None, &lab.run_dir, &c.spec.name)
                .unwrap_or_else(|e| panic!("{e:#}"));
            (c.spec.name.clone(), cap)
        })
        .collect();
    let results = lab.connect_clients_expect_landed(esp);
    // Let the last exchanges with the VIP (DELETE, its answer) reach the captures.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let keylog = lab.ike_keylog_path();
    let mut decoded = Vec::new();
    for (name, cap) in caps {
        let pcap = cap.pcap_path().to_path_buf();
        cap.finish().unwrap_or_else(|e| panic!("{e:#}"));
        decoded.push((name, decode_with_keys(&pcap, &keylog)));
    }
    let rows = std::fs::read_to_string(&keylog).unwrap_or_default();
    for r in rows.lines() {
        let algs: Vec<&str> = r.split(',').filter(|f| f.starts_with('"')).collect();
        eprintln!("key log row: algorithms {algs:?}");
    }
    assert!(
        rows.lines().count() >= results.len(),
        "one key log row per IKE SA at least:\n{rows}"
    );
    let stats = lab.ikelb_stats().unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("ikelb stats: {stats}");
    assert!(
        target_redirects(&stats) >= results.len() as u64,
        "userspace redirects count in the per-target counters: {stats}"
    );
    assert!(
        stats["pass_auth_mode"].as_u64().unwrap_or(0) > 0,
        "the XDP program passed the auth-mode VIPs' IKE up: {stats}"
    );
    (lab, results, decoded)
}

/// strongSwan 5.9.8 with `auth-redirect = "informational"` over IPv4 and IPv6, and
/// from port 4500 (non-ESP marker from the first message on).
#[test]
fn strongswan_is_redirected_after_ike_auth_by_informational() {
    crate::require_root!();
    let clients = vec![
        ClientSpec::new("sw4a", ClientKind::StrongSwan, Family::V4, 500),
        ClientSpec::new("sw6a", ClientKind::StrongSwan, Family::V6, 500),
        ClientSpec::new("sw4an", ClientKind::StrongSwan, Family::V4, 4500),
    ];
    let (lab, _, decoded) = auth_lab("informational", None, clients);
    for (name, text) in &decoded {
        let pkts = packets(text);
        let auth = pkts
            .iter()
            .find(|p| p.contains("Exchange type: IKE_AUTH (35)") && p.contains("Flags: 0x20"))
            .unwrap_or_else(|| panic!("{name}: no IKE_AUTH response from the VIP:\n{text}"));
        assert!(
            auth.contains("Payload: Authentication (39)")
                && auth.contains("Payload: Security Association (33)")
                && auth.contains("Payload: Traffic Selector - Initiator (44)"),
            "{name}: the decrypted IKE_AUTH response has AUTH, SA and TSi:\n{auth}"
        );
        assert!(
            !auth.contains("REDIRECT (16407)"),
            "{name}: no REDIRECT in IKE_AUTH with the informational method:\n{auth}"
        );
        let info = pkts
            .iter()
            .find(|p| {
                p.contains("Exchange type: INFORMATIONAL (37)")
                    && p.contains("Notify Message Type: REDIRECT (16407)")
            })
            .unwrap_or_else(|| {
                panic!("{name}: no decrypted INFORMATIONAL with N(REDIRECT):\n{text}")
            });
        assert!(
            info.contains("Flags: 0x00"),
            "{name}: the redirect is a request from the original responder:\n{info}"
        );
        eprintln!("{name}: decrypted INFORMATIONAL redirect:\n{info}");
    }
    // Without the keys tshark cannot see inside: the REDIRECT was encrypted.
    let c = lab.client("sw4a").expect("client");
    let pcap = lab.run_dir.join("sw4a.pcap");
    let mut plain = cmd::command("tshark", ["-n", "-V", "-O", "isakmp", "-r"]);
    plain.arg(&pcap);
    let plain = cmd::run(&mut plain).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        !plain.contains("REDIRECT (16407)"),
        "{}: REDIRECT visible without keys",
        c.spec.name
    );
}

/// libreswan 4.10 with `auth-redirect = "ike_auth"`, IPv4, IPv6 and to port 4500.
#[test]
fn libreswan_is_redirected_in_ike_auth() {
    crate::require_root!();
    let clients = vec![
        ClientSpec::new("ls4a", ClientKind::Libreswan, Family::V4, 500),
        ClientSpec::new("ls6a", ClientKind::Libreswan, Family::V6, 500),
        ClientSpec::new("ls4an", ClientKind::Libreswan, Family::V4, 4500),
    ];
    let (_lab, _, decoded) = auth_lab("ike_auth", None, clients);
    for (name, text) in &decoded {
        let pkts = packets(text);
        let auth = pkts
            .iter()
            .find(|p| {
                p.contains("Exchange type: IKE_AUTH (35)")
                    && p.contains("Notify Message Type: REDIRECT (16407)")
            })
            .unwrap_or_else(|| {
                panic!("{name}: no decrypted IKE_AUTH response with N(REDIRECT):\n{text}")
            });
        assert!(
            auth.contains("Payload: Authentication (39)")
                && !auth.contains("Payload: Security Association (33)"),
            "{name}: IKE_AUTH redirect carries AUTH and no CHILD SA:\n{auth}"
        );
        eprintln!("{name}: decrypted IKE_AUTH redirect:\n{auth}");
    }
}

/// The IKE message of a captured IKE_SA_INIT frame (Ethernet, IPv4/IPv6, UDP 500).
fn ike_of(frame: &[u8]) -> Vec<u8> {
    let l4 = match u16::from_be_bytes([frame[12], frame[13]]) {
        0x0800 => 14 + usize::from(frame[14] & 0x0f) * 4,
        _ => 14 + 40,
    };
    frame[l4 + 8..].to_vec()
}

/// `ike` with a Vendor ID payload of `extra` bytes appended to its payload chain.
fn with_vendor_id(ike: &[u8], extra: usize) -> Vec<u8> {
    let mut m = ike.to_vec();
    let mut next_at = 16; // the header's Next Payload
    let mut off = 28;
    while m[next_at] != 0 {
        next_at = off;
        off += usize::from(u16::from_be_bytes([m[off + 2], m[off + 3]]));
    }
    assert_eq!(off, m.len(), "payload chain ends at the message end");
    m[next_at] = 43; // Vendor ID
    let len = u16::try_from(4 + extra).expect("length");
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&len.to_be_bytes());
    m.extend((0..extra).map(|i| i as u8));
    let total = u32::try_from(m.len()).expect("length");
    m[24..28].copy_from_slice(&total.to_be_bytes());
    m
}

/// The Ni of an IKE_SA_INIT (payload type 40).
fn nonce_of(ike: &[u8]) -> Vec<u8> {
    let mut kind = ike[16];
    let mut off = 28;
    while kind != 0 {
        let len = usize::from(u16::from_be_bytes([ike[off + 2], ike[off + 3]]));
        if kind == 40 {
            return ike[off + 4..off + len].to_vec();
        }
        kind = ike[off];
        off += len;
    }
    panic!("no nonce")
}

/// Sends `payload` from `src` (ephemeral port) to `dst`:500 inside the client's
/// namespace and returns the answer's bytes, if one came within two seconds.
fn udp_exchange(
    lab: &Lab,
    client: &str,
    src: IpAddr,
    dst: IpAddr,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let c = lab.client(client).expect("client");
    let script = "import socket, sys\n\
        fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET\n\
        s = socket.socket(fam, socket.SOCK_DGRAM)\n\
        s.bind((sys.argv[1], 0))\n\
        s.settimeout(2)\n\
        s.sendto(bytes.fromhex(sys.argv[3]), (sys.argv[2], 500))\n\
        try:\n    print(s.recvfrom(4096)[0].hex())\n\
        except socket.timeout:\n    print('none')\n";
    let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
    let mut py = c.netns.exec("python3");
    py.args(["-c", script, &src.to_string(), &dst.to_string(), &hex]);
    let out = cmd::run(&mut py).unwrap_or_else(|e| panic!("{e:#}"));
    let out = out.trim();
    (out != "none").then(|| {
        (0..out.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&out[i..i + 2], 16).expect("hex"))
            .collect()
    })
}

/// An init-mode VIP: an IKE_SA_INIT in IP fragments (IPv4 and IPv6) passes the XDP
/// program and is answered by the userspace responder with the fast path's bytes
/// (`lb_common::wire::redirect::emit_ike`), the target from the same slot table.
#[test]
fn fragmented_ike_sa_init_gets_the_fast_path_answer_from_userspace() {
    crate::require_root!();
    require_ikelb();
    let lab = Lab::up(LabConfig {
        members: 1,
        balancer: Balancer::ikelb_default(),
        clients: vec![ClientSpec::new(
            "fr",
            ClientKind::StrongSwan,
            Family::V4,
            500,
        )],
        ..LabConfig::default()
    })
    .unwrap_or_else(|e| panic!("lab up: {e:#}"));
    let before = target_redirects(&lab.ikelb_stats().unwrap_or_else(|e| panic!("{e:#}")));
    let c = lab.client("fr").expect("client");
    let gw = &lab.members[0];
    for (fam, fixture, target) in [
        (Family::V4, "strongswan_v4_500", gw.v4()),
        (Family::V6, "strongswan_v6_500", gw.v6()),
    ] {
        let ike = with_vendor_id(&ike_of(&crate::fixtures::fixture(fixture)), 2000);
        let src = crate::lab::segment_addr(fam, crate::lab::client_host(c.index));
        let answer = udp_exchange(&lab, "fr", src, vip(fam), &ike).unwrap_or_else(|| {
            panic!(
                "{fam:?}: no answer to a fragmented IKE_SA_INIT\n{}",
                lab.logs(20)
            )
        });
        let t = match target {
            IpAddr::V4(a) => Target::ipv4(a.octets()),
            IpAddr::V6(a) => Target::ipv6(a.octets()),
        };
        let spi: [u8; 8] = ike[..8].try_into().expect("spi");
        let ni = nonce_of(&ike);
        let mut want = vec![0; redirect::ike_len(usize::from(t.ident_len), ni.len())];
        let n = redirect::emit_ike(&spi, &t, &ni, &mut want).expect("emit_ike");
        assert_eq!(answer, want[..n], "{fam:?}: not the fast path's bytes");
    }
    let stats = lab.ikelb_stats().unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("ikelb stats: {stats}");
    assert_eq!(
        target_redirects(&stats),
        before + 2,
        "the slow path counts in the per-target counters: {stats}"
    );
}

/// The client compatibility table of the README, measured: every client against both
/// methods (IPv4), one line each. Run by hand (`-- --ignored --nocapture`): two of the
/// four cells fail by the client's doing (strongSwan 5.9.8 aborts on the IKE_AUTH
/// redirect, "double free detected"; libreswan on a kernel without ESP drops its IKE SA
/// when its own ESP install fails, before the INFORMATIONAL redirect reaches it).
#[test]
#[ignore = "measurement for the README; two cells fail by design"]
fn client_compatibility_matrix() {
    crate::require_root!();
    require_ikelb();
    let esp = esp::probe().expect("ESP probe");
    let mut rows = Vec::new();
    for method in ["informational", "ike_auth"] {
        for (kind, name) in [
            (ClientKind::StrongSwan, "swm"),
            (ClientKind::Libreswan, "lsm"),
        ] {
            let lab = Lab::up(LabConfig {
                balancer: Balancer::ikelb_default(),
                clients: vec![ClientSpec::new(name, kind, Family::V4, 500)],
                ikelb_auth: Some(method.into()),
                ..LabConfig::default()
            })
            .unwrap_or_else(|e| panic!("lab up: {e:#}"));
            let r = lab.connect_clients().remove(0);
            let aborted = std::fs::read_to_string(lab.run_dir.join(name).join("charon.out"))
                .is_ok_and(|t| t.contains("double free"));
            rows.push(format!(
                "{kind:?} {method}: verdict {:?}; client aborted: {aborted}; {}",
                r.verdict(esp),
                r.summary()
            ));
        }
    }
    eprintln!("{}", rows.join("\n"));
}

/// The lab's auth-mode config (VIPs, `[ike]`, one peer per client) is one the daemon
/// accepts (no root needed).
#[test]
fn auth_lab_config_passes_ikelb_check_config() {
    let bin = ikelb_bin();
    if !bin.exists() {
        eprintln!("SKIPPED: {} not built", bin.display());
        return;
    }
    let dir = std::env::temp_dir().join(format!("ikelb-cfg-{}", crate::netns::unique_tag()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    for method in ["informational", "ike_auth"] {
        let path = dir.join("ikelb.toml");
        let cfg = LabConfig {
            clients: ClientSpec::standard_set(),
            ikelb_auth: Some(method.into()),
            ..LabConfig::default()
        };
        std::fs::write(&path, cfg.ikelb_toml("native")).expect("write");
        let out = std::process::Command::new(&bin)
            .arg("check-config")
            .arg(&path)
            .output()
            .expect("run ikelb check-config");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ikelb check-config rejects the auth lab config: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            text.matches("redirect=Auth").count(),
            2,
            "both VIPs in auth mode: {text}"
        );
        assert!(text.contains("5 peer(s)"), "{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
