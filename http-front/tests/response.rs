//! Response encoding: status line, field validation, framing choice, Date caching.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use http_front::response::{DateCache, encode_head, reason_phrase};
use http_front::{Framing, ResponseHead, Version};

fn encode(head: &ResponseHead, framing: Framing, keep_alive: bool, version: Version) -> String {
    let mut dst = BytesMut::new();
    encode_head(head, framing, keep_alive, version, &mut dst);
    let text = String::from_utf8_lossy(&dst).into_owned();
    // Replace the date so the output is stable.
    match text.find("date: ") {
        Some(at) => format!("{}date: D{}", &text[..at], &text[at + 6 + 29..]),
        None => text,
    }
}

#[test]
fn status_line_fields_and_length() {
    let mut head = ResponseHead::new(200).unwrap();
    head.append("Content-Type", "text/plain").unwrap();
    head.append("X-A", "").unwrap();
    assert_eq!(
        encode(&head, Framing::Length(5), true, Version::Http11),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: \r\ncontent-length: 5\r\ndate: D\r\n\r\n"
    );
}

#[test]
fn chunked_and_close() {
    let head = ResponseHead::new(404).unwrap();
    assert_eq!(
        encode(&head, Framing::Chunked, false, Version::Http11),
        "HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\ndate: D\r\nconnection: close\r\n\r\n"
    );
    assert_eq!(
        encode(&head, Framing::CloseDelimited, true, Version::Http10),
        "HTTP/1.1 404 Not Found\r\ndate: D\r\nconnection: close\r\n\r\n"
    );
}

#[test]
fn http10_keep_alive_is_announced() {
    let head = ResponseHead::new(200).unwrap();
    assert_eq!(
        encode(&head, Framing::Length(0), true, Version::Http10),
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\ndate: D\r\nconnection: keep-alive\r\n\r\n"
    );
}

#[test]
fn framing_rules() {
    use Framing::*;
    let v11 = Version::Http11;
    let v10 = Version::Http10;
    // No body for HEAD, 1xx, 204, 304 (RFC 9110 §6.4.1); CL never on 1xx/204 (§8.6).
    assert_eq!(
        Framing::choose(v11, true, 200, None, Some(10)),
        NoBody {
            content_length: Some(10)
        }
    );
    assert_eq!(
        Framing::choose(v11, true, 200, Some(7), Some(10)),
        NoBody {
            content_length: Some(7)
        }
    );
    assert_eq!(
        Framing::choose(v11, false, 204, Some(7), Some(0)),
        NoBody {
            content_length: None
        }
    );
    assert_eq!(
        Framing::choose(v11, false, 103, None, None),
        NoBody {
            content_length: None
        }
    );
    assert_eq!(
        Framing::choose(v11, false, 304, Some(7), None),
        NoBody {
            content_length: Some(7)
        }
    );
    assert_eq!(
        Framing::choose(v11, false, 304, None, Some(3)),
        NoBody {
            content_length: None
        }
    );
    // Length when known; chunked for 1.1, close-delimited for 1.0 otherwise.
    assert_eq!(Framing::choose(v11, false, 200, Some(3), None), Length(3));
    assert_eq!(Framing::choose(v10, false, 200, None, Some(4)), Length(4));
    assert_eq!(Framing::choose(v11, false, 200, None, None), Chunked);
    assert_eq!(Framing::choose(v10, false, 200, None, None), CloseDelimited);
}

#[test]
fn cr_lf_and_ctls_are_refused_never_written() {
    let mut head = ResponseHead::new(200).unwrap();
    for value in [
        &b"a\r\nSet-Cookie: x"[..],
        b"a\nb",
        b"a\rb",
        b"a\x00b",
        b"a\x1bb",
        b"a\x7fb",
    ] {
        let e = head.append("X", value).unwrap_err();
        assert!(e.is_invalid_response());
        assert_eq!(e.status(), Some(500));
    }
    for name in [&b"X\r\nY"[..], b"", b"X Y", b"X:Y", b"X\n"] {
        assert!(head.append(name, "v").is_err());
    }
    assert_eq!(head.fields().count(), 0);
    assert!(head.set_reason(b"OK\r\nX: y").is_err());
    // HTAB and obs-text are allowed in values.
    head.append("X", b"a\tb\xff").unwrap();
    let text = encode(&head, Framing::Length(0), true, Version::Http11);
    assert!(!text.contains("Set-Cookie"));
}

#[test]
fn framing_fields_from_the_application() {
    let mut head = ResponseHead::new(200).unwrap();
    head.append("Content-Length", "12").unwrap();
    head.append("content-length", "12").unwrap();
    assert!(head.append("Content-Length", "13").is_err());
    assert!(head.append("Content-Length", "+1").is_err());
    head.append("Transfer-Encoding", "chunked").unwrap();
    head.append("Connection", "keep-alive, close").unwrap();
    head.append("Keep-Alive", "timeout=5").unwrap();
    assert_eq!(head.content_length(), Some(12));
    assert!(head.wants_close());
    assert_eq!(head.fields().count(), 0, "framing fields are the server's");
    head.append("Date", "Thu, 01 Jan 1970 00:00:00 GMT")
        .unwrap();
    let text = encode(&head, Framing::Length(12), false, Version::Http11);
    assert_eq!(text.matches("ate: ").count(), 1, "{text}");
    assert!(text.contains("Date: Thu, 01 Jan 1970"));
}

#[test]
fn status_lines() {
    let head = ResponseHead::from_status_line(b"201 Created").unwrap();
    assert_eq!((head.status(), head.reason()), (201, &b"Created"[..]));
    let head = ResponseHead::from_status_line(b"599 ").unwrap();
    assert_eq!(head.reason(), b"");
    let head = ResponseHead::from_status_line(b"200 Very OK").unwrap();
    assert_eq!(head.reason(), b"Very OK");
    for bad in [
        &b"20 OK"[..],
        b"2000 OK",
        b"abc OK",
        b"200OK",
        b"099 x",
        b"200 a\r\nb",
    ] {
        assert!(ResponseHead::from_status_line(bad).is_err(), "{bad:?}");
    }
    assert!(ResponseHead::new(99).is_err());
    assert!(ResponseHead::new(1000).is_err());
    assert_eq!(reason_phrase(413), "Content Too Large");
    let text = encode(
        &ResponseHead::new(599).unwrap(),
        Framing::Length(0),
        true,
        Version::Http11,
    );
    assert!(text.starts_with("HTTP/1.1 599 \r\n"));
}

#[test]
fn interim_head_has_no_date_or_connection() {
    let head = ResponseHead::new(103).unwrap();
    let mut dst = BytesMut::new();
    encode_head(
        &head,
        Framing::NoBody {
            content_length: None,
        },
        false,
        Version::Http11,
        &mut dst,
    );
    assert_eq!(&dst[..], b"HTTP/1.1 103 Early Hints\r\n\r\n");
}

#[test]
fn date_is_rendered_once_per_second() {
    let mut cache = DateCache::new();
    let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
    assert_eq!(cache.get(t), b"Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(
        cache.get(t + Duration::from_millis(999)),
        b"Sun, 06 Nov 1994 08:49:37 GMT"
    );
    assert_eq!(cache.renders(), 1);
    assert_eq!(
        cache.get(t + Duration::from_secs(1)),
        b"Sun, 06 Nov 1994 08:49:38 GMT"
    );
    assert_eq!(cache.renders(), 2);
    // And the real clock gives a well-formed date.
    let now = *cache.get(SystemTime::now());
    assert!(httpdate::parse_http_date(std::str::from_utf8(&now).unwrap()).is_ok());
}
