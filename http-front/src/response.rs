//! Sans-IO response encoding: status line, validated fields, framing headers, `Date`.
//!
//! [`ResponseHead`] collects the application's status and fields, refusing CR, LF and other
//! CTLs (RFC 9110 §5.5) and non-token names (§5.1) at [`ResponseHead::append`], so a bad
//! field is never written. Framing is the server's job: an application's `Content-Length`
//! is recorded and checked, `Transfer-Encoding`, `Connection` and `Keep-Alive` are not
//! copied (the encoder writes its own). [`encode_head`] writes the whole head with one
//! `reserve`.

use std::cell::RefCell;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};

use crate::error::{Error, Kind};
use crate::head::{Version, is_token, parse_content_length};

/// How a response body is delimited on the wire (RFC 9112 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// No body is sent (HEAD, 1xx, 204, 304). `content_length` is advertised when set (the
    /// length a GET would have; never for 1xx and 204, RFC 9110 §8.6).
    NoBody {
        /// The `Content-Length` value to send, if any.
        content_length: Option<u64>,
    },
    /// `Content-Length: n` and exactly `n` body bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked` (HTTP/1.1 requests only).
    Chunked,
    /// No length: the body ends when the connection closes (for HTTP/1.0 clients, RFC 9112
    /// §6.3 item 8). Forces `Connection: close`.
    CloseDelimited,
}

impl Framing {
    /// The framing for a response to a request with `version` and method (`is_head`), given
    /// the status, the application's `Content-Length` and the body's exact length if known.
    ///
    /// No body for HEAD, 1xx, 204 and 304 (RFC 9110 §6.4.1); a declared or known length gives
    /// `Length`; otherwise `Chunked` for HTTP/1.1 and `CloseDelimited` for HTTP/1.0.
    pub fn choose(
        version: Version,
        is_head: bool,
        status: u16,
        declared: Option<u64>,
        known: Option<u64>,
    ) -> Framing {
        match status {
            100..=199 | 204 => Framing::NoBody {
                content_length: None,
            },
            304 => Framing::NoBody {
                content_length: declared,
            },
            _ if is_head => Framing::NoBody {
                content_length: declared.or(known),
            },
            _ => match (declared.or(known), version) {
                (Some(n), _) => Framing::Length(n),
                (None, Version::Http11) => Framing::Chunked,
                (None, Version::Http10) => Framing::CloseDelimited,
            },
        }
    }

    /// Whether body bytes are written at all.
    pub fn has_body(self) -> bool {
        !matches!(self, Framing::NoBody { .. })
    }
}

/// A response status line and fields, validated as they are added.
///
/// Fields are encoded into one buffer as they are appended (one copy from the caller's bytes,
/// e.g. from Python strings), so writing the head later is a single `extend_from_slice`.
///
/// # Examples
///
/// ```
/// use http_front::ResponseHead;
///
/// let mut head = ResponseHead::new(200)?;
/// head.append("Content-Type", "text/plain")?;
/// assert!(head.append("X-Evil", "a\r\nSet-Cookie: x=1").is_err()); // refused, not written
/// assert_eq!(head.fields().count(), 1);
/// # Ok::<(), http_front::Error>(())
/// ```
#[derive(Clone)]
pub struct ResponseHead {
    status: u16,
    reason: Option<Box<[u8]>>,
    fields: BytesMut,
    content_length: Option<u64>,
    has_date: bool,
    close: bool,
}

/// Bytes reserved for a head's fields on the first [`ResponseHead::append`].
const FIELDS_CAPACITY: usize = 256;

impl ResponseHead {
    /// A head with `status` and its standard reason phrase.
    ///
    /// # Errors
    ///
    /// [`Error::is_invalid_response`] when `status` is not in 100..=999 (RFC 9110 §15: three
    /// digits).
    pub fn new(status: u16) -> Result<ResponseHead, Error> {
        if !(100..=999).contains(&status) {
            return Err(Error::new(Kind::InvalidResponse(
                "status code not in 100-999",
            )));
        }
        Ok(ResponseHead {
            status,
            reason: None,
            fields: BytesMut::new(),
            content_length: None,
            has_date: false,
            close: false,
        })
    }

    /// Parses a WSGI-style status line such as `"200 OK"` or `"404 Not Found"` (three digits,
    /// a space, a reason phrase that may be empty).
    ///
    /// # Errors
    ///
    /// [`Error::is_invalid_response`] when the digits or the reason are invalid (the reason
    /// may hold HTAB, SP, VCHAR and obs-text only, RFC 9112 §4).
    pub fn from_status_line(line: &[u8]) -> Result<ResponseHead, Error> {
        let bad = || Error::new(Kind::InvalidResponse("invalid status line"));
        let (code, reason) = match line {
            [a, b, c, rest @ ..] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
                let code =
                    u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
                match rest {
                    [] => (code, &[][..]),
                    [b' ', reason @ ..] => (code, reason),
                    _ => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        };
        let mut head = ResponseHead::new(code)?;
        head.set_reason(reason)?;
        Ok(head)
    }

    /// Replaces the reason phrase (by default the standard one for the status). The
    /// standard phrase itself (`OK` for 200, as most applications and upstreams send it) is
    /// not stored again: no allocation.
    ///
    /// # Errors
    ///
    /// [`Error::is_invalid_response`] when it holds CR, LF or another CTL other than HTAB.
    pub fn set_reason(&mut self, reason: &[u8]) -> Result<&mut Self, Error> {
        if !is_field_text(reason) {
            return Err(Error::new(Kind::InvalidResponse("invalid reason phrase")));
        }
        self.reason = if reason == reason_phrase(self.status).as_bytes() {
            None
        } else {
            Some(reason.into())
        };
        Ok(self)
    }

    /// Appends a field.
    ///
    /// `Content-Length` must be `1*DIGIT` and is recorded (see
    /// [`content_length`](Self::content_length)) instead of copied; `Connection` is not
    /// copied, but a `close` option in it closes the connection after the response;
    /// `Transfer-Encoding` and `Keep-Alive` are dropped (framing is the server's, RFC 9112
    /// §6.1); a `Date` field replaces the server's.
    ///
    /// # Errors
    ///
    /// [`Error::is_invalid_response`] when the name is not a token (RFC 9110 §5.1), the value
    /// holds CR, LF, NUL or another CTL other than HTAB (RFC 9110 §5.5), or Content-Length is
    /// malformed or differs from an earlier one. Nothing is written then; the caller answers
    /// 500.
    pub fn append(
        &mut self,
        name: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<&mut Self, Error> {
        let (name, value) = (name.as_ref(), value.as_ref());
        if !is_token(name) {
            return Err(Error::new(Kind::InvalidResponse(
                "field name is not a token",
            )));
        }
        if !is_field_text(value) {
            return Err(Error::new(Kind::InvalidResponse(
                "CR, LF or another control character in a field value",
            )));
        }
        if self.fields.capacity() == 0 {
            // One allocation for a typical head's fields instead of a few regrowths.
            self.fields.reserve(FIELDS_CAPACITY);
        }
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"date") => self.has_date = true,
            10 if name.eq_ignore_ascii_case(b"connection") => {
                if value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
                {
                    self.close = true;
                }
                return Ok(self);
            }
            10 if name.eq_ignore_ascii_case(b"keep-alive") => return Ok(self),
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                let n = parse_content_length(value.trim_ascii())
                    .ok_or_else(|| Error::new(Kind::InvalidResponse("invalid Content-Length")))?;
                return self.set_content_length(n);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                tracing::debug!("dropped Transfer-Encoding set by the application");
                return Ok(self);
            }
            _ => {}
        }
        self.fields.reserve(name.len() + value.len() + 4);
        self.fields.put_slice(name);
        self.fields.put_slice(b": ");
        self.fields.put_slice(value);
        self.fields.put_slice(b"\r\n");
        Ok(self)
    }

    /// Sets `Content-Length` to `n` bytes: what [`append`](Self::append) does for a
    /// `Content-Length` field, without formatting and parsing the number. The encoder
    /// writes the field (RFC 9112 §6.2) and checks the body against it.
    ///
    /// # Errors
    ///
    /// [`Error::is_invalid_response`] when a different `Content-Length` was set before
    /// (RFC 9110 §8.6: differing values are an error); the caller answers 500.
    pub fn set_content_length(&mut self, n: u64) -> Result<&mut Self, Error> {
        if self.content_length.is_some_and(|m| m != n) {
            return Err(Error::new(Kind::InvalidResponse(
                "conflicting Content-Length values",
            )));
        }
        self.content_length = Some(n);
        Ok(self)
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase that will be sent.
    pub fn reason(&self) -> &[u8] {
        self.reason
            .as_deref()
            .unwrap_or_else(|| reason_phrase(self.status).as_bytes())
    }

    /// The application's `Content-Length`, if it set one.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// Whether the application asked to close the connection (`Connection: close`).
    pub fn wants_close(&self) -> bool {
        self.close
    }

    /// The fields that will be written, in order (without framing fields), as
    /// `(name, value)` byte pairs.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields[..]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|line| {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
                (&line[..colon], line.get(colon + 2..).unwrap_or_default())
            })
    }
}

impl fmt::Debug for ResponseHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseHead")
            .field("status", &self.status)
            .field("reason", &self.reason().escape_ascii().to_string())
            .field("content_length", &self.content_length)
            .field("fields", &self.fields.escape_ascii().to_string())
            .finish()
    }
}

/// Whether `text` may stand in a field value or reason phrase: HTAB, SP, VCHAR and
/// obs-text, so no CR, LF, NUL, other CTL or DEL (RFC 9110 §5.5, §15). Eight bytes at a
/// time: a word with no byte below 0x20 and no 0x7f passes at once; a word that has one
/// (it may be an HTAB) is checked byte by byte.
fn is_field_text(text: &[u8]) -> bool {
    use crate::swar::{has_byte, has_byte_below};
    let byte_ok = |b: u8| b == b'\t' || b >= 0x20 && b != 0x7f;
    let mut words = text.chunks_exact(8);
    for word in &mut words {
        let x = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        if (has_byte_below(x, 0x20) || has_byte(x, 0x7f)) && !word.iter().all(|&b| byte_ok(b)) {
            return false;
        }
    }
    words.remainder().iter().all(|&b| byte_ok(b))
}

/// Writes `HTTP/1.1 <status> <reason>`, the fields, the framing header, `Date` (unless the
/// application set one; not on 1xx) and `Connection: close` (when `keep_alive` is false) or
/// `Connection: keep-alive` (HTTP/1.0 client kept alive), then the empty line. One `reserve`.
///
/// The status line says HTTP/1.1 whatever the request's version (RFC 9110 §2.5).
pub fn encode_head(
    head: &ResponseHead,
    framing: Framing,
    keep_alive: bool,
    request_version: Version,
    dst: &mut BytesMut,
) {
    let reason = head.reason();
    let interim = head.status < 200;
    dst.reserve(17 + reason.len() + head.fields.len() + 40 + 37 + 24 + 2);
    dst.put_slice(b"HTTP/1.1 ");
    let s = head.status;
    dst.put_slice(&[
        b'0' + (s / 100) as u8,
        b'0' + (s / 10 % 10) as u8,
        b'0' + (s % 10) as u8,
        b' ',
    ]);
    dst.put_slice(reason);
    dst.put_slice(b"\r\n");
    dst.put_slice(&head.fields);
    match framing {
        Framing::Length(n)
        | Framing::NoBody {
            content_length: Some(n),
        } => {
            dst.put_slice(b"content-length: ");
            put_decimal(n, dst);
            dst.put_slice(b"\r\n");
        }
        Framing::Chunked => dst.put_slice(b"transfer-encoding: chunked\r\n"),
        Framing::CloseDelimited | Framing::NoBody { .. } => {}
    }
    if !interim {
        if !head.has_date {
            dst.put_slice(b"date: ");
            dst.put_slice(&http_date_now());
            dst.put_slice(b"\r\n");
        }
        if !keep_alive || framing == Framing::CloseDelimited {
            dst.put_slice(b"connection: close\r\n");
        } else if request_version == Version::Http10 {
            dst.put_slice(b"connection: keep-alive\r\n");
        }
    }
    dst.put_slice(b"\r\n");
}

/// `HTTP/1.1 100 Continue` and the empty line (RFC 9110 §15.2.1).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

fn put_decimal(mut n: u64, dst: &mut BytesMut) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.put_slice(&buf[at..]);
}

/// The standard reason phrase of a status (RFC 9110 §15), or `""`.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7) rendered at most once
/// per second.
///
/// Sans-IO: the caller passes the time. The connection driver keeps one per thread.
#[derive(Debug, Clone)]
pub struct DateCache {
    second: u64,
    rendered: [u8; 29],
    renders: u64,
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache::new()
    }
}

impl DateCache {
    /// An empty cache (the first call renders).
    pub fn new() -> DateCache {
        DateCache {
            second: u64::MAX,
            rendered: [b' '; 29],
            renders: 0,
        }
    }

    /// The date for `now`; re-rendered only when the second changed since the last call.
    pub fn get(&mut self, now: SystemTime) -> &[u8; 29] {
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second {
            let text = httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(second));
            if text.len() == 29 {
                self.rendered.copy_from_slice(text.as_bytes());
            }
            self.second = second;
            self.renders += 1;
        }
        &self.rendered
    }

    /// How many times a date was rendered (for tests of the once-per-second rule).
    pub fn renders(&self) -> u64 {
        self.renders
    }
}

thread_local! {
    static DATE: RefCell<DateCache> = RefCell::new(DateCache::new());
}

/// The current date from this thread's [`DateCache`].
pub(crate) fn http_date_now() -> [u8; 29] {
    DATE.with(|d| *d.borrow_mut().get(SystemTime::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_text_check_agrees_with_the_byte_rule() {
        let byte_ok = |b: u8| b == b'\t' || b >= 0x20 && b != 0x7f;
        // Every byte value at every position of a 17-byte value (two words and a tail).
        for b in 0..=255u8 {
            for at in 0..17 {
                let mut v = *b"abcdefgh ijklmnop";
                v[at] = b;
                assert_eq!(is_field_text(&v), byte_ok(b), "byte {b:#x} at {at}");
            }
        }
        // Neighbours that a borrow across bytes could confuse.
        assert!(is_field_text(b"\x80\x80\x80\x80\x80\x80\x80\x80"));
        assert!(is_field_text(b"\xff\x20\xff\x20\x7e\x21\x80\x09"));
        assert!(!is_field_text(b"\x20\x20\x20\x20\x20\x20\x20\x1f"));
        assert!(!is_field_text(b"\x00\xff\xff\xff\xff\xff\xff\xff"));
        assert!(is_field_text(b""));
    }

    #[test]
    fn standard_reason_is_not_stored_again() {
        let mut head = ResponseHead::from_status_line(b"200 OK").unwrap();
        assert!(head.reason.is_none());
        assert_eq!(head.reason(), b"OK");
        head.set_reason(b"Fine").unwrap();
        assert_eq!(head.reason(), b"Fine");
        let head = ResponseHead::from_status_line(b"200 ").unwrap();
        assert_eq!(head.reason(), b"");
    }

    #[test]
    fn content_length_setter_matches_append() {
        let mut head = ResponseHead::new(200).unwrap();
        head.set_content_length(10).unwrap();
        assert_eq!(head.content_length(), Some(10));
        // The same value again is fine, by either route; a different one is refused.
        head.append("Content-Length", "10").unwrap();
        head.set_content_length(10).unwrap();
        assert!(
            head.set_content_length(11)
                .unwrap_err()
                .is_invalid_response()
        );
        assert!(head.append("Content-Length", "12").is_err());
        assert_eq!(head.content_length(), Some(10));
        // Framing fields are never among the stored fields.
        assert_eq!(head.fields().count(), 0);
    }

    #[test]
    fn decimal() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut b = BytesMut::new();
            put_decimal(n, &mut b);
            assert_eq!(&b[..], n.to_string().as_bytes());
        }
    }
}
