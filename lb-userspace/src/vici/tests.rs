use std::time::Duration;

use proptest::prelude::*;

use super::fake::{FakeCharon, FakeSa};
use super::sa::{Redirect, RedirectAnswer, list_sas_stream};
use super::wire::{EncodeError, MAX_DEPTH, MAX_SEGMENT, Message, Packet, Value, split_segment};
use super::{Client, ViciError};

/// The encoding example of the vici plugin's README, byte for byte.
const README_EXAMPLE: &[u8] = &[
    3, 4, b'k', b'e', b'y', b'1', 0, 6, b'v', b'a', b'l', b'u', b'e', b'1', //
    1, 8, b's', b'e', b'c', b't', b'i', b'o', b'n', b'1', //
    1, 11, b's', b'u', b'b', b'-', b's', b'e', b'c', b't', b'i', b'o', b'n', //
    3, 4, b'k', b'e', b'y', b'2', 0, 6, b'v', b'a', b'l', b'u', b'e', b'2', //
    2,    //
    4, 5, b'l', b'i', b's', b't', b'1', //
    5, 0, 5, b'i', b't', b'e', b'm', b'1', //
    5, 0, 5, b'i', b't', b'e', b'm', b'2', //
    6,    //
    2,
];

fn readme_message() -> Message {
    Message::default().kv("key1", "value1").section(
        "section1",
        Message::default()
            .section("sub-section", Message::default().kv("key2", "value2"))
            .list("list1", &["item1", "item2"]),
    )
}

fn encoded(m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out).unwrap();
    out
}

#[test]
fn readme_example_both_ways() {
    assert_eq!(encoded(&readme_message()), README_EXAMPLE);
    let m = Message::decode(README_EXAMPLE).unwrap();
    assert_eq!(m, readme_message());
    let s1 = match m.get("section1") {
        Some(Value::Section(s)) => s,
        o => panic!("{o:?}"),
    };
    assert_eq!(
        s1.get("list1"),
        Some(&Value::List(vec![b"item1".to_vec(), b"item2".to_vec()]))
    );
    assert_eq!(m.str("key1"), Some("value1"));
    assert_eq!(m.str("section1"), None);
}

#[test]
fn every_cut_inside_an_element_is_an_error() {
    // Only the element boundaries of the root (after key1) leave a whole message.
    for cut in 0..README_EXAMPLE.len() {
        let r = Message::decode(&README_EXAMPLE[..cut]);
        assert_eq!(r.is_ok(), cut == 0 || cut == 14, "cut {cut}: {r:?}");
    }
}

#[test]
fn packets_are_the_documented_bytes() {
    let req = Packet::CmdRequest {
        name: b"list-sas".to_vec(),
        msg: Message::default(),
    };
    assert_eq!(req.encode().unwrap(), b"\0\0\0\x0a\x00\x08list-sas");
    let reg = Packet::EventRegister(b"list-sa".to_vec());
    assert_eq!(reg.encode().unwrap(), b"\0\0\0\x09\x03\x07list-sa");
    let unreg = Packet::EventUnregister(b"list-sa".to_vec());
    assert_eq!(unreg.encode().unwrap(), b"\0\0\0\x09\x04\x07list-sa");
    assert_eq!(Packet::EventConfirm.encode().unwrap(), b"\0\0\0\x01\x05");
    assert_eq!(Packet::CmdUnknown.encode().unwrap(), b"\0\0\0\x01\x02");
    assert_eq!(Packet::EventUnknown.encode().unwrap(), b"\0\0\0\x01\x06");
    let resp = Packet::CmdResponse(Message::default().kv("success", "yes"));
    assert_eq!(
        resp.encode().unwrap(),
        b"\0\0\0\x0f\x01\x03\x07success\x00\x03yes"
    );
    let ev = Packet::Event {
        name: b"x".to_vec(),
        msg: Message::default().kv("k", "v"),
    };
    assert_eq!(
        ev.encode().unwrap(),
        b"\0\0\0\x09\x07\x01x\x03\x01k\x00\x01v"
    );
    // The redirect of one IKE SA, as charon's `redirect` handler reads it.
    let r = Redirect {
        ike_id: 7,
        peer_ip: "10.0.0.9".parse().unwrap(),
        gateway: "192.0.2.2".into(),
    };
    let p = Packet::CmdRequest {
        name: b"redirect".to_vec(),
        msg: r.message(),
    };
    let mut want = b"\x00\x08redirect".to_vec();
    want.extend_from_slice(b"\x03\x06ike-id\x00\x017");
    want.extend_from_slice(b"\x03\x07peer-ip\x00\x0810.0.0.9");
    want.extend_from_slice(b"\x03\x07gateway\x00\x09192.0.2.2");
    let bytes = p.encode().unwrap();
    assert_eq!(&bytes[..4], &(want.len() as u32).to_be_bytes());
    assert_eq!(&bytes[4..], want.as_slice());
    for p in [req, reg, unreg, resp, ev, p] {
        let b = p.encode().unwrap();
        assert_eq!(Packet::decode(&b[4..]).unwrap(), p);
    }
}

#[test]
fn hostile_messages_are_errors() {
    let e = |b: &[u8]| Message::decode(b).unwrap_err();
    assert_eq!(e(&[2]).what, "section end (no section)");
    assert_eq!(e(&[5, 0, 0]).what, "list item (no list)");
    assert_eq!(e(&[6]).what, "list end (no list)");
    assert_eq!(e(&[7]).what, "element type");
    assert_eq!(e(&[0]).what, "element type");
    // Lists hold items only: no key/value, section or second list inside.
    assert!(
        e(&[4, 1, b'l', 3, 1, b'k', 0, 0, 6])
            .what
            .contains("only items")
    );
    assert!(
        e(&[4, 1, b'l', 4, 1, b'm', 6, 6])
            .what
            .contains("only items")
    );
    assert!(
        e(&[4, 1, b'l', 1, 1, b's', 2, 6])
            .what
            .contains("only items")
    );
    assert_eq!(e(&[4, 1, b'l', 5, 0, 0]).what, "list (not closed)");
    assert_eq!(e(&[1, 1, b's']).what, "section (not closed)");
    // Lengths past the end.
    assert_eq!(e(&[3, 9, b'k']).what, "name");
    assert_eq!(e(&[3, 1, b'k', 0]).what, "value length");
    assert_eq!(e(&[3, 1, b'k', 0xff, 0xff, 1]).what, "value");
    // Nesting beyond MAX_DEPTH, and just within it.
    let deep = |n: usize| {
        let mut b = Vec::new();
        for _ in 0..n {
            b.extend_from_slice(&[1, 0]);
        }
        b.extend(std::iter::repeat_n(2u8, n));
        b
    };
    assert!(Message::decode(&deep(MAX_DEPTH)).is_ok());
    let err = Message::decode(&deep(MAX_DEPTH + 1)).unwrap_err();
    assert_eq!(
        (err.what, err.at),
        ("section (nested too deep)", 2 * MAX_DEPTH)
    );
    // Packets: unknown types, trailing bytes, names past the end.
    assert_eq!(Packet::decode(&[8]).unwrap_err().at, 0);
    assert_eq!(Packet::decode(&[]).unwrap_err().what, "packet type");
    assert_eq!(
        Packet::decode(&[5, 0]).unwrap_err().what,
        "packet (trailing bytes)"
    );
    assert_eq!(Packet::decode(&[3, 2, b'a']).unwrap_err().what, "name");
    // An error inside the message names its offset in the packet.
    assert_eq!(Packet::decode(&[1, 3, 1, b'k', 0]).unwrap_err().at, 4);
}

#[test]
fn encoding_refuses_what_would_not_decode() {
    let long = "n".repeat(256);
    let m = Message::default().kv(&long, "v");
    assert_eq!(m.encode(&mut Vec::new()), Err(EncodeError::NameTooLong));
    let m = Message::default().kv("k", vec![0u8; 65536]);
    assert_eq!(m.encode(&mut Vec::new()), Err(EncodeError::ValueTooLong));
    let mut m = Message::default();
    for _ in 0..=MAX_DEPTH + 1 {
        m = Message::default().section("s", m);
    }
    assert_eq!(m.encode(&mut Vec::new()), Err(EncodeError::TooDeep));
    let mut m = Message::default();
    for i in 0..9 {
        m = m.kv(&i.to_string(), vec![0u8; 65535]);
    }
    let p = Packet::CmdResponse(m);
    assert_eq!(p.encode(), Err(EncodeError::TooLong));
}

#[test]
fn segments_split_from_a_stream() {
    let a = Packet::EventConfirm.encode().unwrap();
    let b = Packet::CmdResponse(Message::default().kv("k", "v"))
        .encode()
        .unwrap();
    let s = [a.clone(), b.clone()].concat();
    let (body, used) = split_segment(&s).unwrap().unwrap();
    assert_eq!((body, used), (&a[4..], a.len()));
    let (body, used) = split_segment(&s[used..]).unwrap().unwrap();
    assert_eq!((body, used), (&b[4..], b.len()));
    for cut in 0..a.len() {
        assert_eq!(split_segment(&a[..cut]).unwrap(), None, "cut {cut}");
    }
    let huge = ((MAX_SEGMENT + 1) as u32).to_be_bytes();
    assert!(split_segment(&huge).is_err());
    let max = (MAX_SEGMENT as u32).to_be_bytes();
    assert_eq!(split_segment(&max).unwrap(), None);
}

fn sa_event(id: u32, state: &str, peer: &str, initiator: bool) -> Vec<u8> {
    Packet::Event {
        name: b"list-sa".to_vec(),
        msg: Message::default().section(
            "rw",
            Message::default()
                .kv("uniqueid", id.to_string())
                .kv("version", "2")
                .kv("state", state)
                .kv("local-host", "192.0.2.3")
                .kv("remote-host", peer)
                .kv("remote-id", "client.example")
                .kv("initiator", if initiator { "yes" } else { "no" })
                .section(
                    "child-sas",
                    Message::default().section(
                        "svc-1",
                        Message::default()
                            .kv("state", "INSTALLED")
                            .list("local-ts", &["10.0.0.0/24"]),
                    ),
                ),
        ),
    }
    .encode()
    .unwrap()
}

#[test]
fn list_sas_stream_yields_each_ike_sa() {
    let mut s = Packet::EventConfirm.encode().unwrap();
    s.extend(sa_event(3, "ESTABLISHED", "10.0.0.9", false));
    s.extend(
        Packet::Event {
            name: b"ike-updown".to_vec(),
            msg: Message::default().section("x", Message::default()),
        }
        .encode()
        .unwrap(),
    );
    s.extend(sa_event(4, "CONNECTING", "2001:db8::9", true));
    let end = Packet::CmdResponse(Message::default()).encode().unwrap();
    s.extend(&end);
    let sas = list_sas_stream(&s).unwrap();
    assert_eq!(sas.len(), 2);
    assert_eq!(sas[0].name, "rw");
    assert_eq!(sas[0].uniqueid, Some(3));
    assert_eq!(sas[0].version, Some(2));
    assert!(sas[0].established() && !sas[0].initiator);
    assert_eq!(sas[0].remote_host, Some("10.0.0.9".parse().unwrap()));
    assert_eq!(sas[0].local_host, Some("192.0.2.3".parse().unwrap()));
    assert_eq!(sas[0].remote_id, "client.example");
    assert_eq!(sas[1].remote_host, Some("2001:db8::9".parse().unwrap()));
    assert!(!sas[1].established() && sas[1].initiator);
    // Every cut before the response is an error.
    for cut in 0..s.len() - end.len() + 1 {
        assert!(list_sas_stream(&s[..cut]).is_err(), "cut {cut}");
    }
    assert!(matches!(
        list_sas_stream(&Packet::CmdUnknown.encode().unwrap()),
        Err(ViciError::Unknown(_))
    ));
    let bad = Packet::EventRegister(b"x".to_vec()).encode().unwrap();
    assert!(matches!(
        list_sas_stream(&bad),
        Err(ViciError::Unexpected(_))
    ));
    // A malformed second packet names its offset in the stream.
    let mut s2 = Packet::EventConfirm.encode().unwrap();
    s2.extend_from_slice(&[0, 0, 0, 1, 9]);
    match list_sas_stream(&s2) {
        Err(ViciError::Wire(e)) => assert_eq!((e.what, e.at), ("packet type", 9)),
        o => panic!("{o:?}"),
    }
}

#[test]
fn redirect_answers() {
    let ok = Message::default().kv("success", "yes").kv("matches", "1");
    assert_eq!(
        RedirectAnswer::of(&ok),
        RedirectAnswer {
            success: true,
            matches: 1,
            errmsg: None
        }
    );
    let no = Message::default()
        .kv("success", "no")
        .kv("matches", "0")
        .kv("errmsg", "no matching SAs to redirect found");
    let a = RedirectAnswer::of(&no);
    assert!(!a.success && a.matches == 0 && a.errmsg.is_some());
    assert_eq!(
        RedirectAnswer::of(&Message::default()),
        RedirectAnswer::default()
    );
}

#[test]
fn client_against_a_fake_charon() {
    let fake = FakeCharon::start(vec![FakeSa::new(1, "10.0.0.1"), FakeSa::new(2, "10.0.0.2")]);
    let mut c = Client::connect(&fake.path, Duration::from_secs(2)).unwrap();
    let sas = c.list_sas().unwrap();
    assert_eq!(
        sas.iter().map(|s| s.uniqueid).collect::<Vec<_>>(),
        [Some(1), Some(2)]
    );
    let r = Redirect {
        ike_id: 2,
        peer_ip: "10.0.0.2".parse().unwrap(),
        gateway: "192.0.2.7".into(),
    };
    assert!(c.redirect(&r).unwrap().success);
    // A unique id with another peer's address matches nothing.
    let wrong = Redirect {
        peer_ip: "10.0.0.1".parse().unwrap(),
        ..r.clone()
    };
    assert_eq!(c.redirect(&wrong).unwrap().matches, 0);
    assert_eq!(c.list_sas().unwrap().len(), 1);
    assert!(matches!(
        c.command("nonsense", Message::default()),
        Err(ViciError::Unknown(_))
    ));
    let st = fake.state.lock().unwrap();
    // Register, list, unregister: the order the protocol asks for.
    assert_eq!(st.received[0], Packet::EventRegister(b"list-sa".to_vec()));
    assert!(matches!(&st.received[1], Packet::CmdRequest { name, .. } if name == b"list-sas"));
    assert_eq!(st.received[2], Packet::EventUnregister(b"list-sa".to_vec()));
    assert_eq!(
        st.redirects[0],
        ("2".into(), "10.0.0.2".into(), "192.0.2.7".into())
    );
    drop(st);
    let missing = fake.path.with_file_name("none.vici");
    let e = Client::connect(&missing, Duration::from_secs(1))
        .err()
        .unwrap();
    assert!(e.to_string().contains("none.vici"), "{e}");
}

fn arb_message() -> impl Strategy<Value = Message> {
    let name = proptest::collection::vec(any::<u8>(), 0..8);
    let blob = proptest::collection::vec(any::<u8>(), 0..16);
    let leaf = prop_oneof![
        (name.clone(), blob.clone()).prop_map(|(n, b)| (n, Value::Bytes(b))),
        (name.clone(), proptest::collection::vec(blob, 0..4))
            .prop_map(|(n, l)| (n, Value::List(l))),
    ];
    let flat = proptest::collection::vec(leaf, 0..5).prop_map(Message);
    flat.prop_recursive(3, 32, 4, move |inner| {
        proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..8), inner)
                .prop_map(|(n, m)| (n, Value::Section(m))),
            0..4,
        )
        .prop_map(Message)
    })
}

proptest! {
    #[test]
    fn messages_round_trip(m in arb_message()) {
        let b = encoded(&m);
        prop_assert_eq!(Message::decode(&b).unwrap(), m.clone());
        let p = Packet::Event { name: b"e".to_vec(), msg: m };
        let seg = p.encode().unwrap();
        prop_assert_eq!(Packet::decode(&seg[4..]).unwrap(), p);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Message::decode(&b);
        let _ = Packet::decode(&b);
        let _ = split_segment(&b);
        let _ = list_sas_stream(&b);
    }

    #[test]
    fn mutated_streams_never_panic(i in 0usize..4096, v in any::<u8>()) {
        let mut s = sa_event(3, "ESTABLISHED", "10.0.0.9", false);
        s.extend(Packet::CmdResponse(Message::default()).encode().unwrap());
        let i = i % s.len();
        s[i] = v;
        let _ = list_sas_stream(&s);
    }
}
