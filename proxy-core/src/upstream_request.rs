//! The request head for an HTTP/1.1 upstream, re-serialised from the client's request as
//! nginx's `proxy_pass` (with `proxy_http_version 1.1`, the default since 1.29.7) and a
//! keep-alive upstream pool build it.
//!
//! - Request line: the method, the client's target in origin-form (an absolute-form target
//!   loses its scheme and authority, as nginx's `$request_uri`), `HTTP/1.1`.
//! - `Host` first, with the value the caller chose (nginx's default is `$proxy_host`, the
//!   upstream's address; the usual deployment sets `Host $host`, see
//!   [`host_var`](crate::uwsgi_params::host_var)).
//! - The client's fields in order, without hop-by-hop fields (`Connection` and the fields
//!   it names, `Keep-Alive`, `Proxy-Connection`, `TE`, `Transfer-Encoding`, `Upgrade`,
//!   `Trailer`), without `Expect` (the front answers `100-continue` itself), without
//!   `Host` and `Content-Length` (set here), and without the client's `X-Forwarded-For`,
//!   `X-Real-IP` and `X-Forwarded-Proto` (replaced by [`Forwarded::fields`]).
//! - `X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Proto`.
//! - `Content-Length` of the buffered body when the request had one (a chunked body is
//!   sent de-chunked with its decoded length, as nginx does with request buffering on).
//!
//! No `Connection` field is sent: HTTP/1.1 is persistent by default, which is what a
//! keep-alive upstream pool wants (nginx sends `Connection: close` only without one).

use bytes::{BufMut, BytesMut};

use crate::forwarded::{Forwarded, is_forwarding_field};
use crate::path::{PathError, origin_form};
use crate::uwsgi_params::RequestInfo;

/// Whether the client's field `name` is left out of the upstream request (see the module
/// docs); `connection_named` holds the tokens of the client's `Connection` fields.
fn dropped(name: &[u8], connection_named: &[&[u8]]) -> bool {
    const DROP: [&[u8]; 10] = [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"transfer-encoding",
        b"upgrade",
        b"trailer",
        b"expect",
        b"host",
        b"content-length",
    ];
    DROP.iter().any(|d| name.eq_ignore_ascii_case(d))
        || is_forwarding_field(name)
        || connection_named
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
}

/// Appends the upstream request head for `req` to `dst` with one reservation.
///
/// `host` is the `Host` value to send; `forwarded` comes from
/// [`forwarded`](crate::forwarded::forwarded). The body (`req.body_length` bytes) is the
/// caller's to send after the head. O(head size), no allocation besides `dst`.
///
/// # Errors
///
/// [`PathError::NotAbsolute`] when the target is neither origin-form nor `*` (only
/// `OPTIONS *` is passed as `*`); nothing is written.
pub fn encode_http_request(
    req: &RequestInfo<'_>,
    host: &[u8],
    forwarded: &Forwarded,
    dst: &mut BytesMut,
) -> Result<(), PathError> {
    let target = origin_form(req.target);
    let asterisk = target == b"*" && req.method == b"OPTIONS";
    if target.first() != Some(&b'/') && !asterisk {
        return Err(PathError::NotAbsolute);
    }
    let named: Vec<&[u8]> = req
        .fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
        .collect();
    let kept = || req.fields.iter().filter(|(n, _)| !dropped(n, &named));
    let length = req.body_length.map(|n| n.to_string());

    let forwarded_fields = forwarded.fields();
    let size = req.method.len()
        + 1
        + target.len()
        + 11
        + 6
        + host.len()
        + 2
        + kept()
            .map(|(n, v)| n.len() + 2 + v.len() + 2)
            .sum::<usize>()
        + forwarded_fields
            .iter()
            .map(|(n, v)| n.len() + 2 + v.len() + 2)
            .sum::<usize>()
        + length.as_ref().map_or(0, |l| 16 + l.len() + 2)
        + 2;
    dst.reserve(size);
    dst.put_slice(req.method);
    dst.put_u8(b' ');
    dst.put_slice(target);
    dst.put_slice(b" HTTP/1.1\r\nHost: ");
    dst.put_slice(host);
    dst.put_slice(b"\r\n");
    for (name, value) in kept() {
        put_field(dst, name, value);
    }
    for (name, value) in forwarded_fields {
        put_field(dst, name.as_bytes(), value);
    }
    if let Some(l) = &length {
        put_field(dst, b"Content-Length", l.as_bytes());
    }
    dst.put_slice(b"\r\n");
    Ok(())
}

fn put_field(dst: &mut BytesMut, name: &[u8], value: &[u8]) {
    dst.put_slice(name);
    dst.put_slice(b": ");
    dst.put_slice(value);
    dst.put_slice(b"\r\n");
}
