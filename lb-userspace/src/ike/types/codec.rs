//! What the message and payload codecs share: the bounded reader over untrusted bytes,
//! the error both return, and the length fields both patch. [`super::message`] walks
//! the payload chain, [`super::payload`] reads and writes the bodies; neither needs the
//! other for this.

use std::net::{Ipv4Addr, Ipv6Addr};

use lb_common::wire::ike as wire;

/// Most payloads read from one chain (outer or decrypted); more is malformed. IKE_AUTH
/// with a certificate chain and a dozen notifies stays far below it.
pub const MAX_PAYLOADS: usize = 64;

/// Why a message could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("message truncated")]
    Truncated,
    #[error("length field disagrees with the data")]
    Length,
    #[error("unsupported major version in {0:#04x}")]
    MajorVersion(u8),
    #[error("unsupported critical payload type {0}")]
    UnsupportedCritical(u8),
    #[error("more than {MAX_PAYLOADS} payloads")]
    TooManyPayloads,
    #[error("invalid syntax: {0}")]
    Syntax(&'static str),
    #[error("field too long to encode")]
    TooLong,
}

impl MessageError {
    /// The error notify (type, data) that answers a request failing this way (RFC 7296
    /// §2.5, §3.10.1). The responder sends it only where an answer is due: inside a
    /// verified SK payload, or INVALID_MAJOR_VERSION to an IKE_SA_INIT; other malformed
    /// unauthenticated input is dropped and counted.
    pub fn notify(&self) -> (u16, Vec<u8>) {
        match self {
            MessageError::MajorVersion(_) => (wire::NOTIFY_INVALID_MAJOR_VERSION, Vec::new()),
            MessageError::UnsupportedCritical(t) => {
                (wire::NOTIFY_UNSUPPORTED_CRITICAL_PAYLOAD, vec![*t])
            }
            _ => (wire::NOTIFY_INVALID_SYNTAX, Vec::new()),
        }
    }
}

/// Bounded big-endian reader over untrusted bytes; every getter fails instead of panicking.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], MessageError> {
        if n > self.buf.len() {
            return Err(MessageError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, MessageError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, MessageError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, MessageError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], MessageError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(crate) fn ipv4(&mut self) -> Result<Ipv4Addr, MessageError> {
        Ok(Ipv4Addr::from(self.array::<4>()?))
    }

    pub(crate) fn ipv6(&mut self) -> Result<Ipv6Addr, MessageError> {
        Ok(Ipv6Addr::from(self.array::<16>()?))
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fails if bytes are left over: a length field claimed less than was there.
    pub(crate) fn end(&self) -> Result<(), MessageError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(MessageError::Length)
        }
    }
}

pub(crate) fn len_u8(n: usize) -> Result<u8, MessageError> {
    u8::try_from(n).map_err(|_| MessageError::TooLong)
}

/// Writes the 2-byte length at `start + 2` of a structure that began at `start`.
pub(crate) fn patch_len(out: &mut [u8], start: usize) -> Result<(), MessageError> {
    let len = u16::try_from(out.len() - start).map_err(|_| MessageError::TooLong)?;
    out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}
