//! The VICI wire format, sans-IO: segments (a 4-byte big-endian length, then that many
//! bytes), packets (a type byte, a name behind a length byte for the named types, then
//! a message) and messages (a flat run of elements that encodes a tree of sections,
//! key/values and lists). strongSwan's `vici_message.h`, `vici_socket.c` and the
//! plugin's README define it; docs/protocol.md §7 sums up what we rely on.
//!
//! Decoding never panics and never allocates more than the input's length: every
//! length is checked against what is left, sections nest at most [`MAX_DEPTH`] deep,
//! and a segment is at most [`MAX_SEGMENT`] bytes, charon's own limit.

/// charon's `VICI_MESSAGE_SIZE_MAX`: it refuses longer segments, and so do we.
pub const MAX_SEGMENT: usize = 512 * 1024;
/// Sections nested deeper than this are refused (charon's `list-sa` goes 4 deep).
pub const MAX_DEPTH: usize = 32;

/// Packet types (the first byte of a segment).
pub mod packet {
    pub const CMD_REQUEST: u8 = 0;
    pub const CMD_RESPONSE: u8 = 1;
    pub const CMD_UNKNOWN: u8 = 2;
    pub const EVENT_REGISTER: u8 = 3;
    pub const EVENT_UNREGISTER: u8 = 4;
    pub const EVENT_CONFIRM: u8 = 5;
    pub const EVENT_UNKNOWN: u8 = 6;
    pub const EVENT: u8 = 7;
}

/// Message element types.
pub mod element {
    pub const SECTION_START: u8 = 1;
    pub const SECTION_END: u8 = 2;
    pub const KEY_VALUE: u8 = 3;
    pub const LIST_START: u8 = 4;
    pub const LIST_ITEM: u8 = 5;
    pub const LIST_END: u8 = 6;
}

/// What is wrong with bytes, and at which offset of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what} at byte {at}")]
pub struct WireError {
    pub what: &'static str,
    pub at: usize,
}

impl WireError {
    /// The same error, `base` bytes further into an enclosing input.
    #[must_use]
    pub fn shifted(self, base: usize) -> WireError {
        WireError {
            at: self.at.saturating_add(base),
            ..self
        }
    }
}

/// One entry of a section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A key/value: a raw blob (charon sends strings, numbers as decimal strings).
    Bytes(Vec<u8>),
    Section(Message),
    List(Vec<Vec<u8>>),
}

/// A section (the message itself is the implicit root section): its named entries in
/// wire order. Names are kept as bytes, so decoding and encoding give back the input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message(pub Vec<(Vec<u8>, Value)>);

impl Message {
    #[must_use]
    pub fn kv(mut self, key: &str, value: impl AsRef<[u8]>) -> Self {
        self.0
            .push((key.into(), Value::Bytes(value.as_ref().to_vec())));
        self
    }

    #[must_use]
    pub fn section(mut self, key: &str, m: Message) -> Self {
        self.0.push((key.into(), Value::Section(m)));
        self
    }

    #[must_use]
    pub fn list(mut self, key: &str, items: &[&str]) -> Self {
        let items = items.iter().map(|i| i.as_bytes().to_vec()).collect();
        self.0.push((key.into(), Value::List(items)));
        self
    }

    /// The first entry named `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// The value of key `key`, if it is UTF-8 text.
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The sub-sections with their names, in order.
    pub fn sections(&self) -> impl Iterator<Item = (&[u8], &Message)> {
        self.0.iter().filter_map(|(k, v)| match v {
            Value::Section(m) => Some((k.as_slice(), m)),
            _ => None,
        })
    }

    /// Appends the encoded elements to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        // Depth is bounded by construction only for decoded messages; a built one is
        // checked here so that what we send charon would also decode.
        self.encode_at(out, 0)
    }

    fn encode_at(&self, out: &mut Vec<u8>, depth: usize) -> Result<(), EncodeError> {
        if depth > MAX_DEPTH {
            return Err(EncodeError::TooDeep);
        }
        for (name, v) in &self.0 {
            match v {
                Value::Bytes(b) => {
                    out.push(element::KEY_VALUE);
                    put_name(out, name)?;
                    put_value(out, b)?;
                }
                Value::Section(m) => {
                    out.push(element::SECTION_START);
                    put_name(out, name)?;
                    m.encode_at(out, depth + 1)?;
                    out.push(element::SECTION_END);
                }
                Value::List(items) => {
                    out.push(element::LIST_START);
                    put_name(out, name)?;
                    for i in items {
                        out.push(element::LIST_ITEM);
                        put_value(out, i)?;
                    }
                    out.push(element::LIST_END);
                }
            }
        }
        Ok(())
    }

    /// Decodes a whole message (the rest of a packet after its type and name).
    pub fn decode(b: &[u8]) -> Result<Message, WireError> {
        let mut c = Cursor { b, at: 0 };
        // Open sections: (name, entries so far). The root has no name.
        let mut stack: Vec<(Vec<u8>, Message)> = Vec::new();
        let mut cur = Message::default();
        let mut list: Option<(Vec<u8>, Vec<Vec<u8>>)> = None;
        while !c.done() {
            let at = c.at;
            let bad = |what| WireError { what, at };
            let t = c.u8("element type")?;
            match (t, list.as_mut()) {
                (element::LIST_ITEM, Some((_, items))) => {
                    items.push(c.value()?.to_vec());
                    continue;
                }
                (element::LIST_END, Some(_)) => {}
                (_, Some(_)) => return Err(bad("list element (only items inside a list)")),
                _ => {}
            }
            match t {
                element::LIST_END => {
                    let (name, items) = list.take().ok_or(bad("list end (no list)"))?;
                    cur.0.push((name, Value::List(items)));
                }
                element::SECTION_START => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(bad("section (nested too deep)"));
                    }
                    let name = c.name()?.to_vec();
                    stack.push((name, std::mem::take(&mut cur)));
                }
                element::SECTION_END => {
                    let (name, mut parent) = stack.pop().ok_or(bad("section end (no section)"))?;
                    parent
                        .0
                        .push((name, Value::Section(std::mem::take(&mut cur))));
                    cur = parent;
                }
                element::KEY_VALUE => {
                    let name = c.name()?.to_vec();
                    let v = c.value()?.to_vec();
                    cur.0.push((name, Value::Bytes(v)));
                }
                element::LIST_START => list = Some((c.name()?.to_vec(), Vec::new())),
                element::LIST_ITEM => return Err(bad("list item (no list)")),
                _ => return Err(bad("element type")),
            }
        }
        if list.is_some() {
            return Err(WireError {
                what: "list (not closed)",
                at: c.at,
            });
        }
        if !stack.is_empty() {
            return Err(WireError {
                what: "section (not closed)",
                at: c.at,
            });
        }
        Ok(cur)
    }
}

/// Why a message or packet cannot be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("a VICI name is longer than 255 bytes")]
    NameTooLong,
    #[error("a VICI value is longer than 65535 bytes")]
    ValueTooLong,
    #[error("VICI sections nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("a VICI segment is longer than {MAX_SEGMENT} bytes")]
    TooLong,
}

fn put_name(out: &mut Vec<u8>, name: &[u8]) -> Result<(), EncodeError> {
    out.push(u8::try_from(name.len()).map_err(|_| EncodeError::NameTooLong)?);
    out.extend_from_slice(name);
    Ok(())
}

fn put_value(out: &mut Vec<u8>, v: &[u8]) -> Result<(), EncodeError> {
    let n = u16::try_from(v.len()).map_err(|_| EncodeError::ValueTooLong)?;
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(v);
    Ok(())
}

/// A packet: one segment's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    CmdRequest { name: Vec<u8>, msg: Message },
    CmdResponse(Message),
    CmdUnknown,
    EventRegister(Vec<u8>),
    EventUnregister(Vec<u8>),
    EventConfirm,
    EventUnknown,
    Event { name: Vec<u8>, msg: Message },
}

impl Packet {
    /// The whole segment: length header, type, name, message.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = vec![0u8; 4];
        match self {
            Packet::CmdRequest { name, msg } => {
                out.push(packet::CMD_REQUEST);
                put_name(&mut out, name)?;
                msg.encode(&mut out)?;
            }
            Packet::CmdResponse(msg) => {
                out.push(packet::CMD_RESPONSE);
                msg.encode(&mut out)?;
            }
            Packet::CmdUnknown => out.push(packet::CMD_UNKNOWN),
            Packet::EventRegister(name) => {
                out.push(packet::EVENT_REGISTER);
                put_name(&mut out, name)?;
            }
            Packet::EventUnregister(name) => {
                out.push(packet::EVENT_UNREGISTER);
                put_name(&mut out, name)?;
            }
            Packet::EventConfirm => out.push(packet::EVENT_CONFIRM),
            Packet::EventUnknown => out.push(packet::EVENT_UNKNOWN),
            Packet::Event { name, msg } => {
                out.push(packet::EVENT);
                put_name(&mut out, name)?;
                msg.encode(&mut out)?;
            }
        }
        let len = out.len() - 4;
        if len > MAX_SEGMENT {
            return Err(EncodeError::TooLong);
        }
        out[..4].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(out)
    }

    /// Decodes one segment's content (without its length header). Offsets in errors
    /// count from the packet type byte.
    pub fn decode(body: &[u8]) -> Result<Packet, WireError> {
        let mut c = Cursor { b: body, at: 0 };
        let t = c.u8("packet type")?;
        let rest = |c: &Cursor<'_>| Message::decode(&body[c.at..]).map_err(|e| e.shifted(c.at));
        let empty = |c: &Cursor<'_>, p: Packet| {
            if c.done() {
                Ok(p)
            } else {
                Err(WireError {
                    what: "packet (trailing bytes)",
                    at: c.at,
                })
            }
        };
        match t {
            packet::CMD_REQUEST => {
                let name = c.name()?.to_vec();
                Ok(Packet::CmdRequest {
                    name,
                    msg: rest(&c)?,
                })
            }
            packet::CMD_RESPONSE => Ok(Packet::CmdResponse(rest(&c)?)),
            packet::CMD_UNKNOWN => empty(&c, Packet::CmdUnknown),
            packet::EVENT_REGISTER => {
                let name = c.name()?.to_vec();
                empty(&c, Packet::EventRegister(name))
            }
            packet::EVENT_UNREGISTER => {
                let name = c.name()?.to_vec();
                empty(&c, Packet::EventUnregister(name))
            }
            packet::EVENT_CONFIRM => empty(&c, Packet::EventConfirm),
            packet::EVENT_UNKNOWN => empty(&c, Packet::EventUnknown),
            packet::EVENT => {
                let name = c.name()?.to_vec();
                Ok(Packet::Event {
                    name,
                    msg: rest(&c)?,
                })
            }
            _ => Err(WireError {
                what: "packet type",
                at: 0,
            }),
        }
    }
}

/// The first segment of a byte stream: its content and the bytes it took (header
/// included), or `None` while the stream holds less than a whole segment.
pub fn split_segment(stream: &[u8]) -> Result<Option<(&[u8], usize)>, WireError> {
    let Some(h) = stream.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
    if len > MAX_SEGMENT {
        return Err(WireError {
            what: "segment length (over 512 KiB)",
            at: 0,
        });
    }
    Ok(stream.get(4..4 + len).map(|body| (body, 4 + len)))
}

/// A byte cursor whose errors say where.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let s = self
            .b
            .get(self.at..self.at.saturating_add(n))
            .ok_or(WireError { what, at: self.at })?;
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }
    fn name(&mut self) -> Result<&'a [u8], WireError> {
        let n = usize::from(self.u8("name length")?);
        self.take(n, "name")
    }
    fn value(&mut self) -> Result<&'a [u8], WireError> {
        let s = self.take(2, "value length")?;
        let n = usize::from(u16::from_be_bytes([s[0], s[1]]));
        self.take(n, "value")
    }
    fn done(&self) -> bool {
        self.at >= self.b.len()
    }
}
