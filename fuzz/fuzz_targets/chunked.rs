//! Chunks encoded with `uwsgi_proto::chunked` decode to the same bytes through
//! `http_front::body::BodyDecoder` whatever the read boundaries (the first input byte sets
//! the read size); arbitrary bytes decoded as a chunked body never yield more than they hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    http_front::internal::fuzz_chunked(data);
});
