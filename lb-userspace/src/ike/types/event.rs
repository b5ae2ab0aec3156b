//! What the responder hands back besides its state: datagrams to send ([`Transmit`])
//! and what happened ([`Event`]), for counters, logs and the key log.

use std::fmt;
use std::net::SocketAddr;

use super::config::GatewayIdentity;
use super::payload::Identification;
use super::proposal::{Encr, Integ};
use crate::ike::cert::CertError;
use crate::ike::crypto::Secret;

/// A datagram to send: UDP payload (non-ESP marker included when `local` is port
/// 4500), from `local` to `remote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub payload: Vec<u8>,
}

/// Where a redirect was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectHow {
    /// IKE_SA_INIT REDIRECT of a [`VipMode::Init`](super::config::VipMode::Init) VIP (the fast path's answer).
    Init,
    /// Inside the IKE_AUTH response.
    IkeAuth,
    /// In an INFORMATIONAL request after IKE_AUTH.
    Informational,
}

/// Why an SA ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// The client deleted it (the normal end after a redirect).
    PeerDelete,
    /// No IKE_AUTH in time.
    HalfOpenExpired,
    /// No DELETE in time after the redirect.
    Expired,
    /// The client never answered our request.
    RetransmitTimeout,
    /// The client's AUTH failed, or it asked for something we do not do.
    AuthFailed,
    /// An authenticated request was malformed (INVALID_SYNTAX).
    InvalidSyntax,
    /// No target to redirect to: we deleted the SA ourselves.
    NoTarget,
}

/// SPIs and SK_e*/SK_a* of one IKE SA, for decrypting captures.
pub struct KeyLog {
    pub spi_i: [u8; 8],
    pub spi_r: [u8; 8],
    pub encr: Encr,
    pub integ: Option<Integ>,
    pub sk_ei: Secret,
    pub sk_er: Secret,
    pub sk_ai: Secret,
    pub sk_ar: Secret,
}

impl fmt::Debug for KeyLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyLog")
            .field("spi_i", &hex(&self.spi_i))
            .field("spi_r", &hex(&self.spi_r))
            .finish_non_exhaustive()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl KeyLog {
    /// One row of tshark's `ikev2_decryption_table` UAT: SPIi, SPIr, SK_ei, SK_er,
    /// encryption algorithm, SK_ai, SK_ar, integrity algorithm (the names are the ones
    /// tshark's ISAKMP dissector lists). Byte fields are bare hex and the algorithm
    /// names quoted, as in the UAT file and for `tshark -o
    /// uat:ikev2_decryption_table:<row>` (checked against tshark 4.0.17: quoted hex is
    /// read as a string and refused, "Length of Initiator's SPI must be 8 octets").
    pub fn tshark_uat_row(&self) -> String {
        let encr = match self.encr {
            Encr::AesCbc128 => "AES-CBC-128 [RFC3602]",
            Encr::AesCbc256 => "AES-CBC-256 [RFC3602]",
            Encr::AesGcm16_128 => "AES-GCM-128 with 16 octet ICV [RFC5282]",
            Encr::AesGcm16_256 => "AES-GCM-256 with 16 octet ICV [RFC5282]",
        };
        let integ = match self.integ {
            None => "NONE [RFC4306]",
            Some(Integ::HmacSha256_128) => "HMAC_SHA2_256_128 [RFC4868]",
            Some(Integ::HmacSha384_192) => "HMAC_SHA2_384_192 [RFC4868]",
            Some(Integ::HmacSha512_256) => "HMAC_SHA2_512_256 [RFC4868]",
        };
        format!(
            "{},{},{},{},\"{encr}\",{},{},\"{integ}\"",
            hex(&self.spi_i),
            hex(&self.spi_r),
            hex(&self.sk_ei),
            hex(&self.sk_er),
            hex(&self.sk_ai),
            hex(&self.sk_ar),
        )
    }
}

/// What happened, for counters and logs.
#[derive(Debug)]
pub enum Event {
    /// The client's AUTH checked out.
    Established {
        client: SocketAddr,
        spi_i: [u8; 8],
        spi_r: [u8; 8],
        peer: Identification,
    },
    /// A REDIRECT was sent (in the INFORMATIONAL case, the first transmission of it).
    Redirected {
        client: SocketAddr,
        spi_i: [u8; 8],
        target: GatewayIdentity,
        how: RedirectHow,
    },
    /// The client sent a wrong AUTH, an unknown identity or an unsupported method.
    AuthFailed {
        client: SocketAddr,
        peer: Option<Identification>,
        /// Why a certificate peer's chain, identity or signature was refused.
        certificate: Option<CertError>,
    },
    /// IKE_SA_INIT without REDIRECT_SUPPORTED, or with REDIRECTED_FROM, refused.
    RedirectUnsupported {
        client: SocketAddr,
        spi_i: [u8; 8],
        /// The client sent REDIRECTED_FROM: it was redirected already.
        redirected_from: bool,
    },
    /// The chooser had no target for an authenticated client; its SA is deleted.
    NoTarget { client: SocketAddr, spi_i: [u8; 8] },
    /// An SA ended.
    SaDeleted {
        client: SocketAddr,
        spi_i: [u8; 8],
        spi_r: [u8; 8],
        reason: DeleteReason,
    },
    /// Only with [`ResponderConfig::log_keys`](super::config::ResponderConfig::log_keys).
    Keys(KeyLog),
}
