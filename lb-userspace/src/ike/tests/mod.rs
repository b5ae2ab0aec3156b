//! The responder's unit tests: known answers and wire round trips, a scripted
//! initiator against the responder, captured strongSwan and libreswan exchanges, a
//! seeded mutation run over a corpus of real datagrams, certificates, EAP through a
//! fake RADIUS server, and the tokio driver.

mod cert;
mod corpus;
mod crypto;
mod eap;
mod initiator;
mod io;
mod responder;
mod robust;
mod strongswan;
mod wire;
