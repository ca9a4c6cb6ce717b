//! Helpers shared by the uwsgi-proto behaviour tests.
#![allow(dead_code, unreachable_pub)]

use bytes::BytesMut;
use uwsgi_proto::{BodyKind, Frame, Modifier1, RequestDecoder, encode_request};

/// What nginx 1.22 with the stock `uwsgi_params` sends for a browser GET (abridged values).
pub fn nginx_get_pairs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("QUERY_STRING", "q=rust&page=2"),
        ("REQUEST_METHOD", "GET"),
        ("CONTENT_TYPE", ""),
        ("CONTENT_LENGTH", ""),
        ("REQUEST_URI", "/search?q=rust&page=2"),
        ("PATH_INFO", "/search"),
        ("DOCUMENT_ROOT", "/usr/share/nginx/html"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_SCHEME", "http"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_PORT", "53422"),
        ("SERVER_PORT", "80"),
        ("SERVER_NAME", "example.org"),
        ("HTTP_HOST", "example.org"),
        (
            "HTTP_USER_AGENT",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "HTTP_ACCEPT",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("HTTP_X_DUP", "one"),
        ("HTTP_X_DUP", "two"),
        ("HTTP_COOKIE", "session=abc"),
        ("HTTP_COOKIE", "theme=dark"),
    ]
}

/// A whole request stream: packet, then `body` (with a matching CONTENT_LENGTH var).
pub fn post_stream(body: &[u8]) -> Vec<u8> {
    let len = body.len().to_string();
    let mut dst = BytesMut::new();
    encode_request(
        Modifier1::WSGI,
        0,
        &[
            ("REQUEST_METHOD", "POST"),
            ("PATH_INFO", "/upload"),
            ("CONTENT_TYPE", "application/octet-stream"),
            ("CONTENT_LENGTH", len.as_str()),
        ],
        &mut dst,
    )
    .unwrap();
    dst.extend_from_slice(body);
    dst.to_vec()
}

/// The raw chunked stream uWSGI's router sends with `--http-chunked-input`.
pub fn router_chunked_stream() -> Vec<u8> {
    let mut dst = BytesMut::new();
    encode_request(
        Modifier1::WSGI,
        0,
        &[
            ("REQUEST_METHOD", "POST"),
            ("PATH_INFO", "/"),
            ("HTTP_TRANSFER_ENCODING", "chunked"),
            ("UWSGI_ROUTER", "http"),
        ],
        &mut dst,
    )
    .unwrap();
    dst.extend_from_slice(b"b\r\nchunkeddata\r\n3;x=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n");
    dst.to_vec()
}

/// A decoded stream, with body chunks joined so splits do not matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Request {
        modifier1: Modifier1,
        modifier2: u8,
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
        body: BodyKind,
    },
    Packet(Modifier1, u8, Vec<u8>),
    Body(Vec<u8>),
    BodyEnd(Vec<u8>),
}

/// Decodes `input`, feeding it to the decoder in the given pieces. Returns the items, the
/// error if one stopped decoding, and how many bytes were left undecoded.
pub fn decode_pieces(pieces: &[&[u8]]) -> (Vec<Item>, Option<uwsgi_proto::Error>, usize) {
    let mut decoder = RequestDecoder::new();
    let mut src = BytesMut::new();
    let mut items: Vec<Item> = Vec::new();
    for piece in pieces {
        src.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut src) {
                Ok(Some(frame)) => push(&mut items, frame),
                Ok(None) => break,
                Err(e) => return (items, Some(e), src.len()),
            }
        }
    }
    (items, None, src.len())
}

fn push(items: &mut Vec<Item>, frame: Frame) {
    match frame {
        Frame::Request(head) => items.push(Item::Request {
            modifier1: head.header.modifier1,
            modifier2: head.header.modifier2,
            pairs: head
                .vars
                .iter()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect(),
            body: head.body,
        }),
        Frame::Packet(p) => items.push(Item::Packet(
            p.header.modifier1,
            p.header.modifier2,
            p.payload.to_vec(),
        )),
        Frame::Body(b) => {
            assert!(!b.is_empty(), "empty Body frame");
            match items.last_mut() {
                Some(Item::Body(acc)) => acc.extend_from_slice(&b),
                _ => items.push(Item::Body(b.to_vec())),
            }
        }
        Frame::BodyEnd { trailers } => items.push(Item::BodyEnd(trailers.to_vec())),
    }
}
