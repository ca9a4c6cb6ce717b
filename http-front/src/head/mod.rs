//! The request head: a zero-copy view of method, target, version and fields, plus the
//! framing and connection facts the policy layer derived from them.

use std::fmt;

use bytes::Bytes;

mod parse;
mod policy;
mod target;

pub use parse::HeadParser;

pub(crate) use policy::{is_token, parse_content_length};

/// A byte range of the frozen head buffer: the start in the low 32 bits, the end in the
/// high 32 (heads are capped at 16 MiB, so both fit).
///
/// One word rather than two `u32`s on purpose: a span is built in a register and stored with
/// one write. Built from narrow parts, the head's fields were written piecewise and then read
/// back as whole words when the head was moved, and those stalled store forwarding (about a
/// tenth of a 68-byte parse in profiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span(u64);

impl Span {
    /// "No such part" (an absent query, authority or Host field).
    pub(crate) const NONE: Span = Span(u64::MAX);

    pub(crate) fn new(start: usize, len: usize) -> Span {
        Span(start as u64 | ((start + len) as u64) << 32)
    }

    pub(crate) fn start(self) -> usize {
        self.0 as u32 as usize
    }

    pub(crate) fn end(self) -> usize {
        (self.0 >> 32) as usize
    }

    pub(crate) fn range(self) -> std::ops::Range<usize> {
        self.start()..self.end()
    }

    /// `None` for [`Span::NONE`].
    pub(crate) fn get(self) -> Option<Span> {
        (self != Span::NONE).then_some(self)
    }
}

/// The head's small facts in one word, for the same reason as [`Span`]: the offset of the
/// first field line in the low 32 bits, flags in the high 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta(u64);

impl Meta {
    pub(crate) const HTTP10: u32 = 1 << 0;
    /// Two bits: the [`TargetForm`] as `form as u32`.
    pub(crate) const FORM_SHIFT: u32 = 1;
    pub(crate) const SKIP_UNDERSCORES: u32 = 1 << 3;
    pub(crate) const CLOSE: u32 = 1 << 4;
    pub(crate) const KEEP_ALIVE_TOKEN: u32 = 1 << 5;
    pub(crate) const UPGRADE: u32 = 1 << 6;
    pub(crate) const EXPECT_CONTINUE: u32 = 1 << 7;
    pub(crate) const CHUNKED: u32 = 1 << 8;

    pub(crate) fn new(fields_start: usize, flags: u32) -> Meta {
        Meta(fields_start as u32 as u64 | u64::from(flags) << 32)
    }

    pub(crate) fn fields_start(self) -> usize {
        self.0 as u32 as usize
    }

    pub(crate) fn has(self, flag: u32) -> bool {
        (self.0 >> 32) as u32 & flag != 0
    }

    pub(crate) fn form(self) -> TargetForm {
        match (self.0 >> 32) as u32 >> Meta::FORM_SHIFT & 0b11 {
            0 => TargetForm::Origin,
            1 => TargetForm::Absolute,
            2 => TargetForm::Authority,
            _ => TargetForm::Asterisk,
        }
    }
}

/// The HTTP version of a request (RFC 9112 §2.3). Other versions are refused with 505.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `HTTP/1.0`.
    Http10,
    /// `HTTP/1.1`.
    Http11,
}

impl Version {
    /// The version as it appears on the wire, e.g. `"HTTP/1.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// The form of the request-target (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TargetForm {
    /// `absolute-path [ "?" query ]`, the usual form (RFC 9112 §3.2.1).
    Origin = 0,
    /// `http://authority/path?query` (RFC 9112 §3.2.2); its authority replaces Host.
    Absolute = 1,
    /// `host:port`, only with CONNECT (RFC 9112 §3.2.3).
    Authority = 2,
    /// `*`, only with OPTIONS (RFC 9112 §3.2.4).
    Asterisk = 3,
}

/// How the request body is framed (RFC 9112 §6.3). Requests are never close-delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyLength {
    /// No body: no Content-Length and no Transfer-Encoding, or `Content-Length: 0`.
    Empty,
    /// `Content-Length: n` with `n > 0`, in bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed and policed request head.
///
/// All byte views point into one frozen [`Bytes`] split off the read buffer: no copy was made
/// while parsing, and [`Field::value_bytes`] and friends hand out slices of it (O(1), one
/// reference count increment). Cloning is cheap (one `Bytes` clone, 64 bytes of offsets and flags).
///
/// Fields are not indexed: [`fields`](Self::fields) walks the validated head lines (one
/// `memchr` per line), which keeps parsing free of allocations and the head small. Iterate
/// once when building an environ or forwarding; use [`field`](Self::field) for a few
/// lookups.
///
/// Fields keep their wire order and case. Field names containing `_` are absent when the
/// [`UnderscorePolicy`](crate::UnderscorePolicy) drops them. Trailers of a chunked body are
/// never merged in here (RFC 9112 §7.1.2).
#[derive(Clone)]
pub struct RequestHead {
    pub(crate) buf: Bytes,
    pub(crate) method: Span,
    pub(crate) target: Span,
    pub(crate) path: Span,
    /// [`Span::NONE`] when there is no `?`.
    pub(crate) query: Span,
    /// [`Span::NONE`] unless absolute-form or authority-form.
    pub(crate) authority: Span,
    /// [`Span::NONE`] without a Host field.
    pub(crate) host_field: Span,
    /// The Content-Length in bytes; 0 without a body or when chunked.
    pub(crate) content_length: u64,
    pub(crate) meta: Meta,
}

// ===== impl RequestHead =====

impl RequestHead {
    fn str_at(&self, span: Span) -> &str {
        // Method, target and names were accepted by httparse and our policy as ASCII only.
        std::str::from_utf8(&self.buf[span.range()]).unwrap_or_default()
    }

    /// The method, case-sensitive as sent (RFC 9110 §9.1), e.g. `"GET"`. Any token is
    /// accepted; deciding which methods exist is the application's job.
    pub fn method(&self) -> &str {
        self.str_at(self.method)
    }

    /// The method as bytes (the same token as [`method`](Self::method), without the UTF-8
    /// check `&str` needs). O(1).
    pub fn raw_method(&self) -> &[u8] {
        &self.buf[self.method.range()]
    }

    /// The request target as bytes, exactly as sent (the same as [`target`](Self::target),
    /// without the UTF-8 check). O(1).
    pub fn raw_target(&self) -> &[u8] {
        &self.buf[self.target.range()]
    }

    /// Whether the method is exactly `HEAD` (its response has no body, RFC 9110 §9.3.2).
    pub fn is_head(&self) -> bool {
        self.method() == "HEAD"
    }

    /// The request-target exactly as sent (ASCII, no fragment), e.g. `"/a/b?x=1"`.
    pub fn target(&self) -> &str {
        self.str_at(self.target)
    }

    /// The request-target as a slice of the head buffer (O(1), no copy).
    pub fn target_bytes(&self) -> Bytes {
        self.buf.slice(self.target.range())
    }

    /// The form of the target (RFC 9112 §3.2).
    pub fn target_form(&self) -> TargetForm {
        self.meta.form()
    }

    /// The path of an origin-form or absolute-form target, still percent-encoded. `"/"` when
    /// an absolute-form target has an empty path (RFC 9110 §4.2.3); `"*"` for asterisk-form;
    /// `""` for authority-form.
    pub fn path(&self) -> &str {
        match self.meta.form() {
            TargetForm::Asterisk => "*",
            TargetForm::Authority => "",
            TargetForm::Absolute if self.path.start() == self.path.end() => "/",
            _ => self.str_at(self.path),
        }
    }

    /// The query (after `?`, without it), still percent-encoded; `None` when there is no `?`.
    pub fn query(&self) -> Option<&str> {
        self.query.get().map(|q| self.str_at(q))
    }

    /// The authority of an absolute-form or authority-form target (`host[:port]`).
    pub fn authority(&self) -> Option<&str> {
        self.authority.get().map(|a| self.str_at(a))
    }

    /// The host the request is for: the target's authority for absolute-form and
    /// authority-form (RFC 9112 §3.2.2: it replaces Host), else the Host field value (which
    /// may be empty). `None` only for an HTTP/1.0 request without Host.
    pub fn host(&self) -> Option<&[u8]> {
        self.authority
            .get()
            .or(self.host_field.get())
            .map(|s| &self.buf[s.range()])
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        match self.meta.has(Meta::HTTP10) {
            true => Version::Http10,
            false => Version::Http11,
        }
    }

    /// How the body is framed. A Content-Length over the body limit is refused later, by
    /// [`BodyDecoder::new`](crate::body::BodyDecoder::new) (413).
    pub fn body_length(&self) -> BodyLength {
        match (self.meta.has(Meta::CHUNKED), self.content_length) {
            (true, _) => BodyLength::Chunked,
            (false, 0) => BodyLength::Empty,
            (false, n) => BodyLength::Length(n),
        }
    }

    /// Whether any `Connection` line carries the `close` option (RFC 9112 §9.6).
    pub fn has_close(&self) -> bool {
        self.meta.has(Meta::CLOSE)
    }

    /// Whether the client asked for a persistent connection: HTTP/1.1 without `close`, or
    /// HTTP/1.0 with `keep-alive` and without `close` (RFC 9112 §9.3). `close` on any line wins.
    pub fn keep_alive(&self) -> bool {
        !self.has_close()
            && match self.version() {
                Version::Http11 => true,
                Version::Http10 => self.meta.has(Meta::KEEP_ALIVE_TOKEN),
            }
    }

    /// Whether the request carries `Connection: upgrade` and an `Upgrade` field on HTTP/1.1.
    /// The driver does not switch protocols (RFC 9110 §7.8 lets a server ignore Upgrade); it
    /// is exposed for the application.
    pub fn is_upgrade_request(&self) -> bool {
        self.meta.has(Meta::UPGRADE)
    }

    /// Whether the client waits for `100 Continue` before sending the body: HTTP/1.1,
    /// `Expect: 100-continue`, and a non-empty body (RFC 9110 §10.1.1).
    pub fn expects_continue(&self) -> bool {
        self.meta.has(Meta::EXPECT_CONTINUE) && self.body_length() != BodyLength::Empty
    }

    /// The fields in wire order.
    pub fn fields(&self) -> Fields<'_> {
        Fields {
            buf: &self.buf,
            rest: &self.buf[self.meta.fields_start()..],
            skip_underscores: self.meta.has(Meta::SKIP_UNDERSCORES),
        }
    }

    /// Number of fields kept. O(fields): walks the lines.
    pub fn field_count(&self) -> usize {
        self.fields().count()
    }

    /// The value of the first field named `name` (ASCII case-insensitive).
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields()
            .find(|f| f.name().eq_ignore_ascii_case(name))
            .map(|f| f.value())
    }

    /// The values of all fields named `name` (ASCII case-insensitive), in wire order.
    pub fn field_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields()
            .filter(move |f| f.name().eq_ignore_ascii_case(name))
            .map(|f| f.value())
    }

    /// The whole head as received (request line, kept and dropped fields, final CRLF), for
    /// logging or verbatim replay. O(1).
    pub fn raw(&self) -> &Bytes {
        &self.buf
    }
}

impl fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("version", &self.version())
            .field("fields", &self.fields())
            .field("body", &self.body_length())
            .field("keep_alive", &self.keep_alive())
            .finish()
    }
}

/// One request field: a view into the head buffer.
#[derive(Clone, Copy)]
pub struct Field<'a> {
    buf: &'a Bytes,
    name: &'a [u8],
    value: &'a [u8],
}

impl<'a> Field<'a> {
    /// The name as sent (a token, case kept).
    pub fn name(&self) -> &'a str {
        // httparse only accepts token characters in names, which are ASCII.
        std::str::from_utf8(self.name).unwrap_or_default()
    }

    /// The name as bytes (the same token as [`name`](Self::name), without the UTF-8 check).
    pub fn raw_name(&self) -> &'a [u8] {
        self.name
    }

    /// The value with leading and trailing SP/HTAB removed; may hold obs-text bytes
    /// (0x80-0xFF), never CTLs other than HTAB.
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The name as a slice of the head buffer (O(1), no copy).
    pub fn name_bytes(&self) -> Bytes {
        self.buf.slice_ref(self.name)
    }

    /// The value as a slice of the head buffer (O(1), no copy).
    pub fn value_bytes(&self) -> Bytes {
        if self.value.is_empty() {
            return Bytes::new();
        }
        self.buf.slice_ref(self.value)
    }
}

impl fmt::Debug for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name(), self.value().escape_ascii())
    }
}

/// Iterator over the fields of a [`RequestHead`] or [`Trailers`](crate::body::Trailers),
/// in wire order. Walks lines that were validated when the head was parsed.
#[derive(Clone)]
pub struct Fields<'a> {
    pub(crate) buf: &'a Bytes,
    /// The field lines not yet visited, up to and including the final empty line.
    pub(crate) rest: &'a [u8],
    pub(crate) skip_underscores: bool,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        loop {
            // memchr: SIMD line and colon search (a byte loop cost ~9 instructions a byte).
            let lf = memchr::memchr(b'\n', self.rest)?;
            let line = &self.rest[..lf];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                self.rest = &[];
                return None;
            }
            self.rest = &self.rest[lf + 1..];
            // Validated: `token ":" OWS value OWS`, no CR/LF inside.
            let colon = memchr::memchr(b':', line).unwrap_or(line.len());
            let name = &line[..colon];
            if self.skip_underscores && memchr::memchr(b'_', name).is_some() {
                continue;
            }
            let value = line.get(colon + 1..).unwrap_or_default();
            return Some(Field {
                buf: self.buf,
                name,
                value: trim_ows(value),
            });
        }
    }
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

impl fmt::Debug for Fields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}
