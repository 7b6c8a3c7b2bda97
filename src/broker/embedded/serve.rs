//! The embedded broker's accept loop: HTTP/1.1 over hyper (plain, or TLS
//! with rustls) with the real broker's server timeouts (spec §1.1) and a cap
//! on connections.
//!
//! Each connection has a watchdog that closes it when
//! - a request's headers have not all arrived `read_header` after its first byte,
//! - a response write has made no progress for `write`,
//! - it has been idle (kept alive, no request) for `idle`.
//!
//! The body's `read` limit is applied where the body is read (`http.rs`).
//!
//! At `max_connections`, a new connection closes the longest-idle one to make
//! room; only when every connection is busy is the newcomer refused. So a
//! flood of idle or slow connections degrades into refusals of the flood, and
//! a health check still gets through.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::Timeouts;

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// The most bytes of request headers read (Go: 1 MiB + 4096).
const MAX_HEADER_BYTES: usize = (1 << 20) + 4096;
/// The most header lines in a request. Go counts only bytes; the parser
/// reserves room for this many per request, so it is bounded — far beyond
/// what any client sends (Go's default would take ~100 extra headers, which
/// used to get 431 here).
const MAX_HEADER_LINES: usize = 4096;

/// Milliseconds since the process's epoch; never 0.
fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64 + 1
}

/// What the watchdog and the eviction need to know about one connection.
#[derive(Default)]
struct ConnState {
    last_activity: AtomicU64,
    /// First byte of a request whose headers are not complete; 0: none.
    pending_since: AtomicU64,
    in_flight: AtomicU32,
    /// A write that could not proceed since then; 0: none.
    write_blocked_since: AtomicU64,
    evicted: AtomicBool,
    close: Notify,
}

impl ConnState {
    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
            && self.pending_since.load(Ordering::Relaxed) == 0
            && self.write_blocked_since.load(Ordering::Relaxed) == 0
    }
}

/// The socket, noting activity for the watchdog.
struct Watched<T> {
    io: T,
    st: Arc<ConnState>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let now = now_ms();
            let st = &self.st;
            st.last_activity.store(now, Ordering::Relaxed);
            if st.in_flight.load(Ordering::Relaxed) == 0 {
                let _ =
                    st.pending_since
                        .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.note_write(r.is_pending());
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.note_write(r.is_pending());
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<T> Watched<T> {
    fn note_write(&self, pending: bool) {
        let st = &self.st;
        if pending {
            let _ = st.write_blocked_since.compare_exchange(
                0,
                now_ms(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        } else {
            st.write_blocked_since.store(0, Ordering::Relaxed);
            st.last_activity.store(now_ms(), Ordering::Relaxed);
        }
    }
}

/// Marks a request in flight for as long as it lives.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn start(st: &Arc<ConnState>) -> Self {
        st.in_flight.fetch_add(1, Ordering::Relaxed);
        st.pending_since.store(0, Ordering::Relaxed);
        InFlight(st.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_activity.store(now_ms(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

enum Stop {
    Shutdown,
    Evicted,
    TimedOut(&'static str),
}

async fn watchdog(st: &ConnState, t: Timeouts, mut shutdown: watch::Receiver<bool>) -> Stop {
    let shortest = t.read_header.min(t.write).min(t.idle);
    let tick = (shortest / 5).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let over = |since: u64, limit: Duration| {
        since != 0 && now_ms().saturating_sub(since) > limit.as_millis() as u64
    };
    loop {
        tokio::select! {
            _ = st.close.notified() => return Stop::Evicted,
            _ = shutdown.changed() => return Stop::Shutdown,
            _ = tokio::time::sleep(tick) => {}
        }
        if *shutdown.borrow() {
            return Stop::Shutdown;
        }
        if over(st.pending_since.load(Ordering::Relaxed), t.read_header) {
            return Stop::TimedOut("request headers not received in time");
        }
        if over(st.write_blocked_since.load(Ordering::Relaxed), t.write) {
            return Stop::TimedOut("response write made no progress");
        }
        if st.idle() && over(st.last_activity.load(Ordering::Relaxed), t.idle) {
            return Stop::TimedOut("idle");
        }
    }
}

/// The connections being served, for the cap.
#[derive(Default)]
struct Registry {
    next: u64,
    conns: HashMap<u64, Arc<ConnState>>,
}

impl Registry {
    /// Makes room for one more connection; false when all are busy.
    fn admit(&mut self, max: usize) -> bool {
        let live = self
            .conns
            .values()
            .filter(|c| !c.evicted.load(Ordering::Relaxed))
            .count();
        live < max || self.evict_idle()
    }

    /// Closes the longest-idle connection; false when none is idle.
    fn evict_idle(&mut self) -> bool {
        let oldest_idle = self
            .conns
            .values()
            .filter(|c| !c.evicted.load(Ordering::Relaxed) && c.idle())
            .min_by_key(|c| c.last_activity.load(Ordering::Relaxed));
        match oldest_idle {
            Some(c) => {
                c.evicted.store(true, Ordering::Relaxed);
                c.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// The connection cap that the file-descriptor limit allows: the soft limit
/// is first raised to the hard one (as Go's runtime does for the real
/// broker), then 64 descriptors are kept for the listener, the database and
/// the rest. Past the cap, idle connections are evicted before `accept` can
/// fail for want of descriptors.
fn fd_cap(max_connections: usize) -> usize {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit write/read the struct we own.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
            if lim.rlim_cur < lim.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: lim.rlim_max.min(1 << 20),
                    rlim_max: lim.rlim_max,
                };
                // SAFETY: as above.
                if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                    lim = raised;
                }
            }
            let usable = (lim.rlim_cur as usize).saturating_sub(64).max(1);
            return max_connections.min(usable);
        }
    }
    max_connections
}

/// What to serve and how.
pub(super) struct Listen {
    pub listener: TcpListener,
    pub router: Router,
    pub timeouts: Timeouts,
    pub max_connections: usize,
    /// TLS (and mtls, per its configuration) instead of plain HTTP.
    pub tls: Option<TlsAcceptor>,
}

/// Serves the router until `stop` fires, then lets open connections finish
/// (at most 5 s).
pub(super) async fn serve(listen: Listen, stop: tokio::sync::oneshot::Receiver<()>) {
    let Listen {
        listener,
        router,
        timeouts,
        max_connections,
        tls,
    } = listen;
    let max_connections = fd_cap(max_connections.max(1));
    let registry = Arc::new(Mutex::new(Registry::default()));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            a = listener.accept() => a,
        };
        // Reap finished connection tasks as we go.
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors (another part of the process used
                // them): free one held by an idle connection, and do not spin.
                tracing::warn!(error = %e, "accept failed");
                super::lock(&registry).evict_idle();
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let st = Arc::new(ConnState::default());
        st.last_activity.store(now_ms(), Ordering::Relaxed);
        // As Go's ReadHeaderTimeout: the first request's headers are due
        // `read_header` after the accept (a connection that never sends a
        // byte is closed then, silently), later ones after their first byte.
        st.pending_since.store(now_ms(), Ordering::Relaxed);
        let id = {
            let mut reg = super::lock(&registry);
            if !reg.admit(max_connections) {
                tracing::warn!(%peer, "connection refused: every connection is busy");
                continue;
            }
            reg.next += 1;
            let id = reg.next;
            reg.conns.insert(id, st.clone());
            id
        };
        let _ = stream.set_nodelay(true);
        let (router, registry, shutdown) = (router.clone(), registry.clone(), shutdown_rx.clone());
        let tls = tls.clone();
        tasks.spawn(async move {
            let conn = Conn {
                peer,
                router,
                st,
                timeouts,
                shutdown,
            };
            match tls {
                None => conn.http(stream).await,
                Some(acceptor) => conn.tls(stream, acceptor).await,
            }
            super::lock(&registry).conns.remove(&id);
        });
    }
    let _ = shutdown_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

/// One accepted connection.
struct Conn {
    peer: SocketAddr,
    router: Router,
    st: Arc<ConnState>,
    timeouts: Timeouts,
    shutdown: watch::Receiver<bool>,
}

impl Conn {
    /// TLS first: the handshake must finish within the header timeout (the
    /// watchdog sees its bytes as the start of a request). Plain HTTP sent
    /// to this port gets the answer Go's server gives, and the connection
    /// closes.
    async fn tls(self, mut stream: TcpStream, acceptor: TlsAcceptor) {
        let mut first = [0u8; 1];
        let peeked = tokio::time::timeout(self.timeouts.read_header, stream.peek(&mut first)).await;
        match peeked {
            Ok(Ok(1..)) => {}
            _ => return,
        }
        // 0x16: a TLS handshake record. Anything else is not TLS; printable
        // ASCII is most likely an HTTP request.
        if first[0] != 0x16 {
            if first[0].is_ascii_alphabetic() {
                let answer = format!(
                    "HTTP/1.0 400 Bad Request\r\n\r\n{}\n",
                    crate::broker::tls::GO_PLAIN_HTTP_TO_TLS
                );
                let _ =
                    tokio::time::timeout(self.timeouts.write, stream.write_all(answer.as_bytes()))
                        .await;
                let _ = stream.shutdown().await;
            }
            return;
        }
        let watched = Watched {
            io: stream,
            st: self.st.clone(),
        };
        let handshake = tokio::select! {
            r = acceptor.accept(watched) => r,
            _ = watchdog(&self.st, self.timeouts, self.shutdown.clone()) => return,
        };
        match handshake {
            Ok(tls) => self.serve_io(tls).await,
            Err(e) => tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed"),
        }
    }

    async fn http(self, stream: TcpStream) {
        let watched = Watched {
            io: stream,
            st: self.st.clone(),
        };
        self.serve_io(watched).await;
    }

    async fn serve_io<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Conn {
            peer,
            router,
            st,
            timeouts,
            shutdown,
        } = self;
        let io = TokioIo::new(io);
        let svc_state = st.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let guard = InFlight::start(&svc_state);
            req.extensions_mut().insert(ConnectInfo(peer));
            let call = router.clone().oneshot(req.map(axum::body::Body::new));
            async move {
                let resp = call.await;
                drop(guard);
                Ok::<_, Infallible>(match resp {
                    Ok(r) => r,
                    Err(never) => match never {},
                })
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new());
        // Go's limit is on bytes (DefaultMaxHeaderBytes, 1 MiB, plus its
        // 4 KiB of slack), not on the number of headers; past it, 431.
        builder.max_header_size(MAX_HEADER_BYTES);
        builder.max_buf_size(MAX_HEADER_BYTES + (64 << 10));
        builder.max_headers(MAX_HEADER_LINES);
        let conn = builder.serve_connection(io, svc);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            why = watchdog(&st, timeouts, shutdown) => match why {
                Stop::Shutdown | Stop::Evicted => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
                Stop::TimedOut(what) => {
                    tracing::debug!(%peer, what, "connection closed");
                }
            },
        }
    }
}
