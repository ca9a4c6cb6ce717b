//! Package `ferrule`: the `ferrule` application server and the `ferrule-proxy` front.
//!
//! Both binaries are thin compositions of the library crates; this library holds only what
//! is specific to them: reading uWSGI's options and `.ini` files ([`options`]).

pub mod app_server;
pub mod options;
pub mod proxy_main;
