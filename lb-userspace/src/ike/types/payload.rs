//! Payload bodies (RFC 7296 §3.3–§3.13, RFC 7383 §2.5): what follows the 4-byte generic
//! payload header. Each body type has a `parse` that never panics and a `emit` that
//! appends to a `Vec`; [`super::message`] walks the chain and calls them.

use std::net::{Ipv4Addr, Ipv6Addr};

use lb_common::wire::ike as wire;

use super::codec::{MessageError, Reader, len_u8, patch_len};

/// One proposal of an SA payload (§3.3.1). `spi` is empty for the first IKE SA and 4
/// bytes for ESP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub number: u8,
    pub protocol: u8,
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

/// One transform (§3.3.2): type (1 ENCR, 2 PRF, 3 INTEG, 4 DH, 5 ESN) and ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub kind: u8,
    pub id: u16,
    pub attributes: Vec<Attribute>,
}

/// A transform attribute (§3.3.5): TV (AF=1, 2-byte value) or TLV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    Tv { kind: u16, value: u16 },
    Tlv { kind: u16, value: Vec<u8> },
}

/// KE payload (§3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyExchange {
    pub group: u16,
    pub data: Vec<u8>,
}

/// Notify payload (§3.10). `kind` below 16384 is an error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub protocol: u8,
    pub spi: Vec<u8>,
    pub kind: u16,
    pub data: Vec<u8>,
}

/// IDi/IDr payload (§3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identification {
    pub kind: u8,
    pub data: Vec<u8>,
}

/// AUTH payload (§3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub method: u8,
    pub data: Vec<u8>,
}

/// CERT and CERTREQ payloads (§3.6, §3.7): encoding byte and opaque data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cert {
    pub encoding: u8,
    pub data: Vec<u8>,
}

/// Delete payload (§3.11): the IKE SA itself (no SPIs) or ESP/AH SAs by 4-byte SPI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delete {
    Ike,
    Child { protocol: u8, spis: Vec<[u8; 4]> },
}

/// One traffic selector (§3.13.1), IPv4 or IPv6 address range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficSelector {
    pub ip_protocol: u8,
    pub start_port: u16,
    pub end_port: u16,
    pub range: AddrRange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrRange {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

/// SK payload (§3.14) as received: IV, ciphertext and ICV, undecrypted. `first` is the
/// type of the first inner payload, carried in the SK payload's Next Payload field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted {
    pub first: u8,
    pub data: Vec<u8>,
}

/// SKF payload (RFC 7383 §2.5). `first` is 0 in every fragment but number 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedFragment {
    pub number: u16,
    pub total: u16,
    pub first: u8,
    pub data: Vec<u8>,
}

impl Proposal {
    /// Reads proposals up to the end of the SA body. The Last/More bytes are not trusted:
    /// the lengths and counts decide, as in strongSwan's parser.
    pub(crate) fn parse_all(r: &mut Reader<'_>) -> Result<Vec<Self>, MessageError> {
        let mut out = Vec::new();
        while !r.is_empty() {
            r.take(2)?;
            let len = usize::from(r.u16()?);
            let mut body = Reader::new(r.take(len.checked_sub(4).ok_or(MessageError::Length)?)?);
            let number = body.u8()?;
            let protocol = body.u8()?;
            let spi_size = body.u8()?;
            let count = body.u8()?;
            let spi = body.take(usize::from(spi_size))?.to_vec();
            let mut transforms = Vec::with_capacity(usize::from(count));
            for _ in 0..count {
                transforms.push(Transform::parse(&mut body)?);
            }
            body.end()?;
            out.push(Proposal {
                number,
                protocol,
                spi,
                transforms,
            });
        }
        if out.is_empty() {
            return Err(MessageError::Syntax("SA without proposals"));
        }
        Ok(out)
    }

    pub(crate) fn emit_all(all: &[Self], out: &mut Vec<u8>) -> Result<(), MessageError> {
        for (i, p) in all.iter().enumerate() {
            let start = out.len();
            out.extend_from_slice(&[if i + 1 < all.len() { 2 } else { 0 }, 0, 0, 0]);
            out.extend_from_slice(&[p.number, p.protocol, len_u8(p.spi.len())?]);
            out.push(len_u8(p.transforms.len())?);
            out.extend_from_slice(&p.spi);
            for (j, t) in p.transforms.iter().enumerate() {
                t.emit(j + 1 < p.transforms.len(), out)?;
            }
            patch_len(out, start)?;
        }
        Ok(())
    }
}

impl Transform {
    fn parse(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        r.take(2)?;
        let len = usize::from(r.u16()?);
        let mut body = Reader::new(r.take(len.checked_sub(4).ok_or(MessageError::Length)?)?);
        let kind = body.u8()?;
        body.u8()?;
        let id = body.u16()?;
        let mut attributes = Vec::new();
        while !body.is_empty() {
            let t = body.u16()?;
            if t & 0x8000 != 0 {
                attributes.push(Attribute::Tv {
                    kind: t & 0x7fff,
                    value: body.u16()?,
                });
            } else {
                let n = usize::from(body.u16()?);
                attributes.push(Attribute::Tlv {
                    kind: t,
                    value: body.take(n)?.to_vec(),
                });
            }
        }
        Ok(Transform {
            kind,
            id,
            attributes,
        })
    }

    fn emit(&self, more: bool, out: &mut Vec<u8>) -> Result<(), MessageError> {
        let start = out.len();
        out.extend_from_slice(&[if more { 3 } else { 0 }, 0, 0, 0, self.kind, 0]);
        out.extend_from_slice(&self.id.to_be_bytes());
        for a in &self.attributes {
            match a {
                Attribute::Tv { kind, value } => {
                    out.extend_from_slice(&(0x8000 | (kind & 0x7fff)).to_be_bytes());
                    out.extend_from_slice(&value.to_be_bytes());
                }
                Attribute::Tlv { kind, value } => {
                    out.extend_from_slice(&(kind & 0x7fff).to_be_bytes());
                    let n = u16::try_from(value.len()).map_err(|_| MessageError::TooLong)?;
                    out.extend_from_slice(&n.to_be_bytes());
                    out.extend_from_slice(value);
                }
            }
        }
        patch_len(out, start)
    }

    /// The Key Length attribute, if present (AES transforms require it).
    pub fn key_length(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Tv {
                kind: wire::ATTR_KEY_LENGTH,
                value,
            } => Some(*value),
            _ => None,
        })
    }
}

impl KeyExchange {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        let group = r.u16()?;
        r.u16()?;
        Ok(KeyExchange {
            group,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.group.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.data);
    }
}

impl Notify {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        let protocol = r.u8()?;
        let spi_size = r.u8()?;
        let kind = r.u16()?;
        let spi = r.take(usize::from(spi_size))?.to_vec();
        Ok(Notify {
            protocol,
            spi,
            kind,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) -> Result<(), MessageError> {
        out.extend_from_slice(&[self.protocol, len_u8(self.spi.len())?]);
        out.extend_from_slice(&self.kind.to_be_bytes());
        out.extend_from_slice(&self.spi);
        out.extend_from_slice(&self.data);
        Ok(())
    }
}

impl Identification {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        let kind = r.u8()?;
        r.take(3)?;
        Ok(Identification {
            kind,
            data: r.rest().to_vec(),
        })
    }

    /// The payload body without the generic header: ID Type, 3 RESERVED bytes and the
    /// data. This is the `IDi'`/`IDr'` that RFC 7296 §2.15 feeds to the PRF for AUTH.
    pub fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.data.len());
        self.emit(&mut out);
        out
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.kind, 0, 0, 0]);
        out.extend_from_slice(&self.data);
    }
}

impl Auth {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        let method = r.u8()?;
        r.take(3)?;
        Ok(Auth {
            method,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.method, 0, 0, 0]);
        out.extend_from_slice(&self.data);
    }
}

impl Cert {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Cert {
            encoding: r.u8()?,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.encoding);
        out.extend_from_slice(&self.data);
    }
}

impl Delete {
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        let protocol = r.u8()?;
        let spi_size = r.u8()?;
        let count = r.u16()?;
        let d = match (protocol, spi_size, count) {
            (wire::PROTO_IKE, 0, 0) => Delete::Ike,
            (wire::PROTO_AH | wire::PROTO_ESP, 4, _) => {
                let mut spis = Vec::new();
                for _ in 0..count {
                    let s = r.take(4)?;
                    spis.push([s[0], s[1], s[2], s[3]]);
                }
                Delete::Child { protocol, spis }
            }
            _ => return Err(MessageError::Syntax("delete protocol or SPI size")),
        };
        r.end()?;
        Ok(d)
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) -> Result<(), MessageError> {
        match self {
            Delete::Ike => out.extend_from_slice(&[wire::PROTO_IKE, 0, 0, 0]),
            Delete::Child { protocol, spis } => {
                let n = u16::try_from(spis.len()).map_err(|_| MessageError::TooLong)?;
                out.extend_from_slice(&[*protocol, 4]);
                out.extend_from_slice(&n.to_be_bytes());
                spis.iter().for_each(|s| out.extend_from_slice(s));
            }
        }
        Ok(())
    }
}

impl TrafficSelector {
    pub(crate) fn parse_all(r: &mut Reader<'_>) -> Result<Vec<Self>, MessageError> {
        let count = r.u8()?;
        r.take(3)?;
        let mut out = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let ts_type = r.u8()?;
            let ip_protocol = r.u8()?;
            let len = usize::from(r.u16()?);
            let start_port = r.u16()?;
            let end_port = r.u16()?;
            let range = match (ts_type, len) {
                (wire::TS_IPV4_ADDR_RANGE, 16) => AddrRange::V4(r.ipv4()?, r.ipv4()?),
                (wire::TS_IPV6_ADDR_RANGE, 40) => AddrRange::V6(r.ipv6()?, r.ipv6()?),
                _ => return Err(MessageError::Syntax("traffic selector type or length")),
            };
            out.push(TrafficSelector {
                ip_protocol,
                start_port,
                end_port,
                range,
            });
        }
        r.end()?;
        Ok(out)
    }

    pub(crate) fn emit_all(all: &[Self], out: &mut Vec<u8>) -> Result<(), MessageError> {
        out.extend_from_slice(&[len_u8(all.len())?, 0, 0, 0]);
        for ts in all {
            let (t, len) = match ts.range {
                AddrRange::V4(..) => (wire::TS_IPV4_ADDR_RANGE, 16u16),
                AddrRange::V6(..) => (wire::TS_IPV6_ADDR_RANGE, 40),
            };
            out.extend_from_slice(&[t, ts.ip_protocol]);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&ts.start_port.to_be_bytes());
            out.extend_from_slice(&ts.end_port.to_be_bytes());
            match ts.range {
                AddrRange::V4(a, b) => [a.octets(), b.octets()]
                    .iter()
                    .for_each(|o| out.extend_from_slice(o)),
                AddrRange::V6(a, b) => [a.octets(), b.octets()]
                    .iter()
                    .for_each(|o| out.extend_from_slice(o)),
            }
        }
        Ok(())
    }
}
