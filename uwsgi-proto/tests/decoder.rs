//! The stream decoder: every valid stream split at every byte offset, and the malformed table.

mod support;

use bytes::BytesMut;
use support::{Item, decode_pieces, nginx_get_pairs, post_stream, router_chunked_stream};
use uwsgi_proto::{
    BodyKind, Error, Limits, Modifier1, RequestDecoder, encode_ping, encode_pong, encode_request,
    encode_rpc,
};

fn valid_streams() -> Vec<(&'static str, Vec<u8>)> {
    let mut get = BytesMut::new();
    encode_request(Modifier1::WSGI, 0, &nginx_get_pairs(), &mut get).unwrap();
    let mut ping = BytesMut::new();
    encode_ping(&mut ping);
    let mut pong = BytesMut::new();
    encode_pong(b"overloaded", &mut pong).unwrap();
    let mut rpc = BytesMut::new();
    encode_rpc(b"hello", &[&b"a"[..], b"", b"bc"], 0, &mut rpc).unwrap();
    let mut m30 = BytesMut::new();
    encode_request(
        Modifier1(30),
        7,
        &[("SCRIPT_NAME", "/app"), ("PATH_INFO", "/app/x")],
        &mut m30,
    )
    .unwrap();
    let mut empty_last = BytesMut::new();
    encode_request(
        Modifier1::WSGI,
        0,
        &[("A", "1"), ("B", "")],
        &mut empty_last,
    )
    .unwrap();
    vec![
        ("nginx GET", get.to_vec()),
        ("POST with body", post_stream(b"name=ferrule&x=1")),
        ("router chunked", router_chunked_stream()),
        ("ping", ping.to_vec()),
        ("pong with warning", pong.to_vec()),
        ("rpc", rpc.to_vec()),
        ("modifier 30/7", m30.to_vec()),
        ("empty last value", empty_last.to_vec()),
    ]
}

#[test]
fn every_valid_stream_split_at_every_offset_decodes_the_same() {
    for (name, stream) in valid_streams() {
        let (whole, err, left) = decode_pieces(&[&stream]);
        assert_eq!(err, None, "{name}");
        assert_eq!(left, 0, "{name}");
        assert!(!whole.is_empty(), "{name}");
        for split in 0..=stream.len() {
            let (a, b) = stream.split_at(split);
            let got = decode_pieces(&[a, b]);
            assert_eq!(got, (whole.clone(), None, 0), "{name} split at {split}");
        }
        // And one byte at a time.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(
            decode_pieces(&bytes),
            (whole, None, 0),
            "{name} byte by byte"
        );
    }
}

#[test]
fn request_then_body_then_end() {
    let (items, err, left) = decode_pieces(&[&post_stream(b"hello")]);
    assert_eq!((err, left), (None, 0));
    assert!(matches!(
        &items[0],
        Item::Request {
            body: BodyKind::Length(5),
            ..
        }
    ));
    assert_eq!(items[1], Item::Body(b"hello".to_vec()));
    assert_eq!(items[2], Item::BodyEnd(vec![]));
    assert_eq!(items.len(), 3);
}

#[test]
fn body_stops_at_content_length() {
    let mut stream = post_stream(b"hello");
    stream.extend_from_slice(b"\x64\x00\x00\x00");
    let (items, err, left) = decode_pieces(&[&stream]);
    assert_eq!(err, None);
    assert_eq!(left, 0);
    assert_eq!(items[1], Item::Body(b"hello".to_vec()));
    // The bytes after the body are the next packet (a ping), not more body.
    assert_eq!(items[3], Item::Packet(Modifier1::PING, 0, vec![]));
}

#[test]
fn router_chunked_body_is_decoded_with_trailers() {
    let (items, err, left) = decode_pieces(&[&router_chunked_stream()]);
    assert_eq!((err, left), (None, 0));
    assert!(matches!(
        &items[0],
        Item::Request {
            body: BodyKind::Chunked,
            ..
        }
    ));
    assert_eq!(items[1], Item::Body(b"chunkeddataabc".to_vec()));
    assert_eq!(items[2], Item::BodyEnd(b"X-T: 1\r\n".to_vec()));
}

#[test]
fn incomplete_input_is_never_an_error() {
    let stream = post_stream(b"0123456789");
    for end in 0..stream.len() {
        let mut decoder = RequestDecoder::new();
        let mut src = BytesMut::from(&stream[..end]);
        while let Some(_frame) = decoder.decode(&mut src).expect("prefix is not an error") {}
    }
}

#[test]
fn eof_inside_a_packet_or_body_is_reported() {
    let stream = post_stream(b"0123456789");
    for end in 1..stream.len() {
        let mut decoder = RequestDecoder::new();
        let mut src = BytesMut::from(&stream[..end]);
        let result = loop {
            match decoder.decode_eof(&mut src) {
                Ok(Some(_)) => continue,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        assert_eq!(result, Err(Error::UnexpectedEof), "eof after {end} bytes");
    }
    // A clean end between packets is fine.
    let mut decoder = RequestDecoder::new();
    let mut src = BytesMut::from(&stream[..]);
    let mut frames = 0;
    while let Some(_f) = decoder.decode_eof(&mut src).unwrap() {
        frames += 1;
    }
    assert_eq!(frames, 3);
}

/// Each malformed input from reference §6.2 (and the codec's own limits) and its error.
#[test]
fn malformed_inputs_give_named_errors() {
    fn packet(m1: u8, block: &[u8]) -> Vec<u8> {
        let mut v = vec![m1];
        v.extend_from_slice(&(block.len() as u16).to_le_bytes());
        v.push(0);
        v.extend_from_slice(block);
        v
    }
    let max_vars = {
        let mut block = Vec::new();
        for _ in 0..513 {
            block.extend_from_slice(b"\x01\x00K\x00\x00");
        }
        packet(0, &block)
    };
    let cases: Vec<(&str, Vec<u8>, Error)> = vec![
        (
            "key_len = 0",
            packet(0, b"\x00\x00\x01\x00v"),
            Error::EmptyKey { offset: 0 },
        ),
        (
            "key_len = 0 in second pair",
            packet(0, b"\x01\x00A\x01\x00v\x00\x00\x00\x00"),
            Error::EmptyKey { offset: 6 },
        ),
        (
            "key past the end",
            packet(0, b"\x05\x00AB"),
            Error::KeyOverflow { offset: 0 },
        ),
        (
            "no room for val_len",
            packet(0, b"\x02\x00AB\x01"),
            Error::KeyOverflow { offset: 0 },
        ),
        (
            "value past the end",
            packet(0, b"\x01\x00A\x05\x00abc"),
            Error::ValueOverflow { offset: 0 },
        ),
        (
            "1 trailing byte",
            packet(0, b"\x01\x00A\x01\x00vX"),
            Error::TrailingBytes { count: 1 },
        ),
        (
            "2 trailing bytes",
            packet(0, b"\x01\x00A\x01\x00vXY"),
            Error::TrailingBytes { count: 2 },
        ),
        ("empty request", packet(0, b""), Error::EmptyRequest),
        ("too many vars", max_vars, Error::TooManyVars { limit: 512 }),
        (
            "CONTENT_LENGTH 12abc",
            packet(0, b"\x0e\x00CONTENT_LENGTH\x05\x0012abc"),
            Error::InvalidContentLength,
        ),
        (
            "CONTENT_LENGTH -1",
            packet(0, b"\x0e\x00CONTENT_LENGTH\x02\x00-1"),
            Error::InvalidContentLength,
        ),
        (
            "conflicting CONTENT_LENGTH",
            packet(
                0,
                b"\x0e\x00CONTENT_LENGTH\x01\x001\x0e\x00CONTENT_LENGTH\x01\x002",
            ),
            Error::ConflictingContentLength,
        ),
        (
            "plain HTTP GET",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Error::LooksLikeHttp,
        ),
        (
            "plain HTTP POST",
            b"POST /x HTTP/1.0\r\n\r\n".to_vec(),
            Error::LooksLikeHttp,
        ),
        (
            "TLS client hello",
            vec![0x16, 0x03, 0x01, 0x02, 0x00],
            Error::LooksLikeTls,
        ),
        (
            "bad chunked framing",
            {
                let mut v = packet(0, b"\x16\x00HTTP_TRANSFER_ENCODING\x07\x00chunked");
                v.extend_from_slice(b"zz\r\n");
                v
            },
            Error::Chunked(uwsgi_proto::chunked::ChunkedError::InvalidSize),
        ),
    ];
    for (name, input, want) in cases {
        let (_, err, _) = decode_pieces(&[&input]);
        assert_eq!(err, Some(want), "{name}");
        // Split anywhere, the same error comes out.
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            let (_, err, _) = decode_pieces(&[a, b]);
            assert_eq!(err, Some(want), "{name} split at {split}");
        }
    }
}

#[test]
fn datasize_limit_is_configurable() {
    let mut stream = BytesMut::new();
    let big = "x".repeat(5000);
    encode_request(
        Modifier1::WSGI,
        0,
        &[("HTTP_COOKIE", big.as_str())],
        &mut stream,
    )
    .unwrap();
    // Default: up to 65535 accepted.
    let (_, err, _) = decode_pieces(&[&stream]);
    assert_eq!(err, None);
    // uWSGI's default buffer-size: refused as soon as the header is in.
    let mut limits = Limits::default();
    limits.max_datasize = 4096;
    let mut decoder = RequestDecoder::with_limits(limits);
    let mut src = BytesMut::from(&stream[..4]);
    assert_eq!(
        decoder.decode(&mut src),
        Err(Error::DatasizeTooLarge {
            datasize: 5000 + 11 + 4,
            limit: 4096
        })
    );
}

#[test]
fn largest_vars_block_is_accepted() {
    let value = "v".repeat(65535 - 4 - 1);
    let mut stream = BytesMut::new();
    encode_request(Modifier1::WSGI, 0, &[("K", value.as_str())], &mut stream).unwrap();
    let (items, err, left) = decode_pieces(&[&stream]);
    assert_eq!((err, left), (None, 0));
    let Item::Request { pairs, .. } = &items[0] else {
        panic!("not a request: {items:?}")
    };
    assert_eq!(pairs[0].1.len(), 65530);
}

#[test]
fn duplicate_keys_are_kept_and_last_wins() {
    let mut stream = BytesMut::new();
    encode_request(Modifier1::WSGI, 0, &nginx_get_pairs(), &mut stream).unwrap();
    let vars = uwsgi_proto::Vars::parse(&stream[4..], &Limits::default()).unwrap();
    assert_eq!(vars.get(b"HTTP_X_DUP"), Some(&b"two"[..]));
    assert_eq!(
        vars.get_all(b"HTTP_X_DUP").collect::<Vec<_>>(),
        [&b"one"[..], b"two"]
    );
    assert_eq!(vars.get(b"CONTENT_TYPE"), Some(&b""[..]));
    assert_eq!(vars.get(b"MISSING"), None);
    let block = bytes::Bytes::copy_from_slice(&stream[4..]);
    let owned = uwsgi_proto::OwnedVars::parse(block, &Limits::default()).unwrap();
    assert_eq!(owned.len(), vars.len());
    assert_eq!(owned.get_all(b"HTTP_COOKIE").count(), 2);
    assert!(owned.iter().eq(vars.iter()));
    assert_eq!(owned.key(0).unwrap(), "QUERY_STRING");
    assert_eq!(owned.value(1).unwrap(), "GET");
    // Non-UTF-8 bytes survive untouched.
    let mut stream = BytesMut::new();
    encode_request(
        Modifier1::WSGI,
        0,
        &[(&b"PATH_INFO"[..], &b"/caf\xe9\xff"[..])],
        &mut stream,
    )
    .unwrap();
    let vars = uwsgi_proto::Vars::parse(&stream[4..], &Limits::default()).unwrap();
    assert_eq!(vars.get(b"PATH_INFO"), Some(&b"/caf\xe9\xff"[..]));
}

#[test]
fn foreign_protocol_sniffing_can_be_turned_off_for_generic_peers() {
    // modifier1 22 (raw eval) with datasize 0x0103: its header starts 16 03 01, like TLS.
    let mut packet = vec![22u8, 0x03, 0x01, 0x00];
    packet.extend(std::iter::repeat_n(b'x', 0x0103));
    let (_, err, _) = decode_pieces(&[&packet]);
    assert_eq!(err, Some(Error::LooksLikeTls));
    let mut limits = Limits::default();
    limits.sniff_foreign = false;
    let mut decoder = RequestDecoder::with_limits(limits);
    let mut src = BytesMut::from(&packet[..]);
    match decoder.decode(&mut src) {
        Ok(Some(uwsgi_proto::Frame::Packet(p))) => {
            assert_eq!(p.header.modifier1, Modifier1::EVAL);
            assert_eq!(p.payload.len(), 0x0103);
        }
        other => panic!("{other:?}"),
    }
}
