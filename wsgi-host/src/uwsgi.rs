//! The uwsgi-socket request path (nginx `uwsgi_pass`, uWSGI's HTTP router): one request per
//! connection, the response as a raw `HTTP/1.1` head plus the body, never chunked.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use pyo3::prelude::*;
use tokio::io::unix::AsyncFd;
use uwsgi_proto::{BodyKind, Frame, Modifier1, RequestDecoder};

use crate::ServeError;
use crate::executor::{Executor, Job};
use crate::input::{BodyError, BodySource, BodySpooler, EmptyBody};
use crate::response::{Outcome, ResponseHead, ResponseSink};
use crate::worker::{RequestBody, RequestOptions, Worker};

/// A bound uwsgi listener: TCP or a unix socket. Bind it before starting the worker (and,
/// later, before forking workers).
#[derive(Debug)]
pub enum UwsgiListener {
    /// `socket = 127.0.0.1:3031`.
    Tcp(std::net::TcpListener),
    /// `socket = /run/app.sock`.
    Unix(std::os::unix::net::UnixListener),
}

impl UwsgiListener {
    /// Binds a TCP listener.
    ///
    /// # Errors
    ///
    /// The OS error from `bind`/`listen`.
    pub fn bind_tcp(addr: SocketAddr) -> io::Result<UwsgiListener> {
        Ok(UwsgiListener::Tcp(std::net::TcpListener::bind(addr)?))
    }

    /// Binds a unix stream socket at `path` (which must not exist).
    ///
    /// # Errors
    ///
    /// The OS error from `bind`/`listen`.
    pub fn bind_unix(path: impl AsRef<Path>) -> io::Result<UwsgiListener> {
        Ok(UwsgiListener::Unix(std::os::unix::net::UnixListener::bind(
            path,
        )?))
    }

    /// Wraps a listening socket bound elsewhere (by the master, or handed over by systemd):
    /// TCP or unix, by its address family.
    ///
    /// # Errors
    ///
    /// The OS error when the socket's address cannot be read, or it is neither TCP nor unix.
    pub fn from_socket(socket: socket2::Socket) -> io::Result<UwsgiListener> {
        let addr = socket.local_addr()?;
        if addr.is_unix() {
            Ok(UwsgiListener::Unix(socket.into()))
        } else if addr.as_socket().is_some() {
            Ok(UwsgiListener::Tcp(socket.into()))
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a TCP or unix socket",
            ))
        }
    }

    fn into_acceptor(self) -> io::Result<Acceptor> {
        let (socket, unix) = match self {
            UwsgiListener::Tcp(l) => (socket2::Socket::from(std::os::fd::OwnedFd::from(l)), false),
            UwsgiListener::Unix(l) => (socket2::Socket::from(std::os::fd::OwnedFd::from(l)), true),
        };
        socket.set_nonblocking(true)?;
        Ok(Acceptor {
            fd: crate::fdio::register(socket)?,
            unix,
        })
    }

    /// The TCP address, if this is a TCP listener.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            UwsgiListener::Tcp(l) => l.local_addr().ok(),
            UwsgiListener::Unix(_) => None,
        }
    }
}

/// A listening socket watched by the runtime. Connections are accepted with `accept4`
/// (non-blocking, close-on-exec) and are registered with the runtime only if they make the
/// worker wait: a request that arrives whole (nginx writes header, vars and a small body at
/// once) costs accept, read, write and close, nothing else.
struct Acceptor {
    fd: AsyncFd<socket2::Socket>,
    unix: bool,
}

impl Acceptor {
    async fn accept(&self) -> io::Result<(StdStream, String)> {
        loop {
            let mut ready = self.fd.readable().await?;
            let flags = nix::libc::SOCK_NONBLOCK | nix::libc::SOCK_CLOEXEC;
            match ready.try_io(|fd| fd.get_ref().accept4(flags)) {
                Ok(Ok((socket, addr))) => {
                    return Ok(if self.unix {
                        (StdStream::Unix(socket.into()), "unix".to_owned())
                    } else {
                        let _ = socket.set_tcp_nodelay(true);
                        let peer = addr
                            .as_socket()
                            .map_or_else(|| "tcp".to_owned(), |a| a.to_string());
                        (StdStream::Tcp(socket.into()), peer)
                    });
                }
                Ok(Err(err)) => return Err(err),
                Err(_would_block) => continue,
            }
        }
    }
}

/// A connection shared by the body reader, the response writer and the drain. The socket
/// stays non-blocking; a read or write that would block waits in `poll(2)` for at most
/// the socket timeout, so the common case costs no extra system call (no `dup`, no
/// `SO_RCVTIMEO`, no switch to blocking mode).
#[derive(Debug)]
pub(crate) struct Conn {
    stream: StdStream,
    /// Current timeout of one wait, in milliseconds.
    timeout_ms: AtomicU64,
}

impl Conn {
    fn new(stream: StdStream, timeout: Duration) -> Conn {
        let conn = Conn {
            stream,
            timeout_ms: AtomicU64::new(0),
        };
        conn.set_timeout(timeout);
        conn
    }

    fn set_timeout(&self, timeout: Duration) {
        let ms = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.timeout_ms.store(ms, Ordering::Relaxed);
    }

    /// Waits until the socket is readable (`POLLIN`) or writable (`POLLOUT`).
    fn wait(&self, events: PollFlags) -> io::Result<()> {
        let ms = self.timeout_ms.load(Ordering::Relaxed);
        let timeout =
            PollTimeout::try_from(ms.min(i32::MAX as u64) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.stream.as_fd(), events)];
        loop {
            match poll(&mut fds, timeout) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::TimedOut, "socket timeout")),
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(err) => return Err(err.into()),
            }
        }
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.stream.read_now(buf) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(PollFlags::POLLIN)?
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            match self.stream.write_now(data) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n..],
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(PollFlags::POLLOUT)?
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    fn shutdown(&self, how: Shutdown) {
        self.stream.shutdown(how);
    }
}

/// A blocking connection handed to a Python thread.
#[derive(Debug)]
pub(crate) enum StdStream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl StdStream {
    fn shutdown(&self, how: Shutdown) {
        let _ = match self {
            StdStream::Tcp(s) => s.shutdown(how),
            StdStream::Unix(s) => s.shutdown(how),
        };
    }

    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            StdStream::Tcp(s) => Read::read(&mut &*s, buf),
            StdStream::Unix(s) => Read::read(&mut &*s, buf),
        }
    }

    fn write_now(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            StdStream::Tcp(s) => io::Write::write(&mut &*s, buf),
            StdStream::Unix(s) => io::Write::write(&mut &*s, buf),
        }
    }

    /// One non-blocking read appended to `buf`; `WouldBlock` when nothing is there.
    fn read_some(&self, buf: &mut BytesMut) -> io::Result<usize> {
        with_scratch(|scratch| {
            let n = self.read_now(scratch)?;
            buf.extend_from_slice(&scratch[..n]);
            Ok(n)
        })
    }
}

impl AsFd for StdStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            StdStream::Tcp(s) => s.as_fd(),
            StdStream::Unix(s) => s.as_fd(),
        }
    }
}

impl AsRawFd for StdStream {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// Bytes read from a socket at a time, into the per-thread scratch buffer.
const READ_CHUNK: usize = 16 * 1024;

/// Runs `f` with this thread's read buffer: zeroed once, reused for every read, so a read
/// costs a copy of the bytes received instead of zero-filling room for the largest read.
fn with_scratch<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Box<[u8]>> =
            std::cell::RefCell::new(vec![0u8; READ_CHUNK].into_boxed_slice());
    }
    SCRATCH.with(|s| f(&mut s.borrow_mut()))
}

/// Limits and timeouts of the uwsgi path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UwsgiSettings {
    pub(crate) socket_timeout: Duration,
    pub(crate) limits: uwsgi_proto::Limits,
    /// Most bytes of a chunk-framed body (limit-post, or the default cap).
    pub(crate) chunked_limit: u64,
    pub(crate) post_buffering: usize,
    pub(crate) drain_limit: u64,
    pub(crate) drain_timeout: Duration,
}

/// Serves uwsgi connections on `listener` until `shutdown` completes, then waits for the
/// requests in flight. Blocking: it builds the worker's single-threaded tokio runtime and
/// runs it on the calling thread.
///
/// With `threads = 1` the app is called on this thread, inside the connection's task; the
/// thread attaches to the interpreter once and is detached whenever the runtime waits.
/// With `threads = N` the app runs on N Python threads (see [`crate::ServerConfig::threads`]).
///
/// # Errors
///
/// [`ServeError::NotInitialized`] before [`crate::initialize`]; [`ServeError::Io`] if the
/// runtime or the listener cannot be set up.
pub fn serve_uwsgi<F>(
    worker: Arc<Worker>,
    listener: UwsgiListener,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send,
{
    if !crate::is_initialized() {
        return Err(ServeError::NotInitialized);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let executor = Executor::start(&worker)?;
    let run = {
        let executor = executor.clone();
        let worker = Arc::clone(&worker);
        move || runtime.block_on(accept_loop(worker, listener, executor, shutdown))
    };
    let result = if executor.is_inline() {
        // Attach once for the life of the runtime thread; detach while the runtime waits.
        // Each request re-attaches to this same thread state (no new thread state per request).
        Python::attach(|py| py.detach(run))
    } else {
        run()
    };
    executor.stop();
    result
}

pub(crate) async fn accept_loop<F>(
    worker: Arc<Worker>,
    listener: UwsgiListener,
    executor: Executor,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()>,
{
    let listener = listener.into_acceptor()?;
    let connections = Arc::new(tokio::sync::Semaphore::new(worker.config().max_connections));
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let worker = Arc::clone(&worker);
                let executor = executor.clone();
                tasks.spawn(async move {
                    connection(stream, peer, worker, executor).await;
                    drop(permit);
                });
            }
            Err(err) => {
                tracing::error!("accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    // Stop accepting at once (new clients get refused, not stuck in the backlog), then let
    // the requests in flight finish.
    drop(listener);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

enum HeadRead {
    Frame(StdStream, Frame),
    Closed,
}

/// Reads until the decoder has a head: first with what is already there (no waiting, no
/// registration with the runtime), then, only if the client is slow, by waiting on the
/// runtime for readability.
async fn read_head(
    stream: StdStream,
    buf: &mut BytesMut,
    decoder: &mut RequestDecoder,
) -> Result<HeadRead, HeadError> {
    let mut direct = Some(stream);
    let mut registered: Option<AsyncFd<StdStream>> = None;
    loop {
        if let Some(frame) = decoder.decode(buf).map_err(HeadError::Protocol)? {
            let stream = match (direct, registered) {
                (Some(stream), _) => stream,
                (None, Some(fd)) => fd.into_inner(),
                (None, None) => unreachable!("invariant: the stream is direct or registered"),
            };
            return Ok(HeadRead::Frame(stream, frame));
        }
        let read = match (&direct, &registered) {
            (Some(stream), _) => stream.read_some(buf),
            (None, Some(fd)) => {
                let mut ready = fd.readable().await.map_err(HeadError::Io)?;
                match ready.try_io(|fd| fd.get_ref().read_some(buf)) {
                    Ok(read) => read,
                    Err(_would_block) => continue,
                }
            }
            (None, None) => unreachable!("invariant: the stream is direct or registered"),
        };
        match read {
            Ok(0) if buf.is_empty() => return Ok(HeadRead::Closed),
            Ok(0) => return Err(HeadError::Protocol(uwsgi_proto::Error::UnexpectedEof)),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                // The client is slow: wait on the runtime from now on.
                let stream = direct
                    .take()
                    .expect("invariant: only a direct read can block here");
                registered = Some(crate::fdio::register(stream).map_err(HeadError::Io)?);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(HeadError::Io(err)),
        }
    }
}

enum HeadError {
    Protocol(uwsgi_proto::Error),
    Io(io::Error),
}

async fn connection(stream: StdStream, peer: String, worker: Arc<Worker>, executor: Executor) {
    let settings = worker.uwsgi_settings();
    let mut buf = BytesMut::with_capacity(4096);
    let mut decoder = RequestDecoder::with_limits(settings.limits);
    let read = tokio::time::timeout(
        settings.socket_timeout,
        read_head(stream, &mut buf, &mut decoder),
    )
    .await;
    let (stream, frame) = match read {
        Err(_) => {
            tracing::warn!(%peer, "uwsgi: no complete request head within {:?}; closing", settings.socket_timeout);
            return;
        }
        Ok(Ok(HeadRead::Closed)) => {
            tracing::debug!(%peer, "uwsgi: connection closed before a request");
            return;
        }
        Ok(Ok(HeadRead::Frame(stream, frame))) => (stream, frame),
        Ok(Err(HeadError::Io(err))) => {
            tracing::info!(%peer, "uwsgi: read error before the request head: {err}");
            return;
        }
        Ok(Err(HeadError::Protocol(uwsgi_proto::Error::LooksLikeHttp))) => {
            tracing::warn!(
                %peer,
                "uwsgi: plain HTTP request on a uwsgi socket; closing. Point HTTP clients at an \
                 http-socket listener (or put nginx with uwsgi_pass in front)"
            );
            return;
        }
        Ok(Err(HeadError::Protocol(err))) => {
            tracing::warn!(%peer, "uwsgi: invalid request: {err}; closing");
            return;
        }
    };
    let head = match frame {
        Frame::Request(head) => head,
        Frame::Packet(packet) if packet.header.modifier1 == Modifier1::PING => {
            let mut pong = BytesMut::new();
            // An empty warning always fits.
            if uwsgi_proto::encode_pong(b"", &mut pong).is_ok() {
                let _ = Conn::new(stream, settings.socket_timeout).write_all(&pong);
            }
            tracing::debug!(%peer, "uwsgi: ping answered");
            return;
        }
        Frame::Packet(packet) => {
            tracing::warn!(
                %peer,
                "uwsgi: unavailable modifier requested: {} (modifier2 {}); closing",
                packet.header.modifier1,
                packet.header.modifier2
            );
            return;
        }
        Frame::Body(_) | Frame::BodyEnd { .. } => {
            tracing::error!(%peer, "uwsgi: decoder produced body before a head; closing");
            return;
        }
    };
    let m1 = head.header.modifier1;
    if m1 != Modifier1::WSGI && m1 != Modifier1::WSGI_STRIP_SCRIPT_NAME {
        tracing::warn!(
            %peer,
            "uwsgi: unavailable modifier requested: {m1} (only 0 and 30 run the WSGI app); closing"
        );
        return;
    }
    // post-buffering: read the whole body here, asynchronously, so a slow upload holds
    // neither a Python thread nor (with threads = 1) the worker's only thread.
    let (stream, body) = if settings.post_buffering > 0 && head.body != BodyKind::Empty {
        let chunked = head.body == BodyKind::Chunked;
        let fd = match crate::fdio::register(stream) {
            Ok(fd) => fd,
            Err(err) => {
                tracing::error!(%peer, "uwsgi: cannot wait for the request body: {err}");
                return;
            }
        };
        match spool_body(&fd, &mut buf, &mut decoder, &settings, chunked).await {
            Ok(body) => (fd.into_inner(), Some(body)),
            Err(err) => {
                tracing::warn!(%peer, "uwsgi: reading the request body failed: {err}; closing");
                return;
            }
        }
    } else {
        (stream, None)
    };
    let job = Job {
        conn: Conn::new(stream, settings.socket_timeout),
        buf,
        decoder,
        head,
        body,
        peer,
    };
    executor.run(worker, job).await;
}

/// Runs one request on the current (attached) thread. Called by the executor.
pub(crate) fn handle_request(py: Python<'_>, worker: &Worker, job: Job) {
    let Job {
        conn,
        buf,
        decoder,
        head,
        body,
        peer,
    } = job;
    let settings = worker.uwsgi_settings();
    let conn = Arc::new(conn);
    let source: Box<dyn BodySource> = match (body, head.body) {
        (Some(buffered), _) => buffered,
        (None, BodyKind::Empty) => Box::new(EmptyBody),
        (None, BodyKind::Length(_) | BodyKind::Chunked) => Box::new(SocketBody {
            conn: Arc::downgrade(&conn),
            buf,
            decoder,
            received: 0,
            limit: settings.chunked_limit,
            chunked: head.body == BodyKind::Chunked,
        }),
    };
    let options = RequestOptions::new(
        head.vars.get(b"REQUEST_METHOD") == Some(b"HEAD"),
        head.header.modifier1 == Modifier1::WSGI_STRIP_SCRIPT_NAME,
    );
    let sink = Box::new(UwsgiSink {
        conn: Arc::downgrade(&conn),
    });
    let vars = &head.vars;
    let ran = worker.run_request(
        py,
        |builder| {
            vars.iter()
                .try_for_each(|(key, value)| builder.var(key, value))
        },
        source,
        sink,
        options,
    );
    match ran {
        Ok((outcome, body)) => py.detach(|| finish(&conn, &body, outcome, &settings, &peer)),
        Err(err) => tracing::warn!(%peer, "uwsgi: bad request: {err}; closing"),
    }
}

/// Reads a whole body through the decoder into a [`BodySpooler`] (memory, then a temp file),
/// with the socket timeout on each read and `limit-post` on chunked bodies.
async fn spool_body(
    stream: &AsyncFd<StdStream>,
    buf: &mut BytesMut,
    decoder: &mut RequestDecoder,
    settings: &UwsgiSettings,
    chunked: bool,
) -> Result<Box<dyn BodySource>, BodyError> {
    let mut spooler = BodySpooler::new(settings.post_buffering);
    loop {
        match decoder.decode(buf) {
            Ok(Some(Frame::Body(bytes))) => {
                spooler.push(&bytes)?;
                if chunked && spooler.total() > settings.chunked_limit {
                    return Err(BodyError::TooLarge {
                        limit: settings.chunked_limit,
                    });
                }
                continue;
            }
            Ok(Some(Frame::BodyEnd { .. })) => return Ok(spooler.finish()?),
            Ok(Some(_)) => {
                return Err(BodyError::Malformed(
                    "unexpected packet inside a body".into(),
                ));
            }
            Ok(None) => {}
            Err(err) => return Err(BodyError::Malformed(err.to_string())),
        }
        match tokio::time::timeout(settings.socket_timeout, read_async(stream, buf)).await {
            Err(_) => return Err(BodyError::TimedOut),
            Ok(Ok(0)) => {
                return Err(BodyError::Truncated {
                    received: spooler.total(),
                });
            }
            Ok(Ok(_)) => {}
            Ok(Err(err)) => return Err(BodyError::Io(err)),
        }
    }
}

/// One read, waiting on the runtime until the socket is readable.
async fn read_async(stream: &AsyncFd<StdStream>, buf: &mut BytesMut) -> io::Result<usize> {
    loop {
        let mut ready = stream.readable().await?;
        match ready.try_io(|fd| fd.get_ref().read_some(buf)) {
            Ok(read) => return read,
            Err(_would_block) => continue,
        }
    }
}

/// After the response: drain what is left of the body (bounded in bytes and time), so that
/// closing does not send an RST that makes nginx answer 502 (reference §6.4), then close.
fn finish(
    control: &Conn,
    body: &RequestBody,
    outcome: Outcome,
    settings: &UwsgiSettings,
    peer: &str,
) {
    match outcome {
        Outcome::Cut => {
            control.shutdown(Shutdown::Both);
            return;
        }
        Outcome::ClientGone => {
            control.shutdown(Shutdown::Both);
            return;
        }
        Outcome::Complete | Outcome::Short | Outcome::ServerError => {}
    }
    let started = Instant::now();
    control.set_timeout(settings.drain_timeout);
    let mut drained = 0u64;
    loop {
        let step = body.drain(64 * 1024);
        match step {
            Ok((n, done)) => {
                drained += n;
                if done {
                    break;
                }
            }
            Err(err) => {
                tracing::debug!(%peer, "uwsgi: draining the request body stopped: {err}");
                break;
            }
        }
        if drained > settings.drain_limit || started.elapsed() > settings.drain_timeout {
            tracing::info!(
                %peer,
                drained,
                "uwsgi: unread request body left after the response is over the drain limit; \
                 closing anyway"
            );
            break;
        }
    }
    // No shutdown here: the caller drops the last strong reference to the connection right
    // after this, which closes it (the body reader and the sink hold weak ones), so the FIN
    // goes out even if the app keeps `wsgi.input` alive.
}

/// The request body read from the socket, through the uwsgi decoder (Content-Length or raw
/// chunked framing). Blocking, with the socket timeout.
struct SocketBody {
    /// Weak: the connection closes when the request ends, even if the app keeps
    /// `wsgi.input` alive.
    conn: Weak<Conn>,
    buf: BytesMut,
    decoder: RequestDecoder,
    received: u64,
    /// Most bytes of a chunked body (`limit-post` or the default cap); Content-Length
    /// bodies are checked by the decoder.
    limit: u64,
    chunked: bool,
}

impl fmt::Debug for SocketBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketBody")
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl BodySource for SocketBody {
    fn next_chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(Frame::Body(bytes))) => {
                    self.received += bytes.len() as u64;
                    if self.chunked && self.received > self.limit {
                        return Err(BodyError::TooLarge { limit: self.limit });
                    }
                    return Ok(Some(bytes));
                }
                Ok(Some(Frame::BodyEnd { .. })) => return Ok(None),
                Ok(Some(_)) => {
                    return Err(BodyError::Malformed(
                        "unexpected packet inside a body".into(),
                    ));
                }
                Ok(None) => {}
                Err(err) => return Err(BodyError::Malformed(err.to_string())),
            }
            let Some(conn) = self.conn.upgrade() else {
                return Err(BodyError::Io(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the request is over",
                )));
            };
            let read = with_scratch(|scratch| -> io::Result<usize> {
                let n = conn.read(scratch)?;
                self.buf.extend_from_slice(&scratch[..n]);
                Ok(n)
            });
            match read {
                Ok(0) => {
                    return Err(BodyError::Truncated {
                        received: self.received,
                    });
                }
                Ok(_) => {}
                Err(err) => {
                    return Err(match err.kind() {
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => BodyError::TimedOut,
                        _ => BodyError::Io(err),
                    });
                }
            }
        }
    }
}

/// Writes the response on a uwsgi socket: `HTTP/1.1 <status>`, the app's headers as given,
/// a blank line and the body as is (no chunking, no added headers, like uWSGI).
struct UwsgiSink {
    /// Weak, like [`SocketBody::conn`].
    conn: Weak<Conn>,
}

impl UwsgiSink {
    fn conn(&self) -> io::Result<Arc<Conn>> {
        self.conn
            .upgrade()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the request is over"))
    }
}

impl fmt::Debug for UwsgiSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UwsgiSink").finish_non_exhaustive()
    }
}

/// Body bytes up to this size are copied behind the head so both go out in one write.
const COALESCE: usize = 16 * 1024;

impl ResponseSink for UwsgiSink {
    fn send_head(&mut self, head: &ResponseHead<'_>, body: &[&[u8]]) -> io::Result<()> {
        let body_len: usize = body.iter().map(|b| b.len()).sum();
        let head_len = 9
            + head.status.len()
            + 2
            + head
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 4)
                .sum::<usize>()
            + 2;
        let coalesce = body_len <= COALESCE;
        let mut out = Vec::with_capacity(head_len + if coalesce { body_len } else { 0 });
        out.extend_from_slice(b"HTTP/1.1 ");
        push_latin1(&mut out, head.status);
        out.extend_from_slice(b"\r\n");
        for (name, value) in head.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            push_latin1(&mut out, value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        let conn = self.conn()?;
        if coalesce {
            for piece in body {
                out.extend_from_slice(piece);
            }
            return conn.write_all(&out);
        }
        conn.write_all(&out)?;
        self.send_body(body)
    }

    fn send_body(&mut self, body: &[&[u8]]) -> io::Result<()> {
        let conn = self.conn()?;
        for piece in body {
            conn.write_all(piece)?;
        }
        Ok(())
    }

    fn send_file(&mut self, file: &mut File, len: u64) -> io::Result<u64> {
        // sendfile(2) from the file's current position, with an explicit offset so that a
        // full (non-blocking) socket can wait in poll and go on exactly where it stopped.
        use std::io::{Seek, SeekFrom};
        let conn = self.conn()?;
        let start = file.stream_position()?;
        let mut offset = i64::try_from(start).map_err(io::Error::other)?;
        let mut sent = 0u64;
        while sent < len {
            let want = usize::try_from(len - sent)
                .unwrap_or(usize::MAX)
                .min(1 << 30);
            match nix::sys::sendfile::sendfile(
                conn.stream.as_fd(),
                file.as_fd(),
                Some(&mut offset),
                want,
            ) {
                Ok(0) => break, // end of file
                Ok(n) => sent += n as u64,
                Err(nix::errno::Errno::EAGAIN) => conn.wait(PollFlags::POLLOUT)?,
                Err(nix::errno::Errno::EINTR) => {}
                Err(err) => return Err(err.into()),
            }
        }
        file.seek(SeekFrom::Start(start + sent))?;
        Ok(sent)
    }
}

/// Header values were validated as latin-1 by `start_response`; encode them back to bytes.
fn push_latin1(out: &mut Vec<u8>, s: &str) {
    if s.is_ascii() {
        out.extend_from_slice(s.as_bytes());
    } else {
        out.extend(
            s.chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')),
        );
    }
}
