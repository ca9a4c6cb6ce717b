//! Strict, fast HTTP/1.1 server front over [httparse].
//!
//! The HTTP/1.1 server side that both `ferrule --http-socket` (the WSGI host) and
//! `ferrule-proxy` put in front of the world: as strict as nginx about what it accepts, and
//! without copies on the hot path.
//!
//! # What it does
//!
//! - [`HeadParser`]: sans-IO, incremental request-head parsing over httparse into a zero-copy
//!   [`RequestHead`] (one frozen [`Bytes`](bytes::Bytes) for the whole head, fields as views
//!   into it), with a strict policy layer (RFC 9112 / RFC 9110): Host rules, request-target
//!   forms per method, Content-Length and Transfer-Encoding rules (request smuggling
//!   defences), CTLs, obs-fold, bare CR/LF, `_` in field names, and byte/count limits. Every
//!   fault maps to one status: 400, 413, 414, 417, 431, 501 or 505.
//! - [`body`]: sans-IO request body framing (Content-Length, and chunked through
//!   [`uwsgi_proto::chunked`], the workspace's strict decoder), trailers parsed and capped,
//!   never merged into the head.
//! - [`response`]: response encoding ([`ResponseHead`] refuses CR/LF/CTLs in fields at
//!   insertion; [`Framing`] picks Content-Length, chunked or close-delimited; no body for
//!   HEAD/1xx/204/304; `Date` rendered once per second).
//! - [`Builder`]: the connection driver over tokio `AsyncRead + AsyncWrite`: keep-alive,
//!   pipelining in order, `Expect: 100-continue` sent when the body is first read, unread
//!   bodies drained (bounded) or the connection closed, head/body/idle/write timeouts, a
//!   per-connection request cap and graceful shutdown. The application plugs in through the
//!   [`Handler`] trait: request head + streaming [`RequestBody`] in, [`Response`] with a
//!   streaming [`Body`] out.
//!
//! # The handler contract (for `wsgi-host` and `proxy-core`)
//!
//! [`Builder::serve_connection`] calls [`Handler::call`] once per request, serially, on the
//! connection's own task: no spawn, no channel, no `'static`/`Send` bound, no box per request.
//! The handler gets the owned [`RequestHead`] and a [`RequestBody`] that borrows the
//! connection (readable only during `call`), and returns a [`Response`] whose body is any
//! [`Body`] (no boxing: [`Full`], [`Chunks`], [`ChannelBody`], [`Either`] or your own type).
//!
//! - **WSGI, `threads = 1`** (Python on the runtime thread): read the body first with
//!   [`RequestBody::read_to_end`] (or spool it), then call the app synchronously inside
//!   `call`, and return the iterable as [`Chunks`] (its `poll_chunk` calls into Python and is
//!   always ready). A list of one `bytes` becomes one write with the head, with a
//!   Content-Length even if the app set none (chunks that are immediately ready are gathered,
//!   up to [`ServerConfig::max_coalesce_bytes`]). [`RequestBody::try_chunk`] reads what is
//!   already available without waiting, for a synchronous `wsgi.input.read()` that must not
//!   block the runtime.
//! - **WSGI, `threads = N`**: send the job to a Python thread; let the `call` future serve
//!   that thread's `wsgi.input` reads with [`RequestBody::chunk`] (over a channel) until the
//!   app returns; stream the response through [`ChannelBody`] (bounded: backpressure on the
//!   Python thread).
//! - **Proxy**: forward `head` (re-serialize its [`fields`](RequestHead::fields)), stream
//!   `body` upstream with [`RequestBody::chunk`], answer with the upstream body as your own
//!   [`Body`] (or [`ChannelBody`]); [`Either`] covers "error page or upstream body".
//!
//! Whatever the handler leaves unread of the body is drained (bounded) or the connection is
//! closed; client faults met while reading the body (bad chunked framing, body over the
//! limit, body timeout) are answered by the driver with their status (400/413/408), not with
//! the handler's response.
//!
//! # What it does not do
//!
//! No TLS, no HTTP/2, no Upgrade or CONNECT tunnelling (CONNECT is answered 501 unless
//! allowed, and the connection closes after its response), no response trailers, no content
//! codings. Limits are per connection; counting connections is the caller's job.
//!
//! # Defaults
//!
//! Every limit has a documented default: see [`HeadConfig`], [`BodyConfig`] and
//! [`ServerConfig`]. The `#[doc(hidden)]` items are for tests, fuzzing and benches only and
//! not covered by semver.
//!
//! [httparse]: https://docs.rs/httparse
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(no_crate_inject, attr(deny(warnings))))]

pub mod body;
mod config;
mod conn;
mod error;
mod handler;
mod head;
#[doc(hidden)]
pub mod internal;
pub mod response;
mod swar;

pub use config::{BodyConfig, HeadConfig, ServerConfig, UnderscorePolicy};
pub use conn::Builder;
pub use error::{BoxError, Error};
pub use handler::{
    Body, BodySender, ChannelBody, Chunks, Either, Full, Handler, Request, RequestBody, Response,
};
pub use head::{BodyLength, Field, Fields, HeadParser, RequestHead, TargetForm, Version};
pub use response::{Framing, ResponseHead};
