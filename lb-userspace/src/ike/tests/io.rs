//! The tokio driver over real UDP sockets on loopback (ephemeral ports standing in for
//! 500 and 4500): a whole PSK exchange with the INFORMATIONAL redirect, the timer
//! path (the redirect is retransmitted), and the key log.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use lb_common::wire::ike as wire;

use super::gateway::{VIP, config, x25519_gcm};
use super::initiator::{InitAnswer, Initiator, TestRng};
use crate::ike::io::{KeyLogFile, Listener, bind_freebind, drive};
use crate::ike::responder::Responder;
use crate::ike::types::config::AuthRedirect;

fn loopback_listener(port: u16) -> (Listener, SocketAddr) {
    let socket = bind_freebind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
    let real = socket.local_addr().unwrap();
    (
        Listener {
            logical: SocketAddr::from((VIP, port)),
            socket,
        },
        real,
    )
}

fn recv(sock: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0; 4096];
    let (n, _) = sock.recv_from(&mut buf).expect("an answer from the driver");
    buf.truncate(n);
    buf
}

#[test]
fn drives_a_whole_exchange_over_udp() {
    let dir = std::env::temp_dir().join(format!("ikelb-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.uat");
    let _ = std::fs::remove_file(&keys);
    let mut cfg = config(AuthRedirect::Informational);
    // Retransmit the redirect quickly so the timer path runs in the test.
    cfg.retransmit_timeout = Duration::from_millis(100);
    let responder = Responder::with_rng(cfg, Box::new(TestRng::new(7)));
    let (l500, real500) = loopback_listener(wire::PORT_IKE);
    let (l4500, real4500) = loopback_listener(wire::PORT_NATT);
    // The driver on a runtime of its own threads; this test's client blocks.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (control, control_rx) = tokio::sync::mpsc::channel(1);
    let svc = rt.spawn(drive(
        responder,
        vec![l500, l4500],
        Some(KeyLogFile::create(&keys).unwrap()),
        None,
        control_rx,
    ));

    let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (proposal, group) = x25519_gcm();
    let mut c = Initiator::new(
        3,
        client.local_addr().unwrap(),
        SocketAddr::from((VIP, 500)),
        proposal,
        group,
    );
    client.send_to(&c.sa_init(), real500).unwrap();
    assert_eq!(c.on_sa_init_response(&recv(&client)), InitAnswer::Accepted);

    // IKE_AUTH on "4500": with the non-ESP marker.
    c.gw = SocketAddr::from((VIP, 4500));
    let mut auth = vec![0; 4];
    auth.extend_from_slice(&c.ike_auth());
    client.send_to(&auth, real4500).unwrap();
    let resp = recv(&client);
    assert_eq!(&resp[..4], &[0; 4], "non-ESP marker on 4500");
    let resp = c.open(&resp[4..]);
    assert_eq!(resp.header.exchange, wire::EXCHANGE_IKE_AUTH);
    assert!(c.responder_auth_ok(&resp, b"ikelb test psk"));
    let info = recv(&client);
    let req = c.open(&info[4..]);
    assert_eq!(req.header.exchange, wire::EXCHANGE_INFORMATIONAL);
    assert!(req.find_notify(wire::NOTIFY_REDIRECT).is_some());
    // Not answered: the timer resends it, byte for byte.
    assert_eq!(recv(&client), info, "retransmitted redirect");
    let mut ack = vec![0; 4];
    ack.extend_from_slice(&c.respond(&req.header, &[]));
    client.send_to(&ack, real4500).unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let mut buf = [0u8; 2048];
    assert!(
        client.recv_from(&mut buf).is_err(),
        "answered: no more retransmissions"
    );

    drop(control);
    let stats = rt.block_on(svc).unwrap().unwrap();
    assert_eq!(stats.established, 1, "{stats:?}");
    assert_eq!(stats.redirected, 1, "{stats:?}");
    assert_eq!(stats.keys_logged, 1, "{stats:?}");
    assert_eq!(stats.datagrams_in, 3, "{stats:?}");
    assert!(stats.datagrams_out >= 4, "{stats:?}");
    let text = std::fs::read_to_string(&keys).unwrap();
    let row = text.lines().next().unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert!(
        row.starts_with(&format!("{},{},", hex(&c.spi_i), hex(&c.spi_r))),
        "{row}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn binds_a_vip_that_is_not_local_yet() {
    // TEST-NET-2 is on no interface here: IP_FREEBIND lets the bind succeed anyway.
    let s = bind_freebind(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 77)),
        0,
    ))
    .unwrap();
    assert_eq!(
        s.local_addr().unwrap().ip(),
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 77))
    );
    match bind_freebind("[2001:db8::77]:0".parse().unwrap()) {
        Ok(s6) => assert!(s6.local_addr().unwrap().is_ipv6()),
        // A build sandbox without IPv6.
        Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {}
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn key_log_is_private_and_never_reuses_a_path() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("ikelb-keylog-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.uat");
    drop(KeyLogFile::create(&keys).unwrap());
    let mode = std::fs::metadata(&keys).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // An existing file, or a link planted where the log goes, is refused.
    let e = KeyLogFile::create(&keys).err().expect("an existing file");
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    let link = dir.join("link.uat");
    std::os::unix::fs::symlink(dir.join("elsewhere"), &link).unwrap();
    assert!(KeyLogFile::create(&link).is_err());
    assert!(!dir.join("elsewhere").exists(), "the link was not followed");
    let _ = std::fs::remove_dir_all(&dir);
}
