//! The tokio driver of the sans-IO [`Responder`], in quinn's endpoint-driver shape: one
//! task owns the responder; datagrams from every socket, the responder's timer and the
//! stop signal wake it; after each wake-up it drains transmits (sent from the socket of
//! their local address) and events (logged, counted, keys written to the key log).
//!
//! **Sockets.** One UDP socket per VIP and port (500 and 4500), bound to the VIP with
//! `IP_FREEBIND`, so binding works before the address is on an interface (a VRRP backup
//! gets it on takeover) and an IPv6 VIP still doing DAD binds too. A socket bound to the
//! VIP only receives what was sent to the VIP, so the responder is told the local
//! address without `IP_PKTINFO`. IPv6 sockets are `IPV6_V6ONLY`. Port 4500 gets no
//! `UDP_ENCAP`: ikelb carries no ESP, and the responder drops ESP and NAT keepalives.
//!
//! In tests the sockets may sit on other ports: [`Listener::logical`] is the address the
//! responder is told (VIP:500 or VIP:4500, which decides the non-ESP marker), and the
//! socket it maps to is bound wherever the test likes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use lb_common::wire::ike as wire;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::responder::Responder;
use super::types::config::{GatewayIdentity, ResponderConfig};
use super::types::event::Event;
use super::types::payload::Identification;
use crate::radius::Outcome;
use crate::radius::io::RadiusEdge;

/// Largest datagram we read: IKE messages with certificates stay well below it, and a
/// longer one is cut and then fails its length check.
const RECV_BUF: usize = 65_535;

/// One socket the driver serves.
#[derive(Debug)]
pub struct Listener {
    /// What the responder sees as the local address: VIP:500 or VIP:4500.
    pub logical: SocketAddr,
    pub socket: std::net::UdpSocket,
}

/// Binds a non-blocking UDP socket to `addr`, with `IP_FREEBIND` (the address need not
/// be local yet) and, for IPv6, `IPV6_V6ONLY`.
pub fn bind_freebind(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain socket(2); the descriptor is owned at once.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let set = |level: libc::c_int, opt: libc::c_int| -> io::Result<()> {
        let one: libc::c_int = 1;
        // SAFETY: a c_int option value of the right size on our own descriptor.
        let rc = unsafe {
            libc::setsockopt(
                raw,
                level,
                opt,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // IP_FREEBIND applies to IPv6 sockets too (inet_sk flag, checked by inet6_bind).
    set(libc::SOL_IP, libc::IP_FREEBIND)?;
    let rc = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: a valid sockaddr_in and its size.
            unsafe {
                libc::bind(
                    raw,
                    (&sin as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
        }
        SocketAddr::V6(a) => {
            set(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY)?;
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: a valid sockaddr_in6 and its size.
            unsafe {
                libc::bind(
                    raw,
                    (&sin6 as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("bind {addr}: {e}")));
    }
    Ok(std::net::UdpSocket::from(fd))
}

/// Binds VIP:500 and VIP:4500 for every VIP.
pub fn bind_vips(vips: &[IpAddr]) -> io::Result<Vec<Listener>> {
    let mut out = Vec::new();
    for &ip in vips {
        for port in [wire::PORT_IKE, wire::PORT_NATT] {
            let logical = SocketAddr::new(ip, port);
            out.push(Listener {
                logical,
                socket: bind_freebind(logical)?,
            });
        }
    }
    Ok(out)
}

/// What the driver saw, for the final log line and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    pub datagrams_in: u64,
    pub datagrams_out: u64,
    pub send_errors: u64,
    pub established: u64,
    pub redirected: u64,
    pub auth_failed: u64,
    pub redirect_unsupported: u64,
    pub no_target: u64,
    pub sa_deleted: u64,
    pub keys_logged: u64,
    /// The RADIUS client's counters, when EAP is configured.
    pub radius: Option<crate::radius::Stats>,
}

/// Where test-only key log rows go (tshark's `ikev2_decryption_table`, one
/// [`super::types::event::KeyLog::tshark_uat_row`] per line).
pub struct KeyLogFile(File);

impl KeyLogFile {
    /// Creates `path`, mode 0600 (it holds session keys). It must not exist, not even
    /// as a symbolic link (O_CREAT | O_EXCL | O_NOFOLLOW): whoever can write the
    /// directory cannot make us write keys into a file they can read or point us at
    /// another file.
    pub fn create(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(path)?;
        Ok(KeyLogFile(f))
    }
}

struct Datagram {
    local: SocketAddr,
    remote: SocketAddr,
    payload: Vec<u8>,
}

/// What the driver is told while it runs (the daemon's reload).
pub enum Control {
    /// New settings for the responder (its SAs stay) and the new socket set: sockets
    /// whose address is in `keep` stay open, `add` are served from now on, and every
    /// other socket is closed (a VIP that left the configuration).
    Reconfigure {
        config: ResponderConfig,
        keep: Vec<SocketAddr>,
        add: Vec<Listener>,
    },
}

/// The sockets being served and their reader tasks, by logical address.
type Sockets = HashMap<SocketAddr, (Arc<UdpSocket>, JoinHandle<()>)>;

fn serve_socket(sockets: &mut Sockets, l: Listener, tx: &mpsc::Sender<Datagram>) -> io::Result<()> {
    let sock = Arc::new(UdpSocket::from_std(l.socket)?);
    let tx = tx.clone();
    let local = l.logical;
    let reader_sock = sock.clone();
    let reader = tokio::spawn(async move {
        let sock = reader_sock;
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            match sock.recv_from(&mut buf).await {
                Ok((n, remote)) => {
                    let d = Datagram {
                        local,
                        remote,
                        payload: buf[..n].to_vec(),
                    };
                    if tx.send(d).await.is_err() {
                        return;
                    }
                }
                // ICMP errors surface as recv errors on Linux: ignore them.
                Err(e) => debug!(%local, error = %e, "recv"),
            }
        }
    });
    if let Some((_, old)) = sockets.insert(local, (sock, reader)) {
        old.abort();
    }
    Ok(())
}

/// The driver loop: serves `listeners` with `responder` until `control`'s sender is
/// dropped, applying each [`Control`] it sends, and relays the responder's EAP messages
/// through a RADIUS client with `radius` (`[ike.radius]` only changes with a restart).
/// Returns what it saw.
pub async fn drive(
    mut responder: Responder,
    listeners: Vec<Listener>,
    mut keylog: Option<KeyLogFile>,
    radius: Option<crate::radius::ClientConfig>,
    mut control: mpsc::Receiver<Control>,
) -> io::Result<DriverStats> {
    let mut radius = radius.map(RadiusEdge::new).transpose()?;
    // The readers' datagrams; `tx` stays here so new sockets can be added on reload.
    let (tx, mut rx) = mpsc::channel::<Datagram>(1024);
    let mut sockets = Sockets::new();
    for l in listeners {
        serve_socket(&mut sockets, l, &tx)?;
    }
    let mut stats = DriverStats::default();
    loop {
        let timeout = match (
            responder.poll_timeout(),
            radius.as_ref().and_then(|r| r.poll_timeout()),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            c = control.recv() => match c {
                None => break,
                Some(Control::Reconfigure { config, keep, add }) => {
                    responder.reconfigure(config);
                    sockets.retain(|a, (_, reader)| {
                        let stays = keep.contains(a);
                        if !stays {
                            reader.abort();
                        }
                        stays
                    });
                    for l in add {
                        serve_socket(&mut sockets, l, &tx)?;
                    }
                    info!(sockets = sockets.len(), "IKE responder reconfigured");
                }
            },
            d = rx.recv() => {
                let Some(d) = d else { break };
                stats.datagrams_in += 1;
                responder.handle_datagram(Instant::now(), d.local, d.remote, &d.payload);
            }
            (from, packet) = radius_recv(&mut radius) => {
                if let Some(r) = &mut radius {
                    r.handle_datagram(from, &packet);
                }
            }
            () = sleep_until(timeout) => {
                let now = Instant::now();
                responder.handle_timeout(now);
                if let Some(r) = &mut radius {
                    r.handle_timeout(now);
                }
            }
        }
        match &mut radius {
            Some(r) => relay_eap(&mut responder, r).await,
            // EAP without a RADIUS client (the config refuses it, a library user may
            // not): fail the client at once rather than keep it waiting.
            None => {
                while let Some((ticket, _)) = responder.poll_eap() {
                    responder.handle_eap_outcome(Instant::now(), ticket, Outcome::Unreachable);
                }
            }
        }
        while let Some(t) = responder.poll_transmit() {
            let Some((sock, _)) = sockets.get(&t.local) else {
                warn!(local = %t.local, "transmit from an address we have no socket for");
                stats.send_errors += 1;
                continue;
            };
            match sock.try_send_to(&t.payload, t.remote) {
                Ok(_) => stats.datagrams_out += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match sock.send_to(&t.payload, t.remote).await {
                        Ok(_) => stats.datagrams_out += 1,
                        Err(e) => {
                            stats.send_errors += 1;
                            debug!(remote = %t.remote, error = %e, "send");
                        }
                    }
                }
                Err(e) => {
                    stats.send_errors += 1;
                    debug!(remote = %t.remote, error = %e, "send");
                }
            }
        }
        while let Some(e) = responder.poll_event() {
            on_event(e, &mut stats, &mut keylog);
        }
    }
    for (_, reader) in sockets.into_values() {
        reader.abort();
    }
    stats.radius = radius.map(|r| r.stats());
    Ok(stats)
}

/// Moves EAP messages from the responder to the RADIUS client and verdicts back until
/// neither has anything left (a verdict can make no new message, but keep it general).
async fn relay_eap(responder: &mut Responder, radius: &mut RadiusEdge) {
    loop {
        let now = Instant::now();
        let mut moved = false;
        while let Some((ticket, relay)) = responder.poll_eap() {
            radius.start(now, ticket, relay);
            moved = true;
        }
        radius.flush().await;
        while let Some((ticket, outcome)) = radius.poll_outcome() {
            responder.handle_eap_outcome(now, ticket, outcome);
            moved = true;
        }
        if !moved {
            return;
        }
    }
}

async fn radius_recv(radius: &mut Option<RadiusEdge>) -> (SocketAddr, Vec<u8>) {
    match radius {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn on_event(e: Event, stats: &mut DriverStats, keylog: &mut Option<KeyLogFile>) {
    match e {
        Event::Established { client, peer, .. } => {
            stats.established += 1;
            info!(%client, peer = %IdDisplay(&peer), "IKE SA authenticated");
        }
        Event::Redirected {
            client,
            target,
            how,
            ..
        } => {
            stats.redirected += 1;
            info!(%client, target = %GatewayDisplay(&target), how = ?how, "redirected");
        }
        Event::AuthFailed {
            client,
            peer,
            certificate,
        } => {
            stats.auth_failed += 1;
            let peer = peer.as_ref().map(|p| IdDisplay(p).to_string());
            let peer = peer.as_deref().unwrap_or("-");
            match certificate {
                Some(why) => warn!(%client, peer, %why, "authentication failed: certificate"),
                None => warn!(%client, peer, "authentication failed"),
            }
        }
        Event::RedirectUnsupported {
            client,
            redirected_from,
            ..
        } => {
            stats.redirect_unsupported += 1;
            if redirected_from {
                info!(%client, "client was redirected already (REDIRECTED_FROM): refused");
            } else {
                info!(%client, "client does not support redirect: refused");
            }
        }
        Event::NoTarget { client, .. } => {
            stats.no_target += 1;
            warn!(%client, "no target for an authenticated client");
        }
        Event::SaDeleted { client, reason, .. } => {
            stats.sa_deleted += 1;
            debug!(%client, reason = ?reason, "IKE SA deleted");
        }
        Event::Keys(k) => {
            if let Some(f) = keylog {
                let row = k.tshark_uat_row();
                if let Err(e) = writeln!(f.0, "{row}").and_then(|()| f.0.flush()) {
                    warn!(error = %e, "writing the key log");
                } else {
                    stats.keys_logged += 1;
                }
            }
        }
    }
}

/// An IDi for logs: the address, the name, or hex.
struct IdDisplay<'a>(&'a Identification);

impl std::fmt::Display for IdDisplay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.0.data;
        match (self.0.kind, d.len()) {
            (wire::ID_IPV4_ADDR, 4) => {
                IpAddr::from(<[u8; 4]>::try_from(&d[..]).unwrap_or_default()).fmt(f)
            }
            (wire::ID_IPV6_ADDR, 16) => {
                IpAddr::from(<[u8; 16]>::try_from(&d[..]).unwrap_or_default()).fmt(f)
            }
            (wire::ID_FQDN | wire::ID_RFC822_ADDR, _) => f.write_str(&String::from_utf8_lossy(d)),
            (k, _) => {
                write!(f, "type {k} ")?;
                d.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

/// A gateway identity for logs: the address or the name.
struct GatewayDisplay<'a>(&'a GatewayIdentity);

impl std::fmt::Display for GatewayDisplay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.0;
        let id = &t.ident[..usize::from(t.ident_len).min(t.ident.len())];
        match t.ident_type {
            lb_common::wire::redirect::GW_IPV4 if id.len() == 4 => {
                IpAddr::from(<[u8; 4]>::try_from(id).unwrap_or_default()).fmt(f)
            }
            lb_common::wire::redirect::GW_IPV6 if id.len() == 16 => {
                IpAddr::from(<[u8; 16]>::try_from(id).unwrap_or_default()).fmt(f)
            }
            _ => f.write_str(&String::from_utf8_lossy(id)),
        }
    }
}
