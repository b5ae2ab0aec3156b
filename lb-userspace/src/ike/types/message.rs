//! IKEv2 messages: the header (RFC 7296 §3.1) and the generic payload chain (§3.2).
//!
//! [`Message::parse`] never panics and bounds every length by the datagram; it returns a
//! typed [`MessageError`] that says which notify, if any, a responder may answer with.
//! [`Message::to_bytes`] is its inverse: `parse(to_bytes(m)) == m` for every message it
//! accepts. An SK or SKF payload stays undecrypted here; [`crate::ike::crypto::sk`]
//! opens it.

use lb_common::wire::ike as wire;

use super::codec::{MAX_PAYLOADS, MessageError, Reader, patch_len};
use super::payload::{
    Auth, Cert, Delete, Encrypted, EncryptedFragment, Identification, KeyExchange, Notify,
    Proposal, TrafficSelector,
};

/// The IKE header without its derived fields (Next Payload, Length). The version is
/// always sent as 2.0; a received minor version and the V and reserved flag bits are
/// ignored (§3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub spi_i: [u8; 8],
    pub spi_r: [u8; 8],
    pub exchange: u8,
    /// I flag: set by the original initiator of the IKE SA.
    pub initiator: bool,
    /// R flag: set in responses.
    pub response: bool,
    pub message_id: u32,
}

impl Header {
    /// Reads the header of a complete IKE message (after any non-ESP marker) and returns
    /// it with the first payload type. The Length field must equal `buf.len()`. The
    /// responder calls this first, to find the SA by SPI and check the Message ID before
    /// it parses or decrypts anything.
    pub fn parse(buf: &[u8]) -> Result<(Header, u8), MessageError> {
        let mut r = Reader::new(buf);
        let spi_i = r.array()?;
        let spi_r = r.array()?;
        let next = r.u8()?;
        let version = r.u8()?;
        let exchange = r.u8()?;
        let flags = r.u8()?;
        let message_id = r.u32()?;
        let length = r.u32()?;
        if version >> 4 != wire::VERSION_2_0 >> 4 {
            return Err(MessageError::MajorVersion(version));
        }
        if usize::try_from(length).ok() != Some(buf.len()) {
            return Err(MessageError::Length);
        }
        let header = Header {
            spi_i,
            spi_r,
            exchange,
            initiator: flags & wire::FLAG_INITIATOR != 0,
            response: flags & wire::FLAG_RESPONSE != 0,
            message_id,
        };
        Ok((header, next))
    }

    /// Appends the 28 header bytes for a message of `length` bytes in all.
    pub(crate) fn emit(
        &self,
        first: u8,
        length: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), MessageError> {
        let length = u32::try_from(length).map_err(|_| MessageError::TooLong)?;
        let mut flags = 0;
        if self.initiator {
            flags |= wire::FLAG_INITIATOR;
        }
        if self.response {
            flags |= wire::FLAG_RESPONSE;
        }
        out.extend_from_slice(&self.spi_i);
        out.extend_from_slice(&self.spi_r);
        out.extend_from_slice(&[first, wire::VERSION_2_0, self.exchange, flags]);
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&length.to_be_bytes());
        Ok(())
    }
}

/// One payload. Types without a variant (CP, EAP, and types unknown to us that arrived
/// without the critical bit) are kept as [`Payload::Other`] so they survive a round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Sa(Vec<Proposal>),
    Ke(KeyExchange),
    IdI(Identification),
    IdR(Identification),
    Cert(Cert),
    CertReq(Cert),
    Auth(Auth),
    /// Nonce data, 16..=256 bytes (§3.9).
    Nonce(Vec<u8>),
    Notify(Notify),
    Delete(Delete),
    VendorId(Vec<u8>),
    TsI(Vec<TrafficSelector>),
    TsR(Vec<TrafficSelector>),
    Encrypted(Encrypted),
    EncryptedFragment(EncryptedFragment),
    /// A payload type this module does not model; `kind` is never one that it does.
    Other {
        kind: u8,
        body: Vec<u8>,
    },
}

impl Payload {
    /// The payload type number.
    pub fn kind(&self) -> u8 {
        match self {
            Payload::Sa(_) => wire::PAYLOAD_SA,
            Payload::Ke(_) => wire::PAYLOAD_KE,
            Payload::IdI(_) => wire::PAYLOAD_IDI,
            Payload::IdR(_) => wire::PAYLOAD_IDR,
            Payload::Cert(_) => wire::PAYLOAD_CERT,
            Payload::CertReq(_) => wire::PAYLOAD_CERTREQ,
            Payload::Auth(_) => wire::PAYLOAD_AUTH,
            Payload::Nonce(_) => wire::PAYLOAD_NONCE,
            Payload::Notify(_) => wire::PAYLOAD_NOTIFY,
            Payload::Delete(_) => wire::PAYLOAD_DELETE,
            Payload::VendorId(_) => wire::PAYLOAD_VENDOR_ID,
            Payload::TsI(_) => wire::PAYLOAD_TSI,
            Payload::TsR(_) => wire::PAYLOAD_TSR,
            Payload::Encrypted(_) => wire::PAYLOAD_SK,
            Payload::EncryptedFragment(_) => wire::PAYLOAD_SKF,
            Payload::Other { kind, .. } => *kind,
        }
    }

    fn parse_body(kind: u8, critical: bool, body: &[u8]) -> Result<Self, MessageError> {
        let mut r = Reader::new(body);
        let p = match kind {
            wire::PAYLOAD_SA => Payload::Sa(Proposal::parse_all(&mut r)?),
            wire::PAYLOAD_KE => Payload::Ke(KeyExchange::parse(&mut r)?),
            wire::PAYLOAD_IDI => Payload::IdI(Identification::parse(&mut r)?),
            wire::PAYLOAD_IDR => Payload::IdR(Identification::parse(&mut r)?),
            wire::PAYLOAD_CERT => Payload::Cert(Cert::parse(&mut r)?),
            wire::PAYLOAD_CERTREQ => Payload::CertReq(Cert::parse(&mut r)?),
            wire::PAYLOAD_AUTH => Payload::Auth(Auth::parse(&mut r)?),
            wire::PAYLOAD_NONCE => {
                let n = r.rest();
                if !(wire::NONCE_MIN..=wire::NONCE_MAX).contains(&n.len()) {
                    return Err(MessageError::Syntax("nonce length"));
                }
                Payload::Nonce(n.to_vec())
            }
            wire::PAYLOAD_NOTIFY => Payload::Notify(Notify::parse(&mut r)?),
            wire::PAYLOAD_DELETE => Payload::Delete(Delete::parse(&mut r)?),
            wire::PAYLOAD_VENDOR_ID => Payload::VendorId(r.rest().to_vec()),
            wire::PAYLOAD_TSI => Payload::TsI(TrafficSelector::parse_all(&mut r)?),
            wire::PAYLOAD_TSR => Payload::TsR(TrafficSelector::parse_all(&mut r)?),
            // §2.5: an unknown payload is skipped unless marked critical. A known type
            // ignores the bit.
            k if !critical || wire::known_payload(k) => Payload::Other {
                kind: k,
                body: r.rest().to_vec(),
            },
            k => return Err(MessageError::UnsupportedCritical(k)),
        };
        r.end()?;
        Ok(p)
    }

    fn emit_body(&self, out: &mut Vec<u8>) -> Result<(), MessageError> {
        match self {
            Payload::Sa(p) => Proposal::emit_all(p, out)?,
            Payload::Ke(k) => k.emit(out),
            Payload::IdI(id) | Payload::IdR(id) => id.emit(out),
            Payload::Cert(c) | Payload::CertReq(c) => c.emit(out),
            Payload::Auth(a) => a.emit(out),
            Payload::Nonce(b) | Payload::VendorId(b) | Payload::Other { body: b, .. } => {
                out.extend_from_slice(b)
            }
            Payload::Notify(n) => n.emit(out)?,
            Payload::Delete(d) => d.emit(out)?,
            Payload::TsI(t) | Payload::TsR(t) => TrafficSelector::emit_all(t, out)?,
            Payload::Encrypted(e) => out.extend_from_slice(&e.data),
            Payload::EncryptedFragment(f) => {
                out.extend_from_slice(&f.number.to_be_bytes());
                out.extend_from_slice(&f.total.to_be_bytes());
                out.extend_from_slice(&f.data);
            }
        }
        Ok(())
    }
}

/// Parses a payload chain that starts with type `first`: the payloads after the IKE
/// header, or the plaintext of an SK payload with its padding removed. An SK or SKF
/// payload ends the chain and must end the data (§3.14).
pub fn parse_chain(first: u8, buf: &[u8]) -> Result<Vec<Payload>, MessageError> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    let mut next = first;
    while next != 0 {
        if out.len() == MAX_PAYLOADS {
            return Err(MessageError::TooManyPayloads);
        }
        let this = next;
        next = r.u8()?;
        let critical = r.u8()? & wire::CRITICAL != 0;
        let len = usize::from(r.u16()?);
        let body = r.take(
            len.checked_sub(wire::GENERIC_HEADER_LEN)
                .ok_or(MessageError::Length)?,
        )?;
        match this {
            wire::PAYLOAD_SK => {
                r.end()
                    .map_err(|_| MessageError::Syntax("SK payload not last"))?;
                out.push(Payload::Encrypted(Encrypted {
                    first: next,
                    data: body.to_vec(),
                }));
                return Ok(out);
            }
            wire::PAYLOAD_SKF => {
                r.end()
                    .map_err(|_| MessageError::Syntax("SKF payload not last"))?;
                let mut b = Reader::new(body);
                let (number, total) = (b.u16()?, b.u16()?);
                if number == 0 || number > total {
                    return Err(MessageError::Syntax("fragment number"));
                }
                let data = b.rest().to_vec();
                out.push(Payload::EncryptedFragment(EncryptedFragment {
                    number,
                    total,
                    first: next,
                    data,
                }));
                return Ok(out);
            }
            _ => out.push(Payload::parse_body(this, critical, body)?),
        }
    }
    r.end()?;
    Ok(out)
}

/// Appends the payload chain and returns the type of its first payload (0 if empty).
/// An SK/SKF payload must come last; its Next Payload field carries its `first`.
pub fn emit_chain(payloads: &[Payload], out: &mut Vec<u8>) -> Result<u8, MessageError> {
    for (i, p) in payloads.iter().enumerate() {
        let next = match (p, payloads.get(i + 1)) {
            (Payload::Encrypted(_) | Payload::EncryptedFragment(_), Some(_)) => {
                return Err(MessageError::Syntax("SK payload not last"));
            }
            (Payload::Encrypted(e), None) => e.first,
            (Payload::EncryptedFragment(f), None) => f.first,
            (_, Some(n)) => n.kind(),
            (_, None) => 0,
        };
        let start = out.len();
        out.extend_from_slice(&[next, 0, 0, 0]);
        p.emit_body(out)?;
        patch_len(out, start)?;
    }
    Ok(payloads.first().map_or(0, Payload::kind))
}

/// A whole IKE message: header and payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Parses one IKE message (the UDP payload on port 500, or what follows the non-ESP
    /// marker on 4500). SK stays encrypted.
    pub fn parse(buf: &[u8]) -> Result<Self, MessageError> {
        let (header, first) = Header::parse(buf)?;
        let payloads = parse_chain(first, &buf[wire::HEADER_LEN..])?;
        Ok(Message { header, payloads })
    }

    /// Serializes the message; fails only if a field is too long for its length field.
    pub fn to_bytes(&self) -> Result<Vec<u8>, MessageError> {
        let mut body = Vec::new();
        let first = emit_chain(&self.payloads, &mut body)?;
        let mut out = Vec::with_capacity(wire::HEADER_LEN + body.len());
        self.header
            .emit(first, wire::HEADER_LEN + body.len(), &mut out)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The first notify of type `kind`.
    pub fn find_notify(&self, kind: u16) -> Option<&Notify> {
        self.payloads.iter().find_map(|p| match p {
            Payload::Notify(n) if n.kind == kind => Some(n),
            _ => None,
        })
    }
}
