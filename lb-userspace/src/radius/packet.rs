//! RADIUS packets for EAP pass-through: Access-Request with EAP-Message and
//! Message-Authenticator (RFC 2865 §3–§5, RFC 3579 §3), the checks of an answer
//! (Response Authenticator, Message-Authenticator) and the MS-MPPE keys of an
//! Access-Accept (RFC 2548 §2.4.2, §2.4.3). Pure functions, no sockets.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Packet codes (RFC 2865 §3).
pub mod code {
    pub const ACCESS_REQUEST: u8 = 1;
    pub const ACCESS_ACCEPT: u8 = 2;
    pub const ACCESS_REJECT: u8 = 3;
    pub const ACCESS_CHALLENGE: u8 = 11;
}

/// Attribute types (RFC 2865 §5, RFC 3579 §3, RFC 3162).
pub mod attr {
    pub const USER_NAME: u8 = 1;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const SERVICE_TYPE: u8 = 6;
    pub const FRAMED_MTU: u8 = 12;
    pub const STATE: u8 = 24;
    pub const VENDOR_SPECIFIC: u8 = 26;
    pub const CALLED_STATION_ID: u8 = 30;
    pub const CALLING_STATION_ID: u8 = 31;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const NAS_PORT_TYPE: u8 = 61;
    pub const EAP_MESSAGE: u8 = 79;
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
    pub const NAS_IPV6_ADDRESS: u8 = 95;
}

/// Microsoft's vendor id and the MPPE key attributes (RFC 2548 §2.4.2, §2.4.3).
const VENDOR_MICROSOFT: u32 = 311;
const MS_MPPE_SEND_KEY: u8 = 16;
const MS_MPPE_RECV_KEY: u8 = 17;

/// Header: code, identifier, length, authenticator.
pub const HEADER_LEN: usize = 20;
/// RFC 2865 §3: a packet is at most 4096 bytes.
pub const MAX_LEN: usize = 4096;
/// An attribute's value is at most 253 bytes (its length field counts the 2-byte header).
const ATTR_MAX: usize = 253;
/// Service-Type Framed-User and NAS-Port-Type Virtual: what IKEv2 gateways send
/// (strongSwan's eap-radius does the same), so server policies written for VPNs match.
const SERVICE_FRAMED: u32 = 2;
const PORT_VIRTUAL: u32 = 5;
/// Framed-MTU: tells the server how large its EAP messages may be. EAP-TLS servers
/// fragment to it; 1400 keeps each IKE_AUTH response under a 1500-byte path even with
/// the SK overhead around it.
const FRAMED_MTU: u32 = 1400;

/// What can be wrong with an answer. Every case means: drop the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RadiusError {
    #[error("malformed packet")]
    Malformed,
    #[error("not an Access-Accept, Access-Reject or Access-Challenge")]
    UnexpectedCode,
    #[error("Response Authenticator mismatch")]
    BadResponseAuthenticator,
    #[error("Message-Authenticator missing")]
    MissingMessageAuthenticator,
    #[error("Message-Authenticator mismatch")]
    BadMessageAuthenticator,
    #[error("request too large for one RADIUS packet")]
    TooLarge,
}

/// What an Access-Request carries for one EAP round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest<'a> {
    /// The EAP identity the client gave (EAP-Response/Identity).
    pub user_name: &'a [u8],
    /// One whole EAP packet from the client, split into EAP-Message attributes here.
    pub eap: &'a [u8],
    /// The State of the previous Access-Challenge, echoed (RFC 2865 §5.24).
    pub state: Option<&'a [u8]>,
    /// NAS-IP-Address / NAS-IPv6-Address (one of them or NAS-Identifier is required).
    pub nas_ip: Option<IpAddr>,
    pub nas_identifier: &'a [u8],
    /// The VIP the client reached, and the client's address (RFC 3580 §3.20, §3.21 use
    /// them for MAC addresses; VPN gateways put the IP addresses there).
    pub called_station: &'a [u8],
    pub calling_station: &'a [u8],
}

fn push_attr(out: &mut Vec<u8>, kind: u8, value: &[u8]) -> Result<(), RadiusError> {
    if value.len() > ATTR_MAX {
        return Err(RadiusError::TooLarge);
    }
    out.push(kind);
    out.push(value.len() as u8 + 2);
    out.extend_from_slice(value);
    Ok(())
}

fn hmac_md5(secret: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC takes keys of any length (RFC 2104 §2): new_from_slice cannot fail.
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    parts.iter().for_each(|p| mac.update(p));
    mac.finalize().into_bytes().into()
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    parts.iter().for_each(|p| h.update(p));
    h.finalize().into()
}

impl AccessRequest<'_> {
    /// The packet with `identifier` and Request Authenticator `authenticator` (16 random
    /// bytes, fresh for every packet, RFC 2865 §3), Message-Authenticator last:
    /// HMAC-MD5 keyed with the shared secret over the whole packet with that attribute
    /// zeroed (RFC 3579 §3.2).
    pub fn encode(
        &self,
        identifier: u8,
        authenticator: &[u8; 16],
        secret: &[u8],
    ) -> Result<Vec<u8>, RadiusError> {
        let mut p = Vec::with_capacity(HEADER_LEN + self.eap.len() + 128);
        p.extend_from_slice(&[code::ACCESS_REQUEST, identifier, 0, 0]);
        p.extend_from_slice(authenticator);
        push_attr(&mut p, attr::USER_NAME, self.user_name)?;
        push_attr(&mut p, attr::SERVICE_TYPE, &SERVICE_FRAMED.to_be_bytes())?;
        push_attr(&mut p, attr::NAS_PORT_TYPE, &PORT_VIRTUAL.to_be_bytes())?;
        push_attr(&mut p, attr::FRAMED_MTU, &FRAMED_MTU.to_be_bytes())?;
        match self.nas_ip {
            Some(IpAddr::V4(a)) => push_attr(&mut p, attr::NAS_IP_ADDRESS, &a.octets())?,
            Some(IpAddr::V6(a)) => push_attr(&mut p, attr::NAS_IPV6_ADDRESS, &a.octets())?,
            None => {}
        }
        if !self.nas_identifier.is_empty() {
            push_attr(&mut p, attr::NAS_IDENTIFIER, self.nas_identifier)?;
        }
        push_attr(&mut p, attr::CALLED_STATION_ID, self.called_station)?;
        push_attr(&mut p, attr::CALLING_STATION_ID, self.calling_station)?;
        if self.eap.is_empty() {
            return Err(RadiusError::Malformed);
        }
        for chunk in self.eap.chunks(ATTR_MAX) {
            push_attr(&mut p, attr::EAP_MESSAGE, chunk)?;
        }
        if let Some(s) = self.state {
            push_attr(&mut p, attr::STATE, s)?;
        }
        let ma = p.len() + 2;
        push_attr(&mut p, attr::MESSAGE_AUTHENTICATOR, &[0; 16])?;
        if p.len() > MAX_LEN {
            return Err(RadiusError::TooLarge);
        }
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        let mac = hmac_md5(secret, &[&p]);
        p[ma..ma + 16].copy_from_slice(&mac);
        Ok(p)
    }
}

/// A checked answer to an Access-Request.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub code: u8,
    pub identifier: u8,
    /// The EAP-Message attributes joined (empty when there were none).
    pub eap: Vec<u8>,
    pub state: Option<Vec<u8>>,
    /// MS-MPPE-Recv-Key and MS-MPPE-Send-Key, decrypted.
    pub mppe_recv: Option<Zeroizing<Vec<u8>>>,
    pub mppe_send: Option<Zeroizing<Vec<u8>>>,
}

impl Answer {
    /// The EAP MSK of an Access-Accept: MS-MPPE-Recv-Key followed by MS-MPPE-Send-Key
    /// (RFC 3748 §7.10's 64-byte MSK as RFC 3579 §4.1 leaves it to RFC 2548's attributes;
    /// strongSwan's eap-radius and hostapd join them in that order). `None` when the
    /// server sent no keys (a method that makes none).
    pub fn msk(&self) -> Option<Zeroizing<Vec<u8>>> {
        let (recv, send) = (self.mppe_recv.as_ref()?, self.mppe_send.as_ref()?);
        let mut m = Zeroizing::new(Vec::with_capacity(recv.len() + send.len()));
        m.extend_from_slice(recv);
        m.extend_from_slice(send);
        Some(m)
    }
}

/// The identifier of a packet, to match it to its request before checking it.
pub fn identifier(packet: &[u8]) -> Option<u8> {
    packet.get(1).copied()
}

/// Checks and reads an answer to the request whose Request Authenticator was
/// `request_auth`: the length, the Response Authenticator (MD5 over the packet with the
/// Request Authenticator in its place, then the secret, RFC 2865 §3), the
/// Message-Authenticator, required because we always send EAP (RFC 3579 §3.2: computed
/// with the Request Authenticator in place), then the attributes.
pub fn parse_answer(
    packet: &[u8],
    request_auth: &[u8; 16],
    secret: &[u8],
) -> Result<Answer, RadiusError> {
    if packet.len() < HEADER_LEN || packet.len() > MAX_LEN {
        return Err(RadiusError::Malformed);
    }
    let len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    // RFC 2865 §3: octets past Length are padding and ignored; fewer is malformed.
    if len < HEADER_LEN || len > packet.len() {
        return Err(RadiusError::Malformed);
    }
    let p = &packet[..len];
    let code = p[0];
    if !matches!(
        code,
        code::ACCESS_ACCEPT | code::ACCESS_REJECT | code::ACCESS_CHALLENGE
    ) {
        return Err(RadiusError::UnexpectedCode);
    }
    let expect = md5(&[&p[..4], request_auth, &p[HEADER_LEN..], secret]);
    if !bool::from(expect.ct_eq(&p[4..HEADER_LEN])) {
        return Err(RadiusError::BadResponseAuthenticator);
    }
    let mut answer = Answer {
        code,
        identifier: p[1],
        eap: Vec::new(),
        state: None,
        mppe_recv: None,
        mppe_send: None,
    };
    let mut ma_at = None;
    let mut at = HEADER_LEN;
    while at < len {
        let (kind, alen) = match p.get(at..at + 2) {
            Some(&[k, l]) if usize::from(l) >= 2 && at + usize::from(l) <= len => (k, l),
            _ => return Err(RadiusError::Malformed),
        };
        let value = &p[at + 2..at + usize::from(alen)];
        match kind {
            attr::EAP_MESSAGE => answer.eap.extend_from_slice(value),
            attr::STATE if answer.state.is_none() => answer.state = Some(value.to_vec()),
            attr::MESSAGE_AUTHENTICATOR => {
                if value.len() != 16 || ma_at.is_some() {
                    return Err(RadiusError::Malformed);
                }
                ma_at = Some(at + 2);
            }
            attr::VENDOR_SPECIFIC => vendor(&mut answer, value, request_auth, secret)?,
            _ => {}
        }
        at += usize::from(alen);
    }
    let ma = ma_at.ok_or(RadiusError::MissingMessageAuthenticator)?;
    let mac = hmac_md5(
        secret,
        &[
            &p[..4],
            request_auth,
            &p[HEADER_LEN..ma],
            &[0; 16],
            &p[ma + 16..],
        ],
    );
    if !bool::from(mac.ct_eq(&p[ma..ma + 16])) {
        return Err(RadiusError::BadMessageAuthenticator);
    }
    Ok(answer)
}

/// A Vendor-Specific attribute (RFC 2865 §5.26): Microsoft's MPPE keys are read, other
/// vendors' attributes skipped.
fn vendor(
    answer: &mut Answer,
    value: &[u8],
    request_auth: &[u8; 16],
    secret: &[u8],
) -> Result<(), RadiusError> {
    let Some((id, mut rest)) = value.split_first_chunk::<4>() else {
        return Err(RadiusError::Malformed);
    };
    if u32::from_be_bytes(*id) != VENDOR_MICROSOFT {
        return Ok(());
    }
    while let [kind, len, ..] = *rest {
        let len = usize::from(len);
        if len < 2 || len > rest.len() {
            return Err(RadiusError::Malformed);
        }
        let v = &rest[2..len];
        let slot = match kind {
            MS_MPPE_SEND_KEY => &mut answer.mppe_send,
            MS_MPPE_RECV_KEY => &mut answer.mppe_recv,
            _ => {
                rest = &rest[len..];
                continue;
            }
        };
        *slot = Some(decrypt_mppe_key(v, request_auth, secret)?);
        rest = &rest[len..];
    }
    if !rest.is_empty() {
        return Err(RadiusError::Malformed);
    }
    Ok(())
}

/// RFC 2548 §2.4.2: `value` is a 2-byte Salt (high bit set) and the encrypted String in
/// 16-byte blocks; `b(1) = MD5(S + R + A)`, `c(i) = p(i) xor b(i)`, `b(i) = MD5(S +
/// c(i-1))`. The plaintext is a length byte, the key, and zero padding.
pub fn decrypt_mppe_key(
    value: &[u8],
    request_auth: &[u8; 16],
    secret: &[u8],
) -> Result<Zeroizing<Vec<u8>>, RadiusError> {
    let (salt, cipher) = value.split_at_checked(2).ok_or(RadiusError::Malformed)?;
    if salt[0] & 0x80 == 0 || cipher.is_empty() || cipher.len() % 16 != 0 {
        return Err(RadiusError::Malformed);
    }
    let mut plain = Zeroizing::new(Vec::with_capacity(cipher.len()));
    let mut prev: &[u8] = &[];
    for (i, block) in cipher.chunks(16).enumerate() {
        let b = if i == 0 {
            md5(&[secret, request_auth, salt])
        } else {
            md5(&[secret, prev])
        };
        plain.extend(block.iter().zip(b).map(|(c, k)| c ^ k));
        prev = block;
    }
    let n = usize::from(plain[0]);
    if n + 1 > plain.len() {
        return Err(RadiusError::Malformed);
    }
    Ok(Zeroizing::new(plain[1..=n].to_vec()))
}

/// The inverse of [`decrypt_mppe_key`], as a RADIUS server does it: for the fake
/// servers of the tests.
#[cfg(test)]
pub fn encrypt_mppe_key(
    key: &[u8],
    salt: [u8; 2],
    request_auth: &[u8; 16],
    secret: &[u8],
) -> Vec<u8> {
    let mut plain = vec![key.len() as u8];
    plain.extend_from_slice(key);
    plain.resize(plain.len().div_ceil(16) * 16, 0);
    let mut out = salt.to_vec();
    for (i, block) in plain.chunks(16).enumerate() {
        let b = if i == 0 {
            md5(&[secret, request_auth, &salt])
        } else {
            md5(&[secret, &out[out.len() - 16..]])
        };
        let c: Vec<u8> = block.iter().zip(b).map(|(p, k)| p ^ k).collect();
        out.extend_from_slice(&c);
    }
    out
}

/// Builds an answer as a RADIUS server would (Message-Authenticator, then the Response
/// Authenticator over it): for the fake servers of the tests.
#[cfg(test)]
pub fn encode_answer(
    code: u8,
    identifier: u8,
    request_auth: &[u8; 16],
    secret: &[u8],
    attrs: &[(u8, Vec<u8>)],
) -> Vec<u8> {
    let mut p = vec![code, identifier, 0, 0];
    p.extend_from_slice(request_auth);
    for (k, v) in attrs {
        for chunk in v.chunks(ATTR_MAX) {
            push_attr(&mut p, *k, chunk).unwrap();
        }
    }
    let ma = p.len() + 2;
    push_attr(&mut p, attr::MESSAGE_AUTHENTICATOR, &[0; 16]).unwrap();
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    let mac = hmac_md5(secret, &[&p]);
    p[ma..ma + 16].copy_from_slice(&mac);
    let ra = md5(&[&p[..4], request_auth, &p[HEADER_LEN..], secret]);
    p[4..HEADER_LEN].copy_from_slice(&ra);
    p
}

/// A Vendor-Specific attribute value with Microsoft's MPPE key `kind` (16 send, 17
/// receive): for the fake servers of the tests.
#[cfg(test)]
pub fn ms_mppe_attr(kind: u8, encrypted: &[u8]) -> Vec<u8> {
    let mut v = VENDOR_MICROSOFT.to_be_bytes().to_vec();
    v.push(kind);
    v.push(encrypted.len() as u8 + 2);
    v.extend_from_slice(encrypted);
    v
}
