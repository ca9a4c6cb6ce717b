//! A parsed request head re-serializes to a head that parses to the same fields; parsing
//! never panics and never reports more bytes than it was given. The first input byte picks
//! strict (even) or bare-LF-tolerant (odd) parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    http_front::internal::fuzz_http_head(data);
});
