//! The HTTP/1.1 upstream request head: re-serialised, hop-by-hop free, forwarded fields set.

use bytes::BytesMut;
use proxy_core::forwarded::{TrustedProxies, forwarded};
use proxy_core::path::PathError;
use proxy_core::upstream_request::encode_http_request;
use proxy_core::uwsgi_params::{RequestInfo, Scheme};

fn request<'a>(
    method: &'a str,
    target: &'a str,
    fields: &'a [(&'a [u8], &'a [u8])],
    body_length: Option<u64>,
) -> RequestInfo<'a> {
    RequestInfo {
        method: method.as_bytes(),
        target: target.as_bytes(),
        protocol: b"HTTP/1.0",
        fields,
        peer: Some("203.0.113.5:5000".parse().unwrap()),
        local: Some("192.0.2.1:80".parse().unwrap()),
        scheme: Scheme::Https,
        body_length,
    }
}

/// Encodes and parses back with httparse: (method, path, fields).
fn roundtrip(req: &RequestInfo<'_>, host: &str) -> (String, String, Vec<(String, String)>) {
    let fwd = forwarded(
        req.peer.map(|p| p.ip()),
        req.scheme,
        req.fields,
        &TrustedProxies::new(),
    );
    let mut dst = BytesMut::new();
    encode_http_request(req, host.as_bytes(), &fwd, &mut dst).unwrap();
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    let status = parsed.parse(&dst).unwrap();
    assert_eq!(
        status,
        httparse::Status::Complete(dst.len()),
        "exactly one head"
    );
    assert_eq!(parsed.version, Some(1));
    (
        parsed.method.unwrap().to_owned(),
        parsed.path.unwrap().to_owned(),
        parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8(h.value.to_vec()).unwrap(),
                )
            })
            .collect(),
    )
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn hop_by_hop_and_forwarding_fields_are_replaced() {
    let fields: Vec<(&[u8], &[u8])> = vec![
        (b"Host", b"client.example"),
        (b"User-Agent", b"curl/8"),
        (b"Connection", b"keep-alive, X-Hop"),
        (b"X-Hop", b"secret"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Proxy-Connection", b"keep-alive"),
        (b"TE", b"trailers"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Upgrade", b"websocket"),
        (b"Expect", b"100-continue"),
        (b"X-Forwarded-For", b"6.6.6.6"),
        (b"X-Real-IP", b"6.6.6.6"),
        (b"X-Forwarded-Proto", b"http"),
        (b"Cookie", b"a=1"),
        (b"Cookie", b"b=2"),
        (b"Content-Length", b"999"),
        (b"Accept", b"*/*"),
    ];
    let (method, path, got) = roundtrip(
        &request("POST", "/submit?x=1", &fields, Some(11)),
        "app.internal:8000",
    );
    assert_eq!((method.as_str(), path.as_str()), ("POST", "/submit?x=1"));
    assert_eq!(
        got,
        pairs(&[
            ("Host", "app.internal:8000"),
            ("User-Agent", "curl/8"),
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
            ("Accept", "*/*"),
            ("X-Forwarded-For", "203.0.113.5"),
            ("X-Real-IP", "203.0.113.5"),
            ("X-Forwarded-Proto", "https"),
            ("Content-Length", "11"),
        ])
    );
}

#[test]
fn targets_and_bodies() {
    let (_, path, got) = roundtrip(&request("GET", "http://h.example/a%20b?q", &[], None), "h");
    assert_eq!(
        path, "/a%20b?q",
        "absolute-form becomes origin-form, still raw"
    );
    assert!(
        got.iter().all(|(n, _)| n != "Content-Length"),
        "no body, no length"
    );
    let (_, _, got) = roundtrip(&request("PUT", "/x", &[], Some(0)), "h");
    assert!(got.contains(&("Content-Length".into(), "0".into())));
    let (method, path, _) = roundtrip(&request("OPTIONS", "*", &[], None), "h");
    assert_eq!((method.as_str(), path.as_str()), ("OPTIONS", "*"));

    let fwd = forwarded(None, Scheme::Http, &[], &TrustedProxies::new());
    let mut dst = BytesMut::new();
    for target in ["*", "example.com:443", ""] {
        let err = encode_http_request(&request("GET", target, &[], None), b"h", &fwd, &mut dst);
        assert_eq!(err, Err(PathError::NotAbsolute), "{target:?}");
        assert!(dst.is_empty());
    }
}

#[test]
fn trusted_forwarding_chain_is_extended() {
    let fields: Vec<(&[u8], &[u8])> = vec![
        (b"X-Forwarded-For", b"198.51.100.9"),
        (b"X-Forwarded-Proto", b"https"),
    ];
    let mut req = request("GET", "/", &fields, None);
    req.peer = Some("10.0.0.2:1234".parse().unwrap());
    req.scheme = Scheme::Http;
    let trusted = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
    let fwd = forwarded(
        Some("10.0.0.2".parse().unwrap()),
        req.scheme,
        req.fields,
        &trusted,
    );
    let mut dst = BytesMut::new();
    encode_http_request(&req, b"h", &fwd, &mut dst).unwrap();
    let text = String::from_utf8(dst.to_vec()).unwrap();
    assert!(
        text.contains("\r\nX-Forwarded-For: 198.51.100.9, 10.0.0.2\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nX-Real-IP: 198.51.100.9\r\n"), "{text}");
    assert!(text.contains("\r\nX-Forwarded-Proto: https\r\n"), "{text}");
    assert_eq!(text.matches("X-Forwarded-For").count(), 1);
}
