//! Upstream response heads: status line or CGI head, hop-by-hop removal, body framing.

use proxy_core::upstream_head::{
    BodyFraming, HeadLimits, UpstreamHead, UpstreamHeadError, UpstreamProtocol, parse_head,
};

use UpstreamProtocol::{Http, Uwsgi};

fn parse(raw: &str, protocol: UpstreamProtocol) -> Result<Option<UpstreamHead>, UpstreamHeadError> {
    parse_head(raw.as_bytes(), protocol, false, &HeadLimits::default())
}

fn head(raw: &str, protocol: UpstreamProtocol) -> UpstreamHead {
    parse(raw, protocol).unwrap().expect("complete head")
}

fn names(h: &UpstreamHead) -> Vec<&str> {
    h.fields().map(|(n, _)| n).collect()
}

#[test]
fn http_status_line_and_length() {
    let raw = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
    let h = head(raw, Http);
    assert_eq!(
        (h.status, h.reason(), h.version),
        (200, &b"OK"[..], Some(1))
    );
    assert_eq!(h.framing, BodyFraming::Length(5));
    assert_eq!(h.content_length, Some(5));
    assert_eq!(names(&h), vec!["Content-Type"]);
    assert_eq!(h.field("content-type"), Some(&b"text/plain"[..]));
    assert!(h.reusable);
    assert_eq!(&raw.as_bytes()[h.head_len..], b"hello");
}

#[test]
fn every_split_point_gives_the_same_head() {
    let raw = "HTTP/1.1 404 Not Found\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let full = head(raw, Http);
    for cut in 0..raw.len() {
        assert_eq!(parse(&raw[..cut], Http).unwrap(), None, "cut at {cut}");
    }
    assert_eq!(full.framing, BodyFraming::Chunked);
    assert_eq!(full.head_len, raw.len());
    let cgi = "Status: 201 Created\r\nX-A: 1\r\n\r\n";
    for cut in 0..cgi.len() {
        assert_eq!(parse(&cgi[..cut], Uwsgi).unwrap(), None, "cut at {cut}");
    }
}

#[test]
fn cgi_heads_from_uwsgi() {
    let h = head(
        "Status: 404 Not Here\r\nContent-Type: text/html\r\n\r\n",
        Uwsgi,
    );
    assert_eq!(
        (h.status, h.reason(), h.version),
        (404, &b"Not Here"[..], None)
    );
    assert_eq!(names(&h), vec!["Content-Type"], "Status is not passed on");
    assert_eq!(h.framing, BodyFraming::UntilClose);
    assert!(!h.reusable);

    let h = head("Location: /next\r\n\r\n", Uwsgi);
    assert_eq!((h.status, h.reason()), (302, &b"Moved Temporarily"[..]));
    assert_eq!(h.field("Location"), Some(&b"/next"[..]));
    let h = head(
        "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
        Uwsgi,
    );
    assert_eq!((h.status, h.framing), (200, BodyFraming::Length(2)));
    let h = head("Status: 204\r\n\r\n", Uwsgi);
    assert_eq!(
        (h.status, h.reason(), h.framing),
        (204, &b""[..], BodyFraming::None)
    );
    let h = head("\r\n", Uwsgi);
    assert_eq!((h.status, h.head_len), (200, 2));

    // A status line is also fine on uwsgi, but the connection is still one-shot.
    let h = head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Uwsgi);
    assert_eq!((h.status, h.version, h.reusable), (200, Some(1), false));
    // uWSGI copies SERVER_PROTOCOL: HTTP/2.0 shows up; nginx only reads the code.
    let h = head("HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", Uwsgi);
    assert_eq!((h.status, h.version), (200, Some(1)));

    for bad in [
        "Status: 99 Low\r\n\r\n",
        "Status: abc\r\n\r\n",
        "Status: 2000\r\n\r\n",
        "Status: 600 x\r\n\r\n",
    ] {
        assert_eq!(
            parse(bad, Uwsgi),
            Err(UpstreamHeadError::InvalidStatus),
            "{bad:?}"
        );
    }
    // An HTTP upstream must send a status line (nginx would try HTTP/0.9; we refuse).
    assert_eq!(
        parse("Status: 200 OK\r\n\r\n", Http),
        Err(UpstreamHeadError::InvalidStatusLine)
    );
}

#[test]
fn hop_by_hop_fields_are_removed() {
    let raw = "HTTP/1.1 200 OK\r\n\
        Connection: X-Secret, close\r\n\
        X-Secret: 1\r\n\
        Keep-Alive: timeout=5\r\n\
        TE: trailers\r\n\
        Trailer: X-T\r\n\
        Upgrade: h2c\r\n\
        Proxy-Connection: keep-alive\r\n\
        Proxy-Authenticate: Basic\r\n\
        Transfer-Encoding: chunked\r\n\
        Set-Cookie: a=1\r\n\
        Set-Cookie: b=2\r\n\
        Server: app\r\n\r\n";
    let h = head(raw, Http);
    assert_eq!(names(&h), vec!["Set-Cookie", "Set-Cookie", "Server"]);
    assert_eq!(h.framing, BodyFraming::Chunked);
    assert!(!h.reusable, "Connection: close");
}

#[test]
fn framing_rules() {
    let f = |raw: &str| head(raw, Http).framing;
    assert_eq!(f("HTTP/1.1 200 OK\r\n\r\n"), BodyFraming::UntilClose);
    assert_eq!(
        f("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
        BodyFraming::None
    );
    assert_eq!(
        f("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"),
        BodyFraming::None
    );
    assert_eq!(f("HTTP/1.1 100 Continue\r\n\r\n"), BodyFraming::None);
    assert_eq!(
        f("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        BodyFraming::Chunked
    );
    assert_eq!(
        f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
        BodyFraming::UntilClose
    );
    assert_eq!(
        f("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n"),
        BodyFraming::Chunked
    );
    assert_eq!(
        f("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\n"),
        BodyFraming::Length(3)
    );

    // CL + TE: TE wins, CL dropped, connection not reused.
    let h = head(
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        Http,
    );
    assert_eq!(
        (h.framing, h.content_length, h.reusable),
        (BodyFraming::Chunked, None, false)
    );

    // HEAD: no body, but the declared length is reported.
    let h = parse_head(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
        Http,
        true,
        &HeadLimits::default(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        (h.framing, h.content_length, h.reusable),
        (BodyFraming::None, Some(1234), true)
    );

    let interim = head("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", Http);
    assert!(interim.is_interim());
    assert!(!head("HTTP/1.1 101 Switching Protocols\r\n\r\n", Http).is_interim());
    assert!(!head("HTTP/1.1 200 OK\r\n\r\n", Http).is_interim());
}

#[test]
fn keep_alive_rules() {
    let r = |raw: &str| head(raw, Http).reusable;
    assert!(r("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    assert!(!r(
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(!r("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
    assert!(r(
        "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(!r("HTTP/1.1 200 OK\r\n\r\n"), "read until close");
    assert!(!r(
        "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    ));
}

#[test]
fn invalid_heads_are_502() {
    let cases = [
        (
            "HTTP/1.1 20 OK\r\n\r\n",
            UpstreamHeadError::InvalidStatusLine,
        ),
        (
            "HTTP/1.1 2000 OK\r\n\r\n",
            UpstreamHeadError::InvalidStatusLine,
        ),
        (
            "HTTP/1.1 099 Low\r\n\r\n",
            UpstreamHeadError::InvalidStatusLine,
        ),
        (
            "HTTP/1.1 700 High\r\n\r\n",
            UpstreamHeadError::InvalidStatusLine,
        ),
        (
            "HTTP/1.1  200 OK\r\n\r\n",
            UpstreamHeadError::InvalidStatusLine,
        ),
        (
            "HTTP/1.1 200OK\r\n\r\n",
            UpstreamHeadError::InvalidStatusLine,
        ),
        (
            "HTTP/x.1 200 OK\r\n\r\n",
            UpstreamHeadError::InvalidStatusLine,
        ),
        (
            "HTTP/0.9 200 OK\r\n\r\n",
            UpstreamHeadError::InvalidStatusLine,
        ),
        (
            "HTTP/1.1 200 O\x01K\r\n\r\n",
            UpstreamHeadError::InvalidStatusLine,
        ),
        ("ICY 200 OK\r\n\r\n", UpstreamHeadError::InvalidStatusLine),
        (
            "HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n",
            UpstreamHeadError::InvalidField,
        ),
        (
            "HTTP/1.1 200 OK\r\nX : 1\r\n\r\n",
            UpstreamHeadError::InvalidField,
        ),
        (
            "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
            UpstreamHeadError::InvalidField,
        ),
        (
            "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n",
            UpstreamHeadError::InvalidField,
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            UpstreamHeadError::InvalidContentLength,
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n",
            UpstreamHeadError::InvalidContentLength,
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
            UpstreamHeadError::InvalidContentLength,
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            UpstreamHeadError::InvalidContentLength,
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            UpstreamHeadError::ConflictingContentLength,
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
            UpstreamHeadError::ConflictingContentLength,
        ),
    ];
    for (raw, want) in cases {
        let err = parse(raw, Http).unwrap_err();
        assert_eq!(err, want, "{raw:?}");
        assert_eq!(err.status(), 502);
    }
    assert_eq!(UpstreamHeadError::ClosedEarly.status(), 502);
}

#[test]
fn limits() {
    let mut limits = HeadLimits::default();
    limits.max_head_bytes(64).max_fields(3);
    let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(100));
    assert_eq!(
        parse_head(big.as_bytes(), Http, false, &limits),
        Err(UpstreamHeadError::TooLarge { limit: 64 })
    );
    // Incomplete and still under the limit: wait.
    assert_eq!(
        parse_head(&big.as_bytes()[..40], Http, false, &limits),
        Ok(None)
    );
    // Incomplete at the limit: too large.
    assert_eq!(
        parse_head(&big.as_bytes()[..64], Http, false, &limits),
        Err(UpstreamHeadError::TooLarge { limit: 64 })
    );
    let many = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    assert_eq!(
        parse_head(many.as_bytes(), Http, false, &limits),
        Err(UpstreamHeadError::TooManyFields { limit: 3 })
    );
    let ok = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert!(
        parse_head(ok.as_bytes(), Http, false, &limits)
            .unwrap()
            .is_some()
    );
    // A head exactly at the limit is accepted.
    let exact = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(64 - 24));
    assert_eq!(exact.len(), 64);
    assert!(
        parse_head(exact.as_bytes(), Http, false, &limits)
            .unwrap()
            .is_some()
    );
}

#[test]
fn bare_lf_heads_are_accepted() {
    let h = head("HTTP/1.1 200 OK\nContent-Length: 2\n\nok", Http);
    assert_eq!((h.status, h.framing), (200, BodyFraming::Length(2)));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary bytes never panic, and a complete head never claims more than the input.
        #[test]
        fn arbitrary_input_is_safe(raw in proptest::collection::vec(any::<u8>(), 0..200), uwsgi in any::<bool>()) {
            let protocol = if uwsgi { Uwsgi } else { Http };
            if let Ok(Some(h)) = parse_head(&raw, protocol, false, &HeadLimits::default()) {
                prop_assert!(h.head_len <= raw.len());
                prop_assert!((100..=599).contains(&h.status));
            }
        }
    }
}
