//! One SA's EAP conversation (RFC 7296 §2.16) as the responder keeps it between
//! messages, and what it is charged against the state bound. The steps are
//! [`super::eap`]'s.

use super::request::Request;
use crate::ike::crypto::Secret;
use crate::ike::types::payload::{Attribute, Identification, Proposal, TrafficSelector, Transform};
use crate::radius::Continuation;

/// What an EAP state holds besides its variable parts: the state itself, boxed, and
/// the allocations' own overhead.
const EAP_OVERHEAD: usize = 512;

/// The CHILD SA part of the first IKE_AUTH request, kept for the last response.
#[derive(Default)]
pub(super) struct ChildRequest {
    pub(super) sa: Option<Vec<Proposal>>,
    pub(super) tsi: Option<Vec<TrafficSelector>>,
    pub(super) tsr: Option<Vec<TrafficSelector>>,
    pub(super) transport: bool,
}

impl ChildRequest {
    /// The bytes these copies hold, near enough for the state bound.
    fn held(&self) -> usize {
        use std::mem::size_of;
        let proposals = self.sa.iter().flatten().map(|p| {
            let attrs: usize = p
                .transforms
                .iter()
                .flat_map(|t| &t.attributes)
                .map(|a| size_of::<Attribute>() + attr_len(a))
                .sum();
            size_of::<Proposal>()
                + p.spi.len()
                + p.transforms.len() * size_of::<Transform>()
                + attrs
        });
        let ts = [&self.tsi, &self.tsr]
            .into_iter()
            .flatten()
            .map(|t| t.len() * size_of::<TrafficSelector>());
        proposals.sum::<usize>() + ts.sum::<usize>()
    }
}

fn attr_len(a: &Attribute) -> usize {
    match a {
        Attribute::Tv { .. } => 0,
        Attribute::Tlv { value, .. } => value.len(),
    }
}

/// Where the conversation stands.
pub(super) enum Stage {
    /// Our last response carried an EAP-Request: the client's EAP-Response comes next.
    AwaitClient,
    /// The client's EAP-Response is with RADIUS; the IKE_AUTH response waits for it.
    AwaitBackend(Request),
    /// EAP-Success sent: the client's AUTH comes next, keyed with the MSK.
    Succeeded { msk: Option<Secret> },
}

/// One SA's EAP conversation.
pub(in crate::ike) struct EapState {
    /// The IDi of the first IKE_AUTH request and the IDr we answered it with: the AUTH
    /// exchange after EAP signs those (§2.16).
    pub(super) idi: Identification,
    pub(super) idr: Identification,
    pub(super) child: ChildRequest,
    /// The EAP identity the client gave, the RADIUS User-Name.
    pub(super) user_name: Option<Vec<u8>>,
    pub(super) cont: Option<Continuation>,
    /// The Identifier of the last EAP packet we sent (for a made-up Success/Failure).
    pub(super) last_id: u8,
    pub(super) stage: Stage,
    /// Bytes charged against the state bound for this state now.
    pub(super) charged: usize,
}

impl EapState {
    /// The bytes this state holds, as charged against the state bound.
    pub(super) fn held(&self) -> usize {
        EAP_OVERHEAD
            + self.idi.data.len()
            + self.idr.data.len()
            + self.child.held()
            + self.user_name.as_ref().map_or(0, Vec::len)
            + self
                .cont
                .as_ref()
                .and_then(|c| c.state.as_ref())
                .map_or(0, Vec::len)
            + match &self.stage {
                Stage::Succeeded { msk: Some(m) } => m.len(),
                _ => 0,
            }
    }
}
