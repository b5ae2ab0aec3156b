use super::*;
use crate::vici::wire::{element, packet};

/// VICI message elements, encoded as the README describes.
enum El<'a> {
    Sec(&'a str),
    End,
    Kv(&'a str, &'a str),
    List(&'a str, &'a [&'a str]),
}

fn message(els: &[El<'_>]) -> Vec<u8> {
    let mut m = Vec::new();
    let name = |m: &mut Vec<u8>, n: &str| {
        m.push(n.len() as u8);
        m.extend_from_slice(n.as_bytes());
    };
    let value = |m: &mut Vec<u8>, v: &str| {
        m.extend_from_slice(&(v.len() as u16).to_be_bytes());
        m.extend_from_slice(v.as_bytes());
    };
    for e in els {
        match e {
            El::Sec(n) => {
                m.push(element::SECTION_START);
                name(&mut m, n);
            }
            El::End => m.push(element::SECTION_END),
            El::Kv(k, v) => {
                m.push(element::KEY_VALUE);
                name(&mut m, k);
                value(&mut m, v);
            }
            El::List(n, items) => {
                m.push(element::LIST_START);
                name(&mut m, n);
                for i in *items {
                    m.push(element::LIST_ITEM);
                    value(&mut m, i);
                }
                m.push(element::LIST_END);
            }
        }
    }
    m
}

fn packet(kind: u8, name: Option<&str>, msg: &[u8]) -> Vec<u8> {
    let mut body = vec![kind];
    if let Some(n) = name {
        body.push(n.len() as u8);
        body.extend_from_slice(n.as_bytes());
    }
    body.extend_from_slice(msg);
    let mut p = (body.len() as u32).to_be_bytes().to_vec();
    p.extend(body);
    p
}

fn ike_sa(name: &str, state: &str) -> Vec<u8> {
    message(&[
        El::Sec(name),
        El::Kv("uniqueid", "1"),
        El::Kv("version", "2"),
        El::Kv("state", state),
        El::Kv("remote-host", "10.200.0.101"),
        El::Sec("child-sas"),
        El::Sec("svc-1"),
        El::Kv("name", "svc"),
        // A CHILD_SA's state must not count.
        El::Kv("state", "INSTALLED"),
        El::List("local-ts", &["10.66.0.101/32"]),
        El::List("remote-ts", &["10.77.0.1/32", "fd77::1/128"]),
        El::End,
        El::End,
        El::End,
    ])
}

fn stream() -> Vec<u8> {
    let mut s = packet(packet::EVENT_CONFIRM, None, &[]);
    s.extend(packet(
        packet::EVENT,
        Some("list-sa"),
        &ike_sa("vip", "ESTABLISHED"),
    ));
    s.extend(packet(
        packet::EVENT,
        Some("ike-updown"),
        &ike_sa("x", "ESTABLISHED"),
    ));
    s.extend(packet(
        packet::EVENT,
        Some("list-sa"),
        &ike_sa("vip", "CONNECTING"),
    ));
    s.extend(packet(
        packet::EVENT,
        Some("list-sa"),
        &ike_sa("rw", "ESTABLISHED"),
    ));
    s.extend(packet(packet::CMD_RESPONSE, None, &[]));
    s
}

#[test]
fn vici_counts_established_ike_sas() {
    let c = vici_list_sas(&stream()).unwrap();
    assert_eq!(
        c,
        SaCount {
            ike_sas: 3,
            established: 2
        }
    );
    // Nothing listed.
    let empty = packet(packet::CMD_RESPONSE, None, &[]);
    assert_eq!(vici_list_sas(&empty).unwrap(), SaCount::default());
}

#[test]
fn vici_errors() {
    let s = stream();
    // Every cut before the response is an error, never a panic or a short count.
    let resp_len = packet(packet::CMD_RESPONSE, None, &[]).len();
    for cut in 0..s.len() - resp_len + 1 {
        assert!(vici_list_sas(&s[..cut]).is_err(), "cut {cut}");
    }
    assert!(matches!(
        vici_list_sas(&packet(packet::CMD_UNKNOWN, None, &[])),
        Err(ProbeError::Unknown)
    ));
    let mut bad = ike_sa("vip", "ESTABLISHED");
    bad.pop(); // unbalanced sections
    let s = packet(packet::EVENT, Some("list-sa"), &bad);
    assert!(matches!(
        vici_list_sas(&s),
        Err(ProbeError::Malformed { .. })
    ));
    let s = packet(9, None, &[]);
    assert!(matches!(
        vici_list_sas(&s),
        Err(ProbeError::Malformed { at: 4, .. })
    ));
}

#[test]
fn vici_mutations_never_panic() {
    let s = stream();
    let mut x = 1u64;
    for _ in 0..5000 {
        x = lb_common::hash::mix64(x);
        let mut m = s.clone();
        let i = (x as usize) % m.len();
        m[i] = (x >> 32) as u8;
        let _ = vici_list_sas(&m);
    }
}

#[test]
fn swanctl_raw_text() {
    let text = "list-sa event {vip {uniqueid=1 version=2 state=ESTABLISHED \
        local-host=10.200.0.101 local-port=4500 local-id=c1.ikelb.test \
        remote-host=10.200.0.11 remote-port=4500 remote-id=gw.ikelb.test initiator=yes \
        child-sas {svc-1 {name=svc uniqueid=1 reqid=1 state=INSTALLED \
        local-ts=[10.66.0.101/32] remote-ts=[10.77.0.1/32 fd77::1/128]}}}}\n\
        list-sa event {rw {uniqueid=2 version=2 state=CONNECTING child-sas {}}}\n\
        list-sa event {rw {state=ESTABLISHED uniqueid=3}}\n\
        list-sas reply {}\n";
    assert_eq!(
        swanctl_list_sas_raw(text),
        SaCount {
            ike_sas: 3,
            established: 2
        }
    );
    assert_eq!(
        swanctl_list_sas_raw("list-sas reply {}\n"),
        SaCount::default()
    );
}

fn nlmsg(kind: u16, payload: &[u8]) -> Vec<u8> {
    let len = (xfrm::NLMSG_HDRLEN + payload.len()) as u32;
    let mut m = len.to_ne_bytes().to_vec();
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&[0; 10]); // flags, seq, pid
    m.extend_from_slice(payload);
    while !m.len().is_multiple_of(4) {
        m.push(0);
    }
    m
}

fn nla(ty: u16, v: &[u8]) -> Vec<u8> {
    let mut a = ((4 + v.len()) as u16).to_ne_bytes().to_vec();
    a.extend_from_slice(&ty.to_ne_bytes());
    a.extend_from_slice(v);
    while !a.len().is_multiple_of(4) {
        a.push(0);
    }
    a
}

#[test]
fn xfrm_sadinfo_count() {
    // flags u32, then XFRMA_SAD_HINFO (2: two u32s) and XFRMA_SAD_CNT, as the kernel's
    // build_sadinfo writes them (count first there; order must not matter).
    let mut p = 0u32.to_ne_bytes().to_vec();
    p.extend(nla(2, &[0; 8]));
    p.extend(nla(xfrm::XFRMA_SAD_CNT, &1234u32.to_ne_bytes()));
    let m = nlmsg(xfrm::XFRM_MSG_NEWSADINFO, &p);
    assert_eq!(xfrm_sadinfo(&m).unwrap(), 1234);
    for cut in 0..m.len() {
        assert!(xfrm_sadinfo(&m[..cut]).is_err(), "cut {cut}");
    }
    assert!(matches!(
        xfrm_sadinfo(&nlmsg(xfrm::NLMSG_ERROR, &[0; 20])),
        Err(ProbeError::Unknown)
    ));
    let no_cnt = nlmsg(xfrm::XFRM_MSG_NEWSADINFO, &0u32.to_ne_bytes());
    assert!(xfrm_sadinfo(&no_cnt).is_err());
}

#[test]
fn xfrm_dump_count_and_probe() {
    let mut d = Vec::new();
    for _ in 0..6 {
        d.extend(nlmsg(xfrm::XFRM_MSG_NEWSA, &[0; 30]));
    }
    d.extend(nlmsg(xfrm::NLMSG_DONE, &0u32.to_ne_bytes()));
    assert_eq!(xfrm_dump(&d).unwrap(), 6);
    assert!(matches!(
        xfrm_dump(&d[..d.len() - 20]),
        Err(ProbeError::Incomplete)
    ));
    let mut probe = XfrmProbe {
        fetch: || Ok(d.clone()),
        format: XfrmFormat::Dump,
        states_per_sa: 2,
    };
    assert_eq!(probe.active_sas().unwrap(), 3);
}

#[test]
fn command_output_is_one_integer() {
    assert_eq!(command_output(b"42\n").unwrap(), 42);
    assert_eq!(command_output(b"  7 ").unwrap(), 7);
    for bad in [&b""[..], b"-1", b"4 2", b"SAD count 3", b"99999999999"] {
        assert!(
            matches!(command_output(bad), Err(ProbeError::NotANumber(_))),
            "{bad:?}"
        );
    }
    let mut p = CommandProbe {
        fetch: || Ok(b"17\n".to_vec()),
    };
    assert_eq!(p.active_sas().unwrap(), 17);
    let mut p = CommandProbe {
        fetch: || Err(io::Error::other("exit status 1")),
    };
    assert!(matches!(p.active_sas(), Err(ProbeError::Io(_))));
}

#[test]
fn vici_probe_uses_established() {
    let s = stream();
    let mut p = ViciProbe {
        fetch: || Ok(s.clone()),
        format: ViciFormat::Stream,
    };
    assert_eq!(p.active_sas().unwrap(), 2);
    let mut p = ViciProbe {
        fetch: || Ok(b"list-sa event {a {state=ESTABLISHED}}\n".to_vec()),
        format: ViciFormat::SwanctlRaw,
    };
    assert_eq!(p.active_sas().unwrap(), 1);
    assert_eq!(Fixed(5).active_sas().unwrap(), 5);
}
