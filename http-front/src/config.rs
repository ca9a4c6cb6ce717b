//! Plain-data settings with documented defaults.

use std::time::Duration;

/// What to do with a request field whose name contains `_`.
///
/// CGI-style consumers (WSGI's `environ`, uwsgi vars, FastCGI) turn `X-Foo` into `HTTP_X_FOO`,
/// so `X-Foo` and `X_Foo` would collide and a client could overwrite a header set by a trusted
/// proxy. nginx (`underscores_in_headers off`) and gunicorn (`header_map = drop`) drop such
/// fields by default; so do we.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnderscorePolicy {
    /// Drop the field silently (logged at debug level). The default.
    #[default]
    Drop,
    /// Keep the field.
    Keep,
    /// Refuse the request with 400.
    Reject,
}

/// Limits and policy of the request head parser ([`HeadParser`](crate::HeadParser)).
///
/// The defaults are strict (RFC 9112 as a hardened front reads it, see the crate docs).
#[derive(Debug, Clone)]
pub struct HeadConfig {
    pub(crate) max_head_bytes: usize,
    pub(crate) max_fields: usize,
    pub(crate) max_request_line: usize,
    pub(crate) underscores: UnderscorePolicy,
    pub(crate) allow_bare_lf: bool,
    pub(crate) allow_connect: bool,
}

/// Largest request head accepted whatever the configuration: offsets are stored as `u32`.
const HEAD_BYTES_CAP: usize = 16 * 1024 * 1024;

impl Default for HeadConfig {
    fn default() -> Self {
        HeadConfig {
            max_head_bytes: 64 * 1024,
            max_fields: 100,
            max_request_line: 8 * 1024,
            underscores: UnderscorePolicy::Drop,
            allow_bare_lf: false,
            allow_connect: false,
        }
    }
}

impl HeadConfig {
    /// Default settings (same as [`Default`]).
    pub fn new() -> HeadConfig {
        HeadConfig::default()
    }

    /// Most bytes in a request head (request line, field lines, final CRLF; leading empty
    /// lines not counted), in bytes. A longer head is answered 431 (RFC 6585 §5).
    /// Values above 16 MiB are clamped to 16 MiB. Default is 64 KiB.
    pub fn max_head_bytes(&mut self, bytes: usize) -> &mut Self {
        self.max_head_bytes = bytes.clamp(64, HEAD_BYTES_CAP);
        self
    }

    /// Most field lines in a request head; more is answered 431 (RFC 6585 §5). Up to 100 the
    /// field slots live on the stack; more costs one heap allocation per parse. Values below 1
    /// are raised to 1. Default is 100 (hyper's and gunicorn's default).
    pub fn max_fields(&mut self, count: usize) -> &mut Self {
        self.max_fields = count.max(1);
        self
    }

    /// Most bytes in the request line (method, target, version, without CRLF); longer is
    /// answered 414 (RFC 9112 §3 asks to support at least 8000). Default is 8 KiB.
    pub fn max_request_line(&mut self, bytes: usize) -> &mut Self {
        self.max_request_line = bytes.clamp(16, HEAD_BYTES_CAP);
        self
    }

    /// What to do with field names containing `_`. Default is [`UnderscorePolicy::Drop`].
    pub fn underscores(&mut self, policy: UnderscorePolicy) -> &mut Self {
        self.underscores = policy;
        self
    }

    /// Whether a bare LF ends a line of the head (RFC 9112 §2.2 says a recipient MAY accept
    /// it). When `false`, a bare LF is answered 400, as llhttp does in strict mode; the chunked
    /// body framing never accepts it. Default is `false`.
    pub fn allow_bare_lf(&mut self, allow: bool) -> &mut Self {
        self.allow_bare_lf = allow;
        self
    }

    /// Whether CONNECT (authority-form target, RFC 9112 §3.2.3) is passed to the handler.
    /// When `false` it is answered 501. The connection driver never tunnels: after the
    /// response to a CONNECT the connection is closed. Default is `false`.
    pub fn allow_connect(&mut self, allow: bool) -> &mut Self {
        self.allow_connect = allow;
        self
    }
}

/// Limits of request body decoding ([`BodyDecoder`](crate::body::BodyDecoder)).
#[derive(Debug, Clone)]
pub struct BodyConfig {
    pub(crate) max_body_bytes: u64,
    pub(crate) max_chunk_extensions: usize,
    pub(crate) max_trailer_bytes: usize,
    pub(crate) max_trailer_fields: usize,
}

impl Default for BodyConfig {
    fn default() -> Self {
        BodyConfig {
            max_body_bytes: 1024 * 1024 * 1024,
            max_chunk_extensions: 16 * 1024,
            max_trailer_bytes: 16 * 1024,
            max_trailer_fields: 32,
        }
    }
}

impl BodyConfig {
    /// Default settings (same as [`Default`]).
    pub fn new() -> BodyConfig {
        BodyConfig::default()
    }

    /// Most request body bytes (decoded, for chunked), in bytes. A larger Content-Length is
    /// answered 413 before any body byte is read (and before `100 Continue`); a chunked body
    /// that grows past it is answered 413 when it does (RFC 9110 §15.5.14). Bodies stream, so
    /// this bounds what the application receives, not memory. Default is 1 GiB.
    pub fn max_body_bytes(&mut self, bytes: u64) -> &mut Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Most chunk-extension bytes over a whole chunked body, in bytes (RFC 9112 §7.1.1 lets a
    /// server cap them); more is answered 400. Default is 16 KiB, as hyper does.
    pub fn max_chunk_extensions(&mut self, bytes: usize) -> &mut Self {
        self.max_chunk_extensions = bytes;
        self
    }

    /// Most bytes in the trailer section of a chunked body, in bytes; more is answered 431.
    /// Default is 16 KiB.
    pub fn max_trailer_bytes(&mut self, bytes: usize) -> &mut Self {
        self.max_trailer_bytes = bytes;
        self
    }

    /// Most trailer field lines; more is answered 431. Default is 32.
    pub fn max_trailer_fields(&mut self, count: usize) -> &mut Self {
        self.max_trailer_fields = count.max(1);
        self
    }
}

/// Settings of the connection driver ([`Builder`](crate::Builder)): keep-alive, timeouts,
/// buffers, plus the [`HeadConfig`] and [`BodyConfig`] it parses requests with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub(crate) head: HeadConfig,
    pub(crate) body: BodyConfig,
    pub(crate) keep_alive: bool,
    pub(crate) keep_alive_http10: bool,
    pub(crate) max_requests_per_connection: u64,
    pub(crate) head_timeout: Duration,
    pub(crate) body_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) max_drain_bytes: u64,
    pub(crate) read_buffer: usize,
    pub(crate) max_coalesce_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            head: HeadConfig::default(),
            body: BodyConfig::default(),
            keep_alive: true,
            keep_alive_http10: true,
            max_requests_per_connection: 1000,
            head_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(75),
            write_timeout: Duration::from_secs(60),
            max_drain_bytes: 64 * 1024,
            read_buffer: 16 * 1024,
            max_coalesce_bytes: 64 * 1024,
        }
    }
}

impl ServerConfig {
    /// Default settings (same as [`Default`]).
    pub fn new() -> ServerConfig {
        ServerConfig::default()
    }

    /// The head parser's settings. Default is [`HeadConfig::default`].
    pub fn head(&mut self, head: HeadConfig) -> &mut Self {
        self.head = head;
        self
    }

    /// The body decoder's settings. Default is [`BodyConfig::default`].
    pub fn body(&mut self, body: BodyConfig) -> &mut Self {
        self.body = body;
        self
    }

    /// Whether connections persist between requests at all (RFC 9112 §9.3). When `false`,
    /// every response carries `Connection: close`. Default is `true`.
    pub fn keep_alive(&mut self, enabled: bool) -> &mut Self {
        self.keep_alive = enabled;
        self
    }

    /// Whether an HTTP/1.0 request with `Connection: keep-alive` keeps the connection open
    /// (nginx, hyper and Pingora do; RFC 9112 §9.3 allows it for an origin server). When
    /// `false`, HTTP/1.0 connections close after each response. Default is `true`.
    pub fn keep_alive_http10(&mut self, enabled: bool) -> &mut Self {
        self.keep_alive_http10 = enabled;
        self
    }

    /// Most requests served on one connection; the last one is answered with
    /// `Connection: close`. Values below 1 are raised to 1. Default is 1000 (nginx's
    /// `keepalive_requests`).
    pub fn max_requests_per_connection(&mut self, count: u64) -> &mut Self {
        self.max_requests_per_connection = count.max(1);
        self
    }

    /// Time allowed from the first byte of a request head (or the connection's start, for the
    /// first request) until the head is complete. When it fires with part of a head read, the
    /// server answers 408 and closes; with nothing read, it closes silently. Default is 30 s.
    pub fn head_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.head_timeout = timeout;
        self
    }

    /// Time allowed between two reads of the request body while the handler waits for it.
    /// When it fires the body read fails ([`Error::is_timeout`](crate::Error::is_timeout)),
    /// the server answers 408 and closes. Default is 60 s (nginx's `client_body_timeout`).
    pub fn body_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.body_timeout = timeout;
        self
    }

    /// Time an idle keep-alive connection waits for the first byte of its next request
    /// before it is closed silently. Default is 75 s (nginx's `keepalive_timeout`).
    pub fn idle_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.idle_timeout = timeout;
        self
    }

    /// Time allowed for one write to make progress; when it fires the connection is closed.
    /// Default is 60 s (nginx's `send_timeout`).
    pub fn write_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.write_timeout = timeout;
        self
    }

    /// Most unread request body bytes the driver reads and discards after the response so
    /// the connection can be reused (RFC 9112 §9.3); a longer remainder closes the connection
    /// instead. Default is 64 KiB.
    pub fn max_drain_bytes(&mut self, bytes: u64) -> &mut Self {
        self.max_drain_bytes = bytes;
        self
    }

    /// Bytes reserved in the read buffer before each socket read, in bytes (the most one
    /// read, and so one request body chunk, can hold). Values are clamped to 1 KiB..=1 MiB.
    /// Default is 16 KiB.
    pub fn read_buffer(&mut self, bytes: usize) -> &mut Self {
        self.read_buffer = bytes.clamp(1024, 1024 * 1024);
        self
    }

    /// Most response body bytes gathered while the body's chunks are immediately ready, so a
    /// body of unknown length that ends within it goes out with a Content-Length, in one
    /// write with the head. Default is 64 KiB.
    pub fn max_coalesce_bytes(&mut self, bytes: usize) -> &mut Self {
        self.max_coalesce_bytes = bytes;
        self
    }
}
