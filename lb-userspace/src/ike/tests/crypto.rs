//! Known-answer tests for the IKE crypto, with each vector's source beside it, and the
//! SK round trip of an IKE_AUTH request.

use std::net::{Ipv4Addr, SocketAddr};

use hex_literal::hex;
use rand_core::OsRng;

use lb_common::wire::ike::{self as wire, AUTH_PSK, PROTO_ESP};

use crate::ike::crypto::CryptoError;
use crate::ike::crypto::dh::DhSecret;
use crate::ike::crypto::prf::{
    IkeSaKeys, KEY_PAD, nat_detection_hash, prf_plus, psk_auth, signed_octets, skeyseed,
    verify_psk_auth,
};
use crate::ike::crypto::sk::{SkCipher, SkError};
use crate::ike::types::message::{Header, Payload, parse_chain};
use crate::ike::types::payload::{
    AddrRange, Auth, Identification, Notify, Proposal, TrafficSelector,
};
use crate::ike::types::proposal::{DhGroup, Encr, IkeSuite, Integ, Prf};

/// RFC 4231 §4.2 and §4.3 (test cases 1 and 2) for the three PRFs.
#[test]
fn prf_matches_rfc4231() {
    let tc1 = (&[0x0b; 20][..], &b"Hi There"[..]);
    let tc2 = (&b"Jefe"[..], &b"what do ya want for nothing?"[..]);
    type Case<'a> = (Prf, (&'a [u8], &'a [u8]), &'a [u8]);
    let cases: [Case<'_>; 6] = [
        (
            Prf::HmacSha256,
            tc1,
            &hex!("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        ),
        (
            Prf::HmacSha256,
            tc2,
            &hex!("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        ),
        (
            Prf::HmacSha384,
            tc1,
            &hex!(
                "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6"
            ),
        ),
        (
            Prf::HmacSha384,
            tc2,
            &hex!(
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"
            ),
        ),
        (
            Prf::HmacSha512,
            tc1,
            &hex!(
                "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
                "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"
            ),
        ),
        (
            Prf::HmacSha512,
            tc2,
            &hex!(
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
                "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
            ),
        ),
    ];
    for (prf, (key, data), mac) in cases {
        assert_eq!(prf.compute(key, &[data]).as_slice(), mac, "{prf:?}");
        assert_eq!(prf.output_len(), mac.len());
        // The parts are concatenated: splitting the data changes nothing.
        let (a, b) = data.split_at(3);
        assert_eq!(prf.compute(key, &[a, b]).as_slice(), mac);
    }
}

/// One NIST CAVP SP 800-135 IKEv2 KDF vector, as NSS carries it in
/// `gtests/common/testvectors/ike-sha{256,384}-vectors.h` ("from this NIST samples"):
/// SKEYSEED, 132 bytes of `prf+(SKEYSEED, Ni|Nr|SPIi|SPIr)` (DKM), and the rekey
/// SKEYSEED `prf(SK_d, g^ir(new) | Ni | Nr)`, which pins SK_d to the start of DKM.
struct Cavp {
    prf: Prf,
    ni: &'static [u8],
    nr: &'static [u8],
    gir: &'static [u8],
    gir_new: &'static [u8],
    spi_i: [u8; 8],
    spi_r: [u8; 8],
    skeyseed: &'static [u8],
    dkm: &'static [u8],
    skeyseed_rekey: &'static [u8],
}

const CAVP: [Cavp; 2] = [
    Cavp {
        prf: Prf::HmacSha256,
        ni: &hex!("3f302be1abcb28e1"),
        nr: &hex!("8c332ee006064c9b"),
        gir: &hex!("0f4d257d7a58fc4545c7d7a88119eee5d5c9690c5b4c989171d3abbfd99d1d29"),
        gir_new: &hex!("25f3b12d6f282739256e39bf54eda53b60ffcf379bb7bcc90c27b4c4c578616c"),
        spi_i: hex!("40dac39e1e1a8640"),
        spi_r: hex!("8619a1cf9a6e4c07"),
        skeyseed: &hex!("5f00d1bd2c58ec224b1e6b71fa0f19a1faa7a193952c444411b47c1a9d8ba6fe"),
        dkm: &hex!(
            "0b137d669b0947d7d026d593f0305ad401ff0c471357d695778a9c7f4b4869ece98aca531188d16041b3bb936d2dbb3b4993a6e768a809160de45d0283f273a6cdf6854379e31be72b8d3d1fa990cf9c5b015ca9f918a7df6253c958114a09d4e1c19bdcd4db14b29d98db1a74ad405c588662c14a04d0d36aa4ab55e90f8986d12d4aad"
        ),
        skeyseed_rekey: &hex!("2d63f6debc92048b4fef3889c4c99ca67d6496e0fac14a2bca9a2d6566ff2398"),
    },
    Cavp {
        prf: Prf::HmacSha384,
        ni: &hex!("fd1b572a8e735591"),
        nr: &hex!("6013b0ef88dacd3d"),
        gir: &hex!("d3288cd87565101e88fe3bad918f31939d8dd26ff1071f8b2d7f447524e58d7c"),
        gir_new: &hex!("3358f620539473aee8d07e779764c4c6a9aabddc79a28e136b3bac021dbde44a"),
        spi_i: hex!("2116ad07ce61f749"),
        spi_r: hex!("24880e55f11a65b7"),
        skeyseed: &hex!(
            "69fe7a1ac94adaeb711295f5fe004b1a8d6a0b65d05692758ce8ad2f7a45f59d7d0b596f51f7dfcf3330061888f6a94f"
        ),
        dkm: &hex!(
            "4f904c2025c90c817ea5ff9b662a6fdb445a73b57cdf09eacd379b95e1f03cacb04cd6deeda4f952191dd9bc1f7a9502471a648d74dc06d38112de48a42501f6b1a3ad55c2099cd9a648e5f17e5bf3e34bf9b5953decb768a34f875fe2b78dca0c2fcca81ec1a412006dfaed38fa06882e61f4c148105fb8e231fdb33c4d484c001721d4"
        ),
        skeyseed_rekey: &hex!(
            "e0548c1682e13bce454026b3b1bdf42985b24e4e7408095a7c529de38c3d1fcb04c9fe6868042a34c9614c6c99e3fcea"
        ),
    },
];

#[test]
fn skeyseed_and_prf_plus_match_nist_cavp() {
    for v in &CAVP {
        assert_eq!(v.dkm.len(), 132);
        let seed = skeyseed(v.prf, v.ni, v.nr, v.gir);
        assert_eq!(seed.as_slice(), v.skeyseed, "{:?}", v.prf);
        let stream = [v.ni, v.nr, &v.spi_i, &v.spi_r].concat();
        assert_eq!(
            prf_plus(v.prf, &seed, &stream, 132).unwrap().as_slice(),
            v.dkm
        );
        // prf+ is a stream: shorter outputs are prefixes (NSS checks 32/48 and 15 too).
        assert_eq!(
            prf_plus(v.prf, &seed, &stream, 15).unwrap().as_slice(),
            &v.dkm[..15]
        );
        let sk_d = &v.dkm[..v.prf.output_len()];
        let rekey = v.prf.compute(sk_d, &[v.gir_new, v.ni, v.nr]);
        assert_eq!(rekey.as_slice(), v.skeyseed_rekey);
    }
}

/// The first SHA-256 vector of the same set has 256-byte nonces: the PRF key `Ni | Nr`
/// is longer than the hash block and must be hashed first (RFC 2104).
#[test]
fn skeyseed_with_long_nonces_matches_nist_cavp() {
    let gir = hex!("a1ff3dc6cf9b4c04709943cb4ca1f1789bcf360b03f1d027de3ae8ee039e9155");
    let ni = hex!(
        "b1dee62505b47b223bae14ce7a5b757402ad1587511618d09f94950d47f1d8d4ce86aca12d78db9854d86019ad735757ae79d8932ac0c7db842c85060150ca875ea5d47e3cfcb2a05922ebb7959d49b9797a2289676ee79a1d9a18b790f87e4771ddaf4be3376057a553162f68fe429aca73b07234543801ba2122b1bde82251770d05df813cf556a11ca4dc43ffcb85a97dbed16e2fda6985e07e31be6364899e63c507c7c616e5eb7765a53560f76772de43918ba07badfe85244dcdcd917cb065afb60e3b7e68b54dd94bfc7c31c8b752892781ed3cc4b7f28fbc0ab9af908f5ae1f09f893f80100a7b3135993161b51fbba3bbb24b9f88c6147de82cd6f0"
    );
    let nr = hex!(
        "f0acfef2ad1f7add0eaafda78c1cf1097d9fc91cb04a7c145069ac426fd164cbe661b1dd2df0fb84e19512181f0d8ea50b7860845f332757a8e56d2a3b7be436b5718a2d49baa996a4616684a208c2d611cd65e605dca6e3d3f116859b4410fe13679696bb2e23c08a40c7e1316d54b4c9c0286701c221151b3642cb4112ca1a53e0e597a7e29c634caed86ca3c31973d37b4c346134fd6784cd99913feedf3d29d89a0a02a5a750f02f5738109dcc670bb27701fb59f78e83b76860c3fec079a1fc8c937ddb58ae7500422b7e49ce63759c65b6bc439381d56bcc159edede894b073841036ebfa050a5b3e7c876a3f18def26b1768a263ac66c9d83b680eb5e"
    );
    assert_eq!((ni.len(), nr.len()), (256, 256));
    let seed = skeyseed(Prf::HmacSha256, &ni, &nr, &gir);
    assert_eq!(
        seed.as_slice(),
        hex!("750c5c94b9c2ec20b68033e024dadf0fa87e8b48c6561b21c72478451a06583d")
    );
}

/// The SK_* split on the CAVP SHA-256 stream: with AES-CBC-256 and HMAC-SHA2-256 the
/// first 132 bytes hold SK_d (32), SK_ai (32), SK_ar (32), SK_ei (32) and 4 of SK_er.
#[test]
fn sk_split_follows_rfc7296_order() {
    let v = &CAVP[0];
    let suite = IkeSuite {
        number: 1,
        encr: Encr::AesCbc256,
        prf: Prf::HmacSha256,
        integ: Some(Integ::HmacSha256_128),
        dh: DhGroup::Modp2048,
    };
    let k = IkeSaKeys::derive(&suite, v.ni, v.nr, v.gir, &v.spi_i, &v.spi_r).unwrap();
    assert_eq!(k.sk_d.as_slice(), &v.dkm[..32]);
    assert_eq!(k.sk_ai.as_slice(), &v.dkm[32..64]);
    assert_eq!(k.sk_ar.as_slice(), &v.dkm[64..96]);
    assert_eq!(k.sk_ei.as_slice(), &v.dkm[96..128]);
    assert_eq!(&k.sk_er[..4], &v.dkm[128..132]);
    assert_eq!((k.sk_er.len(), k.sk_pi.len(), k.sk_pr.len()), (32, 32, 32));

    // AEAD: no SK_a*, and SK_e* carries the 4-byte salt (RFC 5282 §7.1).
    let gcm = IkeSuite {
        encr: Encr::AesGcm16_128,
        integ: None,
        ..suite
    };
    let k = IkeSaKeys::derive(&gcm, v.ni, v.nr, v.gir, &v.spi_i, &v.spi_r).unwrap();
    assert!(k.sk_ai.is_empty() && k.sk_ar.is_empty());
    assert_eq!(k.sk_ei.as_slice(), &v.dkm[32..52]);
    assert_eq!(k.sk_er.as_slice(), &v.dkm[52..72]);
    assert_eq!(k.sk_pi.as_slice(), &v.dkm[72..104]);
    assert_eq!(&k.sk_pr[..28], &v.dkm[104..132]);
}

#[test]
fn prf_plus_refuses_more_than_255_blocks() {
    assert_eq!(
        prf_plus(Prf::HmacSha256, b"k", b"s", 255 * 32)
            .unwrap()
            .len(),
        255 * 32
    );
    assert_eq!(
        prf_plus(Prf::HmacSha256, b"k", b"s", 255 * 32 + 1),
        Err(CryptoError::KeymatTooLong(255 * 32 + 1))
    );
}

/// PSK AUTH (RFC 7296 §2.15) spelled out with the PRF alone, and the checks around it.
#[test]
fn psk_auth_is_prf_of_prf_key_pad() {
    let prf = Prf::HmacSha256;
    let id = Identification {
        kind: 2,
        data: b"gw.example".to_vec(),
    };
    assert_eq!(id.body(), [&[2, 0, 0, 0][..], b"gw.example"].concat());
    let octets = signed_octets(prf, b"IKE_SA_INIT response", b"Ni", b"SK_pr", &id.body());
    let maced = prf.compute(b"SK_pr", &[&id.body()]);
    assert_eq!(
        octets,
        [&b"IKE_SA_INIT response"[..], b"Ni", &maced].concat()
    );
    let auth = psk_auth(prf, b"secret", &octets);
    let inner = prf.compute(b"secret", &[b"Key Pad for IKEv2"]);
    assert_eq!(auth, prf.compute(&inner, &[&octets]));
    assert_eq!(KEY_PAD.len(), 17);
    assert!(verify_psk_auth(prf, b"secret", &octets, &auth));
    assert!(!verify_psk_auth(prf, b"secreT", &octets, &auth));
    assert!(!verify_psk_auth(prf, b"secret", &octets, &auth[..31]));
}

/// The NAT-D hashes of the request in docs/protocol.md §5.1 (made by a script, decoded
/// by tshark).
#[test]
fn nat_detection_hash_matches_protocol_doc() {
    let spi_i = hex!("c0ffee0012345678");
    let src = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 10), 500));
    let dst = SocketAddr::from((Ipv4Addr::new(198, 51, 100, 1), 500));
    assert_eq!(
        nat_detection_hash(&spi_i, &[0; 8], src),
        hex!("aed0c85c186db9efe29d4b553e8aa7bad9526425")
    );
    assert_eq!(
        nat_detection_hash(&spi_i, &[0; 8], dst),
        hex!("335e0816da3a438510ea51c070bc21b46e1c0241")
    );
}

/// RFC 7748 §6.1 (X25519) and RFC 5903 §8.1, §8.2 (ECP-256, ECP-384).
#[test]
fn dh_matches_published_vectors() {
    let a = DhSecret::from_bytes(
        DhGroup::Curve25519,
        &hex!("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
    )
    .unwrap();
    assert_eq!(
        a.public_value(),
        hex!("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    );
    let shared = a.shared_secret(&hex!(
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    ));
    assert_eq!(
        shared.unwrap().as_slice(),
        hex!("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    );
    assert_eq!(
        a.shared_secret(&[0; 32]),
        Err(CryptoError::InvalidPublicValue)
    );

    let gi = hex!(
        "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180"
        "5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3"
    );
    let i = DhSecret::from_bytes(
        DhGroup::Ecp256,
        &hex!("C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433"),
    )
    .unwrap();
    assert_eq!(i.public_value(), gi);
    let r = DhSecret::from_bytes(
        DhGroup::Ecp256,
        &hex!("C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53"),
    )
    .unwrap();
    let gr = hex!(
        "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63"
        "56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB"
    );
    assert_eq!(r.public_value(), gr);
    let girx = hex!("D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE");
    assert_eq!(r.shared_secret(&gi).unwrap().as_slice(), girx);
    assert_eq!(i.shared_secret(&gr).unwrap().as_slice(), girx);
    let mut off_curve = gi;
    off_curve[63] ^= 1;
    assert_eq!(
        r.shared_secret(&off_curve),
        Err(CryptoError::InvalidPublicValue)
    );

    let r384 = DhSecret::from_bytes(
        DhGroup::Ecp384,
        &hex!("099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655E35B538041E649EE3FAEF896783AB194"),
    )
    .unwrap();
    let gi384 = hex!(
        "E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D0D1AC43A0336DEF96FDA41D0774A3571"
        "DCFBEC7AACF3196472169E838430367F66EEBE3C6E70C416DD5F0C68759DD1FFF83FA40142209DFF5EAAD96DB9E6386C"
    );
    assert_eq!(
        r384.shared_secret(&gi384).unwrap().as_slice(),
        hex!(
            "11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4D603135569B9E9D09CF5D4A270F59746"
        )
    );
}

/// MODP: `g^1 = 2` and `2^1 = 2`, padded to the modulus length (RFC 7296 §2.14), the
/// RFC 7296 §5 range check, and agreement between two fresh secrets of every group.
#[test]
fn dh_modp_pads_checks_and_agrees() {
    for group in [DhGroup::Modp2048, DhGroup::Modp3072] {
        let n = group.public_len();
        let mut one = [0; 32];
        one[31] = 1;
        let x = DhSecret::from_bytes(group, &one).unwrap();
        let mut two = vec![0; n];
        two[n - 1] = 2;
        assert_eq!(x.public_value(), two);
        assert_eq!(x.shared_secret(&two).unwrap().as_slice(), two.as_slice());
        let mut bad = vec![0; n];
        assert_eq!(x.shared_secret(&bad), Err(CryptoError::InvalidPublicValue));
        bad[n - 1] = 1;
        assert_eq!(x.shared_secret(&bad), Err(CryptoError::InvalidPublicValue));
        assert_eq!(
            x.shared_secret(&vec![0xff; n]),
            Err(CryptoError::InvalidPublicValue)
        );
        assert_eq!(
            x.shared_secret(&two[1..]),
            Err(CryptoError::InvalidPublicValue)
        );
    }
    for group in [
        DhGroup::Modp2048,
        DhGroup::Modp3072,
        DhGroup::Ecp256,
        DhGroup::Ecp384,
        DhGroup::Curve25519,
    ] {
        let (a, b) = (
            DhSecret::generate(group, &mut OsRng),
            DhSecret::generate(group, &mut OsRng),
        );
        assert_eq!(a.group(), group);
        let (pa, pb) = (a.public_value(), b.public_value());
        assert_eq!(
            (pa.len(), pb.len()),
            (group.public_len(), group.public_len())
        );
        assert_eq!(
            a.shared_secret(&pb).unwrap(),
            b.shared_secret(&pa).unwrap(),
            "{group:?}"
        );
    }
}

fn ike_auth_payloads() -> Vec<Payload> {
    let esp = Proposal {
        number: 1,
        protocol: PROTO_ESP,
        spi: vec![0xc1, 0, 0, 1],
        transforms: crate::ike::types::proposal::EspSuite {
            number: 1,
            peer_spi: [0; 4],
            encr: Encr::AesGcm16_256,
            integ: None,
            esn: Some(false),
        }
        .to_proposal([0; 4])
        .transforms,
    };
    let any4 = TrafficSelector {
        ip_protocol: 0,
        start_port: 0,
        end_port: 0xffff,
        range: AddrRange::V4(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST),
    };
    vec![
        Payload::IdI(Identification {
            kind: 2,
            data: b"client.example".to_vec(),
        }),
        Payload::Notify(Notify {
            protocol: 0,
            spi: vec![],
            kind: 16384,
            data: vec![],
        }),
        Payload::Auth(Auth {
            method: AUTH_PSK,
            data: vec![0x5a; 32],
        }),
        Payload::Sa(vec![esp]),
        Payload::TsI(vec![any4.clone()]),
        Payload::TsR(vec![any4]),
    ]
}

/// Seal an IKE_AUTH request as a client would, open it as the responder, for every
/// cipher suite; a flipped bit anywhere, or the wrong direction's keys, is refused.
#[test]
fn ike_auth_sk_round_trip_every_suite() {
    let suites = [
        (Encr::AesGcm16_128, None),
        (Encr::AesGcm16_256, None),
        (Encr::AesCbc128, Some(Integ::HmacSha256_128)),
        (Encr::AesCbc256, Some(Integ::HmacSha384_192)),
        (Encr::AesCbc256, Some(Integ::HmacSha512_256)),
    ];
    let v = &CAVP[0];
    let header = Header {
        spi_i: v.spi_i,
        spi_r: v.spi_r,
        exchange: lb_common::wire::ike::EXCHANGE_IKE_AUTH,
        initiator: true,
        response: false,
        message_id: 1,
    };
    let inner = ike_auth_payloads();
    for (encr, integ) in suites {
        let suite = IkeSuite {
            number: 1,
            encr,
            prf: Prf::HmacSha512,
            integ,
            dh: DhGroup::Curve25519,
        };
        let keys = IkeSaKeys::derive(&suite, v.ni, v.nr, v.gir, &v.spi_i, &v.spi_r).unwrap();
        let client = SkCipher::initiator(&keys, &suite);
        let raw = client.seal(&header, &inner, &mut OsRng).unwrap();
        let (h, first) = Header::parse(&raw).unwrap();
        assert_eq!((h, first), (header, wire::PAYLOAD_SK));
        let opened = client.open(&raw).unwrap();
        assert_eq!(opened.header, header);
        assert_eq!(opened.payloads, inner, "{encr:?}");
        if integ.is_none() {
            // GCM adds only the Pad Length byte: header, SK header, IV, payloads, 0, ICV.
            let mut plain = Vec::new();
            crate::ike::types::message::emit_chain(&inner, &mut plain).unwrap();
            assert_eq!(raw.len(), 28 + 4 + 8 + plain.len() + 1 + 16);
        }
        assert_eq!(
            SkCipher::responder(&keys, &suite).open(&raw).unwrap_err(),
            SkError::Crypto(CryptoError::Integrity)
        );
        // The Message ID (associated data), the IV, the ciphertext and the ICV.
        for at in [20, 33, 50, raw.len() - 1] {
            let mut bad = raw.clone();
            bad[at] ^= 0x01;
            assert_eq!(
                client.open(&bad).unwrap_err(),
                SkError::Crypto(CryptoError::Integrity),
                "{encr:?} at {at}"
            );
        }
    }
}

/// RFC 7383: the same inner payloads carried in two SKF fragments, each authenticated
/// on its own, reassemble to the original chain.
#[test]
fn ike_auth_skf_fragments_round_trip() {
    let v = &CAVP[1];
    let suite = IkeSuite {
        number: 1,
        encr: Encr::AesCbc128,
        prf: Prf::HmacSha384,
        integ: Some(Integ::HmacSha256_128),
        dh: DhGroup::Ecp384,
    };
    let keys = IkeSaKeys::derive(&suite, v.ni, v.nr, v.gir, &v.spi_i, &v.spi_r).unwrap();
    let client = SkCipher::initiator(&keys, &suite);
    let header = Header {
        spi_i: v.spi_i,
        spi_r: v.spi_r,
        exchange: lb_common::wire::ike::EXCHANGE_IKE_AUTH,
        initiator: true,
        response: false,
        message_id: 1,
    };
    let inner = ike_auth_payloads();
    let mut plain = Vec::new();
    let first = crate::ike::types::message::emit_chain(&inner, &mut plain).unwrap();
    let (a, b) = plain.split_at(plain.len() / 2);
    let f1 = client
        .seal_fragment(&header, (1, 2), first, a, &mut OsRng)
        .unwrap();
    let f2 = client
        .seal_fragment(&header, (2, 2), 0, b, &mut OsRng)
        .unwrap();
    assert_eq!(f1.len(), 28 + 8 + a.len() + client.overhead(a.len()));
    let (o1, o2) = (
        client.open_fragment(&f1).unwrap(),
        client.open_fragment(&f2).unwrap(),
    );
    assert_eq!(
        (o1.number, o1.total, o1.first, o2.number, o2.first),
        (1, 2, first, 2, 0)
    );
    assert_eq!(o1.header, header);
    let joined = [o1.data.as_slice(), o2.data.as_slice()].concat();
    assert_eq!(parse_chain(o1.first, &joined).unwrap(), inner);
    // A fragment is not an SK message, and vice versa.
    assert_eq!(client.open(&f1).unwrap_err(), SkError::NotEncrypted);
    let whole = client.seal(&header, &inner, &mut OsRng).unwrap();
    assert_eq!(
        client.open_fragment(&whole).unwrap_err(),
        SkError::NotEncrypted
    );
}

/// Inner payloads that fail to parse after a good ICV are reported as such, so the
/// responder can answer INVALID_SYNTAX.
#[test]
fn bad_inner_payloads_after_good_icv_are_inner_errors() {
    let v = &CAVP[0];
    let suite = IkeSuite {
        number: 1,
        encr: Encr::AesGcm16_256,
        prf: Prf::HmacSha256,
        integ: None,
        dh: DhGroup::Ecp256,
    };
    let keys = IkeSaKeys::derive(&suite, v.ni, v.nr, v.gir, &v.spi_i, &v.spi_r).unwrap();
    let c = SkCipher::responder(&keys, &suite);
    let header = Header {
        spi_i: v.spi_i,
        spi_r: v.spi_r,
        exchange: lb_common::wire::ike::EXCHANGE_INFORMATIONAL,
        initiator: false,
        response: false,
        message_id: 0,
    };
    // `Other` with a modelled type emits bytes the parser refuses: a 3-byte nonce.
    let raw = c
        .seal(
            &header,
            &[Payload::Other {
                kind: wire::PAYLOAD_NONCE,
                body: vec![1, 2, 3],
            }],
            &mut OsRng,
        )
        .unwrap();
    let err = c.open(&raw).unwrap_err();
    assert_eq!(
        err,
        SkError::Inner(crate::ike::types::codec::MessageError::Syntax(
            "nonce length"
        ))
    );
    let SkError::Inner(inner) = err else {
        unreachable!()
    };
    assert_eq!(inner.notify(), (wire::NOTIFY_INVALID_SYNTAX, vec![]));
}
