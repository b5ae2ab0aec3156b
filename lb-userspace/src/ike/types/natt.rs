//! Port 4500 carries IKE, ESP and NAT keepalives on one socket (RFC 3948 §2.2, RFC 7296
//! §2.23): the first bytes tell them apart.

/// What a UDP payload on port 4500 is (RFC 3948 §2.2, RFC 7296 §2.23).
#[derive(Debug, PartialEq, Eq)]
pub enum NattPayload<'a> {
    /// A one-byte `0xff` NAT keepalive: ignore it.
    Keepalive,
    /// ESP (the first four bytes are a non-zero SPI): not ours, ikelb carries no ESP.
    Esp,
    /// IKE after the four-byte non-ESP marker, ready for [`super::message::Header::parse`].
    Ike(&'a [u8]),
}

/// Splits what arrived on port 4500 by its first bytes. The responder calls it on every
/// datagram from that port; on port 500 the payload is IKE as it is.
pub fn classify_natt(udp: &[u8]) -> NattPayload<'_> {
    match udp {
        [0xff] => NattPayload::Keepalive,
        [0, 0, 0, 0, ike @ ..] => NattPayload::Ike(ike),
        _ => NattPayload::Esp,
    }
}
