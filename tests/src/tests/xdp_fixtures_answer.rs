//! Checks of the program's answers that do not use lb-common: the frame field by field
//! (docs/protocol.md §2.3, §4.3, §4.4) and tshark's decoding of it (REDIRECT (16407), the
//! gateway identity, Redirect Nonce Data equal to the request's Ni, good checksums).

use std::net::IpAddr;

use lb_common::maps::Target;

use super::xdp_fixtures_frames::{self as fr, get};

/// An answer kept for the tshark pass.
pub(super) struct Answer {
    pub name: String,
    pub frame: Vec<u8>,
    /// The identity as tshark shows it.
    pub ident: String,
    pub nonce: Vec<u8>,
}

/// The answer to `req`, checked field by field without lb-common (docs/protocol.md §2.3,
/// §4.3).
pub(super) fn check_reply(req: &[u8], out: &[u8], t: &Target) -> Vec<String> {
    let Some(l) = fr::layout(req) else {
        return vec!["request has no layout".into()];
    };
    let mut e = Vec::new();
    let mut chk = |ok: bool, what: &str| {
        if !ok {
            e.push(format!("answer: {what}"));
        }
    };
    let ip = l.l2;
    let iph = if l.v6 { 40 } else { 20 };
    let u = ip + iph;
    let mk = if l.marker { 4 } else { 0 };
    let ike = u + 8 + mk;
    let n = ike + 28;
    let k = usize::from(t.ident_len);
    let Some(nonce) = fr::nonce(req, &l) else {
        return vec!["request has no Ni".into()];
    };
    chk(out.len() == n + 10 + k + nonce.len(), "frame length");
    chk(out.len() < req.len(), "not shorter than the request");
    if out.len() < n + 10 {
        return e;
    }
    chk(
        out[0..6] == req[6..12] && out[6..12] == req[0..6],
        "MACs not swapped",
    );
    chk(out[12..ip] == req[12..ip], "VLAN tags / EtherType changed");
    let (rs, rd) = if l.v6 {
        (&req[ip + 8..ip + 24], &req[ip + 24..ip + 40])
    } else {
        (&req[ip + 12..ip + 16], &req[ip + 16..ip + 20])
    };
    if l.v6 {
        chk(out[ip] >> 4 == 6, "IPv6 version");
        chk(
            fr::be16(out, ip + 4) == Some((out.len() - u) as u16),
            "IPv6 payload length",
        );
        chk(
            out[ip + 6] == 17 && out[ip + 7] == 64,
            "IPv6 next header / hop limit",
        );
        chk(
            &out[ip + 8..ip + 24] == rd && &out[ip + 24..ip + 40] == rs,
            "IPv6 addresses not swapped",
        );
    } else {
        chk(out[ip] == 0x45, "IPv4 version/IHL");
        chk(
            fr::be16(out, ip + 2) == Some((out.len() - ip) as u16),
            "IPv4 total length",
        );
        chk(
            fr::be16(out, ip + 6) == Some(0x4000),
            "IPv4 DF, no fragment",
        );
        chk(
            out[ip + 8] == 64 && out[ip + 9] == 17,
            "IPv4 TTL / protocol",
        );
        chk(
            fr::sum16(0, &out[ip..ip + 20]) == 0xffff,
            "IPv4 header checksum",
        );
        chk(
            &out[ip + 12..ip + 16] == rd && &out[ip + 16..ip + 20] == rs,
            "IPv4 addresses not swapped",
        );
    }
    chk(
        out[u..u + 2] == req[l.udp + 2..l.udp + 4],
        "UDP source port != request's destination port",
    );
    chk(
        out[u + 2..u + 4] == req[l.udp..l.udp + 2],
        "UDP destination port != request's source port",
    );
    chk(
        fr::be16(out, u + 4) == Some((out.len() - u) as u16),
        "UDP length",
    );
    let ps = fr::pseudo(l.v6, &out[ip..], out.len() - u);
    chk(
        fr::be16(out, u + 6) != Some(0) && fr::sum16(ps, &out[u..]) == 0xffff,
        "UDP checksum",
    );
    chk(out[u + 8..ike] == [0u8; 4][..mk], "non-ESP marker");
    chk(
        out[ike..ike + 8] == req[l.ike..l.ike + 8],
        "SPIi not echoed",
    );
    chk(out[ike + 8..ike + 16] == [0; 8], "SPIr not 0");
    chk(out[ike + 16] == 41, "next payload != N");
    chk(out[ike + 17] == 0x20, "version != 2.0");
    chk(out[ike + 18] == 34, "exchange != IKE_SA_INIT");
    chk(out[ike + 19] == 0x20, "flags != R");
    chk(out[ike + 20..ike + 24] == [0; 4], "message ID != 0");
    chk(
        fr::be32(out, ike + 24) == Some((out.len() - ike) as u32),
        "IKE length",
    );
    chk(out[n] == 0 && out[n + 1] == 0, "N: next payload / critical");
    chk(
        fr::be16(out, n + 2) == Some((out.len() - n) as u16),
        "N: payload length",
    );
    chk(out[n + 4] == 0 && out[n + 5] == 0, "N: protocol / SPI size");
    chk(fr::be16(out, n + 6) == Some(16407), "N: type != REDIRECT");
    chk(out[n + 8] == t.ident_type, "GW identity type");
    chk(out[n + 9] == t.ident_len, "GW identity length");
    chk(get(out, n + 10..n + 10 + k) == t.ident(), "GW identity");
    chk(
        get(out, n + 10 + k..out.len()) == nonce,
        "nonce data != the request's Ni",
    );
    e
}

/// The value tshark `-V` shows for `label` in `frame`'s text. It shortens long values
/// (`label [truncated]: prefix…`); the `-T fields` output has them whole.
fn shown_field<'a>(frame: &'a str, label: &str) -> &'a str {
    frame
        .lines()
        .find_map(|l| {
            let rest = l.trim().strip_prefix(label)?;
            rest.strip_prefix(" [truncated]")
                .unwrap_or(rest)
                .strip_prefix(": ")
        })
        .map_or("", |v| v.trim_end_matches('…'))
}

/// Decodes every answer with `tshark -V` and checks what it says; the nonce is compared
/// whole through `-T fields` (tshark's `-V` text shortens long byte strings).
pub(super) fn tshark_check(answers: &[Answer]) -> Result<(), String> {
    if std::process::Command::new("tshark")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED the tshark check: tshark not installed");
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!("ikelb-xdp-{}", crate::netns::unique_tag()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let file = dir.join("answers.pcap");
    let frames: Vec<&[u8]> = answers.iter().map(|a| a.frame.as_slice()).collect();
    let res = std::fs::write(&file, crate::pcap::write(&frames))
        .map_err(|e| format!("write {}: {e}", file.display()))
        .and_then(|()| {
            let tshark = |args: &[&str]| {
                let mut c = crate::cmd::command(
                    "tshark",
                    [
                        "-n",
                        "-o",
                        "ip.check_checksum:TRUE",
                        "-o",
                        "udp.check_checksum:TRUE",
                    ],
                );
                c.args(args).arg("-r").arg(&file);
                crate::cmd::run(&mut c).map_err(|e| format!("{e:#}"))
            };
            let text = tshark(&["-V", "-O", "ip,ipv6,udp,isakmp"])?;
            let fields = tshark(&[
                "-T",
                "fields",
                "-e",
                "isakmp.notify.data.redirect.nonce_data",
                "-e",
                "udp.checksum.status",
                "-e",
                "isakmp.notify.data.redirect.new_resp_gw_ident.ipv4",
                "-e",
                "isakmp.notify.data.redirect.new_resp_gw_ident.ipv6",
                "-e",
                "isakmp.notify.data.redirect.new_resp_gw_ident.fqdn",
            ])?;
            Ok((text, fields))
        });
    let _ = std::fs::remove_dir_all(&dir);
    let (text, fields) = res?;
    let decoded: Vec<&str> = text.split("\nFrame ").collect();
    let lines: Vec<&str> = fields.lines().collect();
    if decoded.len() != answers.len() || lines.len() != answers.len() {
        return Err(format!(
            "tshark decoded {} / {} frames of {}:\n{text}",
            decoded.len(),
            lines.len(),
            answers.len()
        ));
    }
    let mut errs = Vec::new();
    for ((a, d), line) in answers.iter().zip(&decoded).zip(&lines) {
        let nonce = fr::hex(&a.nonce).replace(['\n', ' '], "");
        let shown = shown_field(d, "Redirect Nonce Data");
        let kind = match a.ident.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => "IPv4",
            Ok(IpAddr::V6(_)) => "IPv6",
            Err(_) => "FQDN",
        };
        let want = [
            "Exchange type: IKE_SA_INIT (34)",
            "Flags: 0x20 (Responder, No higher version, Response)",
            "Message ID: 0x00000000",
            "Notify Message Type: REDIRECT (16407)",
            "[Checksum Status: Good]",
        ];
        let mut bad: Vec<String> = want
            .iter()
            .filter(|w| !d.contains(*w))
            .map(|w| format!("missing `{w}`"))
            .collect();
        let ident = shown_field(d, &format!("New Responder Gateway Identity ({kind})"));
        if ident.is_empty() || !a.ident.starts_with(ident) {
            bad.push(format!("-V identity `{ident}`"));
        }
        if d.contains("incorrect") || d.contains("Malformed") || d.contains("Expert Info") {
            bad.push("tshark reports a problem".into());
        }
        if shown.is_empty() || !nonce.starts_with(shown) {
            bad.push(format!("-V nonce `{shown}`"));
        }
        let idf = match kind {
            "IPv4" => format!("{}\t\t", a.ident),
            "IPv6" => format!("\t{}\t", a.ident),
            _ => format!("\t\t{}", a.ident),
        };
        if *line != format!("{nonce}\t1\t{idf}") {
            bad.push(format!(
                "fields `{line}` (want nonce, checksum status 1, identity)"
            ));
        }
        if !bad.is_empty() {
            errs.push(format!(
                "tshark, answer to `{}`: {}\n{d}",
                a.name,
                bad.join("; ")
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n\n"))
    }
}
