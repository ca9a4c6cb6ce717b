//! The HTTP/1.1 connection driver over tokio `AsyncRead + AsyncWrite`.

use std::future::{Future, poll_fn};
use std::io::IoSlice;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Sleep;

mod body;

use self::body::BodyReader;
use crate::body::{BodyDecoder, BodyEvent};
use crate::config::ServerConfig;
use crate::error::{Error, Kind, TimeoutKind};
use crate::handler::{Body, Handler, Request, RequestBody, Response};
use crate::head::{HeadParser, RequestHead, Version};
use crate::response::{Framing, ResponseHead, encode_head};

/// Body chunks up to this size are copied next to the head; larger ones go out with a
/// vectored write, uncopied.
const COPY_THRESHOLD: usize = 8 * 1024;

/// Longest time the driver keeps reading (and discarding) after an error response, so a
/// client still sending its body receives the response instead of a connection reset
/// (nginx's `lingering_close`). Bounded in bytes by `max_drain_bytes`.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Pending response bytes above which the driver writes even while more pipelined requests
/// are buffered.
const PIPELINE_FLUSH: usize = 64 * 1024;

/// Serves HTTP/1.1 connections with a [`ServerConfig`].
///
/// ```
/// use http_front::{Builder, Full, Handler, Request, Response, ResponseHead, ServerConfig};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// struct Hello;
///
/// impl Handler for Hello {
///     type Body = Full;
///     async fn call(&self, _req: Request<'_>) -> Response<Full> {
///         let mut head = ResponseHead::new(200).expect("valid status");
///         head.append("Content-Type", "text/plain").expect("valid field");
///         Response::new(head, Full::new("hello\n"))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let addr = listener.local_addr()?;
/// tokio::spawn(async move {
///     let builder = Builder::new(ServerConfig::default());
///     loop {
///         let Ok((stream, _)) = listener.accept().await else { return };
///         let _ = builder.serve_connection(stream, &Hello).await;
///     }
/// });
///
/// let mut client = tokio::net::TcpStream::connect(addr).await?;
/// client.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await?;
/// let mut response = String::new();
/// client.read_to_string(&mut response).await?;
/// assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(response.ends_with("\r\n\r\nhello\n"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    config: ServerConfig,
}

impl Builder {
    /// A builder with these settings.
    pub fn new(config: ServerConfig) -> Builder {
        Builder { config }
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Serves requests on `io` until the client closes, keep-alive ends, a timeout fires or
    /// a fault ends the connection.
    ///
    /// Runs on the calling task (no spawn). `IO` must be `Send` because the request body
    /// lent to the handler is `Send` (it lives across the handler's awaits), so that the
    /// returned future is `Send` (spawnable on a multi-thread runtime) whenever the handler's
    /// future and body are.
    ///
    /// # Errors
    ///
    /// I/O errors, timeouts, and request faults (after the fault's status was answered and
    /// logged). A clean end (client closed between requests, `Connection: close`, idle
    /// timeout, request cap) is `Ok(())`.
    pub async fn serve_connection<IO, H>(&self, io: IO, handler: &H) -> Result<(), Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send,
        H: Handler + ?Sized,
    {
        self.serve_connection_with_shutdown(io, handler, std::future::pending())
            .await
    }

    /// Like [`serve_connection`](Self::serve_connection), with graceful shutdown: once
    /// `shutdown` completes, an idle connection (no request bytes buffered) is closed at once;
    /// a request in flight (or already partly received) is finished and answered with
    /// `Connection: close`, then the connection closes.
    ///
    /// # Errors
    ///
    /// As [`serve_connection`](Self::serve_connection).
    pub async fn serve_connection_with_shutdown<IO, H, S>(
        &self,
        io: IO,
        handler: &H,
        shutdown: S,
    ) -> Result<(), Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send,
        H: Handler + ?Sized,
        S: Future<Output = ()>,
    {
        let mut conn = Conn {
            io,
            rbuf: BytesMut::with_capacity(self.config.read_buffer),
            wbuf: BytesMut::with_capacity(1024),
            config: &self.config,
            parser: HeadParser::new(self.config.head.clone()),
            timer: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
            read_eof: false,
            shutdown_seen: false,
            response_started: false,
        };
        let shutdown = pin!(shutdown);
        let result = conn.run(handler, shutdown).await;
        if let Err(e) = &result {
            tracing::debug!(error = %e, "connection ended with an error");
        }
        result
    }
}

/// What the driver keeps of a request once the head went to the handler.
struct RequestInfo {
    version: Version,
    is_head: bool,
}

pub(crate) struct Conn<'cfg, IO> {
    io: IO,
    rbuf: BytesMut,
    wbuf: BytesMut,
    config: &'cfg ServerConfig,
    parser: HeadParser,
    /// One timer for every wait (head, idle, body, write, drain), reset as needed.
    timer: Pin<Box<Sleep>>,
    read_eof: bool,
    shutdown_seen: bool,
    /// Whether any byte of the current response was encoded.
    response_started: bool,
}

enum HeadOutcome {
    Head(RequestHead),
    /// Close without a response (client closed, idle timeout, shutdown while idle).
    Close,
}

impl<'cfg, IO> Conn<'cfg, IO>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn run<H, S>(&mut self, handler: &H, mut shutdown: Pin<&mut S>) -> Result<(), Error>
    where
        H: Handler + ?Sized,
        S: Future<Output = ()>,
    {
        let mut served: u64 = 0;
        loop {
            let head = match self.read_head(served == 0, shutdown.as_mut()).await {
                Ok(HeadOutcome::Head(head)) => head,
                Ok(HeadOutcome::Close) => return self.close().await,
                Err(e) => return self.refuse(e).await,
            };
            served += 1;
            let info = RequestInfo {
                version: head.version(),
                is_head: head.is_head(),
            };
            let mut keep_alive = self.config.keep_alive
                && head.keep_alive()
                && (info.version == Version::Http11 || self.config.keep_alive_http10)
                && served < self.config.max_requests_per_connection
                && head.method() != "CONNECT";
            let decoder = match BodyDecoder::new(head.body_length(), &self.config.body) {
                Ok(d) => d,
                Err(e) => return self.refuse(e).await,
            };
            let length = head.body_length();
            let continue_owed = head.expects_continue();

            // ----- the handler -----
            let mut reader = BodyReader::new(self, decoder, length, continue_owed);
            let response = {
                let request = Request {
                    head,
                    body: RequestBody::from_source(&mut reader),
                };
                let call = pin!(handler.call(request));
                let seen = &mut reader_shutdown_flag(&mut shutdown);
                poll_with_shutdown(call, seen).await
            };
            let shutdown_now = response.1;
            let response = response.0;
            let BodyReader {
                decoder,
                continue_owed,
                fault,
                ..
            } = reader;
            if shutdown_now {
                self.shutdown_seen = true;
            }
            if self.shutdown_seen {
                keep_alive = false;
            }

            // ----- body faults win over the handler's answer -----
            if let Some(kind) = fault {
                let e = Error::new(kind);
                if e.status().is_some() {
                    return self.refuse(e).await;
                }
                // I/O error or client gone: nothing sensible to answer.
                return Err(e);
            }
            let mut decoder = decoder;
            if !decoder.is_complete() {
                // The client may be waiting for 100 Continue and never send the body; or the
                // remainder is too long to drain: close after the response (RFC 9110 §10.1.1).
                let too_long = decoder
                    .remaining()
                    .is_some_and(|r| r > self.config.max_drain_bytes);
                if continue_owed || too_long {
                    keep_alive = false;
                }
            }

            // ----- the response -----
            self.response_started = false;
            if let Err(e) = self.write_response(&info, response, &mut keep_alive).await {
                let from_app =
                    e.is_invalid_response() || e.is_body_length_mismatch() || e.is_user_body();
                if from_app && !self.response_started {
                    // Nothing of this response was written: answer 500 instead.
                    return self.answer(500, e).await;
                }
                if from_app {
                    tracing::error!(error = %e, "response aborted; closing the connection");
                }
                let _ = self.close().await;
                return Err(e);
            }
            if keep_alive && !decoder.is_complete() && !self.drain(&mut decoder).await {
                keep_alive = false;
            }
            if !keep_alive {
                return self.close().await;
            }
            // Pipelining: keep gathering responses while requests are already buffered.
            if self.rbuf.is_empty() || self.wbuf.len() >= PIPELINE_FLUSH {
                self.flush().await?;
            }
        }
    }

    /// Reads until a head is complete, handling the idle and head timeouts and shutdown.
    async fn read_head<S>(
        &mut self,
        first: bool,
        mut shutdown: Pin<&mut S>,
    ) -> Result<HeadOutcome, Error>
    where
        S: Future<Output = ()>,
    {
        // Idle until the first byte of the next head; the first request of a connection is
        // under the head timeout from the start.
        let mut idle = !first;
        let mut got_bytes = false;
        let now = Instant::now();
        self.arm_timer(
            now + if idle {
                self.config.idle_timeout
            } else {
                self.config.head_timeout
            },
        );
        loop {
            if let Some(head) = self.parser.parse(&mut self.rbuf)? {
                return Ok(HeadOutcome::Head(head));
            }
            let waiting_for_first_byte = self.rbuf.is_empty() && !self.parser.is_mid_head();
            if idle && !waiting_for_first_byte {
                idle = false;
                self.arm_timer(Instant::now() + self.config.head_timeout);
            }
            if self.shutdown_seen && waiting_for_first_byte {
                return Ok(HeadOutcome::Close);
            }
            if self.read_eof {
                if !waiting_for_first_byte {
                    tracing::debug!("client closed in the middle of a request head");
                }
                return Ok(HeadOutcome::Close);
            }
            // Responses held back for pipelining go out before we wait.
            self.flush().await?;
            enum Event {
                Read(Result<usize, Error>),
                Timeout,
                Shutdown,
            }
            let watch_shutdown = !self.shutdown_seen && waiting_for_first_byte;
            let event = poll_fn(|cx| {
                if let Poll::Ready(r) = self.poll_read(cx) {
                    return Poll::Ready(Event::Read(r));
                }
                if self.timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Timeout);
                }
                if watch_shutdown && shutdown.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Shutdown);
                }
                Poll::Pending
            })
            .await;
            match event {
                Event::Read(Ok(0)) => self.read_eof = true,
                Event::Read(Ok(_)) => got_bytes = true,
                Event::Read(Err(e)) => return Err(e),
                Event::Shutdown => {
                    self.shutdown_seen = true;
                    return Ok(HeadOutcome::Close);
                }
                Event::Timeout if idle || (first && !got_bytes && waiting_for_first_byte) => {
                    tracing::debug!("idle connection timed out");
                    return Ok(HeadOutcome::Close);
                }
                Event::Timeout => return Err(Error::new(Kind::Timeout(TimeoutKind::Head))),
            }
        }
    }

    fn arm_timer(&mut self, deadline: Instant) {
        self.timer.as_mut().reset(deadline.into());
    }

    /// Encodes and writes one response. Leaves the last bytes in the write buffer (flushed by
    /// the caller, or batched with the next pipelined response).
    async fn write_response<B: Body>(
        &mut self,
        info: &RequestInfo,
        response: Response<B>,
        keep_alive: &mut bool,
    ) -> Result<(), Error> {
        let Response { head, mut body } = response;
        if head.status() < 200 {
            return Err(Error::new(Kind::InvalidResponse(
                "1xx status as a final response",
            )));
        }
        if head.wants_close() {
            *keep_alive = false;
        }
        let declared = head.content_length();
        let known = body.size_hint();
        if let (Some(d), Some(k)) = (declared, known) {
            if d != k {
                return Err(Error::new(Kind::BodyLengthMismatch));
            }
        }
        let framing = Framing::choose(info.version, info.is_head, head.status(), declared, known);
        if !framing.has_body() {
            encode_head(&head, framing, *keep_alive, info.version, &mut self.wbuf);
            self.response_started = true;
            return Ok(());
        }
        // Unknown length: gather what is ready now; if the body ends within the coalescing
        // limit it gets a Content-Length and leaves in one write with the head.
        let mut gathered: Vec<Bytes> = Vec::new();
        let mut ended = false;
        let framing = match framing {
            Framing::Chunked | Framing::CloseDelimited => {
                let mut total = 0usize;
                loop {
                    match poll_once(&mut body).await {
                        Poll::Ready(Some(Ok(chunk))) => {
                            if chunk.is_empty() {
                                continue;
                            }
                            total += chunk.len();
                            gathered.push(chunk);
                            if total > self.config.max_coalesce_bytes {
                                break framing;
                            }
                        }
                        Poll::Ready(Some(Err(e))) => return Err(Error::new(Kind::UserBody).with(e)),
                        Poll::Ready(None) => {
                            ended = true;
                            break Framing::Length(total as u64);
                        }
                        Poll::Pending => break framing,
                    }
                }
            }
            other => other,
        };
        if framing == Framing::CloseDelimited {
            *keep_alive = false;
        }
        encode_head(&head, framing, *keep_alive, info.version, &mut self.wbuf);
        self.response_started = true;
        let mut remaining = match framing {
            Framing::Length(n) => Some(n),
            _ => None,
        };
        let chunked = framing == Framing::Chunked;
        for chunk in gathered {
            self.write_chunk(chunk, chunked, &mut remaining).await?;
        }
        if !ended {
            loop {
                match poll_fn(|cx| body.poll_chunk(cx)).await {
                    Some(Ok(chunk)) if chunk.is_empty() => {}
                    Some(Ok(chunk)) => self.write_chunk(chunk, chunked, &mut remaining).await?,
                    Some(Err(e)) => return Err(Error::new(Kind::UserBody).with(e)),
                    None => break,
                }
            }
        }
        if remaining.is_some_and(|r| r > 0) {
            return Err(Error::new(Kind::BodyLengthMismatch));
        }
        if chunked {
            uwsgi_proto::chunked::encode_last_chunk(b"", &mut self.wbuf);
        }
        Ok(())
    }

    /// Writes one body chunk with the framing in force.
    async fn write_chunk(
        &mut self,
        chunk: Bytes,
        chunked: bool,
        remaining: &mut Option<u64>,
    ) -> Result<(), Error> {
        if let Some(r) = remaining {
            if chunk.len() as u64 > *r {
                return Err(Error::new(Kind::BodyLengthMismatch));
            }
            *r -= chunk.len() as u64;
        }
        if chunked {
            uwsgi_proto::chunked::encode_chunk_head(chunk.len() as u64, &mut self.wbuf);
        }
        if chunk.len() <= COPY_THRESHOLD {
            self.wbuf.extend_from_slice(&chunk);
        } else {
            self.write_with(&chunk).await?;
        }
        if chunked {
            self.wbuf.extend_from_slice(b"\r\n");
        }
        if self.wbuf.len() >= PIPELINE_FLUSH {
            self.write_with(&[]).await?;
        }
        Ok(())
    }

    /// Writes the write buffer and then `data` (vectored), under the write timeout.
    async fn write_with(&mut self, data: &[u8]) -> Result<(), Error> {
        let mut off = 0;
        let mut armed = false;
        while !self.wbuf.is_empty() || off < data.len() {
            let n = poll_fn(|cx| {
                let bufs = [IoSlice::new(&self.wbuf), IoSlice::new(&data[off..])];
                let bufs = if self.wbuf.is_empty() {
                    &bufs[1..]
                } else {
                    &bufs[..]
                };
                match Pin::new(&mut self.io).poll_write_vectored(cx, bufs) {
                    Poll::Ready(r) => Poll::Ready(r.map_err(Error::io)),
                    Poll::Pending => {
                        if !armed {
                            armed = true;
                            let deadline = Instant::now() + self.config.write_timeout;
                            self.timer.as_mut().reset(deadline.into());
                        }
                        if self.timer.as_mut().poll(cx).is_ready() {
                            return Poll::Ready(Err(Error::new(Kind::Timeout(TimeoutKind::Write))));
                        }
                        Poll::Pending
                    }
                }
            })
            .await?;
            if n == 0 {
                return Err(Error::io(std::io::ErrorKind::WriteZero.into()));
            }
            let from_wbuf = n.min(self.wbuf.len());
            self.wbuf.advance(from_wbuf);
            off += n - from_wbuf;
        }
        Ok(())
    }

    /// Writes everything pending and flushes the IO object.
    async fn flush(&mut self) -> Result<(), Error> {
        if !self.wbuf.is_empty() {
            self.write_with(&[]).await?;
        }
        self.io.flush().await.map_err(Error::io)
    }

    /// Reads and discards the rest of a request body, up to `max_drain_bytes`, under the
    /// body timeout. Returns whether the body ended (the connection can be reused).
    async fn drain(&mut self, decoder: &mut BodyDecoder) -> bool {
        if self.flush().await.is_err() {
            return false;
        }
        let mut drained: u64 = 0;
        loop {
            match decoder.decode(&mut self.rbuf) {
                Ok(Some(BodyEvent::Data(d))) => {
                    drained += d.len() as u64;
                    if drained > self.config.max_drain_bytes {
                        tracing::debug!(drained, "unread request body too long to drain");
                        return false;
                    }
                    continue;
                }
                Ok(Some(BodyEvent::End(_))) => return true,
                Ok(None) if decoder.is_done() => return true,
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "bad framing in an unread request body");
                    return false;
                }
            }
            if self.read_eof {
                return false;
            }
            self.arm_timer(Instant::now() + self.config.body_timeout);
            let read = poll_fn(|cx| {
                if let Poll::Ready(r) = self.poll_read(cx) {
                    return Poll::Ready(Some(r));
                }
                if self.timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                Poll::Pending
            })
            .await;
            match read {
                Some(Ok(0)) => {
                    self.read_eof = true;
                    return false;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return false,
            }
        }
    }

    /// Answers a request fault with its status, logs it, and closes.
    async fn refuse(&mut self, e: Error) -> Result<(), Error> {
        match e.status() {
            Some(status) => self.answer(status, e).await,
            None => {
                tracing::debug!(error = %e, "connection failed");
                let _ = self.close().await;
                Err(e)
            }
        }
    }

    /// Writes a short plain-text error response after any pending responses, logs, closes.
    async fn answer(&mut self, status: u16, e: Error) -> Result<(), Error> {
        if status >= 500 && !e.is_parse() {
            tracing::error!(status, error = %e, "answering with an error");
        } else {
            tracing::info!(status, error = %e, "refusing request");
        }
        let mut head = ResponseHead::new(status).expect("invariant: fault statuses are valid");
        head.append("Content-Type", "text/plain; charset=utf-8")
            .expect("invariant: constant field is valid");
        let mut text = Vec::with_capacity(40);
        text.extend_from_slice(status.to_string().as_bytes());
        text.push(b' ');
        text.extend_from_slice(head.reason());
        text.push(b'\n');
        encode_head(
            &head,
            Framing::Length(text.len() as u64),
            false,
            Version::Http11,
            &mut self.wbuf,
        );
        self.wbuf.extend_from_slice(&text);
        if self.close().await.is_ok() {
            self.linger().await;
        }
        Err(e)
    }

    /// Reads and discards what the client still sends, up to `max_drain_bytes` or [`LINGER`],
    /// after the write side was shut down.
    async fn linger(&mut self) {
        let deadline = Instant::now() + LINGER;
        self.arm_timer(deadline);
        let mut discarded = self.rbuf.len() as u64;
        self.rbuf.clear();
        while !self.read_eof && discarded <= self.config.max_drain_bytes {
            let read = poll_fn(|cx| {
                if let Poll::Ready(r) = self.poll_read(cx) {
                    return Poll::Ready(Some(r));
                }
                if self.timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                Poll::Pending
            })
            .await;
            match read {
                Some(Ok(0)) | Some(Err(_)) | None => return,
                Some(Ok(n)) => {
                    discarded += n as u64;
                    self.rbuf.clear();
                }
            }
        }
    }

    /// Writes what is pending, shuts the write side down and returns.
    async fn close(&mut self) -> Result<(), Error> {
        let flushed = self.flush().await;
        let _ = self.io.shutdown().await;
        flushed
    }
}

/// Polls a body once (gathering without waiting).
async fn poll_once<B: Body>(body: &mut B) -> Poll<Option<Result<Bytes, crate::error::BoxError>>> {
    poll_fn(|cx| Poll::Ready(body.poll_chunk(cx))).await
}

/// The shutdown future, polled alongside the handler to note (not act on) shutdown.
struct ShutdownFlag<'a, S> {
    shutdown: Pin<&'a mut S>,
    seen: bool,
}

fn reader_shutdown_flag<'a, S>(shutdown: &'a mut Pin<&mut S>) -> ShutdownFlag<'a, S> {
    ShutdownFlag {
        shutdown: shutdown.as_mut(),
        seen: false,
    }
}

/// Runs the handler to completion; shutdown firing meanwhile is recorded, never cancels it.
async fn poll_with_shutdown<F, S>(
    mut call: Pin<&mut F>,
    flag: &mut ShutdownFlag<'_, S>,
) -> (F::Output, bool)
where
    F: Future,
    S: Future<Output = ()>,
{
    poll_fn(|cx: &mut Context<'_>| {
        if !flag.seen && flag.shutdown.as_mut().poll(cx).is_ready() {
            flag.seen = true;
        }
        call.as_mut().poll(cx).map(|out| (out, flag.seen))
    })
    .await
}
