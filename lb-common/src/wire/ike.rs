//! IKEv2 header, generic payload header and Notify (RFC 7296 §3.1, §3.2, §3.10), and
//! every IKEv2 number the fast path and the userspace responder use (IANA's IKEv2
//! registries), declared once here.

pub const PORT_IKE: u16 = 500;
pub const PORT_NATT: u16 = 4500;
/// Four zero bytes before IKE on port 4500 (RFC 7296 §2.23); anything else there is ESP.
pub const NON_ESP_MARKER_LEN: usize = 4;

pub mod field {
    use crate::wire::Field;
    pub const SPI_I: Field = 0..8;
    pub const SPI_R: Field = 8..16;
    pub const NEXT_PAYLOAD: usize = 16;
    pub const VERSION: usize = 17;
    pub const EXCHANGE: usize = 18;
    pub const FLAGS: usize = 19;
    pub const MESSAGE_ID: Field = 20..24;
    pub const LENGTH: Field = 24..28;
}
pub const HEADER_LEN: usize = field::LENGTH.end;
pub const GENERIC_HEADER_LEN: usize = 4;
pub const NOTIFY_FIXED_LEN: usize = 8;

pub const VERSION_2_0: u8 = 0x20;
pub const FLAG_INITIATOR: u8 = 0x08;
pub const FLAG_VERSION: u8 = 0x10;
pub const FLAG_RESPONSE: u8 = 0x20;

pub const EXCHANGE_IKE_SA_INIT: u8 = 34;
pub const EXCHANGE_IKE_AUTH: u8 = 35;
pub const EXCHANGE_CREATE_CHILD_SA: u8 = 36;
pub const EXCHANGE_INFORMATIONAL: u8 = 37;

/// Payload types (RFC 7296 §3.2, RFC 7383 §2.5).
pub const PAYLOAD_NONE: u8 = 0;
pub const PAYLOAD_SA: u8 = 33;
pub const PAYLOAD_KE: u8 = 34;
pub const PAYLOAD_IDI: u8 = 35;
pub const PAYLOAD_IDR: u8 = 36;
pub const PAYLOAD_CERT: u8 = 37;
pub const PAYLOAD_CERTREQ: u8 = 38;
pub const PAYLOAD_AUTH: u8 = 39;
pub const PAYLOAD_NONCE: u8 = 40;
pub const PAYLOAD_NOTIFY: u8 = 41;
pub const PAYLOAD_DELETE: u8 = 42;
pub const PAYLOAD_VENDOR_ID: u8 = 43;
pub const PAYLOAD_TSI: u8 = 44;
pub const PAYLOAD_TSR: u8 = 45;
pub const PAYLOAD_SK: u8 = 46;
pub const PAYLOAD_EAP: u8 = 48;
pub const PAYLOAD_SKF: u8 = 53;
/// Critical bit in the generic payload header's second byte.
pub const CRITICAL: u8 = 0x80;

/// Notify message types (RFC 7296 §3.10.1, RFC 5685, RFC 7383, RFC 7427): errors
/// below 16384, status types from it.
pub const NOTIFY_UNSUPPORTED_CRITICAL_PAYLOAD: u16 = 1;
pub const NOTIFY_INVALID_MAJOR_VERSION: u16 = 5;
pub const NOTIFY_INVALID_SYNTAX: u16 = 7;
pub const NOTIFY_NO_PROPOSAL_CHOSEN: u16 = 14;
pub const NOTIFY_INVALID_KE_PAYLOAD: u16 = 17;
pub const NOTIFY_AUTHENTICATION_FAILED: u16 = 24;
pub const NOTIFY_NO_ADDITIONAL_SAS: u16 = 35;
pub const NOTIFY_NAT_DETECTION_SOURCE_IP: u16 = 16388;
pub const NOTIFY_NAT_DETECTION_DESTINATION_IP: u16 = 16389;
pub const NOTIFY_COOKIE: u16 = 16390;
pub const NOTIFY_USE_TRANSPORT_MODE: u16 = 16391;
pub const NOTIFY_FRAGMENTATION_SUPPORTED: u16 = 16430;
pub const NOTIFY_SIGNATURE_HASH_ALGORITHMS: u16 = 16431;
pub const NOTIFY_REDIRECT_SUPPORTED: u16 = 16406;
pub const NOTIFY_REDIRECT: u16 = 16407;
pub const NOTIFY_REDIRECTED_FROM: u16 = 16408;

/// Protocol IDs of proposals, notifies and deletes (RFC 7296 §3.3.1).
pub const PROTO_IKE: u8 = 1;
pub const PROTO_AH: u8 = 2;
pub const PROTO_ESP: u8 = 3;

/// Transform types (RFC 7296 §3.3.2).
pub const TRANSFORM_ENCR: u8 = 1;
pub const TRANSFORM_PRF: u8 = 2;
pub const TRANSFORM_INTEG: u8 = 3;
pub const TRANSFORM_DH: u8 = 4;
pub const TRANSFORM_ESN: u8 = 5;
/// Encryption transform IDs (RFC 3602, RFC 5282).
pub const ENCR_AES_CBC: u16 = 12;
pub const ENCR_AES_GCM_16: u16 = 20;
/// PRF transform IDs (RFC 4868).
pub const PRF_HMAC_SHA2_256: u16 = 5;
pub const PRF_HMAC_SHA2_384: u16 = 6;
pub const PRF_HMAC_SHA2_512: u16 = 7;
/// Integrity transform IDs (RFC 4868); NONE goes with AEAD ciphers.
pub const INTEG_NONE: u16 = 0;
pub const INTEG_HMAC_SHA2_256_128: u16 = 12;
pub const INTEG_HMAC_SHA2_384_192: u16 = 13;
pub const INTEG_HMAC_SHA2_512_256: u16 = 14;
/// Key exchange groups (RFC 3526, RFC 5903, RFC 8031).
pub const DH_MODP_2048: u16 = 14;
pub const DH_MODP_3072: u16 = 15;
pub const DH_ECP_256: u16 = 19;
pub const DH_ECP_384: u16 = 20;
pub const DH_CURVE25519: u16 = 31;
/// Extended Sequence Numbers transform IDs.
pub const ESN_NO: u16 = 0;
pub const ESN_YES: u16 = 1;
/// Transform attribute type 14, Key Length in bits, always in TV form (§3.3.5).
pub const ATTR_KEY_LENGTH: u16 = 14;

/// Authentication methods of the AUTH payload (RFC 7296 §3.8, RFC 4754, RFC 7427).
pub const AUTH_RSA: u8 = 1;
pub const AUTH_PSK: u8 = 2;
pub const AUTH_ECDSA_256: u8 = 9;
pub const AUTH_ECDSA_384: u8 = 10;
pub const AUTH_ECDSA_521: u8 = 11;
pub const AUTH_DIGITAL_SIGNATURE: u8 = 14;

/// Hash algorithms of SIGNATURE_HASH_ALGORITHMS (RFC 7427 §7).
pub const HASH_SHA2_256: u16 = 2;
pub const HASH_SHA2_384: u16 = 3;
pub const HASH_SHA2_512: u16 = 4;

/// Identification types of IDi/IDr (RFC 7296 §3.5).
pub const ID_IPV4_ADDR: u8 = 1;
pub const ID_FQDN: u8 = 2;
pub const ID_RFC822_ADDR: u8 = 3;
pub const ID_IPV6_ADDR: u8 = 5;
pub const ID_DER_ASN1_DN: u8 = 9;

/// CERT and CERTREQ encoding 4: X.509 Certificate - Signature (RFC 7296 §3.6).
pub const CERT_X509_SIGNATURE: u8 = 4;

/// Traffic selector types (RFC 7296 §3.13.1).
pub const TS_IPV4_ADDR_RANGE: u8 = 7;
pub const TS_IPV6_ADDR_RANGE: u8 = 8;

/// Nonce data length bounds (RFC 7296 §2.10, §3.9).
pub const NONCE_MIN: usize = 16;
pub const NONCE_MAX: usize = 256;
/// Most payloads walked in one IKE_SA_INIT request; more is treated as malformed.
pub const MAX_PAYLOADS: usize = 32;

/// Is `t` a payload type IKE_SA_INIT may legitimately carry that we understand? Unknown
/// types with the critical bit make the request one for userspace (UNSUPPORTED_CRITICAL).
#[inline(always)]
pub const fn known_payload(t: u8) -> bool {
    matches!(t, 33..=48 | 53)
}
