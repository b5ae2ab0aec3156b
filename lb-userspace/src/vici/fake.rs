//! A stand-in for charon's VICI socket in unit tests: it speaks the wire format of
//! `wire`, serves `list-sas` from a table of IKE SAs and applies `redirect` to it (a
//! peer that follows leaves the table at the next listing, as the old SA is deleted
//! once the peer is established elsewhere).

use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::wire::{Message, Packet};

/// One IKE SA of the fake charon.
#[derive(Clone, Debug)]
pub struct FakeSa {
    pub id: u32,
    pub peer: IpAddr,
    pub state: &'static str,
    pub initiator: bool,
    /// Whether the peer follows a redirect (it leaves the table).
    pub follows: bool,
    /// The gateway it was redirected to.
    pub redirected: Option<String>,
}

impl FakeSa {
    pub fn new(id: u32, peer: &str) -> FakeSa {
        FakeSa {
            id,
            peer: peer.parse().unwrap(),
            state: "ESTABLISHED",
            initiator: false,
            follows: true,
            redirected: None,
        }
    }

    fn section(&self) -> Message {
        Message::default()
            .kv("uniqueid", self.id.to_string())
            .kv("version", "2")
            .kv("state", self.state)
            .kv("local-host", "192.0.2.3")
            .kv("remote-host", self.peer.to_string())
            .kv("remote-id", format!("c{}.example", self.id))
            .kv("initiator", if self.initiator { "yes" } else { "no" })
            .section("child-sas", Message::default())
    }
}

/// What the fake saw and holds.
#[derive(Debug, Default)]
pub struct State {
    pub sas: Vec<FakeSa>,
    /// Every packet received, in order.
    pub received: Vec<Packet>,
    /// Every `redirect` asked: (ike-id, peer-ip, gateway).
    pub redirects: Vec<(String, String, String)>,
}

pub struct FakeCharon {
    pub path: PathBuf,
    pub state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl FakeCharon {
    pub fn start(sas: Vec<FakeSa>) -> FakeCharon {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("charon.vici");
        let l = UnixListener::bind(&path).unwrap();
        let state = Arc::new(Mutex::new(State {
            sas,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in l.incoming() {
                if sp.load(Ordering::Relaxed) {
                    return;
                }
                if let Ok(c) = conn {
                    serve(c, &st);
                }
            }
        });
        FakeCharon {
            path,
            state,
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }
}

impl Drop for FakeCharon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut c: UnixStream, st: &Mutex<State>) {
    loop {
        let mut len = [0u8; 4];
        if c.read_exact(&mut len).is_err() {
            return;
        }
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        if c.read_exact(&mut body).is_err() {
            return;
        }
        let p = Packet::decode(&body).expect("the client sends valid packets");
        let out = answer(&mut st.lock().unwrap(), p);
        for a in out {
            if c.write_all(&a.encode().unwrap()).is_err() {
                return;
            }
        }
    }
}

fn answer(st: &mut State, p: Packet) -> Vec<Packet> {
    st.received.push(p.clone());
    match p {
        Packet::EventRegister(_) | Packet::EventUnregister(_) => vec![Packet::EventConfirm],
        Packet::CmdRequest { name, msg } => match name.as_slice() {
            b"list-sas" => {
                // Peers that followed a redirect are gone by the next listing.
                st.sas.retain(|s| !(s.follows && s.redirected.is_some()));
                let mut out: Vec<Packet> = st
                    .sas
                    .iter()
                    .map(|s| Packet::Event {
                        name: b"list-sa".to_vec(),
                        msg: Message::default().section("conn", s.section()),
                    })
                    .collect();
                out.push(Packet::CmdResponse(Message::default()));
                out
            }
            b"redirect" => {
                let get = |k| msg.str(k).unwrap_or_default().to_string();
                let (id, ip, gw) = (get("ike-id"), get("peer-ip"), get("gateway"));
                st.redirects.push((id.clone(), ip.clone(), gw.clone()));
                let hit = st
                    .sas
                    .iter_mut()
                    .find(|s| s.id.to_string() == id && s.peer.to_string() == ip);
                let reply = match hit {
                    Some(s) => {
                        s.redirected = Some(gw);
                        Message::default().kv("success", "yes").kv("matches", "1")
                    }
                    None => Message::default()
                        .kv("success", "no")
                        .kv("matches", "0")
                        .kv("errmsg", "no matching SAs to redirect found"),
                };
                vec![Packet::CmdResponse(reply)]
            }
            _ => vec![Packet::CmdUnknown],
        },
        _ => Vec::new(),
    }
}
