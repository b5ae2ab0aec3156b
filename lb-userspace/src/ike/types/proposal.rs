//! Algorithms ikelb speaks and the choice among a client's proposals (RFC 7296 §2.7,
//! §3.3.6). The responder takes the first of the client's proposals that it can accept
//! in full, and in it the first transform of each type that it supports: the client's
//! order is its preference.

use lb_common::wire::ike::{self as wire, ENCR_AES_CBC, ENCR_AES_GCM_16};

use super::payload::{Attribute, Proposal, Transform};

/// Encryption algorithms: AES-CBC (with a separate INTEG) and AES-GCM with a 16-byte ICV
/// (RFC 5282), each with 128- or 256-bit keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encr {
    AesCbc128,
    AesCbc256,
    AesGcm16_128,
    AesGcm16_256,
}

impl Encr {
    fn from_transform(t: &Transform) -> Option<Self> {
        let only_key_length = t.attributes.len() == 1;
        match (t.id, t.key_length(), only_key_length) {
            (ENCR_AES_CBC, Some(128), true) => Some(Encr::AesCbc128),
            (ENCR_AES_CBC, Some(256), true) => Some(Encr::AesCbc256),
            (ENCR_AES_GCM_16, Some(128), true) => Some(Encr::AesGcm16_128),
            (ENCR_AES_GCM_16, Some(256), true) => Some(Encr::AesGcm16_256),
            _ => None,
        }
    }

    fn transform(self) -> Transform {
        let (id, bits) = match self {
            Encr::AesCbc128 => (ENCR_AES_CBC, 128),
            Encr::AesCbc256 => (ENCR_AES_CBC, 256),
            Encr::AesGcm16_128 => (ENCR_AES_GCM_16, 128),
            Encr::AesGcm16_256 => (ENCR_AES_GCM_16, 256),
        };
        Transform {
            kind: wire::TRANSFORM_ENCR,
            id,
            attributes: vec![Attribute::Tv {
                kind: wire::ATTR_KEY_LENGTH,
                value: bits,
            }],
        }
    }

    /// AEAD ciphers carry no INTEG transform and have empty SK_a* keys.
    pub fn is_aead(self) -> bool {
        matches!(self, Encr::AesGcm16_128 | Encr::AesGcm16_256)
    }

    /// Bytes of SK_e*: the AES key, plus the 4-byte salt for GCM (RFC 5282 §7.1).
    pub fn key_material_len(self) -> usize {
        match self {
            Encr::AesCbc128 => 16,
            Encr::AesCbc256 => 32,
            Encr::AesGcm16_128 => 16 + 4,
            Encr::AesGcm16_256 => 32 + 4,
        }
    }
}

/// Pseudo-random functions: HMAC-SHA2-256/384/512 (RFC 4868).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prf {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl Prf {
    fn from_id(id: u16) -> Option<Self> {
        match id {
            wire::PRF_HMAC_SHA2_256 => Some(Prf::HmacSha256),
            wire::PRF_HMAC_SHA2_384 => Some(Prf::HmacSha384),
            wire::PRF_HMAC_SHA2_512 => Some(Prf::HmacSha512),
            _ => None,
        }
    }

    /// The transform ID.
    pub fn id(self) -> u16 {
        match self {
            Prf::HmacSha256 => wire::PRF_HMAC_SHA2_256,
            Prf::HmacSha384 => wire::PRF_HMAC_SHA2_384,
            Prf::HmacSha512 => wire::PRF_HMAC_SHA2_512,
        }
    }

    /// Output length, which is also the length of SK_d, SK_pi and SK_pr (§2.14).
    pub fn output_len(self) -> usize {
        match self {
            Prf::HmacSha256 => 32,
            Prf::HmacSha384 => 48,
            Prf::HmacSha512 => 64,
        }
    }
}

/// Integrity algorithms for AES-CBC: HMAC-SHA2-256-128, -384-192, -512-256 (RFC 4868).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integ {
    HmacSha256_128,
    HmacSha384_192,
    HmacSha512_256,
}

impl Integ {
    fn from_id(id: u16) -> Option<Self> {
        match id {
            wire::INTEG_HMAC_SHA2_256_128 => Some(Integ::HmacSha256_128),
            wire::INTEG_HMAC_SHA2_384_192 => Some(Integ::HmacSha384_192),
            wire::INTEG_HMAC_SHA2_512_256 => Some(Integ::HmacSha512_256),
            _ => None,
        }
    }

    /// The transform ID.
    pub fn id(self) -> u16 {
        match self {
            Integ::HmacSha256_128 => wire::INTEG_HMAC_SHA2_256_128,
            Integ::HmacSha384_192 => wire::INTEG_HMAC_SHA2_384_192,
            Integ::HmacSha512_256 => wire::INTEG_HMAC_SHA2_512_256,
        }
    }

    /// Key length (the hash output, RFC 4868 §2.1.1).
    pub fn key_len(self) -> usize {
        match self {
            Integ::HmacSha256_128 => 32,
            Integ::HmacSha384_192 => 48,
            Integ::HmacSha512_256 => 64,
        }
    }

    /// Truncated ICV length: half the hash output.
    pub fn icv_len(self) -> usize {
        self.key_len() / 2
    }
}

/// Key exchange groups: MODP 2048 and 3072 (RFC 3526), ECP 256 and 384 (RFC 5903),
/// Curve25519 (RFC 8031).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhGroup {
    Modp2048,
    Modp3072,
    Ecp256,
    Ecp384,
    Curve25519,
}

impl DhGroup {
    /// The group for a KE payload's group number, if we support it.
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            wire::DH_MODP_2048 => Some(DhGroup::Modp2048),
            wire::DH_MODP_3072 => Some(DhGroup::Modp3072),
            wire::DH_ECP_256 => Some(DhGroup::Ecp256),
            wire::DH_ECP_384 => Some(DhGroup::Ecp384),
            wire::DH_CURVE25519 => Some(DhGroup::Curve25519),
            _ => None,
        }
    }

    /// The group number, as sent in KE and in N(INVALID_KE_PAYLOAD).
    pub fn id(self) -> u16 {
        match self {
            DhGroup::Modp2048 => wire::DH_MODP_2048,
            DhGroup::Modp3072 => wire::DH_MODP_3072,
            DhGroup::Ecp256 => wire::DH_ECP_256,
            DhGroup::Ecp384 => wire::DH_ECP_384,
            DhGroup::Curve25519 => wire::DH_CURVE25519,
        }
    }

    /// Length of the KE data (and of the public value we send).
    pub fn public_len(self) -> usize {
        match self {
            DhGroup::Modp2048 => 256,
            DhGroup::Modp3072 => 384,
            DhGroup::Ecp256 => 64,
            DhGroup::Ecp384 => 96,
            DhGroup::Curve25519 => 32,
        }
    }
}

/// The IKE SA algorithms chosen in IKE_SA_INIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeSuite {
    /// The client's Proposal Num, echoed in our SA payload.
    pub number: u8,
    pub encr: Encr,
    pub prf: Prf,
    /// `None` exactly when `encr` is AEAD.
    pub integ: Option<Integ>,
    pub dh: DhGroup,
}

/// What to answer an IKE_SA_INIT's SA and KE with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IkeChoice {
    /// A proposal fits and includes the KE payload's group.
    Accept(IkeSuite),
    /// A proposal fits, but not with the KE payload's group: answer
    /// N(INVALID_KE_PAYLOAD) with this group (§1.2, §1.3).
    InvalidKe(DhGroup),
    /// Nothing fits: answer N(NO_PROPOSAL_CHOSEN).
    NoProposalChosen,
}

/// The CHILD SA algorithms chosen in IKE_AUTH (negotiated only, never installed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspSuite {
    pub number: u8,
    /// The client's inbound SPI from its proposal.
    pub peer_spi: [u8; 4],
    pub encr: Encr,
    pub integ: Option<Integ>,
    /// The ESN transform chosen: `Some(false)` (no ESN) whenever offered, `None` if the
    /// client sent no ESN transform.
    pub esn: Option<bool>,
}

/// The transforms of one proposal, reduced to the first supported one per type.
#[derive(Default)]
struct Picked {
    encr: Option<Encr>,
    prf: Option<Prf>,
    integ: Option<Integ>,
    integ_none: bool,
    dh: Vec<DhGroup>,
    esn: Option<bool>,
    offered: [bool; 6],
    unknown_type: bool,
}

impl Picked {
    fn of(p: &Proposal) -> Self {
        let mut k = Picked::default();
        for t in &p.transforms {
            match t.kind {
                wire::TRANSFORM_ENCR => k.encr = k.encr.or(Encr::from_transform(t)),
                wire::TRANSFORM_PRF => {
                    k.prf = k
                        .prf
                        .or(Prf::from_id(t.id).filter(|_| t.attributes.is_empty()))
                }
                wire::TRANSFORM_INTEG if t.id == wire::INTEG_NONE => k.integ_none = true,
                wire::TRANSFORM_INTEG => {
                    k.integ = k
                        .integ
                        .or(Integ::from_id(t.id).filter(|_| t.attributes.is_empty()))
                }
                wire::TRANSFORM_DH => {
                    k.dh.extend(DhGroup::from_id(t.id).filter(|_| t.attributes.is_empty()))
                }
                wire::TRANSFORM_ESN => match t.id {
                    wire::ESN_NO => k.esn = Some(false),
                    wire::ESN_YES => k.esn = k.esn.or(Some(true)),
                    _ => {}
                },
                _ => k.unknown_type = true,
            }
            if let Some(seen) = k.offered.get_mut(usize::from(t.kind)) {
                *seen = true;
            }
        }
        k
    }

    /// The INTEG choice that goes with the cipher: none for AEAD (where only NONE may be
    /// offered), a supported one otherwise. `None` means the proposal is unacceptable.
    fn integ_for(&self, encr: Encr) -> Option<Option<Integ>> {
        if encr.is_aead() {
            let only_none = !self.offered[usize::from(wire::TRANSFORM_INTEG)]
                || (self.integ_none && self.integ.is_none());
            only_none.then_some(None)
        } else {
            self.integ.map(Some)
        }
    }
}

/// Chooses the IKE SA algorithms from an IKE_SA_INIT request's SA payload, given the
/// group of its KE payload.
pub fn select_ike(proposals: &[Proposal], ke_group: u16) -> IkeChoice {
    let mut fallback = None;
    for p in proposals
        .iter()
        .filter(|p| p.protocol == wire::PROTO_IKE && p.spi.is_empty())
    {
        let k = Picked::of(p);
        let (Some(encr), Some(prf), false) = (k.encr, k.prf, k.unknown_type) else {
            continue;
        };
        let Some(integ) = k.integ_for(encr) else {
            continue;
        };
        let Some(&first) = k.dh.first() else { continue };
        if let Some(dh) = k.dh.iter().copied().find(|g| g.id() == ke_group) {
            return IkeChoice::Accept(IkeSuite {
                number: p.number,
                encr,
                prf,
                integ,
                dh,
            });
        }
        fallback = fallback.or(Some(first));
    }
    fallback.map_or(IkeChoice::NoProposalChosen, IkeChoice::InvalidKe)
}

/// Chooses the CHILD SA algorithms from an IKE_AUTH request's SA payload. D-H
/// transforms are ignored: IKE_AUTH has no KE payload (§1.2).
pub fn select_esp(proposals: &[Proposal]) -> Option<EspSuite> {
    proposals
        .iter()
        .filter(|p| p.protocol == wire::PROTO_ESP)
        .find_map(|p| {
            let k = Picked::of(p);
            if k.unknown_type || k.offered[usize::from(wire::TRANSFORM_PRF)] {
                return None;
            }
            let encr = k.encr?;
            let integ = k.integ_for(encr)?;
            let peer_spi = <[u8; 4]>::try_from(p.spi.as_slice()).ok()?;
            let esn = match (k.offered[usize::from(wire::TRANSFORM_ESN)], k.esn) {
                (false, _) => None,
                (true, Some(esn)) => Some(esn),
                (true, None) => return None,
            };
            Some(EspSuite {
                number: p.number,
                peer_spi,
                encr,
                integ,
                esn,
            })
        })
}

impl IkeSuite {
    /// Our SA payload's single proposal for IKE_SA_INIT's response.
    pub fn to_proposal(&self) -> Proposal {
        let mut transforms = vec![
            self.encr.transform(),
            Transform::plain(wire::TRANSFORM_PRF, self.prf.id()),
        ];
        transforms.extend(
            self.integ
                .map(|i| Transform::plain(wire::TRANSFORM_INTEG, i.id())),
        );
        transforms.push(Transform::plain(wire::TRANSFORM_DH, self.dh.id()));
        Proposal {
            number: self.number,
            protocol: wire::PROTO_IKE,
            spi: Vec::new(),
            transforms,
        }
    }
}

impl EspSuite {
    /// Our SA payload's single proposal for the IKE_AUTH response, with our own SPI.
    pub fn to_proposal(&self, our_spi: [u8; 4]) -> Proposal {
        let mut transforms = vec![self.encr.transform()];
        transforms.extend(
            self.integ
                .map(|i| Transform::plain(wire::TRANSFORM_INTEG, i.id())),
        );
        transforms.extend(self.esn.map(|e| {
            Transform::plain(
                wire::TRANSFORM_ESN,
                if e { wire::ESN_YES } else { wire::ESN_NO },
            )
        }));
        Proposal {
            number: self.number,
            protocol: wire::PROTO_ESP,
            spi: our_spi.to_vec(),
            transforms,
        }
    }
}

impl Transform {
    fn plain(kind: u8, id: u16) -> Self {
        Transform {
            kind,
            id,
            attributes: Vec::new(),
        }
    }
}
