//! Reassembly of IKE fragments (RFC 7383 §2.6) for the client's requests: large
//! IKE_AUTH messages (certificate chains) arrive as SKF payloads, each authenticated on
//! its own. One message is reassembled at a time per SA, keyed by its Message ID and
//! bounded in fragments and bytes, per SA and (through the caller's `room`) in all.

use zeroize::Zeroizing;

use crate::ike::crypto::Secret;
use crate::ike::crypto::sk::OpenFragment;

/// Most fragments of one message. strongSwan cuts at 1280 bytes a datagram, so this
/// covers about 80 KB.
pub(in crate::ike) const MAX_FRAGMENTS: u16 = 64;
/// Most plaintext bytes held for one message.
pub(super) const MAX_REASSEMBLED: usize = 64 * 1024;

/// The fragments of one request received so far.
pub(in crate::ike) struct Reassembly {
    message_id: u32,
    total: u16,
    /// First inner payload type, from fragment 1.
    first: u8,
    /// Digest of fragment 1 as received: the key of the cached response, since a
    /// retransmitted request repeats its fragments byte for byte.
    first_digest: [u8; 32],
    parts: Vec<Option<Secret>>,
    bytes: usize,
}

/// What one more fragment gives.
pub(super) enum Step {
    /// Still waiting for fragments (or this one was a duplicate).
    Pending,
    /// Not usable (out of bounds, a smaller Total Fragments than already seen, no room
    /// left).
    Drop,
    /// All there: the inner payload chain, its first type, and fragment 1's digest.
    Done {
        first: u8,
        plain: Secret,
        first_digest: [u8; 32],
    },
}

impl Reassembly {
    /// Plaintext bytes held.
    pub(super) fn held(&self) -> usize {
        self.bytes
    }

    /// Adds an authenticated fragment of the request `f.header.message_id`. The caller
    /// has checked the Message ID against its window; `raw_digest` is the digest of the
    /// datagram's IKE message; `room` is how many more bytes the responder may hold in
    /// all. A fragment that does not fit drops the whole message: the client's
    /// retransmission starts it again.
    pub(super) fn add(
        slot: &mut Option<Reassembly>,
        f: OpenFragment,
        raw_digest: [u8; 32],
        room: usize,
    ) -> Step {
        let mid = f.header.message_id;
        if f.total == 0 || f.total > MAX_FRAGMENTS || f.number == 0 || f.number > f.total {
            return Step::Drop;
        }
        if let Some(r) = slot.as_ref() {
            // §2.6.1: a larger Total Fragments means the sender re-fragmented (smaller
            // PMTU): start over; a smaller one is stale.
            if r.message_id == mid && f.total < r.total {
                return Step::Drop;
            }
            if r.message_id != mid || f.total > r.total {
                *slot = None;
            }
        }
        let r = slot.get_or_insert_with(|| Reassembly {
            message_id: mid,
            total: f.total,
            first: 0,
            first_digest: [0; 32],
            parts: (0..f.total).map(|_| None).collect(),
            bytes: 0,
        });
        let Some(part) = r.parts.get_mut(usize::from(f.number - 1)) else {
            return Step::Drop;
        };
        if part.is_some() {
            return Step::Pending;
        }
        if r.bytes + f.data.len() > MAX_REASSEMBLED || f.data.len() > room {
            *slot = None;
            return Step::Drop;
        }
        r.bytes += f.data.len();
        *part = Some(f.data);
        if f.number == 1 {
            r.first = f.first;
            r.first_digest = raw_digest;
        }
        if r.parts.iter().any(Option::is_none) {
            return Step::Pending;
        }
        let Some(done) = slot.take() else {
            return Step::Drop;
        };
        let mut plain = Zeroizing::new(Vec::with_capacity(done.bytes));
        for p in done.parts.iter().flatten() {
            plain.extend_from_slice(p);
        }
        Step::Done {
            first: done.first,
            plain,
            first_digest: done.first_digest,
        }
    }
}
