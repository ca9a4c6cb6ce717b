//! Parsing an upstream's response head: an HTTP status line plus fields (HTTP and uwsgi
//! upstreams), or a CGI-style head with a `Status:` field (uwsgi upstreams, as nginx's
//! uwsgi module accepts); hop-by-hop fields removed; the body framing decided
//! (RFC 9112 §6.3).
//!
//! Sans-IO: call [`parse_head`] on the bytes read so far; `Ok(None)` means "read more".
//! Every error is an invalid upstream response, answered with 502 (nginx: `upstream sent
//! invalid header` / `upstream sent too big header`).
//!
//! Not done here: the body itself (de-chunking and length counting belong to the reader),
//! `proxy_hide_header`-style removal of end-to-end fields (`Server`, `Date`,
//! `X-Accel-*`), and protocol upgrades (a 101 is reported, not tunnelled).

use thiserror::Error;

/// Which kind of upstream sent the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// An HTTP/1.x upstream: the head must start with a status line.
    Http,
    /// A uwsgi upstream: a status line, or a CGI-style head (`Status: 404 Not Found`,
    /// or `Location` → 302, or neither → 200, as nginx does). The connection is never
    /// reused (nginx's uwsgi module has no upstream keep-alive).
    Uwsgi,
}

/// Limits on an upstream head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    max_head_bytes: usize,
    max_fields: usize,
}

impl Default for HeadLimits {
    fn default() -> HeadLimits {
        HeadLimits::new()
    }
}

impl HeadLimits {
    /// The defaults: 32 KiB and 100 fields.
    pub fn new() -> HeadLimits {
        HeadLimits {
            max_head_bytes: 32 * 1024,
            max_fields: 100,
        }
    }

    /// The largest head (status line, fields and the blank line), in bytes. nginx's
    /// `proxy_buffer_size`/`uwsgi_buffer_size` is one page (4 or 8 KiB); we allow more
    /// because large `Set-Cookie` fields are common behind Python apps. Default is 32768.
    pub fn max_head_bytes(&mut self, bytes: usize) -> &mut Self {
        self.max_head_bytes = bytes;
        self
    }

    /// The most field lines. Default is 100 (hyper's default).
    pub fn max_fields(&mut self, count: usize) -> &mut Self {
        self.max_fields = count;
        self
    }
}

/// Field slots kept on the stack while parsing; a larger [`HeadLimits::max_fields`] uses
/// the heap.
const STACK_FIELDS: usize = 100;

/// How the response body is delimited on the upstream connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: a response to HEAD, or status 1xx, 204 or 304.
    None,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding` with `chunked` last: decode chunks.
    Chunked,
    /// Read until the upstream closes (no length, or a transfer coding other than chunked
    /// last).
    UntilClose,
}

/// A parsed upstream response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamHead {
    /// The status code, 100..=599.
    pub status: u16,
    /// The HTTP minor version of the status line (0 or 1; `HTTP/2.0` from a uwsgi app
    /// that copied `SERVER_PROTOCOL` counts as 1); `None` for a CGI-style head.
    pub version: Option<u8>,
    /// The kept fields' names and values, then the reason phrase, copied out of the read
    /// buffer into one allocation (see [`fields`](Self::fields), [`reason`](Self::reason)).
    text: Vec<u8>,
    /// For each kept field, in order: where its name and its value end in `text`.
    ends: Vec<(usize, usize)>,
    /// Where the reason phrase starts in `text` (it runs to the end).
    reason_start: usize,
    /// The upstream's `Content-Length`, when it sent a valid one and no
    /// `Transfer-Encoding` (also for HEAD and 304, where it describes the GET body).
    pub content_length: Option<u64>,
    /// How to read the body that follows.
    pub framing: BodyFraming,
    /// Whether the connection may carry another request after this body (HTTP/1.1
    /// without `close`, HTTP/1.0 with `keep-alive`; never for uwsgi, read-until-close, or
    /// `Content-Length` together with `Transfer-Encoding`).
    pub reusable: bool,
    /// Length of the head in the buffer, in bytes: the body starts there.
    pub head_len: usize,
}

impl UpstreamHead {
    /// Whether this is an interim 1xx response other than 101: skip it and parse the next
    /// head from `head_len` on.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    /// The reason phrase (may be empty). For a CGI head: the `Status` field's, or `OK`
    /// (200), or `Moved Temporarily` (302, a `Location` without `Status`).
    pub fn reason(&self) -> &[u8] {
        &self.text[self.reason_start..]
    }

    /// The end-to-end fields as `(name, value)`, in order: without `Connection` and the
    /// fields it names, `Keep-Alive`, `Transfer-Encoding`, `TE`, `Trailer`, `Upgrade`,
    /// `Proxy-*`, `Content-Length` (see [`content_length`](Self::content_length)) and, in a
    /// CGI head, `Status`.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &[u8])> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&(name_end, value_end)| {
            // Names were `&str` tokens when copied in, so this never falls back.
            let name = std::str::from_utf8(&self.text[start..name_end]).unwrap_or_default();
            let value = &self.text[name_end..value_end];
            start = value_end;
            (name, value)
        })
    }

    /// The first field named `name` (ASCII case-insensitive).
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// An invalid upstream response head. Every variant means 502 Bad Gateway for the client
/// and closing the upstream connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UpstreamHeadError {
    /// The head is larger than [`HeadLimits::max_head_bytes`] (nginx: `upstream sent too
    /// big header`).
    #[error("upstream sent too big header (over {limit} bytes)")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// More fields than [`HeadLimits::max_fields`].
    #[error("upstream sent more than {limit} header fields")]
    TooManyFields {
        /// The limit, in fields.
        limit: usize,
    },
    /// The status line is malformed, or an HTTP upstream did not start with one.
    #[error("upstream sent an invalid status line")]
    InvalidStatusLine,
    /// A field line is malformed (bad name, bad value bytes, obs-fold, space before `:`).
    #[error("upstream sent an invalid header field")]
    InvalidField,
    /// A CGI `Status` field is not `NNN [reason]` with NNN in 100..=599.
    #[error("upstream sent an invalid Status field")]
    InvalidStatus,
    /// `Content-Length` is not `1*DIGIT` or overflows.
    #[error("upstream sent an invalid Content-Length")]
    InvalidContentLength,
    /// Several `Content-Length` values that differ.
    #[error("upstream sent conflicting Content-Length values")]
    ConflictingContentLength,
    /// The upstream closed the connection before the head was complete (the caller
    /// reports this one on EOF; nginx: `upstream prematurely closed connection`).
    #[error("upstream prematurely closed connection while reading the response head")]
    ClosedEarly,
}

impl UpstreamHeadError {
    /// The status to answer the client with: always 502.
    pub fn status(&self) -> u16 {
        502
    }
}

/// Parses the response head at the start of `buf`.
///
/// `head_request` says the request was HEAD (then no body follows whatever the fields say).
/// Returns `Ok(None)` while the head is incomplete and under the size limit. O(head); the
/// kept fields and the reason are copied out (two allocations in all) so `buf` can be
/// reused.
///
/// # Errors
///
/// Any [`UpstreamHeadError`] except `ClosedEarly`; each means 502.
pub fn parse_head(
    buf: &[u8],
    protocol: UpstreamProtocol,
    head_request: bool,
    limits: &HeadLimits,
) -> Result<Option<UpstreamHead>, UpstreamHeadError> {
    let too_large = UpstreamHeadError::TooLarge {
        limit: limits.max_head_bytes,
    };
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    // Incomplete: wait for more, unless the limit is already reached.
    let partial = || {
        if buf.len() >= limits.max_head_bytes {
            Err(too_large)
        } else {
            Ok(None)
        }
    };
    // Status line, CGI head, or not known yet.
    let status_line = if window.starts_with(b"HTTP/") {
        let Some(nl) = window.iter().position(|&b| b == b'\n') else {
            return partial();
        };
        let line = &window[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Some((parse_status_line(line)?, nl + 1))
    } else if window.len() < 5 && b"HTTP/".starts_with(window) {
        return partial();
    } else if protocol == UpstreamProtocol::Http {
        return Err(UpstreamHeadError::InvalidStatusLine);
    } else {
        None
    };
    let fields_start = status_line.as_ref().map_or(0, |(_, n)| *n);
    // Field slots on the stack for the usual limit, on the heap for a larger one.
    let mut stack = [httparse::EMPTY_HEADER; STACK_FIELDS];
    let mut heap = Vec::new();
    let slots: &mut [httparse::Header<'_>] = if limits.max_fields <= STACK_FIELDS {
        &mut stack[..limits.max_fields]
    } else {
        heap.resize(limits.max_fields, httparse::EMPTY_HEADER);
        &mut heap[..]
    };
    let (fields_len, parsed) = match httparse::parse_headers(&window[fields_start..], slots) {
        Ok(httparse::Status::Complete((len, parsed))) => (len, parsed),
        Ok(httparse::Status::Partial) => return partial(),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(UpstreamHeadError::TooManyFields {
                limit: limits.max_fields,
            });
        }
        Err(_) => return Err(UpstreamHeadError::InvalidField),
    };
    let head_len = fields_start + fields_len;

    // Connection tokens: options, and fields to drop.
    let mut close = false;
    let mut keep_alive = false;
    let mut named: Vec<&[u8]> = Vec::new();
    for h in parsed.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                } else if !token.is_empty() {
                    named.push(token);
                }
            }
        }
    }

    let cgi = status_line.is_none();
    // Names and values never outgrow the head they come from.
    let mut text: Vec<u8> = Vec::with_capacity(head_len);
    let mut ends: Vec<(usize, usize)> = Vec::with_capacity(parsed.len());
    let mut content_length: Option<u64> = None;
    let mut transfer_codings: Vec<&[u8]> = Vec::new();
    let mut cgi_status: Option<(u16, &[u8])> = None;
    let mut location = false;
    for h in parsed.iter() {
        let name = h.name;
        let lower = |n: &str| name.eq_ignore_ascii_case(n);
        if lower("content-length") {
            for element in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                let n = parse_decimal(element).ok_or(UpstreamHeadError::InvalidContentLength)?;
                match content_length {
                    Some(prev) if prev != n => {
                        return Err(UpstreamHeadError::ConflictingContentLength);
                    }
                    _ => content_length = Some(n),
                }
            }
            continue;
        }
        if lower("transfer-encoding") {
            transfer_codings.extend(
                h.value
                    .split(|&b| b == b',')
                    .map(<[u8]>::trim_ascii)
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        if cgi && lower("status") {
            cgi_status = Some(parse_cgi_status(h.value)?);
            continue;
        }
        if is_hop_by_hop(name)
            || named
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name.as_bytes()))
        {
            continue;
        }
        if lower("location") {
            location = true;
        }
        text.extend_from_slice(name.as_bytes());
        let name_end = text.len();
        text.extend_from_slice(h.value);
        ends.push((name_end, text.len()));
    }

    let (status, reason, version) = match status_line {
        Some(((status, reason, minor), _)) => (status, reason, Some(minor)),
        None => match cgi_status {
            Some((status, reason)) => (status, reason, None),
            None if location => (302, &b"Moved Temporarily"[..], None),
            None => (200, &b"OK"[..], None),
        },
    };
    let reason_start = text.len();
    text.extend_from_slice(reason);

    let chunked = transfer_codings
        .last()
        .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
    let has_te = !transfer_codings.is_empty();
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        BodyFraming::None
    } else if has_te {
        if chunked {
            BodyFraming::Chunked
        } else {
            BodyFraming::UntilClose
        }
    } else {
        match content_length {
            Some(n) => BodyFraming::Length(n),
            None => BodyFraming::UntilClose,
        }
    };
    let persistent = match version {
        Some(1) => !close,
        Some(_) => keep_alive && !close,
        None => false,
    };
    let reusable = protocol == UpstreamProtocol::Http
        && persistent
        && framing != BodyFraming::UntilClose
        && !(has_te && content_length.is_some());
    Ok(Some(UpstreamHead {
        status,
        version,
        text,
        ends,
        reason_start,
        content_length: if has_te { None } else { content_length },
        framing,
        reusable,
        head_len,
    }))
}

/// Hop-by-hop fields (RFC 9110 §7.6.1) plus `Proxy-*`.
fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
        || (name.len() >= 6 && name[..6].eq_ignore_ascii_case("proxy-"))
}

/// `HTTP/d.d SP 3DIGIT [SP reason]` → (status, reason, minor version).
fn parse_status_line(line: &[u8]) -> Result<(u16, &[u8], u8), UpstreamHeadError> {
    let bad = UpstreamHeadError::InvalidStatusLine;
    // "HTTP/" 1 "." 1 " " 3 = 13 bytes at least.
    if line.len() < 12 {
        return Err(bad);
    }
    let (major, dot, minor) = (line[5], line[6], line[7]);
    if !major.is_ascii_digit() || dot != b'.' || !minor.is_ascii_digit() || line[8] != b' ' {
        return Err(bad);
    }
    if major == b'0' {
        return Err(bad);
    }
    let version = if major == b'1' && minor == b'0' { 0 } else { 1 };
    let (status, reason) = parse_code_and_reason(&line[9..]).ok_or(bad)?;
    Ok((status, reason, version))
}

/// `3DIGIT [SP reason]` with the status in 100..=599 and a reason of HTAB, SP, VCHAR or
/// obs-text.
fn parse_code_and_reason(v: &[u8]) -> Option<(u16, &[u8])> {
    if v.len() < 3 || !v[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let status = v[..3]
        .iter()
        .fold(0u16, |a, &d| a * 10 + u16::from(d - b'0'));
    if !(100..=599).contains(&status) {
        return None;
    }
    let reason = match v.get(3) {
        None => &v[3..3],
        Some(b' ') => &v[4..],
        Some(_) => return None,
    };
    if reason
        .iter()
        .any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f))
    {
        return None;
    }
    Some((status, reason))
}

fn parse_cgi_status(value: &[u8]) -> Result<(u16, &[u8]), UpstreamHeadError> {
    parse_code_and_reason(value.trim_ascii()).ok_or(UpstreamHeadError::InvalidStatus)
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |a, &d| {
        a.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}
