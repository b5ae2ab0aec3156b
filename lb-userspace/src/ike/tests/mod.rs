//! The responder's unit tests: known answers and wire round trips, a scripted
//! initiator against the responder, captured strongSwan and libreswan exchanges, a
//! seeded mutation run over a corpus of real datagrams, certificates, EAP through a
//! fake RADIUS server, and the tokio driver.

mod cert;
mod corpus;
mod crypto;
mod eap;
mod eap_lab;
mod gateway;
mod initiator;
mod io;
mod pki;
mod responder;
mod robust;
mod sa_life;
mod signature;
mod strongswan;
mod wire;
