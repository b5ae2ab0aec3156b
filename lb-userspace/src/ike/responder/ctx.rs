//! The context every handler of an authenticated request shares ([`Ctx`]): the
//! responder's [`Core`], the SA, the time and the request. Answering and closing go
//! through it, so no handler passes the request's addresses, header and digest along.

use std::time::Instant;

use super::core::Core;
use super::request::Request;
use super::sa::{Cached, IkeSa};
use crate::ike::types::event::DeleteReason;
use crate::ike::types::message::{Header, Payload};
use crate::ike::types::payload::Notify;

/// One authenticated request of the client being handled.
pub(super) struct Ctx<'a> {
    pub(super) core: &'a mut Core,
    pub(super) sa: &'a mut IkeSa,
    pub(super) now: Instant,
    pub(super) req: Request,
}

impl Ctx<'_> {
    /// Seals and sends the response to the client's request, and caches it.
    pub(super) fn respond(&mut self, payloads: Vec<Payload>) {
        let (sa, req) = (&mut *self.sa, &self.req);
        let header = Header {
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
            exchange: req.header.exchange,
            initiator: false,
            response: true,
            message_id: req.header.message_id,
        };
        let Ok(ike) = sa.seal.seal(&header, &payloads, &mut self.core.rng) else {
            return;
        };
        self.core.send(req.local, req.remote, &ike);
        sa.cached = Some(Cached {
            message_id: req.header.message_id,
            request: req.digest,
            ike,
        });
    }

    /// Ends the SA ([`Core::close`]).
    pub(super) fn close(&mut self, reason: DeleteReason) {
        self.core.close(self.now, self.sa, reason);
    }
}

/// A status or error notify without SPI, for our answers.
pub(super) fn status(kind: u16, data: Vec<u8>) -> Payload {
    Payload::Notify(Notify {
        protocol: 0,
        spi: Vec::new(),
        kind,
        data,
    })
}
