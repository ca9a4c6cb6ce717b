//! Request body framing: Content-Length and chunked (checklist rules 7 and 25-29), limits,
//! trailers, every-offset splits, and an encode/decode property.

mod support;

use bytes::{Bytes, BytesMut};
use http_front::body::{BodyDecoder, BodyEvent};
use http_front::{BodyConfig, BodyLength};
use proptest::prelude::*;

/// Decodes `body` framed as chunked; `Ok(Some((data, trailers as pairs, leftover)))`,
/// `Ok(None)` if incomplete, or the error status.
/// Decoded data, trailers as pairs, bytes left after the body.
type Decoded = (Vec<u8>, Vec<(String, String)>, Vec<u8>);

fn chunked(config: &BodyConfig, body: &[u8]) -> Result<Option<Decoded>, u16> {
    let mut buf = BytesMut::from(body);
    let mut decoder = BodyDecoder::new(BodyLength::Chunked, config).unwrap();
    let mut data = Vec::new();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(BodyEvent::Data(d))) => data.extend_from_slice(&d),
            Ok(Some(BodyEvent::End(t))) => {
                let trailers = t
                    .fields()
                    .map(|f| {
                        (
                            f.name().to_owned(),
                            String::from_utf8_lossy(f.value()).into_owned(),
                        )
                    })
                    .collect();
                return Ok(Some((data, trailers, buf.to_vec())));
            }
            Ok(None) => return Ok(None),
            Err(e) => return Err(e.status().expect("body faults have a status")),
        }
    }
}

/// `chunk!(name, bytes => body "data")`, `chunk!(name, bytes => status N)`,
/// `chunk!(name, bytes => incomplete)`.
macro_rules! chunk {
    ($name:ident, $input:expr => body $want:expr) => {
        #[test]
        fn $name() {
            let got = chunked(&BodyConfig::default(), $input)
                .expect("accepted")
                .expect("complete");
            assert_eq!(got.0, $want.as_bytes());
        }
    };
    ($name:ident, $input:expr => status $status:expr) => {
        #[test]
        fn $name() {
            assert_eq!(
                chunked(&BodyConfig::default(), $input).map(|_| ()),
                Err($status)
            );
        }
    };
    ($name:ident, $input:expr => incomplete) => {
        #[test]
        fn $name() {
            assert_eq!(chunked(&BodyConfig::default(), $input), Ok(None));
        }
    };
}

// ----- Rule 25: chunk-size = 1*HEXDIG, no sign/0x/whitespace, overflow refused -----

chunk!(r25_simple, b"5\r\nhello\r\n0\r\n\r\n" => body "hello");
chunk!(r25_upper_hex, b"A\r\n0123456789\r\n0\r\n\r\n" => body "0123456789");
chunk!(r25_zero_prefixed_last, b"1\r\nx\r\n000\r\n\r\n" => body "x");
chunk!(r25_empty_size_line, b"\r\nhello\r\n0\r\n\r\n" => status 400);
chunk!(r25_space_only_size, b" \r\n" => status 400);
chunk!(r25_leading_space, b" 5\r\nhello\r\n0\r\n\r\n" => status 400);
chunk!(r25_plus, b"+5\r\nhello\r\n0\r\n\r\n" => status 400);
chunk!(r25_minus, b"-5\r\nhello\r\n0\r\n\r\n" => status 400);
chunk!(r25_0x, b"0x5\r\nhello\r\n0\r\n\r\n" => status 400);
chunk!(r25_inner_space, b"5 0\r\n" => status 400);
chunk!(r25_trailing_space, b"5 \r\nhello\r\n0\r\n\r\n" => status 400);
chunk!(r25_overflow, b"10000000000000000\r\n" => status 400);
chunk!(r25_16_digits_ok, b"0000000000000001\r\nx\r\n0\r\n\r\n" => body "x");

// ----- Rule 26: extensions ignored, capped, no CR/LF/CTL inside -----

chunk!(r26_extensions_ignored, b"5;a=b;c=\"d e\"\r\nhello\r\n0;x\r\n\r\n" => body "hello");
chunk!(r26_bws_before_semicolon, b"5 ;a\r\nhello\r\n0\r\n\r\n" => body "hello");
chunk!(r26_lf_in_extension, b"5;a\nb\r\nhello\r\n0\r\n\r\n" => status 400);
chunk!(r26_cr_in_extension, b"5;a\rb\r\nhello\r\n0\r\n\r\n" => status 400);
chunk!(r26_nul_in_extension, b"5;a\x00b\r\nhello\r\n0\r\n\r\n" => status 400);

#[test]
fn r26_extension_cap_over_whole_body() {
    let mut config = BodyConfig::default();
    config.max_chunk_extensions(10);
    assert!(chunked(&config, b"1;abcd\r\nx\r\n1;efgh\r\ny\r\n0\r\n\r\n").is_ok());
    // 5 + 5 + 5 extension bytes over three chunks.
    assert_eq!(
        chunked(&config, b"1;abcd\r\nx\r\n1;efgh\r\ny\r\n0;ijkl\r\n\r\n").map(|_| ()),
        Err(400)
    );
}

// ----- Rule 27: every line and every chunk's data end in CRLF -----

chunk!(r27_bare_lf_after_size, b"5\nhello\r\n0\r\n\r\n" => status 400);
chunk!(r27_bare_cr_after_size, b"5\rhello\r\n0\r\n\r\n" => status 400);
chunk!(r27_no_crlf_after_data, b"5\r\nhelloX0\r\n\r\n" => status 400);
chunk!(r27_lf_after_data, b"5\r\nhello\n0\r\n\r\n" => status 400);
chunk!(r27_data_longer_than_size, b"3\r\nhello\r\n0\r\n\r\n" => status 400);
chunk!(r27_bare_lf_final_line, b"5\r\nhello\r\n0\r\n\n" => status 400);
chunk!(r27_missing_last_chunk, b"5\r\nhello\r\n\r\n" => status 400);
chunk!(r27_truncated_is_incomplete, b"5\r\nhel" => incomplete);

// ----- Rule 28: trailers parsed, capped, never merged; obs-fold and CTLs refused -----

#[test]
fn r28_trailers_parsed_apart() {
    let (data, trailers, rest) = chunked(
        &BodyConfig::default(),
        b"5\r\nhello\r\n0\r\nContent-Length: 99\r\nX-Sum: abc\r\n\r\nGET /next",
    )
    .unwrap()
    .unwrap();
    assert_eq!(data, b"hello");
    assert_eq!(
        trailers,
        [
            ("Content-Length".to_owned(), "99".to_owned()),
            ("X-Sum".to_owned(), "abc".to_owned())
        ]
    );
    assert_eq!(rest, b"GET /next");
}

chunk!(r28_trailer_obs_fold, b"0\r\nA: 1\r\n b\r\n\r\n" => status 400);
chunk!(r28_trailer_nul, b"0\r\nA: 1\x00\r\n\r\n" => status 400);
chunk!(r28_trailer_bad_name, b"0\r\nA B: 1\r\n\r\n" => status 400);
chunk!(r28_trailer_space_before_colon, b"0\r\nA : 1\r\n\r\n" => status 400);
chunk!(r28_trailer_bare_lf, b"0\r\nA: 1\n\r\n" => status 400);

#[test]
fn r28_trailer_limits() {
    let mut config = BodyConfig::default();
    config.max_trailer_fields(2);
    assert!(chunked(&config, b"0\r\nA: 1\r\nB: 2\r\n\r\n").is_ok());
    assert_eq!(
        chunked(&config, b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n").map(|_| ()),
        Err(431)
    );
    let mut config = BodyConfig::default();
    config.max_trailer_bytes(16);
    let long = format!("0\r\nX: {}\r\n\r\n", "v".repeat(40));
    assert_eq!(chunked(&config, long.as_bytes()).map(|_| ()), Err(431));
}

// ----- Rule 7 and limits: Content-Length bodies, 413 -----

#[test]
fn r07_content_length_body_and_rest() {
    let head = support::parse(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n").unwrap();
    let mut buf = BytesMut::from(&b"helloGET /"[..]);
    let (body, trailers) = support::decode_body(&head, &BodyConfig::default(), &mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(body, b"hello");
    assert!(trailers.is_empty());
    assert_eq!(&buf[..], b"GET /");
}

#[test]
fn r07_short_body_is_incomplete() {
    let mut decoder = BodyDecoder::new(BodyLength::Length(10), &BodyConfig::default()).unwrap();
    let mut buf = BytesMut::from(&b"abc"[..]);
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Some(BodyEvent::Data(Bytes::from_static(b"abc")))
    );
    assert_eq!(decoder.decode(&mut buf).unwrap(), None);
    assert_eq!(decoder.remaining(), Some(7));
    assert!(!decoder.is_complete());
}

#[test]
fn body_limit_content_length_refused_up_front() {
    let mut config = BodyConfig::default();
    config.max_body_bytes(100);
    assert!(BodyDecoder::new(BodyLength::Length(100), &config).is_ok());
    let e = BodyDecoder::new(BodyLength::Length(101), &config).unwrap_err();
    assert!(e.is_body_too_large());
    assert_eq!(e.status(), Some(413));
}

#[test]
fn body_limit_chunked_refused_when_crossed() {
    let mut config = BodyConfig::default();
    config.max_body_bytes(8);
    assert!(chunked(&config, b"4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n").is_ok());
    assert_eq!(
        chunked(&config, b"4\r\nabcd\r\n4\r\nefgh\r\n1\r\ni\r\n0\r\n\r\n").map(|_| ()),
        Err(413)
    );
}

#[test]
fn data_is_split_off_the_buffer_not_copied() {
    let mut buf = BytesMut::from(&b"5\r\nhello\r\n0\r\n\r\n"[..]);
    let start = buf.as_ptr() as usize;
    let mut decoder = BodyDecoder::new(BodyLength::Chunked, &BodyConfig::default()).unwrap();
    match decoder.decode(&mut buf).unwrap() {
        Some(BodyEvent::Data(d)) => assert_eq!(d.as_ptr() as usize, start + 3),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_split_gives_the_same_body() {
    let input: &[u8] = b"5;e=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nT: v\r\n\r\nNEXT";
    let want = chunked(&BodyConfig::default(), input).unwrap().unwrap();
    for split in 0..=input.len() {
        let mut decoder = BodyDecoder::new(BodyLength::Chunked, &BodyConfig::default()).unwrap();
        let mut buf = BytesMut::from(&input[..split]);
        let mut data = Vec::new();
        let mut fed = false;
        let trailers = loop {
            match decoder.decode(&mut buf).unwrap() {
                Some(BodyEvent::Data(d)) => data.extend_from_slice(&d),
                Some(BodyEvent::End(t)) => break t,
                None => {
                    assert!(!fed, "incomplete after all bytes");
                    buf.extend_from_slice(&input[split..]);
                    fed = true;
                }
            }
        };
        if !fed {
            buf.extend_from_slice(&input[split..]);
        }
        assert_eq!(data, want.0, "split {split}");
        assert_eq!(trailers.field("t"), Some(&b"v"[..]), "split {split}");
        assert_eq!(&buf[..], b"NEXT", "split {split}");
    }
}

proptest! {
    /// Chunks written with uwsgi_proto's encoder decode back to the same bytes, whatever the
    /// read boundaries.
    #[test]
    fn chunked_encode_decode_round_trip(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..12),
        cut in 1usize..64,
    ) {
        let mut wire = BytesMut::new();
        for c in &chunks {
            uwsgi_proto::chunked::encode_chunk(c, &mut wire);
        }
        uwsgi_proto::chunked::encode_last_chunk(b"", &mut wire);
        let mut decoder = BodyDecoder::new(BodyLength::Chunked, &BodyConfig::default()).unwrap();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.decode(&mut buf).unwrap() {
                Some(BodyEvent::Data(d)) => out.extend_from_slice(&d),
                Some(BodyEvent::End(t)) => { prop_assert!(t.is_empty()); break; }
                None => {
                    prop_assert!(fed < wire.len(), "incomplete after all input");
                    let n = cut.min(wire.len() - fed);
                    buf.extend_from_slice(&wire[fed..fed + n]);
                    fed += n;
                }
            }
        }
        prop_assert_eq!(out, chunks.concat());
        prop_assert_eq!(fed, wire.len());
    }

    /// Content-Length bodies: exactly `n` bytes are taken, the rest is left.
    #[test]
    fn content_length_takes_exactly_n(body in proptest::collection::vec(any::<u8>(), 1..500), extra in proptest::collection::vec(any::<u8>(), 0..50)) {
        let mut buf = BytesMut::from(&body[..]);
        buf.extend_from_slice(&extra);
        let mut decoder = BodyDecoder::new(BodyLength::Length(body.len() as u64), &BodyConfig::default()).unwrap();
        let mut out = Vec::new();
        while let Some(ev) = decoder.decode(&mut buf).unwrap() {
            match ev {
                BodyEvent::Data(d) => out.extend_from_slice(&d),
                BodyEvent::End(_) => break,
            }
        }
        prop_assert_eq!(out, body);
        prop_assert_eq!(&buf[..], &extra[..]);
    }
}

proptest! {
    /// The `chunked` fuzz target's invariant.
    #[test]
    fn fuzz_chunked_invariant(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        http_front::internal::fuzz_chunked(&data);
    }
}
