//! The contract between the connection driver and the application (`wsgi-host`,
//! `proxy-core`): request head + streaming body in, response head + streaming body out.

use std::fmt;
use std::future::{Future, poll_fn};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};

use crate::body::Trailers;
use crate::error::{BoxError, Error};
use crate::head::{BodyLength, RequestHead};
use crate::response::ResponseHead;

/// The application side of a connection.
///
/// The driver calls [`call`](Handler::call) once per request, in order (pipelined requests
/// wait), on the task that drives the connection: no spawn, no `Send` or `'static` bound on
/// the future, no box per request. A current-thread runtime (the WSGI worker's `threads = 1`
/// mode, which runs Python on the runtime thread) works as well as a multi-thread one; a
/// connection future is `Send` whenever the handler's future and body are.
///
/// The request body can be read only while `call` runs (it borrows the connection). When the
/// future completes, whatever is left of the body is drained (up to
/// [`ServerConfig::max_drain_bytes`](crate::ServerConfig::max_drain_bytes)) or the
/// connection is closed after the response. If reading the body failed because of the client
/// (bad chunked framing, body over the limit, body timeout), the driver answers with that
/// fault's status (400/413/408) instead of the handler's response and closes.
///
/// # Examples
///
/// ```
/// # #![allow(dead_code)]
/// use http_front::{Full, Handler, Request, Response, ResponseHead};
///
/// struct Echo;
///
/// impl Handler for Echo {
///     type Body = Full;
///
///     async fn call(&self, mut req: Request<'_>) -> Response<Full> {
///         let mut body = bytes::BytesMut::new();
///         let mut head = match req.body.read_to_end(&mut body, 1 << 20).await {
///             Ok(true) => ResponseHead::new(200).expect("valid status"),
///             Ok(false) => ResponseHead::new(413).expect("valid status"),
///             Err(_) => ResponseHead::new(400).expect("valid status"),
///         };
///         head.append("Content-Type", "application/octet-stream").expect("valid field");
///         Response::new(head, Full::new(body.freeze()))
///     }
/// }
/// ```
pub trait Handler {
    /// The response body type. [`Full`] for a buffer, [`Chunks`] for a ready sequence of
    /// buffers, [`ChannelBody`] for chunks produced elsewhere, or your own [`Body`].
    type Body: Body;

    /// Answers one request.
    ///
    /// Errors are the handler's to turn into responses (e.g. 500 for an application
    /// exception, 502 for a failed upstream); an invalid response head (see
    /// [`ResponseHead::append`]) should become a 500 the same way.
    fn call(&self, req: Request<'_>) -> impl Future<Output = Response<Self::Body>>;
}

impl<H: Handler + ?Sized> Handler for &H {
    type Body = H::Body;

    fn call(&self, req: Request<'_>) -> impl Future<Output = Response<Self::Body>> {
        (**self).call(req)
    }
}

/// One request as the handler sees it.
#[derive(Debug)]
pub struct Request<'a> {
    /// The parsed, policed head (owned; cheap to clone).
    pub head: RequestHead,
    /// The body, streaming from the connection.
    pub body: RequestBody<'a>,
}

/// The handler's answer.
#[derive(Debug)]
pub struct Response<B> {
    /// Status and fields.
    pub head: ResponseHead,
    /// The body; not polled for HEAD requests and for 1xx, 204 and 304.
    pub body: B,
}

impl<B> Response<B> {
    /// A response from its parts.
    pub fn new(head: ResponseHead, body: B) -> Response<B> {
        Response { head, body }
    }
}

/// A response body: a sequence of [`Bytes`] chunks.
///
/// The driver polls it on the connection's task. It writes the head together with the body's
/// first chunk in one write; when [`size_hint`](Body::size_hint) is `None` it gathers chunks
/// while they are immediately ready (up to
/// [`ServerConfig::max_coalesce_bytes`](crate::ServerConfig::max_coalesce_bytes)), so a body
/// that ends there still goes out with a Content-Length in one write. Otherwise it uses
/// chunked (HTTP/1.1) or close-delimited (HTTP/1.0) framing. Chunks are written as they are
/// (large ones with a vectored write, never copied).
pub trait Body {
    /// The next chunk; `Ready(None)` at the end. An `Err` aborts the response: the
    /// connection is closed (or, when nothing was written yet, answered 500).
    ///
    /// Empty chunks are skipped.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>>;

    /// The exact number of bytes still to come, when known (then used as Content-Length
    /// unless the head has one, which must agree). Default is `None`.
    fn size_hint(&self) -> Option<u64> {
        None
    }
}

impl<B: Body + ?Sized> Body for &mut B {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        (**self).poll_chunk(cx)
    }

    fn size_hint(&self) -> Option<u64> {
        (**self).size_hint()
    }
}

impl<B: Body + ?Sized> Body for Box<B> {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        (**self).poll_chunk(cx)
    }

    fn size_hint(&self) -> Option<u64> {
        (**self).size_hint()
    }
}

/// A body held in one buffer (or none). Its length is known.
#[derive(Debug, Clone, Default)]
pub struct Full(Option<Bytes>);

impl Full {
    /// A body of `data` (may be empty).
    pub fn new(data: impl Into<Bytes>) -> Full {
        Full(Some(data.into()))
    }

    /// An empty body.
    pub fn empty() -> Full {
        Full(None)
    }
}

impl Body for Full {
    fn poll_chunk(&mut self, _: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        Poll::Ready(self.0.take().map(Ok))
    }

    fn size_hint(&self) -> Option<u64> {
        Some(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}

/// A body from an iterator of ready chunks (e.g. a WSGI response iterable drained on the
/// runtime thread). The length is unknown unless given with [`Chunks::with_len`].
#[derive(Debug, Clone)]
pub struct Chunks<I> {
    iter: I,
    len: Option<u64>,
}

impl<I> Chunks<I>
where
    I: Iterator<Item = Result<Bytes, BoxError>>,
{
    /// A body of the chunks `iter` yields.
    pub fn new(iter: I) -> Chunks<I> {
        Chunks { iter, len: None }
    }

    /// A body of the chunks `iter` yields, `len` bytes in total (used as Content-Length; a
    /// mismatch closes the connection).
    pub fn with_len(iter: I, len: u64) -> Chunks<I> {
        Chunks {
            iter,
            len: Some(len),
        }
    }
}

impl<I> Body for Chunks<I>
where
    I: Iterator<Item = Result<Bytes, BoxError>>,
{
    fn poll_chunk(&mut self, _: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        let next = self.iter.next();
        if let (Some(Ok(chunk)), Some(len)) = (&next, &mut self.len) {
            *len = len.saturating_sub(chunk.len() as u64);
        }
        Poll::Ready(next)
    }

    fn size_hint(&self) -> Option<u64> {
        self.len
    }
}

/// A body fed through a channel by another task or thread (a Python worker thread, an
/// upstream reader). Ends when every sender is dropped.
#[derive(Debug)]
pub struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, BoxError>>,
}

/// The sending side of a [`ChannelBody`].
pub type BodySender = tokio::sync::mpsc::Sender<Result<Bytes, BoxError>>;

impl ChannelBody {
    /// A body and its sender; at most `buffer` chunks wait in the channel (backpressure on
    /// the producer). `buffer` below 1 is raised to 1.
    pub fn channel(buffer: usize) -> (BodySender, ChannelBody) {
        let (tx, rx) = tokio::sync::mpsc::channel(buffer.max(1));
        (tx, ChannelBody { rx })
    }
}

impl Body for ChannelBody {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        self.rx.poll_recv(cx)
    }
}

/// One of two body types, so a handler can answer with either without boxing.
#[derive(Debug)]
pub enum Either<L, R> {
    /// The first type.
    Left(L),
    /// The second type.
    Right(R),
}

impl<L: Body, R: Body> Body for Either<L, R> {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        match self {
            Either::Left(b) => b.poll_chunk(cx),
            Either::Right(b) => b.poll_chunk(cx),
        }
    }

    fn size_hint(&self) -> Option<u64> {
        match self {
            Either::Left(b) => b.size_hint(),
            Either::Right(b) => b.size_hint(),
        }
    }
}

/// Where a [`RequestBody`] reads from: the connection (implemented by the driver).
pub(crate) trait BodySource {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>>;
    fn length(&self) -> BodyLength;
    fn received(&self) -> u64;
    fn trailers(&self) -> Option<&Trailers>;
}

enum Source<'a> {
    Conn(&'a mut (dyn BodySource + Send + 'a)),
    Bytes(Option<Bytes>, BodyLength),
}

/// The request body, streaming from the connection with backpressure: bytes are read from
/// the socket only when asked for, at most one read buffer
/// ([`ServerConfig::read_buffer`](crate::ServerConfig::read_buffer)) at a time, and handed
/// out as [`Bytes`] split off the read buffer (no copy). A 1 GB upload never sits in memory
/// unless the handler keeps it.
///
/// For an `Expect: 100-continue` request, `100 Continue` is written the first time the body
/// is polled (RFC 9110 §10.1.1); if the handler answers without reading, it is never sent
/// and the connection closes after the response.
///
/// It also implements [`tokio::io::AsyncRead`] (copying into the caller's buffer; a chunk
/// that does not fit is kept for the next read), for `read(n)`-style consumers.
pub struct RequestBody<'a> {
    source: Source<'a>,
    /// Rest of a chunk partly consumed through `AsyncRead`.
    leftover: Option<Bytes>,
}

impl fmt::Debug for RequestBody<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("length", &self.length())
            .field("received", &self.received())
            .finish()
    }
}

impl<'a> RequestBody<'a> {
    pub(crate) fn from_source(source: &'a mut (dyn BodySource + Send + 'a)) -> RequestBody<'a> {
        RequestBody {
            source: Source::Conn(source),
            leftover: None,
        }
    }

    /// A body that is already in memory (for tests of handlers, or for replaying a buffered
    /// body).
    pub fn from_bytes(data: Bytes) -> RequestBody<'static> {
        let length = match data.len() {
            0 => BodyLength::Empty,
            n => BodyLength::Length(n as u64),
        };
        RequestBody {
            source: Source::Bytes(Some(data).filter(|d| !d.is_empty()), length),
            leftover: None,
        }
    }

    /// How the body is framed (from the head).
    pub fn length(&self) -> BodyLength {
        match &self.source {
            Source::Conn(s) => s.length(),
            Source::Bytes(_, l) => *l,
        }
    }

    /// Body bytes taken from the connection so far (including any part of a chunk not yet
    /// consumed through `AsyncRead`).
    pub fn received(&self) -> u64 {
        match &self.source {
            Source::Conn(s) => s.received(),
            Source::Bytes(rest, l) => match l {
                BodyLength::Length(n) => n - rest.as_ref().map_or(0, |r| r.len() as u64),
                _ => 0,
            },
        }
    }

    /// The trailers of a chunked body, once the body has ended (never merged into the head).
    pub fn trailers(&self) -> Option<&Trailers> {
        match &self.source {
            Source::Conn(s) => s.trailers(),
            Source::Bytes(..) => None,
        }
    }

    /// Polls for the next chunk; `Ready(None)` at the end of the body.
    ///
    /// # Errors
    ///
    /// A parse error (400/413/431, see [`Error::status`]) for bad chunked framing or a body
    /// over the limit, a timeout ([`Error::is_timeout`]) when no byte arrived within the
    /// body timeout, [`Error::is_incomplete_body`] when the client closed early, or an I/O
    /// error. After an error the same error kind is returned again.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        if let Some(rest) = self.leftover.take() {
            return Poll::Ready(Some(Ok(rest)));
        }
        match &mut self.source {
            Source::Conn(s) => s.poll_chunk(cx),
            Source::Bytes(rest, _) => Poll::Ready(rest.take().map(Ok)),
        }
    }

    /// The next chunk, waiting for it; `None` at the end of the body.
    ///
    /// # Errors
    ///
    /// As [`poll_chunk`](Self::poll_chunk).
    pub async fn chunk(&mut self) -> Option<Result<Bytes, Error>> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// The next chunk if one is available without waiting (already buffered, or readable
    /// from the socket right now). For synchronous callers on the runtime thread; `Pending`
    /// means "would wait", and the body must then be read with [`chunk`](Self::chunk) from
    /// async code.
    ///
    /// # Errors
    ///
    /// As [`poll_chunk`](Self::poll_chunk).
    pub fn try_chunk(&mut self) -> Poll<Option<Result<Bytes, Error>>> {
        self.poll_chunk(&mut Context::from_waker(Waker::noop()))
    }

    /// Appends the body to `dst` until it ends (returns `true`) or `dst` has grown by at least
    /// `max` bytes (returns `false`; the rest can still be read). Whole chunks are appended.
    ///
    /// # Errors
    ///
    /// As [`poll_chunk`](Self::poll_chunk).
    pub async fn read_to_end(&mut self, dst: &mut BytesMut, max: usize) -> Result<bool, Error> {
        let start = dst.len();
        while dst.len() - start < max {
            match self.chunk().await {
                Some(Ok(chunk)) => dst.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(e),
                None => return Ok(true),
            }
        }
        // `max` reached exactly at the end of the body?
        match self.try_chunk() {
            Poll::Ready(None) => Ok(true),
            Poll::Ready(Some(Ok(chunk))) => {
                dst.extend_from_slice(&chunk);
                Ok(false)
            }
            Poll::Ready(Some(Err(e))) => Err(e),
            Poll::Pending => Ok(false),
        }
    }
}

impl tokio::io::AsyncRead for RequestBody<'_> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut chunk = match std::task::ready!(this.poll_chunk(cx)) {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => return Poll::Ready(Err(std::io::Error::other(e))),
            None => return Poll::Ready(Ok(())),
        };
        let n = chunk.len().min(buf.remaining());
        buf.put_slice(&chunk.split_to(n));
        if !chunk.is_empty() {
            this.leftover = Some(chunk);
        }
        Poll::Ready(Ok(()))
    }
}
