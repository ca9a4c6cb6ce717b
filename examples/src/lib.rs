//! Package `ferrule`: the `ferrule` application server and the `ferrule-proxy` front.
//!
//! Both binaries are thin compositions of the library crates (option and config parsing only).
//! They arrive with the ferrule and ferrule-proxy issues; until then this package is empty.
