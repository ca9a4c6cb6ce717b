//! The crate's error type: opaque, with predicates, as hyper does.

use std::error::Error as StdError;
use std::fmt;

use uwsgi_proto::chunked::ChunkedError;

/// A boxed error from application code (a response body, a handler), `Send + Sync` so it can
/// cross threads.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Everything that can go wrong while reading a request, writing a response or driving a
/// connection.
///
/// The value is opaque: ask it with the `is_*` predicates, [`Error::status`] (the HTTP status
/// the server answers a faulty request with) and [`source`](StdError::source) (the underlying
/// `io::Error`, chunked-framing error or application error, when there is one). One box per
/// error, nothing on the success path.
pub struct Error {
    inner: Box<ErrorImpl>,
}

struct ErrorImpl {
    kind: Kind,
    cause: Option<BoxError>,
}

/// What went wrong. Private so variants can be added freely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The request is malformed or breaks a policy rule; answered with the fault's status.
    Parse(Fault),
    /// A read, write or the connection itself failed.
    Io,
    /// The peer closed the connection before the request body was complete.
    IncompleteBody,
    /// A timeout fired.
    Timeout(TimeoutKind),
    /// The application handed in an invalid response head (CR/LF in a field, bad name,
    /// bad status); the server answers 500 instead.
    InvalidResponse(&'static str),
    /// The response body produced more or fewer bytes than its declared length.
    BodyLengthMismatch,
    /// The application's response body returned an error mid-stream.
    UserBody,
}

/// Which timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeoutKind {
    /// The request head did not arrive in time (answered 408).
    Head,
    /// No request body bytes arrived within the body read timeout.
    Body,
    /// A response write made no progress within the write timeout.
    Write,
}

/// A request fault and its status code. Every variant maps to exactly one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    // ----- 400 Bad Request -----
    /// Method token or request-target rejected by httparse, or bad request-line syntax.
    RequestLine,
    /// Request-target not valid for its form or method (RFC 9112 §3.2).
    Target,
    /// Field name invalid: non-token, space before colon, obs-fold, empty (RFC 9112 §5.1-5.2).
    FieldName,
    /// Field value holds CR, LF, NUL or another CTL (RFC 9110 §5.5).
    FieldValue,
    /// A line terminator is not CRLF (bare LF while strict, or bare CR; RFC 9112 §2.2).
    LineEnding,
    /// Too many empty lines before the request line (RFC 9112 §2.2).
    LeadingEmptyLines,
    /// HTTP/1.1 request without Host (RFC 9112 §3.2).
    MissingHost,
    /// More than one Host field line (RFC 9112 §3.2).
    DuplicateHost,
    /// Host value is not `uri-host [ ":" port ]` (RFC 9112 §3.2, RFC 3986 §3.2.2).
    InvalidHost,
    /// Content-Length is not `1*DIGIT`, overflows, or is repeated (RFC 9112 §6.3 item 5).
    ContentLength,
    /// Both Content-Length and Transfer-Encoding (RFC 9112 §6.1, §6.3 item 3).
    ContentLengthWithTransferEncoding,
    /// Transfer-Encoding where chunked is not the final coding, appears twice or has
    /// parameters (RFC 9112 §6.3 item 4, §7.1).
    ChunkedNotLast,
    /// Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1).
    TransferEncodingHttp10,
    /// A field name with `_` while the policy is to reject it.
    Underscore,
    /// Chunked body framing is broken (RFC 9112 §7.1).
    Chunked,
    /// A trailer field line is malformed (RFC 9112 §7.1.2).
    Trailer,
    // ----- 413 Content Too Large -----
    /// The body is larger than the configured limit (RFC 9110 §15.5.14).
    BodyTooLarge,
    // ----- 414 URI Too Long -----
    /// The request line is longer than the limit (RFC 9112 §3).
    RequestLineTooLong,
    // ----- 417 Expectation Failed -----
    /// `Expect` with something other than `100-continue` (RFC 9110 §10.1.1).
    Expectation,
    // ----- 431 Request Header Fields Too Large -----
    /// The head is longer than the byte limit (RFC 6585 §5).
    HeadTooLarge,
    /// More field lines than the limit (RFC 6585 §5).
    TooManyFields,
    /// Trailer section over its byte or count limit.
    TrailersTooLarge,
    // ----- 501 Not Implemented -----
    /// A transfer coding other than chunked (RFC 9112 §6.1).
    UnknownTransferCoding,
    /// CONNECT while tunnelling is not allowed (RFC 9110 §9.3.6).
    ConnectNotAllowed,
    // ----- 505 HTTP Version Not Supported -----
    /// `HTTP/x.y` other than 1.0 and 1.1 (RFC 9110 §15.6.6).
    Version,
}

impl Fault {
    pub(crate) fn status(self) -> u16 {
        use Fault::*;
        match self {
            RequestLine
            | Target
            | FieldName
            | FieldValue
            | LineEnding
            | LeadingEmptyLines
            | MissingHost
            | DuplicateHost
            | InvalidHost
            | ContentLength
            | ContentLengthWithTransferEncoding
            | ChunkedNotLast
            | TransferEncodingHttp10
            | Underscore
            | Chunked
            | Trailer => 400,
            BodyTooLarge => 413,
            RequestLineTooLong => 414,
            Expectation => 417,
            HeadTooLarge | TooManyFields | TrailersTooLarge => 431,
            UnknownTransferCoding | ConnectNotAllowed => 501,
            Version => 505,
        }
    }

    fn description(self) -> &'static str {
        use Fault::*;
        match self {
            RequestLine => "invalid request line",
            Target => "invalid request-target for its form or method",
            FieldName => "invalid field name (non-token, whitespace before colon, or obs-fold)",
            FieldValue => "invalid byte in field value",
            LineEnding => "line not terminated by CRLF",
            LeadingEmptyLines => "too many empty lines before the request line",
            MissingHost => "HTTP/1.1 request without Host",
            DuplicateHost => "more than one Host field",
            InvalidHost => "invalid Host value",
            ContentLength => "invalid, repeated or overflowing Content-Length",
            ContentLengthWithTransferEncoding => "both Content-Length and Transfer-Encoding",
            ChunkedNotLast => "Transfer-Encoding without chunked as the final, single coding",
            TransferEncodingHttp10 => "Transfer-Encoding in an HTTP/1.0 request",
            Underscore => "field name with an underscore",
            Chunked => "invalid chunked framing",
            Trailer => "invalid trailer field",
            BodyTooLarge => "request body over the limit",
            RequestLineTooLong => "request line over the limit",
            Expectation => "unsupported expectation",
            HeadTooLarge => "request head over the byte limit",
            TooManyFields => "too many header fields",
            TrailersTooLarge => "trailer section over the limit",
            UnknownTransferCoding => "unsupported transfer coding",
            ConnectNotAllowed => "CONNECT is not supported",
            Version => "unsupported HTTP version",
        }
    }
}

// ===== impl Error =====

impl Error {
    pub(crate) fn new(kind: Kind) -> Error {
        Error {
            inner: Box::new(ErrorImpl { kind, cause: None }),
        }
    }

    pub(crate) fn with<E: Into<BoxError>>(mut self, cause: E) -> Error {
        self.inner.cause = Some(cause.into());
        self
    }

    pub(crate) fn parse(fault: Fault) -> Error {
        Error::new(Kind::Parse(fault))
    }

    pub(crate) fn io(e: std::io::Error) -> Error {
        Error::new(Kind::Io).with(e)
    }

    pub(crate) fn chunked(e: ChunkedError) -> Error {
        let fault = match e {
            ChunkedError::TrailersTooLong => Fault::TrailersTooLarge,
            ChunkedError::TrailerFold | ChunkedError::InvalidTrailer => Fault::Trailer,
            _ => Fault::Chunked,
        };
        Error::parse(fault).with(e)
    }

    pub(crate) fn kind(&self) -> Kind {
        self.inner.kind
    }

    /// The status code the server answers with when this error is the client's fault:
    /// 400, 408, 413, 414, 417, 431, 501 or 505; 500 for an invalid response from the
    /// application. `None` for I/O errors and other faults where no response can be sent.
    pub fn status(&self) -> Option<u16> {
        match self.inner.kind {
            Kind::Parse(f) => Some(f.status()),
            Kind::Timeout(TimeoutKind::Head | TimeoutKind::Body) => Some(408),
            Kind::InvalidResponse(_) => Some(500),
            _ => None,
        }
    }

    /// Whether the request was malformed or broke a policy rule (any 4xx/5xx fault of the
    /// request head, body framing or trailers).
    pub fn is_parse(&self) -> bool {
        matches!(self.inner.kind, Kind::Parse(_))
    }

    /// Whether the request body is larger than the configured limit (413).
    pub fn is_body_too_large(&self) -> bool {
        matches!(self.inner.kind, Kind::Parse(Fault::BodyTooLarge))
    }

    /// Whether a timeout fired (head, body read or write).
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, Kind::Timeout(_))
    }

    /// Whether an I/O operation failed; [`source`](StdError::source) is the `io::Error`.
    pub fn is_io(&self) -> bool {
        matches!(self.inner.kind, Kind::Io)
    }

    /// Whether the peer closed the connection before the request body was complete.
    pub fn is_incomplete_body(&self) -> bool {
        matches!(self.inner.kind, Kind::IncompleteBody)
    }

    /// Whether the application handed in an invalid response head (CR/LF/CTL in a field,
    /// a name that is not a token, a status outside 200-999 as a final response).
    pub fn is_invalid_response(&self) -> bool {
        matches!(self.inner.kind, Kind::InvalidResponse(_))
    }

    /// Whether the response body produced more or fewer bytes than it declared.
    pub fn is_body_length_mismatch(&self) -> bool {
        matches!(self.inner.kind, Kind::BodyLengthMismatch)
    }

    /// Whether the application's response body failed; [`source`](StdError::source) is its
    /// error.
    pub fn is_user_body(&self) -> bool {
        matches!(self.inner.kind, Kind::UserBody)
    }

    fn description(&self) -> &'static str {
        match self.inner.kind {
            Kind::Parse(f) => f.description(),
            Kind::Io => "i/o error",
            Kind::IncompleteBody => "connection closed before the request body was complete",
            Kind::Timeout(TimeoutKind::Head) => "timed out reading the request head",
            Kind::Timeout(TimeoutKind::Body) => "timed out reading the request body",
            Kind::Timeout(TimeoutKind::Write) => "timed out writing the response",
            Kind::InvalidResponse(what) => what,
            Kind::BodyLengthMismatch => "response body length differs from its Content-Length",
            Kind::UserBody => "response body failed",
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("http_front::Error");
        d.field(&self.inner.kind);
        if let Some(cause) = &self.inner.cause {
            d.field(cause);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(status) = self.status() {
            write!(f, "{status}: ")?;
        }
        f.write_str(self.description())?;
        if let Some(cause) = &self.inner.cause {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .cause
            .as_ref()
            .map(|e| &**e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_one_pointer() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn display_and_source() {
        let e = Error::chunked(ChunkedError::BareLf);
        assert_eq!(e.status(), Some(400));
        assert!(e.is_parse());
        assert!(e.source().is_some());
        assert_eq!(
            e.to_string(),
            "400: invalid chunked framing: bare LF in chunked framing"
        );
        let e = Error::io(std::io::Error::other("boom"));
        assert!(e.is_io() && e.status().is_none());
    }
}
