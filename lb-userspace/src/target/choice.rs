//! The fast path's target choice, for the userspace IKE responder: the same slot
//! tables, the same flow hash. [`TargetChooser`] is what the responder asks;
//! [`choose`] is how it asks (never a target of the wrong family); [`StaticChooser`]
//! answers without a fast path (`--xdp-mode off`), and the dataplane's `SlotChooser`
//! answers from the live maps with [`pick`].

use std::net::{IpAddr, SocketAddr};

use lb_common::maps::{SLOTS, SlotTable, Target as MapTarget};
use lb_common::wire::request::flow_hash;
use rand_core::{OsRng, RngCore};

use super::{Target, tables};

/// A gateway identity for N(REDIRECT) (RFC 5685 §9.2), as the fast path's target table
/// holds it: IPv4, IPv6 or FQDN.
pub type GatewayIdentity = MapTarget;

/// Picks the gateway a client is redirected to. The fast path's target choice (the slot
/// table of the cluster) plugs in here; a closure works too. `None`: no target now.
/// The answer must serve the client's address family (an FQDN serves both); one that
/// does not is treated as `None` ([`choose`]).
pub trait TargetChooser: Send {
    fn choose(&mut self, client: IpAddr) -> Option<GatewayIdentity>;

    /// The choice for one IKE SA: `client` is the request's source address and port,
    /// `spi_i` the initiator's SPI, the inputs of the fast path's flow hash
    /// (`lb_common::wire::request::flow_hash`), so a chooser over the fast path's slot
    /// table answers exactly what the XDP program would. Defaults to
    /// [`TargetChooser::choose`] on the address.
    fn choose_flow(&mut self, client: SocketAddr, spi_i: &[u8; 8]) -> Option<GatewayIdentity> {
        let _ = spi_i;
        self.choose(client.ip())
    }

    /// Called when a REDIRECT to `target`, the latest choice, was sent: count it.
    fn redirected(&mut self, target: &GatewayIdentity) {
        let _ = target;
    }
}

impl<F: FnMut(IpAddr) -> Option<GatewayIdentity> + Send> TargetChooser for F {
    fn choose(&mut self, client: IpAddr) -> Option<GatewayIdentity> {
        self(client)
    }
}

/// The target for `client` (source address and port) and its SPIi, if `chooser` has
/// one of the client's family.
pub fn choose(
    chooser: &mut dyn TargetChooser,
    client: SocketAddr,
    spi_i: &[u8; 8],
) -> Option<GatewayIdentity> {
    let (_, v6) = client_key(client.ip());
    chooser.choose_flow(client, spi_i).filter(|t| t.serves(v6))
}

/// The flow-hash key of a client as the XDP program reads it: an IPv4 address in the
/// first four bytes (the rest zero), an IPv6 address as it is. An IPv4-mapped IPv6
/// address (a dual-stack socket) counts as IPv4. Returns the bytes and whether the
/// client is IPv6.
pub fn client_key(client: IpAddr) -> ([u8; 16], bool) {
    let mut k = [0u8; 16];
    match client {
        IpAddr::V4(a) => {
            k[..4].copy_from_slice(&a.octets());
            (k, false)
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => {
                k[..4].copy_from_slice(&v4.octets());
                (k, false)
            }
            None => (a.octets(), true),
        },
    }
}

/// A fresh flow-hash key from the OS's random source (`Config.hash_key`).
pub fn random_key() -> [u64; 2] {
    [OsRng.next_u64(), OsRng.next_u64()]
}

/// The target index the fast path would pick from `table` for this request under the
/// flow-hash key `key`: slot `flow_hash(key, client address, client port, SPIi) mod
/// SLOTS`. `None` for an empty table.
pub fn pick(table: &SlotTable, key: &[u64; 2], client: SocketAddr, spi_i: &[u8; 8]) -> Option<u16> {
    if table.len == 0 {
        return None;
    }
    let (addr, _) = client_key(client.ip());
    let slot = flow_hash(key, &addr, client.port(), spi_i) as usize & (SLOTS - 1);
    Some(table.slots[slot])
}

/// The fast path's choice without a fast path (`--xdp-mode off`): the same weighted
/// slot tables built from the configured targets, the same flow hash; redirects are
/// counted here, there being no maps.
pub struct StaticChooser {
    v4: SlotTable,
    v6: SlotTable,
    /// The flow-hash key, random per start as the XDP program's.
    key: [u64; 2],
    targets: Vec<MapTarget>,
    last: Option<usize>,
    counts: Vec<u64>,
}

impl StaticChooser {
    /// Tables over `targets` (identity and weight), each at its position, as the
    /// dataplane builds them for the XDP program.
    pub fn new(targets: &[Target]) -> Self {
        let indexed = || (0u16..).zip(targets);
        StaticChooser {
            v4: tables::family(indexed(), false),
            v6: tables::family(indexed(), true),
            key: random_key(),
            counts: vec![0; targets.len()],
            targets: targets.iter().map(|t| t.identity.to_target()).collect(),
            last: None,
        }
    }

    /// Redirects sent per target, in configuration order.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }
}

impl TargetChooser for StaticChooser {
    fn choose(&mut self, client: IpAddr) -> Option<GatewayIdentity> {
        self.choose_flow(SocketAddr::new(client, 0), &[0; 8])
    }

    fn choose_flow(&mut self, client: SocketAddr, spi_i: &[u8; 8]) -> Option<GatewayIdentity> {
        let (_, v6) = client_key(client.ip());
        let table = if v6 { &self.v6 } else { &self.v4 };
        let idx = usize::from(pick(table, &self.key, client, spi_i)?);
        self.last = Some(idx);
        self.targets.get(idx).copied()
    }

    fn redirected(&mut self, target: &GatewayIdentity) {
        if let Some(i) = self.last
            && self.targets.get(i) == Some(target)
            && let Some(c) = self.counts.get_mut(i)
        {
            *c += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Identity, Owner};

    #[test]
    fn client_keys_match_the_xdp_layout() {
        let (k, v6) = client_key("192.0.2.7".parse().unwrap());
        assert!(!v6);
        assert_eq!(&k[..4], &[192, 0, 2, 7]);
        assert_eq!(&k[4..], &[0; 12]);
        let (k2, v6) = client_key("::ffff:192.0.2.7".parse().unwrap());
        assert!(!v6);
        assert_eq!(k, k2);
        let (k, v6) = client_key("2001:db8::1".parse().unwrap());
        assert!(v6);
        assert_eq!(k[0..2], [0x20, 0x01]);
    }

    #[test]
    fn pick_is_the_fast_paths_slot() {
        let t = tables::build(&[(3, 1), (9, 1)]);
        let c: SocketAddr = "192.0.2.7:500".parse().unwrap();
        let spi = [1, 2, 3, 4, 5, 6, 7, 8];
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&[192, 0, 2, 7]);
        let k = [5, 6];
        let slot = flow_hash(&k, &addr, 500, &spi) as usize & (SLOTS - 1);
        assert_eq!(pick(&t, &k, c, &spi), Some(t.slots[slot]));
        assert_eq!(pick(&SlotTable::default(), &k, c, &spi), None);
        // Both targets get clients: the choice depends on port and SPI.
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..64u8 {
            seen.insert(pick(&t, &k, c, &[i; 8]).unwrap());
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![3, 9]);
        // And on the key: another key sends some of these requests elsewhere.
        let moved = (0..64u8)
            .filter(|i| pick(&t, &k, c, &[*i; 8]) != pick(&t, &[7, 8], c, &[*i; 8]))
            .count();
        assert!(moved > 8, "{moved}");
        assert_ne!(random_key(), random_key());
    }

    #[test]
    fn choose_never_answers_another_family() {
        let v6 = Identity::parse("2001:db8::12").unwrap().to_target();
        let mut only_v6 = move |_: IpAddr| Some(v6);
        let c4: SocketAddr = "192.0.2.7:500".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:192.0.2.7]:500".parse().unwrap();
        let c6: SocketAddr = "[2001:db8:1::7]:500".parse().unwrap();
        assert_eq!(choose(&mut only_v6, c4, &[1; 8]), None);
        assert_eq!(choose(&mut only_v6, mapped, &[1; 8]), None);
        assert_eq!(choose(&mut only_v6, c6, &[1; 8]), Some(v6));
    }

    #[test]
    fn static_chooser_serves_each_family_and_counts() {
        let t = |n: &str, id: Identity, weight| Target {
            owner: Owner::Static(n.into()),
            identity: id,
            weight,
        };
        let targets = [
            t("a", Identity::Ip("198.51.100.11".parse().unwrap()), 1),
            t("b", Identity::Ip("2001:db8::12".parse().unwrap()), 1),
            t("c", Identity::Fqdn("gw.example.net".into()), 3),
        ];
        let mut ch = StaticChooser::new(&targets);
        let v4: SocketAddr = "192.0.2.7:500".parse().unwrap();
        let v6: SocketAddr = "[2001:db8:1::7]:500".parse().unwrap();
        for i in 0..200u8 {
            let g = ch.choose_flow(v4, &[i; 8]).unwrap();
            assert!(g.serves(false) && g.ident_type != lb_common::wire::redirect::GW_IPV6);
            ch.redirected(&g);
            let g = ch.choose_flow(v6, &[i; 8]).unwrap();
            assert!(g.serves(true) && g.ident_type != lb_common::wire::redirect::GW_IPV4);
        }
        // Same request, same answer (retransmissions).
        assert_eq!(ch.choose_flow(v4, &[7; 8]), ch.choose_flow(v4, &[7; 8]));
        // The v4 table is the fast path's: slot of (client, port, SPIi) over a and c.
        let table = tables::build(&[(0, 1), (2, 3)]);
        let want = pick(&table, &ch.key, v4, &[9; 8]).unwrap();
        assert_eq!(
            ch.choose_flow(v4, &[9; 8]),
            Some(targets[usize::from(want)].identity.to_target())
        );
        // 200 counted redirects, to IPv4 or FQDN targets only, FQDN about 3 in 4.
        let c = ch.counts();
        assert_eq!(c.iter().sum::<u64>(), 200);
        assert_eq!(c[1], 0);
        assert!(c[2] > c[0], "{c:?}");
    }
}
