//! Fixtures shared by the criterion benches and the load harness.
//!
//! The fixtures describe one realistic browser request two ways: as the uwsgi packet nginx
//! 1.22 sends for it through the stock `uwsgi_params` (14 params + 7 headers = 21 vars), and
//! as the HTTP/1.1 request the browser sent to nginx. Benches compare the two parsers on the
//! same content.

use bytes::BytesMut;
use uwsgi_proto::{Modifier1, encode_request};

/// The vars nginx sends for [`BROWSER_HTTP_REQUEST`], in nginx's order.
pub const BROWSER_VARS: &[(&str, &str)] = &[
    ("QUERY_STRING", "range=7d&sort=desc"),
    ("REQUEST_METHOD", "GET"),
    ("CONTENT_TYPE", ""),
    ("CONTENT_LENGTH", ""),
    ("REQUEST_URI", "/dashboard/reports?range=7d&sort=desc"),
    ("PATH_INFO", "/dashboard/reports"),
    ("DOCUMENT_ROOT", "/usr/share/nginx/html"),
    ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("REQUEST_SCHEME", "https"),
    ("REMOTE_ADDR", "203.0.113.7"),
    ("REMOTE_PORT", "51234"),
    ("SERVER_PORT", "443"),
    ("SERVER_NAME", "app.example.com"),
    ("HTTP_HOST", "app.example.com"),
    (
        "HTTP_USER_AGENT",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ),
    (
        "HTTP_ACCEPT",
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    ),
    ("HTTP_ACCEPT_LANGUAGE", "en-US,en;q=0.5"),
    ("HTTP_ACCEPT_ENCODING", "gzip, deflate, br, zstd"),
    ("HTTP_REFERER", "https://app.example.com/dashboard"),
    (
        "HTTP_COOKIE",
        "sessionid=8f2kq9c0v1x7m3n5b6z4a2s8d0f1g3h5; csrftoken=Yp3QmT8vWx2LkN6rJb9CsD4fGh7Ze1Ua",
    ),
    ("HTTP_CONNECTION", "keep-alive"),
];

/// The HTTP/1.1 request a browser sent to nginx for [`BROWSER_VARS`].
pub const BROWSER_HTTP_REQUEST: &[u8] = b"GET /dashboard/reports?range=7d&sort=desc HTTP/1.1\r\n\
Host: app.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://app.example.com/dashboard\r\n\
Cookie: sessionid=8f2kq9c0v1x7m3n5b6z4a2s8d0f1g3h5; csrftoken=Yp3QmT8vWx2LkN6rJb9CsD4fGh7Ze1Ua\r\n\
Connection: keep-alive\r\n\
\r\n";

/// The uwsgi packet (header + vars block) for [`BROWSER_VARS`], as nginx sends it.
pub fn browser_packet() -> BytesMut {
    let mut dst = BytesMut::new();
    encode_request(Modifier1::WSGI, 0, BROWSER_VARS, &mut dst)
        .expect("invariant: the fixture fits in a packet");
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_describe_the_same_request() {
        let packet = browser_packet();
        assert!(
            (700..=900).contains(&packet.len()),
            "packet is {} bytes",
            packet.len()
        );
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(BROWSER_HTTP_REQUEST).unwrap().is_complete());
        // Every HTTP header appears as its HTTP_* var with the same value.
        for h in req.headers.iter() {
            let key = format!("HTTP_{}", h.name.to_ascii_uppercase().replace('-', "_"));
            let var = BROWSER_VARS.iter().find(|(k, _)| *k == key).unwrap();
            assert_eq!(var.1.as_bytes(), h.value);
        }
    }
}
