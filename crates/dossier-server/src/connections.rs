//! How the server holds its connections, so that idle or half-sent ones cannot exhaust it
//! (slowloris): a request head must arrive within the header-read timeout of the connection
//! opening or of its first byte, a request body within the idle timeout of its head, a
//! kept-alive connection with no request is closed after the idle timeout, and past the
//! connection cap the connection that has waited longest without
//! a request in flight is closed to make room for the new one. A connection serving a request
//! is never closed for the cap or for being quiet (a long poll, an export being written).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// Limits on the connections the server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a request head may take to arrive, from the connection opening or from the
    /// first byte of a later request on a kept-alive connection.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request, and a request's body
    /// may take to arrive.
    pub idle_timeout: Duration,
    /// The most connections held at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

/// How long, once told to stop, the server waits for requests under way.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What a connection is doing, as its watchdog and the cap see it. Times are milliseconds
/// since the connection opened, plus one, so that 0 means "none".
struct Activity {
    opened: Instant,
    last_byte: AtomicU64,
    head_since: AtomicU64,
    /// When the request in flight started, while its body is still to be read.
    body_since: AtomicU64,
    in_flight: AtomicUsize,
    /// Told when the deadline may have moved earlier or gone: a head begun, a request
    /// started or done. A later byte only moves it later, which the watchdog sees on waking.
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        // A new connection is there to send a request: its head is under way from the start.
        Self {
            opened: Instant::now(),
            last_byte: AtomicU64::new(1),
            head_since: AtomicU64::new(1),
            body_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms.saturating_sub(1))
    }

    fn read(&self) {
        let now = self.now();
        self.last_byte.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) == 0 {
            // The first byte of the next request head.
            if self
                .head_since
                .compare_exchange(0, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                self.changed.notify_one();
            }
        }
    }

    fn wrote(&self) {
        self.last_byte.store(self.now(), Ordering::Relaxed);
    }

    /// When the connection is to be closed if nothing happens first: a request body still
    /// arriving after the idle timeout is cut as a head would be (a body trickled a byte at a
    /// time would otherwise hold the connection for ever); `None` once the request is read
    /// and being answered.
    fn due(&self, limits: &ConnectionLimits) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return match self.body_since.load(Ordering::Acquire) {
                0 => None,
                since => Some(self.at(since) + limits.idle_timeout),
            };
        }
        match self.head_since.load(Ordering::Acquire) {
            0 => Some(self.at(self.last_byte.load(Ordering::Relaxed)) + limits.idle_timeout),
            since => Some(self.at(since) + limits.header_read_timeout),
        }
    }

    /// Since when the connection has waited without a request in flight (for the cap), or
    /// `None` while it serves one.
    fn waiting_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = match self.head_since.load(Ordering::Acquire) {
            0 => self.last_byte.load(Ordering::Relaxed),
            since => since,
        };
        Some(self.at(since))
    }
}

/// A request being served: counted from its head until its response body is written.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.head_since.store(0, Ordering::Release);
        activity.body_since.store(activity.now(), Ordering::Release);
        activity.changed.notify_one();
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.wrote();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// A response body that keeps its request counted in flight until it is written or dropped.
struct Counted {
    inner: axum::body::Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that marks its connection's body as read once it ends or is dropped (a
/// handler that does not read it drops it).
struct Reading {
    inner: Incoming,
    activity: Arc<Activity>,
}

impl Reading {
    fn done(&self) {
        if self.activity.body_since.swap(0, Ordering::AcqRel) != 0 {
            self.activity.changed.notify_one();
        }
    }
}

impl hyper::body::Body for Reading {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(res, Poll::Ready(None | Some(Err(_)))) {
            this.done();
        }
        res
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        self.done();
    }
}

/// A TCP stream that notes each byte read or written on its connection's [`Activity`].
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read();
        }
        res
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote();
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A connection as the cap sees it: what it is doing, and how to close it.
type Held = (Arc<Activity>, Arc<Notify>);

/// The connections held, for the cap.
#[derive(Default)]
struct Registry {
    conns: Mutex<HashMap<u64, Held>>,
    next: AtomicU64,
}

impl Registry {
    fn len(&self) -> usize {
        self.conns.lock().map_or(0, |c| c.len())
    }

    fn insert(&self, activity: Arc<Activity>, close: Arc<Notify>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut c) = self.conns.lock() {
            c.insert(id, (activity, close));
        }
        id
    }

    fn remove(&self, id: u64) {
        if let Ok(mut c) = self.conns.lock() {
            c.remove(&id);
        }
    }

    /// Closes the connection that has waited longest without a request in flight; false
    /// when every connection is serving one.
    fn close_longest_waiting(&self) -> bool {
        let Ok(mut c) = self.conns.lock() else {
            return false;
        };
        let oldest = c
            .iter()
            .filter_map(|(id, (a, _))| a.waiting_since().map(|t| (t, *id)))
            .min();
        let Some((_, id)) = oldest else {
            return false;
        };
        if let Some((_, close)) = c.remove(&id) {
            close.notify_one();
        }
        true
    }
}

/// Serves `app` on `listener` under `limits` until `stop` turns true, then lets the requests
/// under way finish (for at most [`SHUTDOWN_GRACE`]).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let registry = Arc::new(Registry::default());
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, mostly: wait for some to be freed rather than
                    // spin (as hyper's and axum's own loops do).
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        while tasks.try_join_next().is_some() {}
        if registry.len() >= limits.max_connections && !registry.close_longest_waiting() {
            tracing::warn!(client = %peer.ip(), "connection refused: every connection is serving a request");
            continue;
        }
        let _ = stream.set_nodelay(true);
        tasks.spawn(connection(
            stream,
            peer,
            app.clone(),
            limits,
            Arc::clone(&registry),
            stop.clone(),
        ));
    }
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!("requests still under way at shutdown were cut");
    }
}

/// Resolves once the server is told to stop (the watch's guard is not held across awaits).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    registry: Arc<Registry>,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let close = Arc::new(Notify::new());
    let id = registry.insert(Arc::clone(&activity), Arc::clone(&close));
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let served = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let in_flight = InFlight::start(Arc::clone(&served));
        let mut req = req.map(|inner| {
            let body = Reading {
                inner,
                activity: Arc::clone(&served),
            };
            if hyper::body::Body::is_end_stream(&body) {
                body.done();
            }
            axum::body::Body::new(body)
        });
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            let res = tower::ServiceExt::oneshot(app, req).await?;
            Ok::<_, std::convert::Infallible>(res.map(|inner| Counted {
                inner,
                _in_flight: in_flight,
            }))
        }
    });
    // hyper's own header timer would also run between requests; ours tells the two apart.
    let conn = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .keep_alive(true)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        let due = activity.due(&limits);
        let wake = due.unwrap_or_else(|| Instant::now() + limits.idle_timeout);
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, client = %peer.ip(), "connection ended");
                }
                break;
            }
            () = close.notified() => {
                tracing::debug!(client = %peer.ip(), "connection closed to make room under the cap");
                break;
            }
            () = stopped(&mut stop), if !stopping => {
                conn.as_mut().graceful_shutdown();
                stopping = true;
            }
            () = activity.changed.notified() => {}
            () = tokio::time::sleep_until(wake) => {
                if activity.due(&limits).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(client = %peer.ip(), "idle or slow connection closed");
                    break;
                }
            }
        }
    }
    registry.remove(id);
}
