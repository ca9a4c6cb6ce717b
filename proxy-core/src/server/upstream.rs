//! Upstream connections (TCP or unix), the request/response exchange for uwsgi and HTTP
//! upstreams, the keep-alive pool of HTTP upstream connections, and the response body
//! reader.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http_front::{ChannelBody, Either, Full};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use uwsgi_proto::chunked::{ChunkedDecoder, ChunkedEvent};

use super::spool::{Spool, ready_or_timeout, write_all_timeout};
use super::{Site, Timeouts, UpstreamRt};
use crate::config::UpstreamAddr;
use crate::pool::{Failure, Outcome, PeerId};
use crate::upstream_head::{BodyFraming, HeadLimits, UpstreamHead, UpstreamProtocol, parse_head};

/// A connection to an upstream server.
#[derive(Debug)]
pub(crate) enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_flush(cx),
            Conn::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }
}

/// An idle keep-alive connection.
#[derive(Debug)]
pub(crate) struct Idle {
    conn: Conn,
    since: Instant,
}

/// A failed attempt: why, and whether the request had been (partly) sent.
#[derive(Debug)]
pub(crate) struct AttemptError {
    pub(crate) failure: Failure,
    pub(crate) sent: bool,
    pub(crate) cause: String,
}

fn fail(failure: Failure, sent: bool, cause: impl ToString) -> AttemptError {
    AttemptError {
        failure,
        sent,
        cause: cause.to_string(),
    }
}

fn io_failure(e: &io::Error) -> Failure {
    if e.kind() == io::ErrorKind::TimedOut {
        Failure::Timeout
    } else {
        Failure::Io
    }
}

async fn connect(addr: &UpstreamAddr, timeout: Duration) -> Result<Conn, AttemptError> {
    let attempt = async {
        match addr {
            UpstreamAddr::Tcp(a) => {
                let s = TcpStream::connect(a).await?;
                let _ = s.set_nodelay(true);
                Ok(Conn::Tcp(s))
            }
            UpstreamAddr::Host(h, p) => {
                let s = TcpStream::connect((h.as_str(), *p)).await?;
                let _ = s.set_nodelay(true);
                Ok(Conn::Tcp(s))
            }
            UpstreamAddr::Unix(path) => {
                Ok::<_, io::Error>(Conn::Unix(UnixStream::connect(path).await?))
            }
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(fail(
            Failure::Connect,
            false,
            format!("connect to {addr}: {e}"),
        )),
        Err(_) => Err(fail(
            Failure::Timeout,
            false,
            format!("connect to {addr} timed out"),
        )),
    }
}

/// The response of a successful attempt: its head and the body to hand to the client.
pub(crate) struct Answer {
    pub(crate) head: UpstreamHead,
    pub(crate) body: Either<Full, ChannelBody>,
}

/// One attempt at server `peer`: connect (or reuse), send the head and the body, read the
/// response head, and set up the body. When the body is streamed (`Either::Right`), the
/// reader task reports the outcome to the pool at its end; otherwise the caller does.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn attempt(
    site: &Arc<Site>,
    up: &UpstreamRt,
    peer: PeerId,
    addr: &UpstreamAddr,
    request_head: &[u8],
    body: &Spool,
    head_request: bool,
    now: Instant,
) -> Result<Answer, AttemptError> {
    let t = site.options.timeouts;
    let http = up.protocol == UpstreamProtocol::Http;
    // A reused keep-alive connection may have been closed by the server meanwhile: on a
    // failure before any response byte, try once more on a fresh connection.
    if http {
        if let Some(conn) = take_idle(up, peer, now) {
            match exchange(conn, request_head, body, head_request, up.protocol, t).await {
                Ok((head, conn, buf)) => {
                    return Ok(finish_answer(site, up, peer, head, conn, buf, now));
                }
                Err((e, got_bytes)) if got_bytes => return Err(e),
                Err((e, _)) => {
                    tracing::debug!(
                        "reused upstream connection failed, reconnecting: {}",
                        e.cause
                    );
                }
            }
        }
    }
    let conn = connect(addr, t.connect).await?;
    match exchange(conn, request_head, body, head_request, up.protocol, t).await {
        Ok((head, conn, buf)) => Ok(finish_answer(site, up, peer, head, conn, buf, now)),
        Err((e, _)) => Err(e),
    }
}

/// The most recently parked connection to `peer` that has been idle for less than
/// `keepalive_timeout` at `now` (older ones are closed).
fn take_idle(up: &UpstreamRt, peer: PeerId, now: Instant) -> Option<Conn> {
    let mut idle = up.idle.lock().unwrap_or_else(|e| e.into_inner());
    let list = idle.get_mut(peer.index())?;
    while let Some(i) = list.pop() {
        if now.saturating_duration_since(i.since) < up.keepalive_timeout {
            return Some(i.conn);
        }
    }
    None
}

/// Parks `conn` for reuse, idle since `since` (the request's start time is close enough
/// and errs on the early side), dropping the oldest beyond the keep-alive limit.
fn put_idle(up: &UpstreamRt, peer: PeerId, conn: Conn, since: Instant) {
    if up.keepalive == 0 {
        return;
    }
    let mut idle = up.idle.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(list) = idle.get_mut(peer.index()) {
        if list.len() >= up.keepalive {
            list.remove(0);
        }
        list.push(Idle { conn, since });
    }
}

/// Sends the request and reads the response head. The error's flag says whether any
/// response byte was read (then a retry on a fresh connection is not safe).
async fn exchange(
    mut conn: Conn,
    request_head: &[u8],
    body: &Spool,
    head_request: bool,
    protocol: UpstreamProtocol,
    t: Timeouts,
) -> Result<(UpstreamHead, Conn, BytesMut), (AttemptError, bool)> {
    // Head and a small in-memory body go out in one write.
    let sent_err = |e: &io::Error| {
        (
            fail(io_failure(e), true, format!("sending the request: {e}")),
            false,
        )
    };
    let sent = async {
        match body {
            Spool::Mem(b) if b.len() <= 16 * 1024 => {
                let mut one = BytesMut::with_capacity(request_head.len() + b.len());
                one.extend_from_slice(request_head);
                one.extend_from_slice(b);
                write_all_timeout(&mut conn, &one, t.send).await
            }
            _ => {
                write_all_timeout(&mut conn, request_head, t.send).await?;
                body.send(&mut conn, t.send).await
            }
        }
    }
    .await;
    // An app may answer without reading the whole body and close (a 401 or 413 for an
    // upload): the write then fails, but its response can still be read, as nginx does.
    let send_error = match sent {
        Ok(()) => None,
        Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(sent_err(&e)),
        Err(e) => Some(e),
    };
    let limits = HeadLimits::new();
    let mut buf = BytesMut::with_capacity(8 * 1024);
    loop {
        match parse_head(&buf, protocol, head_request, &limits) {
            Ok(Some(head)) if head.is_interim() => {
                buf.advance(head.head_len);
                continue;
            }
            Ok(Some(mut head)) => {
                buf.advance(head.head_len);
                if send_error.is_some() {
                    head.reusable = false;
                }
                return Ok((head, conn, buf));
            }
            Ok(None) => {}
            Err(e) => return Err((fail(Failure::InvalidHead, true, e), true)),
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(8 * 1024);
        }
        let got = !buf.is_empty();
        let read = ready_or_timeout!(t.read, conn.read_buf(&mut buf));
        if let (Some(e), Ok(Ok(0) | Err(_)) | Err(_)) = (&send_error, &read) {
            return Err(sent_err(e));
        }
        match read {
            Ok(Ok(0)) => {
                return Err((
                    fail(
                        Failure::Io,
                        true,
                        "upstream prematurely closed connection while reading the response head",
                    ),
                    got,
                ));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err((
                    fail(Failure::Io, true, format!("reading the response: {e}")),
                    got,
                ));
            }
            Err(_) => {
                return Err((
                    fail(
                        Failure::Timeout,
                        true,
                        "upstream timed out reading the response head",
                    ),
                    true,
                ));
            }
        }
    }
}

/// Sets up the body: ready bytes as a [`Full`], otherwise a task streaming the rest.
fn finish_answer(
    site: &Arc<Site>,
    up: &UpstreamRt,
    peer: PeerId,
    head: UpstreamHead,
    conn: Conn,
    mut buf: BytesMut,
    now: Instant,
) -> Answer {
    let reusable = head.reusable && up.protocol == UpstreamProtocol::Http;
    match head.framing {
        BodyFraming::None => {
            if reusable && buf.is_empty() {
                put_idle(up, peer, conn, now);
            }
            Answer {
                head,
                body: Either::Left(Full::empty()),
            }
        }
        BodyFraming::Length(n) if buf.len() as u64 >= n => {
            let data = buf.split_to(n as usize).freeze();
            if reusable && buf.is_empty() {
                put_idle(up, peer, conn, now);
            }
            Answer {
                head,
                body: Either::Left(Full::new(data)),
            }
        }
        BodyFraming::Chunked => {
            // The whole chunked body may already be here (small responses).
            let mut probe = buf.clone();
            let mut decoder = ChunkedDecoder::new();
            let mut parts: Vec<Bytes> = Vec::new();
            loop {
                match decoder.decode(&mut probe) {
                    Ok(Some(ChunkedEvent::Data(d))) => parts.push(d),
                    Ok(Some(ChunkedEvent::End { .. })) => {
                        if reusable && probe.is_empty() {
                            put_idle(up, peer, conn, now);
                        }
                        let mut all = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
                        for p in &parts {
                            all.extend_from_slice(p);
                        }
                        return Answer {
                            head,
                            body: Either::Left(Full::new(all.freeze())),
                        };
                    }
                    _ => break,
                }
            }
            let framing = head.framing;
            let ahead = read_ahead(&head);
            Answer {
                head,
                body: Either::Right(stream_body(
                    site, up, peer, conn, buf, framing, reusable, ahead,
                )),
            }
        }
        framing => {
            let ahead = read_ahead(&head);
            Answer {
                head,
                body: Either::Right(stream_body(
                    site, up, peer, conn, buf, framing, reusable, ahead,
                )),
            }
        }
    }
}

/// How many reads (of up to 64 KiB) the body reader may run ahead of a slow client: 32
/// (at most 2 MiB per response, so the upstream worker is freed early, like nginx's
/// `proxy_buffering` without the temporary file), or 1 when the upstream asked for
/// `X-Accel-Buffering: no` (server-sent events, long polls).
fn read_ahead(head: &UpstreamHead) -> usize {
    match head.field("x-accel-buffering") {
        Some(v) if v.trim_ascii().eq_ignore_ascii_case(b"no") => 1,
        _ => 32,
    }
}

/// A reader task that decodes the upstream body and feeds the client's response body.
#[allow(clippy::too_many_arguments)]
fn stream_body(
    site: &Arc<Site>,
    up: &UpstreamRt,
    peer: PeerId,
    mut conn: Conn,
    mut buf: BytesMut,
    framing: BodyFraming,
    reusable: bool,
    read_ahead: usize,
) -> ChannelBody {
    let (tx, body) = ChannelBody::channel(read_ahead);
    let site = Arc::clone(site);
    let name = up.name.clone();
    let read_timeout = site.options.timeouts.read;
    tokio::spawn(async move {
        let mut decoder = ChunkedDecoder::new();
        let mut left = match framing {
            BodyFraming::Length(n) => n,
            _ => u64::MAX,
        };
        let result: Result<bool, String> = async {
            loop {
                // Hand out what is buffered.
                match framing {
                    BodyFraming::None => return Ok(buf.is_empty()),
                    BodyFraming::Length(_) => {
                        if !buf.is_empty() {
                            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                            let data = buf.split_to(n).freeze();
                            left -= n as u64;
                            if tx.send(Ok(data)).await.is_err() {
                                return Ok(false);
                            }
                        }
                        if left == 0 {
                            return Ok(buf.is_empty());
                        }
                    }
                    BodyFraming::Chunked => loop {
                        match decoder.decode(&mut buf) {
                            Ok(Some(ChunkedEvent::Data(d))) => {
                                if tx.send(Ok(d)).await.is_err() {
                                    return Ok(false);
                                }
                            }
                            Ok(Some(ChunkedEvent::End { .. })) => return Ok(buf.is_empty()),
                            Ok(None) => break,
                            Err(e) => return Err(format!("invalid chunked body: {e}")),
                        }
                    },
                    BodyFraming::UntilClose => {
                        if !buf.is_empty() {
                            let data = buf.split().freeze();
                            if tx.send(Ok(data)).await.is_err() {
                                return Ok(false);
                            }
                        }
                    }
                }
                buf.reserve(64 * 1024);
                match ready_or_timeout!(read_timeout, conn.read_buf(&mut buf)) {
                    Ok(Ok(0)) if framing == BodyFraming::UntilClose => return Ok(false),
                    Ok(Ok(0)) => {
                        return Err("upstream prematurely closed connection".to_owned());
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(format!("reading the response body: {e}")),
                    Err(_) => return Err("upstream timed out reading the response body".into()),
                }
            }
        }
        .await;
        // The server's connection count (least-conn) is released only now; a broken body
        // counts as a failure of the server.
        let outcome = if result.is_err() {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        if let Some(up) = site.upstreams.get(&name) {
            let now = Instant::now();
            up.pool
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .finish(peer, outcome, now);
            if reusable && matches!(result, Ok(true)) {
                put_idle(up, peer, conn, now);
            }
        }
        if let Err(msg) = result {
            tracing::error!(upstream = %name, "{msg}");
            let _ = tx.send(Err(msg.into())).await;
        }
    });
    body
}
