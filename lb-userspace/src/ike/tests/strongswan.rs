//! Known answers from a real peer: two IKE_SA_INIT + IKE_AUTH exchanges between two
//! strongSwan 5.9.8 charons (Debian 12 packages, `swanctl --initiate --ike`, PSK
//! `"ikelb test vector psk"`, IDs `client.example` → `gw.example`, 10.77.0.1 → 10.77.0.2).
//! Both charons logged with `ike = 4` and `net = 4`: the datagrams each received, the DH
//! shared secret, SKEYSEED, every SK_* key, and both AUTH values. Proposals were
//! `aes256gcm16-prfsha256-x25519` (GCM) and `aes128-sha256-prfsha512-modp2048` (CBC).
//! Only the DH private values are unknown, so derivation starts from the logged `g^ir`.

use std::net::{Ipv4Addr, SocketAddr};

use hex_literal::hex;

use lb_common::wire::ike::{self as wire, AUTH_PSK};

use crate::ike::crypto::prf::{
    IkeSaKeys, nat_detection_hash, psk_auth, signed_octets, skeyseed, verify_psk_auth,
};
use crate::ike::crypto::sk::SkCipher;
use crate::ike::types::message::{Message, Payload};
use crate::ike::types::natt::{NattPayload, classify_natt};
use crate::ike::types::payload::Identification;
use crate::ike::types::proposal::{DhGroup, Encr, IkeChoice, IkeSuite, Integ, Prf, select_ike};

const PSK: &[u8] = b"ikelb test vector psk";

/// One exchange as the two charons logged it. `auth_req` and `auth_resp` arrived on
/// port 4500 and keep their non-ESP marker.
struct Exchange {
    init_req: &'static [u8],
    init_resp: &'static [u8],
    auth_req: &'static [u8],
    auth_resp: &'static [u8],
    g_ir: &'static [u8],
    skeyseed: &'static [u8],
    sk_d: &'static [u8],
    sk_ai: &'static [u8],
    sk_ar: &'static [u8],
    sk_ei: &'static [u8],
    sk_er: &'static [u8],
    sk_pi: &'static [u8],
    sk_pr: &'static [u8],
    auth_i: &'static [u8],
    auth_r: &'static [u8],
}

const GCM: Exchange = Exchange {
    init_req: &hex!(
        "ec998fc657e0199300000000000000002120220800000000000000e822000028"
        "00000024010100030300000c01000014800e0100030000080200000500000008"
        "0400001f28000028001f0000166ec80fa5afb5aff59bd98fe3e7ef5cdb915742"
        "bc986d88c7508b86bed52a422900002451a777e411176f63e6c83f8ba2d616e9"
        "740cedbbdf856ed11b49cf9753b10d902900001c00004004d9efb39aac8d83ad"
        "bf0f56321b16b5ea355e4c312900001c000040055aad2c960ffa8d57de4d4162"
        "e1672ef4261f165e290000080000402e290000100000402f0002000300040005"
        "0000000800004016"
    ),
    init_resp: &hex!(
        "ec998fc657e01993b9a421a9e84e06732120222000000000000000f022000028"
        "00000024010100030300000c01000014800e0100030000080200000500000008"
        "0400001f28000028001f00000d473d4547c7b7425d932c5f021866d874073b4f"
        "7505655005238a7990576b17290000246114ac6db67c7ca20a1144ec7984e0ff"
        "4d6e1eaab4675e35c4f1e7a93f05e30a2900001c000040045dde8a48c2ee5567"
        "64a510b17961845f738487412900001c00004005a5b5444603b9e9639fa1b3e2"
        "11291a2baf681ea2290000080000402e290000100000402f0002000300040005"
        "29000008000040220000000800004014"
    ),
    auth_req: &hex!(
        "00000000ec998fc657e01993b9a421a9e84e06732e20230800000001000000b9"
        "2300009d935817c1f0303184a2f5936187eaa201a13e2d06dbabbb47d9242a5d"
        "152926c69c241892be01fd5703e5427177474e11458efadb0a5b4ee4a1a1b97b"
        "25abcc2ee2702febd2502a24707be571bc1b07a6c3e2970fe891eedad58e77a5"
        "e732a2e17d6c163e219342aab629d0e585175139253a889475e01907ec35c57f"
        "86c5b1c857b3d99ed323e2dde4542432ae5ca94162544270ab1808c5d8"
    ),
    auth_resp: &hex!(
        "00000000ec998fc657e01993b9a421a9e84e06732e2023200000000100000083"
        "2400006778387d9ca55b0f758d2f9f825e97b57d5e3fa0b5f7bba5f23f548245"
        "e1352cff211f318c803762a1addac7a0042c3f1d7617d7d1dda1c37a59d31832"
        "65226d9a0170410ad5c4b2cf1d2dfc10b36edbf6823351517eb7120893c6f482"
        "f6c82cfe41090a"
    ),
    g_ir: &hex!("182aeb86ef0300127d1e4bab74df15790d6f9f3d299ca739eef4f0c256f2e901"),
    skeyseed: &hex!("ec5dfe07d65b037bb8dc0e32c3a5f492e0e720932e7862da79fa7ce240607420"),
    sk_d: &hex!("8577b6822d11cd6d35f7e3e6765089432406078a8be6d78b022480f638fab0d4"),
    sk_ai: &hex!(""),
    sk_ar: &hex!(""),
    sk_ei: &hex!(
        "3f2cfa8bd18618cbb912baf712db6089a690ebf1076f09c9961b050cb56d71d8"
        "87df7e25"
    ),
    sk_er: &hex!(
        "1f2bacada55b5a2438e7f7d41ce21d0b392146e923698b0fa989ebe8604f6496"
        "f60a447e"
    ),
    sk_pi: &hex!("a3b07427f357da828d3bce5b94481f8bd1da0f521221eb1d0ea9961021202061"),
    sk_pr: &hex!("dc5c527c7d091edc405f6cb9ff4eb5959079e6d6eb2dade01396b5a6f862dff3"),
    auth_i: &hex!("e8b1080313cde0a1822ded4b7693d799e2e8cb2ca3cd6a432e0bb171aa166fa7"),
    auth_r: &hex!("31e4c89d8370d6e47170d87436f941e6cb2a79972895ec6d47d8d1946ad2f6af"),
};

const CBC: Exchange = Exchange {
    init_req: &hex!(
        "bfc9550731dda4f200000000000000002120220800000000000001d022000030"
        "0000002c010100040300000c0100000c800e0080030000080300000c03000008"
        "02000007000000080400000e28000108000e0000c3a049e50c90103bbd5c70a5"
        "00d6acb4a225d738a1116ff33b8476d6962b8bcb6ce38f8588f20f9f71a9dd70"
        "85cdb7fc65635f11d54a5b2b118cbf1ae27b8fd933f33f36beb2a5a65a6d3897"
        "c1e5c4fd7fa33c66ae0c3f3093738b22d140f877cf142ff2401529973c8c899c"
        "a426e3f680a1997ce042bf2d43570d192bef39ef2899e1ed2d89b6759a6fde85"
        "7e70efbd2ee18fe3cc8cb7ff2ad5c39e818fe1b70b4a2c095a36781d5d08de62"
        "f36ae336ec04495076122523de8af7fab219e5344e5061731845e3135fce4195"
        "a7cc5a74966aa1bc4817e75d3d119819b5e56a5fb8476d7e16fc6270a34e9e96"
        "10c49d09080575b01c764ff47179604f5a17c4c2290000242f73f325eb32a2df"
        "a5a5a7ae619c258e4d25cfaf43a46c026c885b0a7bf3c9ed2900001c00004004"
        "f154995ccc752a9e1e0522a46891a738fd93abab2900001c0000400552ccc620"
        "c8fa73901e0ade3039817f4985efeb61290000080000402e290000100000402f"
        "00020003000400050000000800004016"
    ),
    init_resp: &hex!(
        "bfc9550731dda4f2642a17d27192a26d2120222000000000000001d822000030"
        "0000002c010100040300000c0100000c800e0080030000080300000c03000008"
        "02000007000000080400000e28000108000e0000377d5f15f6675feb2ce42674"
        "ae7909a89b57e51aa4fc0d148600e0da349192b3ae2d4b42e4041e5536d12d8b"
        "42a057bc12dd8b5521476acbf3b83752404611220a1de46d44130f7f4637579b"
        "0e23b3782a08a3ac088f5accdc43cfb8f68e18021930f5cc9906711e90a8c384"
        "9d56f5bc709374f94eadf5d00e1c2064d749f188be2d31e6a29ecf633044f430"
        "ee9fa7c188a09ff289a9844cf80f2c51d34d8570e262acc905d2cc3af5aa7ef5"
        "5486c81f6932b98cea04ea9f9c51cc8e7ed6a67c9057d2cfd39f8ace6331f3f8"
        "bbaeb83e0d20831e13ec6cbe6dde9737df2ed77d4000e58ca7bcbc5a728b47f2"
        "7efc344cece11c8d53d2b05c9f63fc70e6f2ec19290000249a68f67e17d862a6"
        "1885717138501f7d28485afcad48c53cca8b2fca6eb031872900001c00004004"
        "d7839517cfcee21ff0fb3b4ec9481df58004e3c32900001c00004005a8ebc46a"
        "6af9827d6208412564c6e11c442cf33c290000080000402e290000100000402f"
        "000200030004000529000008000040220000000800004014"
    ),
    auth_req: &hex!(
        "00000000bfc9550731dda4f2642a17d27192a26d2e20230800000001000000f0"
        "230000d4f8ad8c103bc5ad44d5373294ef223385a716b4060cc3cff0357b477d"
        "a36a1dd6a8dc16276a610aa0b79312d0af676791aca2ed4d7b47f0848c645f67"
        "5593d56a3d81606641a1e30573eba1b7e4cf9b05f0eef6be17fdfd0b0112eac8"
        "46b86b7bf2200abdd47984916f767dcfc0cd15fd9f5fed67ab1e6e9909f3e1a8"
        "b2d3513cfea527baf0c587a8c912bf264444f43b7a173ba6ee35de718b2f08e6"
        "2cfc4873e8412fde37cd673dbccc28c9408ab44528822b1847a9cdb1c69ffe15"
        "3ee4694fc354c3e4c854f17cdf8364502384095e"
    ),
    auth_resp: &hex!(
        "00000000bfc9550731dda4f2642a17d27192a26d2e20232000000001000000b0"
        "24000094253316b1ecc7735501ab12269595dc8045a6c87c42722dea873e0568"
        "669c2080ad8bdaf58b0732f9e554929b4b0a5592c1ddd6e3d70e1d875af8b5a4"
        "2ca0d2eafd1be15972abb2982392e801064eeef05710c42855b09bf483df4701"
        "09717066103326638d1875f88346eb26263fa1e1db2f17c5d76e9cc062a02dcc"
        "2cd1b22037c6298f8c6352cb6cb740904b67ebfe"
    ),
    g_ir: &hex!(
        "5b428d755a3d29bf49002c23f0f61d538d190ebfec2c48efd58849160ba3d12d"
        "6498ea51f9cd957eb80425afbe064f9c470c62b52321c7005acdb1708011664a"
        "1bd1bd3b5d0aa46d1accda6d589e237531743fd3c8927d2b31d833ab3fe2659b"
        "83f1cf31b7e990595521bc4f9cc6e8ff1e9249e22fe786f57a7799cc50cdb5be"
        "5cac743b3257fcc362eac66a2f3ed2d31a9514dcfe8bb0687d390911c4eca8af"
        "490a678227fdf65d533dfc4d7deefa147e1d9a6ea71eee37cdfe64fc574c68b9"
        "bb77ed9dc94b82878ac19e684bca080b8933afa8df6b54bfca3a423517468ead"
        "8f952638047e6ad49f99c9b67cc43aff3ab29c01045499e57aacf730f1e07880"
    ),
    skeyseed: &hex!(
        "0b86c89b1932f508f7caac9dc344c9e885955bb6571bb33e519a6d9ea736d634"
        "74d60b31a505044cac1aa29a4546e5b2ef1bd0f5f8baed81470a10000c48a706"
    ),
    sk_d: &hex!(
        "f13dbdf85d8e9bd503153b6edc8daec454de8bc4a21654994221f576fb79f10e"
        "f5bcc6001c1f9d6d00f8222412479904a1079d49b033b0da410578dbad37fc36"
    ),
    sk_ai: &hex!("99f4564fc7a5c6d771356595568f366e05390ad230392d28488173f0047f9c59"),
    sk_ar: &hex!("bdbd5a36ed38e7facf4fb0895620bc1b0d40c7584fd67b4b270a820ca0f9bf2e"),
    sk_ei: &hex!("96433a7fb516de05cb9baa442dd2ee5d"),
    sk_er: &hex!("462061b0ad67bc29f73a94e29f3f1a17"),
    sk_pi: &hex!(
        "f9cf5e1b8443a5dda4cabaea32b1700ec547555f7b1592f763f1a6e63574a336"
        "ed65bd7b1b846ecee2c083574703f7542ff1e908aff47cb453cd6a46e37ab59c"
    ),
    sk_pr: &hex!(
        "70f23df8d01128fa8df5fc4cabd28f6f4033aec9ec37b9a53e8befa96bbcbdce"
        "965987b5e9bf8c7533edcafe802627f5cf80170714cee94de087124f014bed99"
    ),
    auth_i: &hex!(
        "8e1ab76b83611e28ac7979b718edbc193225c47d222bcb5c32587dce69b0debd"
        "0944654877cf11327c7f673918b0f32c1dd31c3e4a4689a0e7b826de785a97a4"
    ),
    auth_r: &hex!(
        "2e8d76db2316dfa007c1c2fbcf4b335d603624f049351ace1698101a7f9df91d"
        "5d1cc2d5584fb4f94cefecd51f7e4001f3fb32e8c7fa8590af6f48d054e401f7"
    ),
};

fn nonce(m: &Message) -> &[u8] {
    m.payloads
        .iter()
        .find_map(|p| {
            if let Payload::Nonce(n) = p {
                Some(n.as_slice())
            } else {
                None
            }
        })
        .unwrap()
}

fn ike(datagram: &[u8]) -> &[u8] {
    match classify_natt(datagram) {
        NattPayload::Ike(m) => m,
        other => panic!("not IKE on 4500: {other:?}"),
    }
}

/// Everything the responder computes, checked against what strongSwan computed.
fn check(x: &Exchange, expected: IkeSuite) {
    let req = Message::parse(x.init_req).unwrap();
    let resp = Message::parse(x.init_resp).unwrap();
    assert_eq!(req.to_bytes().unwrap(), x.init_req);
    assert_eq!(resp.to_bytes().unwrap(), x.init_resp);

    // Proposal choice: ours equals strongSwan's, and its answer reads back the same.
    let (Payload::Sa(sa_i), Payload::Ke(ke_i)) = (&req.payloads[0], &req.payloads[1]) else {
        panic!("SA, KE")
    };
    assert_eq!(select_ike(sa_i, ke_i.group), IkeChoice::Accept(expected));
    let Payload::Sa(sa_r) = &resp.payloads[0] else {
        panic!("SA")
    };
    assert_eq!(select_ike(sa_r, ke_i.group), IkeChoice::Accept(expected));

    // NAT-D in the request: source is the client's 10.77.0.1:500, SPIr zero (§2.23).
    let (spi_i, spi_r) = (resp.header.spi_i, resp.header.spi_r);
    let client = SocketAddr::from((Ipv4Addr::new(10, 77, 0, 1), 500));
    let gw = SocketAddr::from((Ipv4Addr::new(10, 77, 0, 2), 500));
    assert_eq!(
        req.find_notify(wire::NOTIFY_NAT_DETECTION_SOURCE_IP)
            .unwrap()
            .data,
        nat_detection_hash(&spi_i, &[0; 8], client)
    );
    assert_eq!(
        resp.find_notify(wire::NOTIFY_NAT_DETECTION_DESTINATION_IP)
            .unwrap()
            .data,
        nat_detection_hash(&spi_i, &spi_r, client)
    );
    assert_eq!(
        resp.find_notify(wire::NOTIFY_NAT_DETECTION_SOURCE_IP)
            .unwrap()
            .data,
        nat_detection_hash(&spi_i, &spi_r, gw)
    );

    // SKEYSEED and the seven keys.
    let (ni, nr) = (nonce(&req), nonce(&resp));
    assert_eq!(
        skeyseed(expected.prf, ni, nr, x.g_ir).as_slice(),
        x.skeyseed
    );
    let keys = IkeSaKeys::derive(&expected, ni, nr, x.g_ir, &spi_i, &spi_r).unwrap();
    let got = [
        &keys.sk_d,
        &keys.sk_ai,
        &keys.sk_ar,
        &keys.sk_ei,
        &keys.sk_er,
        &keys.sk_pi,
        &keys.sk_pr,
    ];
    let want = [x.sk_d, x.sk_ai, x.sk_ar, x.sk_ei, x.sk_er, x.sk_pi, x.sk_pr];
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.as_slice(), w, "key {i} (SK_d, ai, ar, ei, er, pi, pr)");
    }

    // The client's IKE_AUTH: decrypt with SK_ei (and SK_ai), then verify its AUTH over
    // RealMessage1 | Nr | prf(SK_pi, IDi').
    let auth_req = SkCipher::initiator(&keys, &expected)
        .open(ike(x.auth_req))
        .unwrap();
    assert_eq!(
        (auth_req.header.message_id, auth_req.header.initiator),
        (1, true)
    );
    let idi = find_id(&auth_req, true);
    assert_eq!(
        idi,
        &Identification {
            kind: 2,
            data: b"client.example".to_vec()
        }
    );
    let auth = find_auth(&auth_req);
    assert_eq!(auth, x.auth_i);
    let octets = signed_octets(expected.prf, x.init_req, nr, &keys.sk_pi, &idi.body());
    assert!(verify_psk_auth(expected.prf, PSK, &octets, auth));

    // Our side: the AUTH the gateway sent over RealMessage2 | Ni | prf(SK_pr, IDr'),
    // found inside the IKE_AUTH response decrypted with SK_er (and SK_ar).
    let auth_resp = SkCipher::responder(&keys, &expected)
        .open(ike(x.auth_resp))
        .unwrap();
    assert!(auth_resp.header.response);
    let idr = find_id(&auth_resp, false);
    assert_eq!(
        idr,
        &Identification {
            kind: 2,
            data: b"gw.example".to_vec()
        }
    );
    let octets = signed_octets(expected.prf, x.init_resp, ni, &keys.sk_pr, &idr.body());
    assert_eq!(psk_auth(expected.prf, PSK, &octets).as_slice(), x.auth_r);
    assert_eq!(find_auth(&auth_resp), x.auth_r);

    // The responder itself, given this half-open SA, accepts the client's IKE_AUTH and
    // answers with the AUTH strongSwan's gateway sent.
    let ours =
        super::robust::replay_ike_auth(x.init_req, x.init_resp, x.auth_req, x.g_ir, expected, PSK);
    assert_eq!(find_id(&ours, false), idr);
    assert_eq!(find_auth(&ours), x.auth_r);
}

fn find_id(m: &Message, initiator: bool) -> &Identification {
    m.payloads
        .iter()
        .find_map(|p| match (p, initiator) {
            (Payload::IdI(id), true) | (Payload::IdR(id), false) => Some(id),
            _ => None,
        })
        .unwrap()
}

fn find_auth(m: &Message) -> &[u8] {
    m.payloads
        .iter()
        .find_map(|p| match p {
            Payload::Auth(a) if a.method == AUTH_PSK => Some(a.data.as_slice()),
            _ => None,
        })
        .unwrap()
}

#[test]
fn strongswan_gcm_x25519_exchange() {
    check(
        &GCM,
        IkeSuite {
            number: 1,
            encr: Encr::AesGcm16_256,
            prf: Prf::HmacSha256,
            integ: None,
            dh: DhGroup::Curve25519,
        },
    );
}

#[test]
fn strongswan_cbc_modp2048_exchange() {
    let suite = IkeSuite {
        number: 1,
        encr: Encr::AesCbc128,
        prf: Prf::HmacSha512,
        integ: Some(Integ::HmacSha256_128),
        dh: DhGroup::Modp2048,
    };
    check(&CBC, suite);
}
