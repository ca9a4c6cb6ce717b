//! The access log: one line per request in nginx's `combined` format, emitted as a
//! tracing event with target `access` when the response body is done (or dropped).
//!
//! `$remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer"
//! "$http_user_agent"`, with times in UTC.

use std::net::SocketAddr;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_front::{Body, BoxError, RequestHead};

/// What the log line needs from the request, captured before the handler runs.
#[derive(Debug)]
pub(crate) struct AccessEntry {
    peer: Option<SocketAddr>,
    time: String,
    request_line: String,
    referer: String,
    user_agent: String,
    status: u16,
}

fn lossy(b: &[u8]) -> String {
    // Escape like nginx: quotes, backslashes and non-printable bytes as \xHH.
    let mut out = String::with_capacity(b.len());
    for &c in b {
        if c == b'"' || c == b'\\' || !(0x20..0x7f).contains(&c) {
            out.push_str(&format!("\\x{c:02X}"));
        } else {
            out.push(char::from(c));
        }
    }
    out
}

/// `$time_local` (in UTC), formatted once per second per thread.
fn local_time() -> String {
    use std::cell::RefCell;
    thread_local! {
        static CACHE: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let now = time::OffsetDateTime::now_utc();
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != now.unix_timestamp() {
            let fmt = time::macros::format_description!(
                "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
            );
            *c = (now.unix_timestamp(), now.format(&fmt).unwrap_or_default());
        }
        c.1.clone()
    })
}

impl AccessEntry {
    pub(crate) fn new(head: &RequestHead, peer: Option<SocketAddr>) -> AccessEntry {
        let time = local_time();
        let mut request_line = lossy(head.raw_method());
        request_line.push(' ');
        request_line.push_str(&lossy(head.raw_target()));
        request_line.push(' ');
        request_line.push_str(head.version().as_str());
        let field = |n: &str| head.field(n).map_or_else(|| "-".to_owned(), lossy);
        AccessEntry {
            peer,
            time,
            request_line,
            referer: field("referer"),
            user_agent: field("user-agent"),
            status: 0,
        }
    }
}

/// A response body that counts the bytes it hands out and logs the request when dropped.
#[derive(Debug)]
pub struct Logged<B> {
    inner: B,
    entry: Option<Box<AccessEntry>>,
    sent: u64,
}

impl<B> Logged<B> {
    /// `entry` is `None` when the access log is off (then nothing is logged).
    pub(crate) fn new(inner: B, mut entry: Option<Box<AccessEntry>>, status: u16) -> Logged<B> {
        if let Some(e) = &mut entry {
            e.status = status;
        }
        Logged {
            inner,
            entry,
            sent: 0,
        }
    }
}

impl<B: Body> Body for Logged<B> {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        let p = self.inner.poll_chunk(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &p {
            self.sent += chunk.len() as u64;
        }
        p
    }

    fn size_hint(&self) -> Option<u64> {
        self.inner.size_hint()
    }
}

impl<B> Drop for Logged<B> {
    fn drop(&mut self) {
        if let Some(e) = self.entry.take() {
            let peer = e
                .peer
                .map_or_else(|| "unix:".to_owned(), |p| p.ip().to_string());
            tracing::info!(
                target: "access",
                "{peer} - - [{}] \"{}\" {} {} \"{}\" \"{}\"",
                e.time,
                e.request_line,
                e.status,
                self.sent,
                e.referer,
                e.user_agent
            );
        }
    }
}
