//! The crate-level error: statuses, sides, retryability, sources.

use std::error::Error as _;
use std::io;

use proxy_core::pool::Failure;
use proxy_core::static_files::StaticLocation;
use proxy_core::upstream_head::{HeadLimits, UpstreamProtocol, parse_head};
use proxy_core::uwsgi_params::{RequestInfo, Scheme, UwsgiParams};
use proxy_core::{Error, ErrorSource};

#[test]
fn bad_paths_are_downstream_400() {
    let e: Error = proxy_core::path::document_uri(b"/..").unwrap_err().into();
    assert_eq!((e.status(), e.side()), (400, ErrorSource::Downstream));
    assert!(e.is_bad_request() && !e.is_retryable());
    assert!(e.source().is_some());
    assert!(e.to_string().contains("'..'"));
    let e: Error = StaticLocation::root("/", "/srv")
        .resolve(b"/%2e%2e/x", None)
        .unwrap_err()
        .into();
    assert_eq!(e.status(), 400);
}

#[test]
fn oversized_vars_are_internal_500() {
    let big = vec![b'x'; 70_000];
    let fields: Vec<(&[u8], &[u8])> = vec![(b"Cookie", &big)];
    let req = RequestInfo {
        method: b"GET",
        target: b"/",
        protocol: b"HTTP/1.1",
        fields: &fields,
        peer: None,
        local: None,
        scheme: Scheme::Http,
        body_length: None,
    };
    let e: Error = UwsgiParams::new()
        .encode(&req, &mut bytes::BytesMut::new())
        .unwrap_err()
        .into();
    assert_eq!((e.status(), e.side()), (500, ErrorSource::Internal));
    assert!(e.to_string().contains("too big"));
}

#[test]
fn invalid_upstream_heads_are_502_not_retryable() {
    let head = parse_head(
        b"HTTP/1.1 2 OK\r\n\r\n",
        UpstreamProtocol::Http,
        false,
        &HeadLimits::default(),
    );
    let e: Error = head.unwrap_err().into();
    assert_eq!((e.status(), e.side()), (502, ErrorSource::Upstream));
    assert!(e.is_invalid_upstream_response());
    assert!(!e.is_retryable());
    assert_eq!(e.upstream_failure(), Some(Failure::InvalidHead));
}

#[test]
fn upstream_failures() {
    let e = Error::upstream(Failure::Timeout, None);
    assert_eq!(e.status(), 504);
    assert!(e.is_timeout() && e.is_retryable());
    assert_eq!(e.to_string(), "the upstream timed out");
    let e = Error::upstream(
        Failure::Connect,
        Some(io::Error::new(io::ErrorKind::ConnectionRefused, "refused")),
    );
    assert_eq!((e.status(), e.side()), (502, ErrorSource::Upstream));
    assert!(e.is_retryable());
    assert_eq!(e.upstream_failure(), Some(Failure::Connect));
    assert_eq!(e.to_string(), "connecting to the upstream failed: refused");
    assert!(e.source().unwrap().downcast_ref::<io::Error>().is_some());
    let e = Error::no_live_upstream();
    assert_eq!(e.status(), 502);
    assert!(e.is_no_live_upstream() && !e.is_retryable());
    assert_eq!(e.to_string(), "no live upstreams");
    assert!(format!("{e:?}").contains("NoLiveUpstream"));
}

#[test]
fn static_io_errors_are_internal() {
    // A root that is a file, not a directory: canonicalize works, the child lookup fails
    // with NotADirectory, which is a plain 404, not a 500.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let r = StaticLocation::root("/", &file)
        .resolve(b"/x", None)
        .unwrap();
    assert_eq!(r, proxy_core::static_files::Resolved::NotFound);
}
