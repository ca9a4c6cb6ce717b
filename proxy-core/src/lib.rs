//! Proxy primitives for `ferrule-proxy` and other Rust servers.
//!
//! Everything here except [`server`] is sans-IO: pure functions and state machines that
//! take the request as plain data (byte slices, addresses) and, where time matters, `now`
//! as a parameter. [`server`] wires them to sockets on tokio (the `ferrule-proxy` binary
//! only parses its command line and calls it). The other exceptions are
//! [`static_files::StaticLocation::resolve`], which opens the file beneath the root and
//! reads its metadata (it never reads the file), and [`config::ProxyConfig::load`], which reads the configuration
//! file.
//!
//! - [`path`]: splitting request targets, percent-decoding, nginx's `$document_uri`
//!   normalisation and the stricter static-file path check.
//! - [`static_files`]: root/alias mapping, index files, precompressed siblings, and the
//!   response plan (ETag, Last-Modified, 304, 412, 206, 416, Cache-Control, Expires).
//! - [`uwsgi_params`]: the uwsgi vars of an upstream request, as nginx's stock
//!   `uwsgi_params` builds them, and the encoded packet.
//! - [`forwarded`]: `X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Proto` and trusted
//!   proxies.
//! - [`upstream_head`]: parsing an upstream's response head (status line or CGI `Status:`),
//!   hop-by-hop removal and body framing.
//! - [`upstream_request`]: the re-serialised request head for an HTTP/1.1 upstream.
//! - [`pool`]: upstream selection (smooth weighted round-robin, least-connections),
//!   `max_fails`/`fail_timeout`, backups, and the retry policy.
//! - [`config`]: the TOML configuration with positioned errors and longest-prefix
//!   location matching.
//! - [`error`]: the crate-level [`Error`], classified into 4xx/5xx and retryable or not.
//!
//! - [`server`]: the async server on tokio (the one module that does socket I/O):
//!   listeners, the request handler, upstream connections with a keep-alive pool, the
//!   request-body spill buffer, TLS through rustls, the access log, graceful shutdown and
//!   reload.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub use config::{ConfigError, ProxyConfig};
pub mod error;
pub use error::{Error, ErrorSource};
pub mod forwarded;
pub mod path;
pub mod pool;
pub mod server;
pub mod static_files;
pub mod upstream_head;
pub mod upstream_request;
pub mod uwsgi_params;
