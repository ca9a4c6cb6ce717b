//! Strict, fast HTTP/1.1 server front over [httparse].
//!
//! This crate will hold the HTTP/1.1 server side that both `ferrule --http-socket` and
//! `ferrule-proxy` put in front of the world: zero-copy request head parsing with an RFC 9112
//! policy layer, body framing (Content-Length and chunked), response encoding and a
//! keep-alive/pipelining connection driver over tokio IO. It is being built in the http-front
//! issue; until then it exports nothing.
//!
//! [httparse]: https://docs.rs/httparse
#![forbid(unsafe_code)]
#![deny(missing_docs)]
