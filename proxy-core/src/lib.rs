//! Proxy primitives for `ferrule-proxy` and other Rust servers.
//!
//! This crate will hold upstream addresses and pools, the uwsgi upstream client, the HTTP/1.1
//! upstream client pool, static file serving, forwarded headers and the TLS acceptor. It is
//! being built in the ferrule-proxy issue; until then it exports nothing.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
