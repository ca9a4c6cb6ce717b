//! Incremental head parsing over httparse: offsets first, one `freeze`, then `Bytes` views.

use std::fmt;
use std::mem::MaybeUninit;

use bytes::{Buf, BytesMut};

use super::policy;
use super::{Meta, RequestHead, Span, Version};
use crate::config::HeadConfig;
use crate::error::{Error, Fault};

/// Field slots kept on the stack; a larger `max_fields` uses the heap.
const STACK_FIELDS: usize = 100;

/// Most empty lines skipped before a request line (RFC 9112 §2.2 asks for at least one).
const MAX_LEADING_EMPTY_LINES: u32 = 8;

/// Sans-IO, incremental parser of request heads.
///
/// Feed it the connection's read buffer after each read. It returns `Ok(None)` until a whole
/// head is there, then splits the head off the front of the buffer (once, no copy) and
/// returns the [`RequestHead`]; the body and any pipelined requests stay in the buffer.
///
/// A head arriving in pieces is not re-parsed from byte 0 on every read: after a partial
/// parse the parser remembers how far it looked and only scans the new bytes for the empty
/// line that ends the head (hyper's `is_complete_fast`), calling httparse again only then.
/// Total work for a head of `n` bytes is O(n) plus one httparse pass per "looks complete".
///
/// Empty lines before the request line are skipped (at most 8, RFC 9112 §2.2).
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use http_front::{HeadConfig, HeadParser};
///
/// let mut parser = HeadParser::new(HeadConfig::default());
/// let mut buf = BytesMut::from(&b"GET /hi?x=1 HTTP/1.1\r\nHost: example.com\r\n"[..]);
/// assert!(parser.parse(&mut buf)?.is_none()); // not complete yet
/// buf.extend_from_slice(b"Accept: */*\r\n\r\nNEXT");
/// let head = parser.parse(&mut buf)?.expect("complete");
/// assert_eq!(head.method(), "GET");
/// assert_eq!(head.path(), "/hi");
/// assert_eq!(head.query(), Some("x=1"));
/// assert_eq!(head.host(), Some(&b"example.com"[..]));
/// assert_eq!(&buf[..], b"NEXT"); // what follows the head stays in the buffer
/// # Ok::<(), http_front::Error>(())
/// ```
///
/// A faulty head is refused with the status the server must answer:
///
/// ```
/// use bytes::BytesMut;
/// use http_front::{HeadConfig, HeadParser};
///
/// let mut parser = HeadParser::new(HeadConfig::default());
/// let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n\r\n"[..]);
/// let err = parser.parse(&mut buf).unwrap_err();
/// assert_eq!(err.status(), Some(400)); // HTTP/1.1 without Host
/// ```
pub struct HeadParser {
    config: HeadConfig,
    parser: httparse::ParserConfig,
    /// Empty lines skipped before this head.
    empty_lines: u32,
    /// Whether a byte of the request line has been seen.
    started: bool,
    /// Bytes of the buffer already scanned without finding the end of the head (0 before
    /// the first partial parse).
    scanned: usize,
    /// Whether the request line is known to be complete and within its limit.
    line_done: bool,
    /// httparse invocations for the current head (for tests of the pre-scan).
    full_parses: u32,
}

impl fmt::Debug for HeadParser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeadParser")
            .field("config", &self.config)
            .field("scanned", &self.scanned)
            .finish_non_exhaustive()
    }
}

impl HeadParser {
    /// A parser with the given limits and policy.
    pub fn new(config: HeadConfig) -> HeadParser {
        HeadParser {
            config,
            parser: httparse::ParserConfig::default(),
            empty_lines: 0,
            started: false,
            scanned: 0,
            line_done: false,
            full_parses: 0,
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &HeadConfig {
        &self.config
    }

    /// Whether part of a head (other than skipped empty lines) has been seen and is waiting
    /// for more bytes.
    pub fn is_mid_head(&self) -> bool {
        self.started
    }

    /// httparse passes spent on the current (or last) head. Exposed for tests of the
    /// incremental pre-scan; not part of the stable API.
    #[doc(hidden)]
    pub fn full_parses(&self) -> u32 {
        self.full_parses
    }

    /// Forgets any partial head, ready for a new connection.
    pub fn reset(&mut self) {
        self.empty_lines = 0;
        self.started = false;
        self.scanned = 0;
        self.line_done = false;
    }

    /// Parses the head at the front of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed (skipped empty lines are consumed from
    /// `buf`; head bytes stay). On success the head and leading empty lines are split off
    /// `buf` (no copy) and the parser is ready for the next head.
    ///
    /// # Errors
    ///
    /// A parse [`Error`] whose [`status`](Error::status) is the answer: 400 (syntax, Host,
    /// Content-Length, Transfer-Encoding, target form, obs-fold, CTLs, bare LF/CR), 414
    /// (request line over [`HeadConfig::max_request_line`]), 417 (unsupported `Expect`),
    /// 431 (head over [`HeadConfig::max_head_bytes`] or over [`HeadConfig::max_fields`]),
    /// 501 (unknown transfer coding, CONNECT not allowed), 505 (version not 1.0/1.1). After
    /// an error the connection must be closed; call [`reset`](Self::reset) before reuse.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<RequestHead>, Error> {
        if !self.started {
            if !self.skip_empty_lines(buf)? || buf.is_empty() {
                return Ok(None);
            }
            self.started = true;
            self.full_parses = 0;
        }
        // A buffer shorter than the limit cannot hold a too-long line: no scan needed.
        if !self.line_done && buf.len() > self.config.max_request_line + 1 {
            self.check_request_line(buf)?;
        }
        if self.scanned > 0 && !head_end_seen(buf, self.scanned) {
            return self.partial(buf);
        }
        self.full_parses += 1;
        match self.parse_complete(buf)? {
            Some(head) => {
                self.reset();
                Ok(Some(head))
            }
            None => self.partial(buf),
        }
    }

    /// Consumes empty lines; returns `false` when a lone CR needs the next byte.
    fn skip_empty_lines(&mut self, buf: &mut BytesMut) -> Result<bool, Error> {
        loop {
            let skip = match buf.first() {
                Some(b'\r') => match buf.get(1) {
                    Some(b'\n') => 2,
                    Some(_) => return Err(Error::parse(Fault::LineEnding)),
                    None => return Ok(false),
                },
                Some(b'\n') if self.config.allow_bare_lf => 1,
                Some(b'\n') => return Err(Error::parse(Fault::LineEnding)),
                _ => return Ok(true),
            };
            self.empty_lines += 1;
            if self.empty_lines > MAX_LEADING_EMPTY_LINES {
                return Err(Error::parse(Fault::LeadingEmptyLines));
            }
            buf.advance(skip);
        }
    }

    /// 414 as soon as the request line is known to be too long, without waiting for the
    /// whole head. Scans the line once.
    fn check_request_line(&mut self, buf: &[u8]) -> Result<(), Error> {
        let limit = self.config.max_request_line;
        let window = &buf[..buf.len().min(limit + 2)];
        match window.iter().position(|&b| b == b'\n') {
            Some(_) => self.line_done = true,
            None if buf.len() > limit + 1 => return Err(Error::parse(Fault::RequestLineTooLong)),
            None => {}
        }
        Ok(())
    }

    fn partial(&mut self, buf: &BytesMut) -> Result<Option<RequestHead>, Error> {
        if buf.len() > self.config.max_head_bytes {
            return Err(Error::parse(Fault::HeadTooLarge));
        }
        self.scanned = buf.len();
        Ok(None)
    }

    fn parse_complete(&mut self, buf: &mut BytesMut) -> Result<Option<RequestHead>, Error> {
        let max_fields = self.config.max_fields;
        let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_FIELDS];
        let mut heap = Vec::new();
        let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if max_fields <= STACK_FIELDS {
            &mut stack[..max_fields]
        } else {
            heap.resize_with(max_fields, MaybeUninit::uninit);
            &mut heap[..]
        };
        let mut req = httparse::Request::new(&mut []);
        let bytes: &[u8] = buf;
        let len = match self
            .parser
            .parse_request_with_uninit_headers(&mut req, bytes, slots)
        {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            // 505 or 400 depends on the whole version token: wait for the line to end (the
            // request-line limit bounds the wait).
            Err(httparse::Error::Version) if version_token_incomplete(bytes) => return Ok(None),
            Err(e) => return Err(Error::parse(map_httparse(e, bytes))),
        };
        if len > self.config.max_head_bytes {
            return Err(Error::parse(Fault::HeadTooLarge));
        }
        let bytes = &bytes[..len];
        let base = bytes.as_ptr() as usize;
        let offset = |s: &[u8]| s.as_ptr() as usize - base;
        // httparse fills all three on Complete; empty defaults keep this panic-free.
        let method = req.method.unwrap_or_default();
        let target = req.path.unwrap_or_default();
        let version = match req.version {
            Some(0) => Version::Http10,
            _ => Version::Http11,
        };
        let method_span = Span::new(offset(method.as_bytes()), method.len());
        let target_span = Span::new(offset(target.as_bytes()), target.len());
        // request-line = method SP request-target SP HTTP-version, without the CRLF.
        let line_end = target_span.end() + 9;
        if line_end > self.config.max_request_line {
            return Err(Error::parse(Fault::RequestLineTooLong));
        }
        let semantics = policy::analyze(&req, bytes, version, target_span, &self.config)
            .map_err(Error::parse)?;
        // The request line ends 9 bytes after the target (" HTTP/1.x"), then CRLF or LF.
        let fields_start = line_end
            + if bytes.get(line_end) == Some(&b'\r') {
                2
            } else {
                1
            };

        let head = buf.split_to(len).freeze();
        Ok(Some(RequestHead {
            buf: head,
            method: method_span,
            target: target_span,
            path: semantics.path,
            query: semantics.query,
            authority: semantics.authority,
            host_field: semantics.host_field,
            content_length: semantics.content_length,
            meta: Meta::new(fields_start, semantics.flags),
        }))
    }
}

/// Whether the bytes after `from` (minus the 3 bytes a split terminator can straddle)
/// contain the empty line that ends a head: `LF LF` or `LF CR LF`.
fn head_end_seen(buf: &[u8], from: usize) -> bool {
    let mut at = from.saturating_sub(3);
    while let Some(p) = buf[at..].iter().position(|&b| b == b'\n') {
        let lf = at + p;
        match buf.get(lf + 1) {
            Some(b'\n') => return true,
            Some(b'\r') if buf.get(lf + 2) == Some(&b'\n') => return true,
            _ => {}
        }
        at = lf + 1;
    }
    false
}

/// Maps an httparse error to our fault. A version error is 505 when the token has the
/// `HTTP/DIGIT.DIGIT` syntax (RFC 9112 §2.3) and 400 otherwise.
fn map_httparse(e: httparse::Error, buf: &[u8]) -> Fault {
    match e {
        httparse::Error::HeaderName => Fault::FieldName,
        httparse::Error::HeaderValue => Fault::FieldValue,
        httparse::Error::NewLine => Fault::LineEnding,
        httparse::Error::TooManyHeaders => Fault::TooManyFields,
        httparse::Error::Version if well_formed_version(buf) => Fault::Version,
        _ => Fault::RequestLine,
    }
}

/// Whether the request line's version token may still grow (no line end yet and shorter
/// than `HTTP/x.y`).
fn version_token_incomplete(buf: &[u8]) -> bool {
    if buf.iter().any(|&b| b == b'\r' || b == b'\n') {
        return false;
    }
    let mut parts = buf.splitn(3, |&b| b == b' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some(v)) => v.len() < 8 && !v.contains(&b' '),
        _ => true,
    }
}

fn well_formed_version(buf: &[u8]) -> bool {
    let line_end = buf.iter().position(|&b| b == b'\r' || b == b'\n');
    let line = &buf[..line_end.unwrap_or(buf.len())];
    let mut parts = line.split(|&b| b == b' ');
    let version = (parts.next(), parts.next(), parts.next(), parts.next());
    match version {
        (Some(_), Some(_), Some(v), None) => {
            v.len() == 8
                && v.starts_with(b"HTTP/")
                && v[5].is_ascii_digit()
                && v[6] == b'.'
                && v[7].is_ascii_digit()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_scan_finds_terminators() {
        assert!(head_end_seen(b"GET / HTTP/1.1\r\n\r\n", 0));
        assert!(head_end_seen(b"GET / HTTP/1.1\n\n", 0));
        assert!(!head_end_seen(b"GET / HTTP/1.1\r\nA: b\r\n", 0));
        assert!(!head_end_seen(b"GET / HTTP/1.1\r\nA: b\r\n\r", 0));
        // The terminator straddles the previous scan's end.
        assert!(head_end_seen(b"GET / HTTP/1.1\r\nA: b\r\n\r\n", 22));
    }

    #[test]
    fn version_syntax() {
        assert!(well_formed_version(b"GET / HTTP/2.0\r\n"));
        assert!(well_formed_version(b"GET / HTTP/1.2\r\n"));
        assert!(!well_formed_version(b"GET / ICE/1.0\r\n"));
        assert!(!well_formed_version(b"GET / HTTP/1.10\r\n"));
        assert!(!well_formed_version(b"GET /\r\n"));
    }

    #[test]
    fn pieces_do_not_reparse_from_zero() {
        let head = b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-A: 1\r\n\r\n";
        let mut parser = HeadParser::new(HeadConfig::default());
        let mut buf = BytesMut::new();
        for (i, b) in head.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let got = parser.parse(&mut buf).unwrap();
            if i + 1 < head.len() {
                assert!(got.is_none());
            } else {
                assert_eq!(
                    got.unwrap().body_length(),
                    super::super::BodyLength::Length(5)
                );
            }
        }
        // One httparse pass for the first byte, one when the end appeared: not one per byte.
        assert!(parser.full_parses <= 2, "{} passes", parser.full_parses);
    }
}
