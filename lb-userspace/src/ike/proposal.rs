//! Algorithms ikelb speaks and the choice among a client's proposals (RFC 7296 §2.7,
//! §3.3.6). The responder takes the first of the client's proposals that it can accept
//! in full, and in it the first transform of each type that it supports: the client's
//! order is its preference.

use super::payload::{ATTR_KEY_LENGTH, Attribute, PROTO_ESP, PROTO_IKE, Proposal, Transform};

/// Transform types (§3.3.2).
pub mod transform {
    pub const ENCR: u8 = 1;
    pub const PRF: u8 = 2;
    pub const INTEG: u8 = 3;
    pub const DH: u8 = 4;
    pub const ESN: u8 = 5;
}

const ENCR_AES_CBC: u16 = 12;
const ENCR_AES_GCM_16: u16 = 20;

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
            kind: transform::ENCR,
            id,
            attributes: vec![Attribute::Tv {
                kind: ATTR_KEY_LENGTH,
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
    HmacSha256 = 5,
    HmacSha384 = 6,
    HmacSha512 = 7,
}

impl Prf {
    fn from_id(id: u16) -> Option<Self> {
        match id {
            5 => Some(Prf::HmacSha256),
            6 => Some(Prf::HmacSha384),
            7 => Some(Prf::HmacSha512),
            _ => None,
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
    HmacSha256_128 = 12,
    HmacSha384_192 = 13,
    HmacSha512_256 = 14,
}

impl Integ {
    fn from_id(id: u16) -> Option<Self> {
        match id {
            12 => Some(Integ::HmacSha256_128),
            13 => Some(Integ::HmacSha384_192),
            14 => Some(Integ::HmacSha512_256),
            _ => None,
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
    Modp2048 = 14,
    Modp3072 = 15,
    Ecp256 = 19,
    Ecp384 = 20,
    Curve25519 = 31,
}

impl DhGroup {
    /// The group for a KE payload's group number, if we support it.
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            14 => Some(DhGroup::Modp2048),
            15 => Some(DhGroup::Modp3072),
            19 => Some(DhGroup::Ecp256),
            20 => Some(DhGroup::Ecp384),
            31 => Some(DhGroup::Curve25519),
            _ => None,
        }
    }

    /// The group number, as sent in KE and in N(INVALID_KE_PAYLOAD).
    pub fn id(self) -> u16 {
        self as u16
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
                transform::ENCR => k.encr = k.encr.or(Encr::from_transform(t)),
                transform::PRF => {
                    k.prf = k
                        .prf
                        .or(Prf::from_id(t.id).filter(|_| t.attributes.is_empty()))
                }
                transform::INTEG if t.id == 0 => k.integ_none = true,
                transform::INTEG => {
                    k.integ = k
                        .integ
                        .or(Integ::from_id(t.id).filter(|_| t.attributes.is_empty()))
                }
                transform::DH => {
                    k.dh.extend(DhGroup::from_id(t.id).filter(|_| t.attributes.is_empty()))
                }
                transform::ESN => match t.id {
                    0 => k.esn = Some(false),
                    1 => k.esn = k.esn.or(Some(true)),
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
            let only_none = !self.offered[usize::from(transform::INTEG)]
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
        .filter(|p| p.protocol == PROTO_IKE && p.spi.is_empty())
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
        .filter(|p| p.protocol == PROTO_ESP)
        .find_map(|p| {
            let k = Picked::of(p);
            if k.unknown_type || k.offered[usize::from(transform::PRF)] {
                return None;
            }
            let encr = k.encr?;
            let integ = k.integ_for(encr)?;
            let peer_spi = <[u8; 4]>::try_from(p.spi.as_slice()).ok()?;
            let esn = match (k.offered[usize::from(transform::ESN)], k.esn) {
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
            Transform::plain(transform::PRF, self.prf as u16),
        ];
        transforms.extend(
            self.integ
                .map(|i| Transform::plain(transform::INTEG, i as u16)),
        );
        transforms.push(Transform::plain(transform::DH, self.dh.id()));
        Proposal {
            number: self.number,
            protocol: PROTO_IKE,
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
                .map(|i| Transform::plain(transform::INTEG, i as u16)),
        );
        transforms.extend(
            self.esn
                .map(|e| Transform::plain(transform::ESN, u16::from(e))),
        );
        Proposal {
            number: self.number,
            protocol: PROTO_ESP,
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
