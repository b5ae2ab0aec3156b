//! The local request listeners, the control socket ([`crate::node`]) and Prometheus
//! `/metrics` ([`crate::metrics`]), under one set of [`Limits`]: a local client, or a
//! remote one where `/metrics` is exposed, cannot hold the daemon's file descriptors or
//! memory. At most `max_connections` connections are served at a time (the next ones
//! wait in the kernel's backlog, not in ours); each sends one request line of at most
//! `max_line` bytes within `read_timeout`, or is closed unanswered; an accept error
//! (EMFILE, ENFILE, ENOBUFS) pauses the loop, from [`MIN_BACKOFF`] doubling up to
//! [`MAX_BACKOFF`], instead of letting it spin on the error.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tracing::warn;

/// The first pause after an accept error.
pub const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// The longest pause after repeated accept errors.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// What one listener allows (`[status]` `max-connections`, `read-timeout-ms`,
/// `max-request-line`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at a time.
    pub max_connections: usize,
    /// How long a client has to send its request line.
    pub read_timeout: Duration,
    /// Longest request line, in bytes, its line end included.
    pub max_line: usize,
}

impl Default for Limits {
    /// 16 connections (a scraper and a few `ikelb status` at once), 5 s, 1 KiB (an HTTP
    /// request line or a control command is a few dozen bytes).
    fn default() -> Self {
        Limits {
            max_connections: 16,
            read_timeout: Duration::from_secs(5),
            max_line: 1024,
        }
    }
}

/// A listener: tokio's TCP and unix stream listeners.
pub trait Accept: Send + Sync + 'static {
    type Conn: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept_conn(&self) -> impl Future<Output = io::Result<Self::Conn>> + Send;
    /// The peer's user id where the kernel tells it (`SO_PEERCRED` on a unix socket),
    /// so the control socket can tell root from a reader of status.
    fn peer_uid(_conn: &Self::Conn) -> Option<u32> {
        None
    }
}

impl Accept for TcpListener {
    type Conn = TcpStream;
    async fn accept_conn(&self) -> io::Result<TcpStream> {
        self.accept().await.map(|(s, _)| s)
    }
}

impl Accept for UnixListener {
    type Conn = UnixStream;
    async fn accept_conn(&self) -> io::Result<UnixStream> {
        self.accept().await.map(|(s, _)| s)
    }
    fn peer_uid(conn: &UnixStream) -> Option<u32> {
        conn.peer_cred().ok().map(|c| c.uid())
    }
}

/// Reads one request line within the limits: the line without its line end, or `None`
/// when it is too long or late. End of stream ends the line.
async fn read_line<R: AsyncRead + Unpin>(conn: R, limits: &Limits) -> Option<String> {
    let cap = u64::try_from(limits.max_line).unwrap_or(u64::MAX);
    // One byte more than allowed tells a full-length line from a longer one.
    let mut r = BufReader::new(conn.take(cap.saturating_add(1)));
    let mut line = String::new();
    tokio::time::timeout(limits.read_timeout, r.read_line(&mut line))
        .await
        .ok()?
        .ok()?;
    if line.len() > limits.max_line {
        return None;
    }
    Some(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Serves `listener` until the task is dropped: each connection's request line goes to
/// `answer` with the peer's user id ([`Accept::peer_uid`]); the bytes it resolves to
/// are written back before the connection is closed.
pub async fn serve<L: Accept, F>(
    listener: L,
    limits: Limits,
    answer: impl Fn(Option<u32>, String) -> F + Send + Sync + 'static,
) where
    F: Future<Output = Vec<u8>> + Send + 'static,
{
    let answer = Arc::new(answer);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut backoff = MIN_BACKOFF;
    loop {
        // The semaphore is never closed, so this only waits.
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut conn = match listener.accept_conn().await {
            Ok(c) => {
                backoff = MIN_BACKOFF;
                c
            }
            Err(e) => {
                warn!(error = %e, pause_ms = backoff.as_millis(), "accept failed");
                drop(permit);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let answer = answer.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let uid = L::peer_uid(&conn);
            let Some(line) = read_line(&mut conn, &limits).await else {
                return;
            };
            let out = answer(uid, line).await;
            let _ = conn.write_all(&out).await;
            let _ = conn.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn echo(_uid: Option<u32>, line: String) -> Vec<u8> {
        format!("got {line}\n").into_bytes()
    }

    async fn ask(addr: std::net::SocketAddr, req: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s.write_all(req).await;
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        out
    }

    #[tokio::test]
    async fn line_limit_timeout_and_connection_cap() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let limits = Limits {
            max_connections: 1,
            read_timeout: Duration::from_millis(300),
            max_line: 16,
        };
        let server = tokio::spawn(serve(l, limits, echo));
        assert_eq!(ask(addr, b"status\n").await, "got status\n");
        assert_eq!(
            ask(addr, b"exactly 16 byte\n").await,
            "got exactly 16 byte\n"
        );
        // Longer than the limit: closed unanswered.
        assert_eq!(ask(addr, b"seventeen bytes!\n").await, "");
        assert_eq!(ask(addr, &[b'x'; 4096]).await, "");
        // A client that sends nothing holds the one slot until its time is up; the
        // next waits for it.
        let idle = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = Instant::now();
        assert_eq!(ask(addr, b"next\n").await, "got next\n");
        let waited = t0.elapsed();
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
        let mut idle = idle;
        let mut rest = Vec::new();
        idle.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "timed out unanswered");
        server.abort();
    }

    /// A listener whose every accept fails, counting the tries.
    struct Failing(Arc<AtomicUsize>);

    impl Accept for Failing {
        type Conn = TcpStream;
        fn accept_conn(&self) -> impl Future<Output = io::Result<TcpStream>> + Send {
            self.0.fetch_add(1, Ordering::Relaxed);
            async { Err(io::Error::from_raw_os_error(libc::EMFILE)) }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn accept_errors_back_off() {
        let tries = Arc::new(AtomicUsize::new(0));
        let server = tokio::spawn(serve(Failing(tries.clone()), Limits::default(), echo));
        tokio::time::sleep(Duration::from_millis(400)).await;
        server.abort();
        // Tries at 0, 10, 30, 70, 150 and 310 ms: about 6 in 400 ms (fewer on a busy
        // machine), not a spin.
        let n = tries.load(Ordering::Relaxed);
        assert!((2..=8).contains(&n), "{n} accept tries");
    }
}
