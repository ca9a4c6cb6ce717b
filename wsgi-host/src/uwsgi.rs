//! The uwsgi-socket request path (nginx `uwsgi_pass`, uWSGI's HTTP router): one request per
//! connection, the response as a raw `HTTP/1.1` head plus the body, never chunked.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write as _};
use std::net::{Shutdown, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use pyo3::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

    fn into_async(self) -> io::Result<AsyncListener> {
        Ok(match self {
            UwsgiListener::Tcp(l) => {
                l.set_nonblocking(true)?;
                AsyncListener::Tcp(tokio::net::TcpListener::from_std(l)?)
            }
            UwsgiListener::Unix(l) => {
                l.set_nonblocking(true)?;
                AsyncListener::Unix(tokio::net::UnixListener::from_std(l)?)
            }
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

enum AsyncListener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

enum AsyncStream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl AsyncStream {
    async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            AsyncStream::Tcp(s) => s.read_buf(buf).await,
            AsyncStream::Unix(s) => s.read_buf(buf).await,
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            AsyncStream::Tcp(s) => s.write_all(data).await,
            AsyncStream::Unix(s) => s.write_all(data).await,
        }
    }

    fn into_std(self) -> io::Result<StdStream> {
        let stream = match self {
            AsyncStream::Tcp(s) => StdStream::Tcp(s.into_std()?),
            AsyncStream::Unix(s) => StdStream::Unix(s.into_std()?),
        };
        stream.set_nonblocking(false)?;
        Ok(stream)
    }
}

/// A blocking connection handed to a Python thread.
#[derive(Debug)]
pub(crate) enum StdStream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl StdStream {
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            StdStream::Tcp(s) => s.set_nonblocking(on),
            StdStream::Unix(s) => s.set_nonblocking(on),
        }
    }

    fn try_clone(&self) -> io::Result<StdStream> {
        Ok(match self {
            StdStream::Tcp(s) => StdStream::Tcp(s.try_clone()?),
            StdStream::Unix(s) => StdStream::Unix(s.try_clone()?),
        })
    }

    fn set_timeouts(&self, timeout: Duration) -> io::Result<()> {
        let timeout = Some(timeout.max(Duration::from_millis(1)));
        match self {
            StdStream::Tcp(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
            StdStream::Unix(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
        }
    }

    fn shutdown(&self, how: Shutdown) {
        let _ = match self {
            StdStream::Tcp(s) => s.shutdown(how),
            StdStream::Unix(s) => s.shutdown(how),
        };
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            StdStream::Tcp(s) => s.read(buf),
            StdStream::Unix(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            StdStream::Tcp(s) => s.write_all(buf),
            StdStream::Unix(s) => s.write_all(buf),
        }
    }
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
    let listener = listener.into_async()?;
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
            accepted = accept(&listener) => accepted,
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

async fn accept(listener: &AsyncListener) -> io::Result<(AsyncStream, String)> {
    match listener {
        AsyncListener::Tcp(l) => {
            let (s, addr) = l.accept().await?;
            let _ = s.set_nodelay(true);
            Ok((AsyncStream::Tcp(s), addr.to_string()))
        }
        AsyncListener::Unix(l) => {
            let (s, _) = l.accept().await?;
            Ok((AsyncStream::Unix(s), "unix".to_owned()))
        }
    }
}

enum HeadRead {
    Frame(Frame),
    Closed,
}

async fn read_head(
    stream: &mut AsyncStream,
    buf: &mut BytesMut,
    decoder: &mut RequestDecoder,
) -> Result<HeadRead, HeadError> {
    loop {
        if let Some(frame) = decoder.decode(buf).map_err(HeadError::Protocol)? {
            return Ok(HeadRead::Frame(frame));
        }
        let n = stream.read_buf(buf).await.map_err(HeadError::Io)?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(HeadRead::Closed)
            } else {
                Err(HeadError::Protocol(uwsgi_proto::Error::UnexpectedEof))
            };
        }
    }
}

enum HeadError {
    Protocol(uwsgi_proto::Error),
    Io(io::Error),
}

async fn connection(
    mut stream: AsyncStream,
    peer: String,
    worker: Arc<Worker>,
    executor: Executor,
) {
    let settings = worker.uwsgi_settings();
    let mut buf = BytesMut::with_capacity(4096);
    let mut decoder = RequestDecoder::with_limits(settings.limits);
    let read = tokio::time::timeout(
        settings.socket_timeout,
        read_head(&mut stream, &mut buf, &mut decoder),
    )
    .await;
    let frame = match read {
        Err(_) => {
            tracing::warn!(%peer, "uwsgi: no complete request head within {:?}; closing", settings.socket_timeout);
            return;
        }
        Ok(Ok(HeadRead::Closed)) => {
            tracing::debug!(%peer, "uwsgi: connection closed before a request");
            return;
        }
        Ok(Ok(HeadRead::Frame(frame))) => frame,
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
                let _ = stream.write_all(&pong).await;
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
    let body = if settings.post_buffering > 0 && head.body != BodyKind::Empty {
        let chunked = head.body == BodyKind::Chunked;
        match spool_body(&mut stream, &mut buf, &mut decoder, &settings, chunked).await {
            Ok(body) => Some(body),
            Err(err) => {
                tracing::warn!(%peer, "uwsgi: reading the request body failed: {err}; closing");
                return;
            }
        }
    } else {
        None
    };
    let std_stream = match stream.into_std() {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(%peer, "uwsgi: cannot hand the connection to the app: {err}");
            return;
        }
    };
    let job = Job {
        stream: std_stream,
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
        stream,
        buf,
        decoder,
        head,
        body,
        peer,
    } = job;
    let settings = worker.uwsgi_settings();
    if let Err(err) = stream.set_timeouts(settings.socket_timeout) {
        tracing::warn!(%peer, "uwsgi: cannot set socket timeouts: {err}");
    }
    let clones = stream
        .try_clone()
        .and_then(|writer| Ok((writer.try_clone()?, writer)));
    let (control, writer) = match clones {
        Ok(pair) => pair,
        Err(err) => {
            tracing::error!(%peer, "uwsgi: cannot duplicate the connection: {err}");
            return;
        }
    };
    let source: Box<dyn BodySource> = match (body, head.body) {
        (Some(buffered), _) => buffered,
        (None, BodyKind::Empty) => Box::new(EmptyBody),
        (None, BodyKind::Length(_) | BodyKind::Chunked) => Box::new(SocketBody {
            stream,
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
    let sink = Box::new(UwsgiSink { stream: writer });
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
        Ok((outcome, body)) => py.detach(|| finish(&control, &body, outcome, &settings, &peer)),
        Err(err) => tracing::warn!(%peer, "uwsgi: bad request: {err}; closing"),
    }
}

/// Reads a whole body through the decoder into a [`BodySpooler`] (memory, then a temp file),
/// with the socket timeout on each read and `limit-post` on chunked bodies.
async fn spool_body(
    stream: &mut AsyncStream,
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
        match tokio::time::timeout(settings.socket_timeout, stream.read_buf(buf)).await {
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

/// After the response: drain what is left of the body (bounded in bytes and time), so that
/// closing does not send an RST that makes nginx answer 502 (reference §6.4), then close.
fn finish(
    control: &StdStream,
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
    let _ = control.set_timeouts(settings.drain_timeout);
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
    control.shutdown(Shutdown::Write);
}

/// The request body read from the socket, through the uwsgi decoder (Content-Length or raw
/// chunked framing). Blocking, with the socket timeout.
struct SocketBody {
    stream: StdStream,
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
            let start = self.buf.len();
            self.buf.resize(start + 16 * 1024, 0);
            let read = self.stream.read(&mut self.buf[start..]);
            match read {
                Ok(0) => {
                    self.buf.truncate(start);
                    return Err(BodyError::Truncated {
                        received: self.received,
                    });
                }
                Ok(n) => self.buf.truncate(start + n),
                Err(err) => {
                    self.buf.truncate(start);
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
    stream: StdStream,
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
        if coalesce {
            for piece in body {
                out.extend_from_slice(piece);
            }
            return self.stream.write_all(&out);
        }
        self.stream.write_all(&out)?;
        self.send_body(body)
    }

    fn send_body(&mut self, body: &[&[u8]]) -> io::Result<()> {
        for piece in body {
            self.stream.write_all(piece)?;
        }
        Ok(())
    }

    fn send_file(&mut self, file: &mut File, len: u64) -> io::Result<u64> {
        // std's io::copy uses sendfile(2)/splice on Linux for File -> socket.
        let mut limited = Read::take(file, len);
        match &mut self.stream {
            StdStream::Tcp(s) => io::copy(&mut limited, s),
            StdStream::Unix(s) => io::copy(&mut limited, s),
        }
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
