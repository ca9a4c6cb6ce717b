//! The HTTP listener (`http-socket`): http-front's connection driver in front of the app.
//!
//! Each request's body is read first, asynchronously, into memory (up to
//! [`HTTP_BODY_IN_MEMORY`] or `post-buffering`, whichever is larger) and then a temp file,
//! as nginx buffers bodies for uWSGI: a slow upload never holds the Python thread, and memory
//! stays bounded. Then the app runs through the same protocol-neutral core as the uwsgi
//! listener ([`Worker::run_request`]):
//!
//! - `threads = 1`: on the runtime thread, with a sink that keeps the response (memory up to
//!   [`HTTP_RESPONSE_IN_MEMORY`], then a temp file) and hands it to the driver when the app
//!   is done; a complete response goes out with a Content-Length, the common one-chunk case
//!   in one write with the head. A response the app streams slowly is therefore sent when it
//!   is complete: use `threads > 1` for long-lived streams (server-sent events).
//! - `threads = N`: on a pool thread, with a sink that feeds a bounded channel the driver
//!   streams from (backpressure on the app when the client reads slowly).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_front::{
    BodySender, BoxError, ChannelBody, Either, Handler, Request, RequestHead, Response,
};
use pyo3::prelude::*;

use crate::executor::Executor;
use crate::input::{BodySource, BodySpooler, EmptyBody};
use crate::response::{Outcome, ResponseHead, ResponseSink};
use crate::worker::{RequestOptions, Worker};

/// Request body bytes kept in memory before spilling to a temp file, at least (bytes).
pub const HTTP_BODY_IN_MEMORY: usize = 1 << 20;

/// Response bytes kept in memory with `threads = 1` before spilling to a temp file (bytes).
pub const HTTP_RESPONSE_IN_MEMORY: usize = 1 << 20;

/// A response's status line and headers, owned (they cross from the sink to the driver).
type OwnedHead = (String, Vec<(String, String)>);

/// Chunks waiting between a pool thread and the connection (`threads = N`).
const CHANNEL_CHUNKS: usize = 16;

/// The [`Handler`] of one HTTP connection.
pub(crate) struct WsgiHandler {
    pub(crate) worker: Arc<Worker>,
    pub(crate) executor: Executor,
    pub(crate) remote: Option<SocketAddr>,
    pub(crate) local: Option<SocketAddr>,
    /// `REMOTE_ADDR` and `REMOTE_PORT`, formatted once per connection.
    peer: Arc<Peer>,
}

/// The client's address as environ values.
#[derive(Debug, Default)]
struct Peer {
    addr: String,
    port: String,
}

impl WsgiHandler {
    pub(crate) fn new(
        worker: Arc<Worker>,
        executor: Executor,
        remote: Option<SocketAddr>,
        local: Option<SocketAddr>,
    ) -> WsgiHandler {
        let peer = remote.map_or_else(Peer::default, |r| Peer {
            addr: r.ip().to_string(),
            port: r.port().to_string(),
        });
        WsgiHandler {
            worker,
            executor,
            remote,
            local,
            peer: Arc::new(peer),
        }
    }
}

/// The response body: kept (`threads = 1`) or streamed from a pool thread.
pub(crate) type HttpBody = Either<KeptBody, ChannelBody>;

impl Handler for WsgiHandler {
    type Body = HttpBody;

    async fn call(&self, req: Request<'_>) -> Response<HttpBody> {
        let Request { head, body } = req;
        let in_memory = self.worker.config().post_buffering.max(HTTP_BODY_IN_MEMORY);
        let body = match spool(body, in_memory).await {
            Ok(body) => body,
            Err(err) => {
                // A client fault (bad framing, too large, timeout): the driver answers it
                // with its own status and closes; this response is not sent.
                tracing::info!(peer = ?self.remote, "http: reading the request body failed: {err}");
                return plain(400, "Bad Request");
            }
        };
        let options = RequestOptions::new(head.is_head(), false);
        if self.executor.is_inline() {
            self.run_inline(&head, body, options)
        } else {
            self.run_pooled(head, body, options).await
        }
    }
}

impl WsgiHandler {
    fn run_inline(
        &self,
        head: &RequestHead,
        body: Box<dyn BodySource>,
        options: RequestOptions,
    ) -> Response<HttpBody> {
        let kept = Arc::new(Mutex::new(Kept::default()));
        let sink = Box::new(KeepSink(Arc::clone(&kept)));
        let (remote, local, peer) = (self.remote, self.local, &*self.peer);
        let ran = Python::attach(|py| {
            self.worker
                .run_request(py, |b| fill(b, head, peer, local), body, sink, options)
        });
        let outcome = match ran {
            Ok((outcome, _body)) => outcome,
            Err(err) => {
                tracing::info!(peer = ?remote, "http: bad request: {err}");
                return plain(400, "Bad Request");
            }
        };
        let mut kept = std::mem::take(&mut *kept.lock().unwrap_or_else(|p| p.into_inner()));
        let Some(Ok(response_head)) = kept.head.take() else {
            return plain(500, "Internal Server Error");
        };
        let body = match kept.into_body(outcome, options.head) {
            Ok(body) => body,
            Err(err) => {
                tracing::error!("http: cannot read back the kept response: {err}");
                return plain(500, "Internal Server Error");
            }
        };
        Response::new(response_head, Either::Left(body))
    }

    async fn run_pooled(
        &self,
        head: RequestHead,
        body: Box<dyn BodySource>,
        options: RequestOptions,
    ) -> Response<HttpBody> {
        let (chunks, response_body) = ChannelBody::channel(CHANNEL_CHUNKS);
        let (head_tx, head_rx) = tokio::sync::oneshot::channel();
        let sink = Box::new(ChannelSink {
            head: Some(head_tx),
            chunks: chunks.clone(),
        });
        let worker = Arc::clone(&self.worker);
        let (remote, local, peer) = (self.remote, self.local, Arc::clone(&self.peer));
        let task: crate::executor::Task = Box::new(move |py| {
            let ran = worker.run_request(py, |b| fill(b, &head, &peer, local), body, sink, options);
            match ran {
                Ok((Outcome::Complete | Outcome::ServerError, _)) => {}
                Ok((outcome, _)) => {
                    // Cut, short or abandoned: make the driver close instead of ending the
                    // response cleanly.
                    let _ = chunks
                        .blocking_send(Err(format!("response incomplete: {outcome:?}").into()));
                }
                Err(err) => tracing::info!(peer = ?remote, "http: bad request: {err}"),
            }
        });
        let executor = self.executor.clone();
        tokio::spawn(async move { executor.run_task(task).await });
        match head_rx.await {
            Ok((status, headers)) => match convert_head(&status, &headers) {
                Some(head) => Response::new(head, Either::Right(response_body)),
                None => plain(500, "Internal Server Error"),
            },
            // The request ended before a head (bad request, pool stopping).
            Err(_) => plain(400, "Bad Request"),
        }
    }
}

/// Feeds the environ builder from an HTTP request head.
fn fill<'a>(
    builder: &mut crate::EnvironBuilder<'_, '_, 'a>,
    head: &'a RequestHead,
    peer: &'a Peer,
    local: Option<SocketAddr>,
) -> PyResult<()> {
    builder.request_line(
        head.raw_method(),
        head.raw_target(),
        head.version().as_str().as_bytes(),
    )?;
    for field in head.fields() {
        builder.header(field.raw_name(), field.value())?;
    }
    if !peer.addr.is_empty() {
        builder.var(b"REMOTE_ADDR", peer.addr.as_bytes())?;
        builder.var(b"REMOTE_PORT", peer.port.as_bytes())?;
    }
    builder.connection(None, local, false)
}

/// Reads the whole request body into memory, then a temp file.
async fn spool(
    mut body: http_front::RequestBody<'_>,
    in_memory: usize,
) -> io::Result<Box<dyn BodySource>> {
    if body.length() == http_front::BodyLength::Empty {
        return Ok(Box::new(EmptyBody));
    }
    let mut spooler = BodySpooler::new(in_memory);
    while let Some(chunk) = body.chunk().await {
        let chunk = chunk.map_err(io::Error::other)?;
        spooler.push(&chunk)?;
    }
    spooler.finish()
}

/// The app's status line and headers → http-front's head (which validates again and picks
/// the framing).
fn convert_head(status: &str, headers: &[(String, String)]) -> Option<http_front::ResponseHead> {
    let mut head = match http_front::ResponseHead::from_status_line(&latin1(status)) {
        Ok(head) => head,
        Err(err) => {
            tracing::error!("http: status {status:?} refused: {err}");
            return None;
        }
    };
    for (name, value) in headers {
        if let Err(err) = head.append(name.as_bytes(), latin1(value)) {
            tracing::error!("http: header {name:?} refused: {err}");
            return None;
        }
    }
    Some(head)
}

/// The latin-1 bytes of a header value `start_response` validated (borrowed when ASCII, as
/// nearly every value is).
fn latin1(s: &str) -> std::borrow::Cow<'_, [u8]> {
    if s.is_ascii() {
        return std::borrow::Cow::Borrowed(s.as_bytes());
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect(),
    )
}

fn plain(code: u16, text: &'static str) -> Response<HttpBody> {
    let mut head = http_front::ResponseHead::new(code).expect("invariant: a valid status code");
    head.append("Content-Type", "text/plain")
        .expect("invariant: a valid field");
    Response::new(
        head,
        Either::Left(KeptBody {
            chunks: VecDeque::from([Bytes::from_static(text.as_bytes())]),
            file: None,
            len: Some(text.len() as u64),
            fail_at_end: false,
        }),
    )
}

/// What the app sent, kept until it is done (`threads = 1`).
#[derive(Default)]
struct Kept {
    /// The head, already converted (`Err(())` if http-front refused it; logged).
    head: Option<Result<http_front::ResponseHead, ()>>,
    chunks: VecDeque<Bytes>,
    in_memory: usize,
    file: Option<File>,
    len: u64,
}

impl Kept {
    fn push(&mut self, piece: &[u8]) -> io::Result<()> {
        if piece.is_empty() {
            return Ok(());
        }
        self.len += piece.len() as u64;
        if self.file.is_none() && self.in_memory + piece.len() <= HTTP_RESPONSE_IN_MEMORY {
            self.in_memory += piece.len();
            self.chunks.push_back(Bytes::copy_from_slice(piece));
            return Ok(());
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(tempfile::tempfile()?),
        };
        file.write_all(piece)
    }

    /// `head_request`: the body was suppressed, so its length says nothing (the app's
    /// Content-Length, if any, describes the GET response and is sent as is).
    fn into_body(mut self, outcome: Outcome, head_request: bool) -> io::Result<KeptBody> {
        if let Some(file) = &mut self.file {
            file.seek(SeekFrom::Start(0))?;
        }
        Ok(KeptBody {
            chunks: self.chunks,
            file: self.file,
            len: (!head_request).then_some(self.len),
            fail_at_end: !matches!(outcome, Outcome::Complete | Outcome::ServerError),
        })
    }
}

struct KeepSink(Arc<Mutex<Kept>>);

impl ResponseSink for KeepSink {
    fn send_head(&mut self, head: &ResponseHead<'_>, body: &[&[u8]]) -> io::Result<()> {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        kept.head = Some(convert_head(head.status, head.headers).ok_or(()));
        body.iter().try_for_each(|piece| kept.push(piece))
    }

    fn send_body(&mut self, body: &[&[u8]]) -> io::Result<()> {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        body.iter().try_for_each(|piece| kept.push(piece))
    }
}

/// A kept response: memory chunks, then the spilled file, with its exact length (so the
/// driver sends a Content-Length and keeps the connection alive).
#[derive(Debug)]
pub(crate) struct KeptBody {
    chunks: VecDeque<Bytes>,
    file: Option<File>,
    /// Exact length, when known.
    len: Option<u64>,
    /// The app failed or sent less than its Content-Length: end with an error, so the
    /// driver closes the connection instead of ending the response cleanly.
    fail_at_end: bool,
}

impl http_front::Body for KeptBody {
    fn poll_chunk(&mut self, _: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Poll::Ready(Some(Ok(chunk)));
        }
        if let Some(file) = &mut self.file {
            let mut buf = vec![0u8; 64 * 1024];
            match file.read(&mut buf) {
                Ok(0) => self.file = None,
                Ok(n) => {
                    buf.truncate(n);
                    return Poll::Ready(Some(Ok(Bytes::from(buf))));
                }
                Err(err) => return Poll::Ready(Some(Err(err.into()))),
            }
        }
        if std::mem::take(&mut self.fail_at_end) {
            return Poll::Ready(Some(Err(
                "the application did not complete its response".into()
            )));
        }
        Poll::Ready(None)
    }

    fn size_hint(&self) -> Option<u64> {
        self.len.filter(|_| !self.fail_at_end)
    }
}

/// Hands the response to the connection's task over channels (`threads = N`). Runs on a
/// pool thread with the GIL released, so blocking on a full channel is backpressure.
struct ChannelSink {
    head: Option<tokio::sync::oneshot::Sender<OwnedHead>>,
    chunks: BodySender,
}

impl ChannelSink {
    fn send(&self, body: &[&[u8]]) -> io::Result<()> {
        for piece in body.iter().filter(|p| !p.is_empty()) {
            self.chunks
                .blocking_send(Ok(Bytes::copy_from_slice(piece)))
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client is gone"))?;
        }
        Ok(())
    }
}

impl ResponseSink for ChannelSink {
    fn send_head(&mut self, head: &ResponseHead<'_>, body: &[&[u8]]) -> io::Result<()> {
        let sender = self
            .head
            .take()
            .ok_or_else(|| io::Error::other("the response head was already sent"))?;
        sender
            .send((head.status.to_owned(), head.headers.to_vec()))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client is gone"))?;
        self.send(body)
    }

    fn send_body(&mut self, body: &[&[u8]]) -> io::Result<()> {
        self.send(body)
    }
}
