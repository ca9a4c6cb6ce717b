//! The crate-level error: one opaque type for everything that can end a proxied request,
//! classified the way a proxy must answer it (pingora's `ErrorSource` idea).
//!
//! Each module keeps its own precise error type ([`PathError`], [`StaticError`],
//! [`ParamsError`], [`UpstreamHeadError`]); they all convert into [`Error`], whose
//! [`status`](Error::status) gives the answer for the client (400, 403, 500, 502, 504),
//! [`side`](Error::side) who is at fault, and [`is_retryable`](Error::is_retryable) whether
//! another upstream server may be tried (subject to [`RetryPolicy`](crate::pool::RetryPolicy)).

use std::error::Error as StdError;
use std::fmt;
use std::io;

use crate::path::PathError;
use crate::pool::Failure;
use crate::static_files::StaticError;
use crate::upstream_head::UpstreamHeadError;
use crate::uwsgi_params::ParamsError;

/// Who caused an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The client sent something we refuse (4xx).
    Downstream,
    /// The upstream server failed or misbehaved (502/504).
    Upstream,
    /// Our side: filesystem errors, configuration limits (500).
    Internal,
}

/// An error that ends a proxied request. Opaque: ask it with the methods.
pub struct Error {
    inner: Box<ErrorImpl>,
}

struct ErrorImpl {
    kind: Kind,
    cause: Option<Box<dyn StdError + Send + Sync>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    BadPath,
    Static(u16),
    Params(u16),
    InvalidUpstreamResponse,
    Upstream(Failure),
    NoLiveUpstream,
}

impl Error {
    /// An upstream attempt failed (`failure`), with the I/O error behind it if any.
    pub fn upstream(failure: Failure, cause: Option<io::Error>) -> Error {
        Error {
            inner: Box::new(ErrorImpl {
                kind: Kind::Upstream(failure),
                cause: cause.map(|e| Box::new(e) as Box<dyn StdError + Send + Sync>),
            }),
        }
    }

    /// No upstream server is available (all down, disabled or tried): 502, as nginx's
    /// `no live upstreams`.
    pub fn no_live_upstream() -> Error {
        Error {
            inner: Box::new(ErrorImpl {
                kind: Kind::NoLiveUpstream,
                cause: None,
            }),
        }
    }

    fn new(kind: Kind, cause: impl StdError + Send + Sync + 'static) -> Error {
        Error {
            inner: Box::new(ErrorImpl {
                kind,
                cause: Some(Box::new(cause)),
            }),
        }
    }

    /// The status to answer the client with: 400 for a bad request path, 403/500 from
    /// static files, 500 for oversized uwsgi vars, 502 for a failed or invalid upstream
    /// or no live upstream, 504 for an upstream timeout.
    pub fn status(&self) -> u16 {
        match self.inner.kind {
            Kind::BadPath => 400,
            Kind::Static(s) | Kind::Params(s) => s,
            Kind::InvalidUpstreamResponse | Kind::NoLiveUpstream => 502,
            Kind::Upstream(f) => f.status(),
        }
    }

    /// Who is at fault.
    pub fn side(&self) -> ErrorSource {
        match self.inner.kind {
            Kind::BadPath => ErrorSource::Downstream,
            Kind::Static(s) | Kind::Params(s) if s < 500 => ErrorSource::Downstream,
            Kind::Static(_) | Kind::Params(_) => ErrorSource::Internal,
            Kind::InvalidUpstreamResponse | Kind::Upstream(_) | Kind::NoLiveUpstream => {
                ErrorSource::Upstream
            }
        }
    }

    /// Whether the request may be tried on another server: connect errors, timeouts and
    /// I/O errors with an upstream are (nginx's default `next_upstream error timeout`);
    /// the method and whether the request was sent are for
    /// [`RetryPolicy::may_retry`](crate::pool::RetryPolicy::may_retry) to judge.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.inner.kind,
            Kind::Upstream(Failure::Connect | Failure::Timeout | Failure::Io)
        )
    }

    /// The upstream failure behind this error, if it is one (for failure accounting
    /// with [`Pool::finish`](crate::pool::Pool::finish)).
    pub fn upstream_failure(&self) -> Option<Failure> {
        match self.inner.kind {
            Kind::Upstream(f) => Some(f),
            Kind::InvalidUpstreamResponse => Some(Failure::InvalidHead),
            _ => None,
        }
    }

    /// Whether the upstream timed out (504).
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == Kind::Upstream(Failure::Timeout)
    }

    /// Whether the upstream's response was invalid (502).
    pub fn is_invalid_upstream_response(&self) -> bool {
        self.inner.kind == Kind::InvalidUpstreamResponse
    }

    /// Whether no upstream server was available (502).
    pub fn is_no_live_upstream(&self) -> bool {
        self.inner.kind == Kind::NoLiveUpstream
    }

    /// Whether the client's request was refused (4xx).
    pub fn is_bad_request(&self) -> bool {
        self.side() == ErrorSource::Downstream
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("cause", &self.inner.cause)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.inner.kind, &self.inner.cause) {
            (Kind::NoLiveUpstream, _) => f.write_str("no live upstreams"),
            (Kind::Upstream(failure), cause) => {
                let what = match failure {
                    Failure::Connect => "connecting to the upstream failed",
                    Failure::Timeout => "the upstream timed out",
                    Failure::Io => "I/O error with the upstream",
                    Failure::InvalidHead => "the upstream sent an invalid response",
                };
                match cause {
                    Some(c) => write!(f, "{what}: {c}"),
                    None => f.write_str(what),
                }
            }
            (_, Some(cause)) => write!(f, "{cause}"),
            (kind, None) => write!(f, "{kind:?}"),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .cause
            .as_deref()
            .map(|c| c as &(dyn StdError + 'static))
    }
}

impl From<PathError> for Error {
    fn from(e: PathError) -> Error {
        Error::new(Kind::BadPath, e)
    }
}

impl From<StaticError> for Error {
    fn from(e: StaticError) -> Error {
        Error::new(Kind::Static(e.status()), e)
    }
}

impl From<ParamsError> for Error {
    fn from(e: ParamsError) -> Error {
        Error::new(Kind::Params(e.status()), e)
    }
}

impl From<UpstreamHeadError> for Error {
    fn from(e: UpstreamHeadError) -> Error {
        Error::new(Kind::InvalidUpstreamResponse, e)
    }
}
