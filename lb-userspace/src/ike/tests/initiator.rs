//! A minimal sans-IO IKEv2 *initiator* for the responder tests, built from the same
//! `ike::*` primitives, plus a seeded RNG so every run is the same.

use std::net::{Ipv4Addr, SocketAddr};

use lb_common::wire::ike::{self as wire, ATTR_KEY_LENGTH, AUTH_PSK, PROTO_ESP, PROTO_IKE};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

use crate::ike::crypto::dh::DhSecret;
use crate::ike::crypto::prf::{IkeSaKeys, nat_detection_hash, psk_auth, signed_octets};
use crate::ike::crypto::sk::SkCipher;
use crate::ike::types::message::{Header, Message, Payload};
use crate::ike::types::payload::{
    AddrRange, Attribute, Auth, Identification, KeyExchange, Notify, Proposal, TrafficSelector,
    Transform,
};
use crate::ike::types::proposal::{DhGroup, IkeChoice, IkeSuite, select_ike};

/// SHA-256 in counter mode over a seed: deterministic, and good enough to stand in for
/// a CSPRNG in tests.
pub(super) struct TestRng {
    seed: u64,
    counter: u64,
    buf: Vec<u8>,
}

impl TestRng {
    pub(super) fn new(seed: u64) -> Self {
        TestRng {
            seed,
            counter: 0,
            buf: Vec::new(),
        }
    }
}

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest {
            if self.buf.is_empty() {
                let mut h = Sha256::new();
                h.update(self.seed.to_be_bytes());
                h.update(self.counter.to_be_bytes());
                self.counter += 1;
                self.buf = h.finalize().to_vec();
            }
            *d = self.buf.pop().unwrap_or(0);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for TestRng {}

pub(super) fn transform_with(kind: u8, id: u16, key_bits: Option<u16>) -> Transform {
    Transform {
        kind,
        id,
        attributes: key_bits
            .map(|b| {
                vec![Attribute::Tv {
                    kind: ATTR_KEY_LENGTH,
                    value: b,
                }]
            })
            .unwrap_or_default(),
    }
}

/// An IKE proposal: (ENCR id, key bits), optional INTEG, PRF, and D-H groups.
pub(super) fn ike_proposal(encr: (u16, u16), integ: Option<u16>, prf: u16, dh: &[u16]) -> Proposal {
    let mut transforms = vec![transform_with(wire::TRANSFORM_ENCR, encr.0, Some(encr.1))];
    transforms.extend(integ.map(|i| transform_with(wire::TRANSFORM_INTEG, i, None)));
    transforms.push(transform_with(wire::TRANSFORM_PRF, prf, None));
    transforms.extend(
        dh.iter()
            .map(|&g| transform_with(wire::TRANSFORM_DH, g, None)),
    );
    Proposal {
        number: 1,
        protocol: PROTO_IKE,
        spi: Vec::new(),
        transforms,
    }
}

/// An ESP proposal (AES-GCM-16-256 or AES-CBC-128 + HMAC-SHA2-256-128), no ESN.
pub(super) fn esp_proposal(gcm: bool, spi: [u8; 4]) -> Proposal {
    let mut transforms = if gcm {
        vec![transform_with(wire::TRANSFORM_ENCR, 20, Some(256))]
    } else {
        vec![
            transform_with(wire::TRANSFORM_ENCR, 12, Some(128)),
            transform_with(wire::TRANSFORM_INTEG, 12, None),
        ]
    };
    transforms.push(transform_with(wire::TRANSFORM_ESN, 0, None));
    Proposal {
        number: 1,
        protocol: PROTO_ESP,
        spi: spi.to_vec(),
        transforms,
    }
}

pub(super) fn status(kind: u16, data: Vec<u8>) -> Payload {
    Payload::Notify(Notify {
        protocol: 0,
        spi: Vec::new(),
        kind,
        data,
    })
}

pub(super) fn ts(a: [u8; 4], b: [u8; 4]) -> Vec<TrafficSelector> {
    vec![TrafficSelector {
        ip_protocol: 0,
        start_port: 0,
        end_port: 0xffff,
        range: AddrRange::V4(Ipv4Addr::from(a), Ipv4Addr::from(b)),
    }]
}

/// What came back for our IKE_SA_INIT.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum InitAnswer {
    Accepted,
    Cookie(Vec<u8>),
    /// An error notify (type, data), SPIr zero.
    Error(u16, Vec<u8>),
}

/// The client side of one IKE SA.
pub(super) struct Initiator {
    pub(super) rng: TestRng,
    pub(super) addr: SocketAddr,
    /// The gateway address the client talks to (port 500 or 4500).
    pub(super) gw: SocketAddr,
    pub(super) spi_i: [u8; 8],
    pub(super) spi_r: [u8; 8],
    pub(super) proposals: Vec<Proposal>,
    pub(super) dh: DhSecret,
    pub(super) ni: Vec<u8>,
    /// Notifies after SA, KE, Ni (REDIRECT_SUPPORTED by default; NAT-D added).
    pub(super) notifies: Vec<Payload>,
    pub(super) cookie: Option<Vec<u8>>,
    pub(super) id: Identification,
    pub(super) psk: Vec<u8>,
    pub(super) init_req: Vec<u8>,
    pub(super) init_resp: Vec<u8>,
    pub(super) suite: Option<IkeSuite>,
    pub(super) keys: Option<IkeSaKeys>,
    pub(super) next_mid: u32,
}

impl Initiator {
    pub(super) fn new(
        seed: u64,
        addr: SocketAddr,
        gw: SocketAddr,
        proposal: Proposal,
        group: DhGroup,
    ) -> Self {
        let mut rng = TestRng::new(seed);
        let mut spi_i = [0; 8];
        rng.fill_bytes(&mut spi_i);
        let mut ni = vec![0; 32];
        rng.fill_bytes(&mut ni);
        let dh = DhSecret::generate(group, &mut rng);
        Initiator {
            rng,
            addr,
            gw,
            spi_i,
            spi_r: [0; 8],
            proposals: vec![proposal],
            dh,
            ni,
            notifies: vec![status(wire::NOTIFY_REDIRECT_SUPPORTED, Vec::new())],
            cookie: None,
            id: Identification {
                kind: 2,
                data: b"client.example".to_vec(),
            },
            psk: b"ikelb test psk".to_vec(),
            init_req: Vec::new(),
            init_resp: Vec::new(),
            suite: None,
            keys: None,
            next_mid: 1,
        }
    }

    /// Our IKE_SA_INIT request (a retry repeats it with the cookie first, §2.6).
    pub(super) fn sa_init(&mut self) -> Vec<u8> {
        let mut payloads = Vec::new();
        if let Some(c) = &self.cookie {
            payloads.push(status(wire::NOTIFY_COOKIE, c.clone()));
        }
        payloads.push(Payload::Sa(self.proposals.clone()));
        payloads.push(Payload::Ke(KeyExchange {
            group: self.dh.group().id(),
            data: self.dh.public_value(),
        }));
        payloads.push(Payload::Nonce(self.ni.clone()));
        payloads.push(status(
            wire::NOTIFY_NAT_DETECTION_SOURCE_IP,
            nat_detection_hash(&self.spi_i, &[0; 8], self.addr).to_vec(),
        ));
        payloads.push(status(
            wire::NOTIFY_NAT_DETECTION_DESTINATION_IP,
            nat_detection_hash(&self.spi_i, &[0; 8], self.gw).to_vec(),
        ));
        payloads.extend(self.notifies.iter().cloned());
        let msg = Message {
            header: Header {
                spi_i: self.spi_i,
                spi_r: [0; 8],
                exchange: wire::EXCHANGE_IKE_SA_INIT,
                initiator: true,
                response: false,
                message_id: 0,
            },
            payloads,
        };
        self.init_req = msg.to_bytes().unwrap();
        self.init_req.clone()
    }

    /// Reads the IKE_SA_INIT response; on success derives the keys.
    pub(super) fn on_sa_init_response(&mut self, ike: &[u8]) -> InitAnswer {
        let msg = Message::parse(ike).unwrap();
        let h = msg.header;
        assert!(h.response && !h.initiator, "flags of {h:?}");
        assert_eq!((h.spi_i, h.message_id), (self.spi_i, 0));
        if let [Payload::Notify(n)] = msg.payloads.as_slice() {
            assert_eq!(h.spi_r, [0; 8]);
            return if n.kind == wire::NOTIFY_COOKIE {
                self.cookie = Some(n.data.clone());
                InitAnswer::Cookie(n.data.clone())
            } else {
                InitAnswer::Error(n.kind, n.data.clone())
            };
        }
        let mut sa = None;
        let mut ke = None;
        let mut nr = None;
        for p in &msg.payloads {
            match p {
                Payload::Sa(x) => sa = Some(x.clone()),
                Payload::Ke(x) => ke = Some(x.clone()),
                Payload::Nonce(x) => nr = Some(x.clone()),
                _ => {}
            }
        }
        let (sa, ke, nr) = (sa.unwrap(), ke.unwrap(), nr.unwrap());
        assert_eq!(sa.len(), 1, "one proposal back");
        let IkeChoice::Accept(suite) = select_ike(&sa, ke.group) else {
            panic!("responder's SA does not parse as a choice")
        };
        // The answer must be one of our own proposals' options.
        assert_eq!(
            select_ike(&self.proposals, ke.group),
            IkeChoice::Accept(suite)
        );
        // NAT-D of the answer hashes the real SPIr (§2.23).
        let natd_src = msg
            .find_notify(wire::NOTIFY_NAT_DETECTION_SOURCE_IP)
            .unwrap();
        assert_eq!(
            natd_src.data,
            nat_detection_hash(&self.spi_i, &h.spi_r, self.gw)
        );
        let g_ir = self.dh.shared_secret(&ke.data).unwrap();
        self.spi_r = h.spi_r;
        self.keys = Some(
            IkeSaKeys::derive(&suite, &self.ni, &nr, &g_ir, &self.spi_i, &self.spi_r).unwrap(),
        );
        self.suite = Some(suite);
        self.init_resp = ike.to_vec();
        InitAnswer::Accepted
    }

    fn nr(&self) -> Vec<u8> {
        let m = Message::parse(&self.init_resp).unwrap();
        m.payloads
            .iter()
            .find_map(|p| match p {
                Payload::Nonce(n) => Some(n.clone()),
                _ => None,
            })
            .unwrap()
    }

    fn suite(&self) -> IkeSuite {
        self.suite.unwrap()
    }

    pub(super) fn our_cipher(&self) -> SkCipher {
        SkCipher::initiator(self.keys.as_ref().unwrap(), &self.suite())
    }

    pub(super) fn their_cipher(&self) -> SkCipher {
        SkCipher::responder(self.keys.as_ref().unwrap(), &self.suite())
    }

    /// Our AUTH payload (§2.15) with `psk`.
    pub(super) fn auth_payload(&self, psk: &[u8]) -> Payload {
        let s = self.suite();
        let octets = signed_octets(
            s.prf,
            &self.init_req,
            &self.nr(),
            &self.keys.as_ref().unwrap().sk_pi,
            &self.id.body(),
        );
        Payload::Auth(Auth {
            method: AUTH_PSK,
            data: psk_auth(s.prf, psk, &octets).to_vec(),
        })
    }

    /// The payloads of a normal IKE_AUTH: IDi, AUTH, SAi2 (ESP), TSi, TSr.
    fn ike_auth_payloads(&self) -> Vec<Payload> {
        let gcm = self.suite().encr.is_aead();
        vec![
            Payload::IdI(self.id.clone()),
            self.auth_payload(&self.psk.clone()),
            Payload::Sa(vec![esp_proposal(gcm, [0xc1, 0x1e, 0x47, 0x01])]),
            Payload::TsI(ts([10, 1, 0, 0], [10, 1, 255, 255])),
            Payload::TsR(ts([0, 0, 0, 0], [255, 255, 255, 255])),
        ]
    }

    /// The same IKE_AUTH cut into `n` SKF fragments (RFC 7383 §2.5), or into `n` of a
    /// message that claims `total` fragments.
    pub(super) fn ike_auth_fragments(&mut self, n: u16, total: u16) -> Vec<Vec<u8>> {
        let mut plain = Vec::new();
        let first =
            crate::ike::types::message::emit_chain(&self.ike_auth_payloads(), &mut plain).unwrap();
        let h = Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            exchange: wire::EXCHANGE_IKE_AUTH,
            initiator: true,
            response: false,
            message_id: self.next_mid,
        };
        let c = self.our_cipher();
        let size = plain.len().div_ceil(usize::from(n));
        plain
            .chunks(size)
            .enumerate()
            .map(|(i, chunk)| {
                let number = u16::try_from(i + 1).unwrap();
                let first = if number == 1 { first } else { 0 };
                c.seal_fragment(&h, (number, total), first, chunk, &mut self.rng)
                    .unwrap()
            })
            .collect()
    }

    /// A normal IKE_AUTH: IDi, AUTH, SAi2 (ESP), TSi, TSr.
    pub(super) fn ike_auth(&mut self) -> Vec<u8> {
        let payloads = self.ike_auth_payloads();
        self.request(wire::EXCHANGE_IKE_AUTH, &payloads)
    }

    /// A request of ours with the next Message ID.
    pub(super) fn request(&mut self, exchange: u8, payloads: &[Payload]) -> Vec<u8> {
        let h = Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            exchange,
            initiator: true,
            response: false,
            message_id: self.next_mid,
        };
        self.next_mid += 1;
        let c = self.our_cipher();
        c.seal(&h, payloads, &mut self.rng).unwrap()
    }

    /// Our response to the gateway's request `req`.
    pub(super) fn respond(&mut self, req: &Header, payloads: &[Payload]) -> Vec<u8> {
        let h = Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            exchange: req.exchange,
            initiator: true,
            response: true,
            message_id: req.message_id,
        };
        let c = self.our_cipher();
        c.seal(&h, payloads, &mut self.rng).unwrap()
    }

    /// Opens what the gateway sent.
    pub(super) fn open(&self, ike: &[u8]) -> Message {
        self.their_cipher().open(ike).unwrap()
    }

    /// Checks the gateway's IDr and AUTH in an IKE_AUTH response (§2.15).
    pub(super) fn responder_auth_ok(&self, msg: &Message, psk: &[u8]) -> bool {
        let s = self.suite();
        let idr = msg
            .payloads
            .iter()
            .find_map(|p| match p {
                Payload::IdR(id) => Some(id.clone()),
                _ => None,
            })
            .unwrap();
        let auth = msg
            .payloads
            .iter()
            .find_map(|p| match p {
                Payload::Auth(a) => Some(a.clone()),
                _ => None,
            })
            .unwrap();
        let octets = signed_octets(
            s.prf,
            &self.init_resp,
            &self.ni,
            &self.keys.as_ref().unwrap().sk_pr,
            &idr.body(),
        );
        auth.method == AUTH_PSK && psk_auth(s.prf, psk, &octets).as_slice() == auth.data
    }
}
