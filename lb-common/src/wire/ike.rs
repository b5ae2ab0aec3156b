//! IKEv2 header, generic payload header and Notify (RFC 7296 §3.1, §3.2, §3.10).

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

pub const PAYLOAD_NONE: u8 = 0;
pub const PAYLOAD_SA: u8 = 33;
pub const PAYLOAD_KE: u8 = 34;
pub const PAYLOAD_NONCE: u8 = 40;
pub const PAYLOAD_NOTIFY: u8 = 41;
pub const PAYLOAD_SK: u8 = 46;
pub const PAYLOAD_SKF: u8 = 53;
/// Critical bit in the generic payload header's second byte.
pub const CRITICAL: u8 = 0x80;

pub const NOTIFY_COOKIE: u16 = 16390;
pub const NOTIFY_FRAGMENTATION_SUPPORTED: u16 = 16430;
pub const NOTIFY_REDIRECT_SUPPORTED: u16 = 16406;
pub const NOTIFY_REDIRECT: u16 = 16407;
pub const NOTIFY_REDIRECTED_FROM: u16 = 16408;

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
