//! uwsgi vars as nginx's stock `uwsgi_params` builds them (reference/uwsgi-protocol.md
//! §4.2–4.3; the same requests as uwsgi-proto's real-nginx test, with nginx ≥ 1.23's
//! joining of repeated fields).

use std::net::SocketAddr;

use bytes::BytesMut;
use proxy_core::path::PathError;
use proxy_core::uwsgi_params::{
    ParamsError, RequestInfo, Scheme, UwsgiParams, host_var, http_var_name,
};
use uwsgi_proto::{Header, Limits, Modifier1, Vars};

/// The `uwsgi_param` lines of Debian's `/etc/nginx/uwsgi_params`, in file order.
const DEBIAN_UWSGI_PARAMS: [&str; 15] = [
    "QUERY_STRING",
    "REQUEST_METHOD",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "REQUEST_URI",
    "PATH_INFO",
    "DOCUMENT_ROOT",
    "SERVER_PROTOCOL",
    "REQUEST_SCHEME",
    "HTTPS",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "SERVER_PORT",
    "SERVER_NAME",
    "HTTP_HOST",
];

fn params() -> UwsgiParams {
    let mut p = UwsgiParams::new();
    p.document_root("/srv/html").server_name("ferrule.test");
    p
}

fn peer() -> Option<SocketAddr> {
    Some("127.0.0.1:40001".parse().unwrap())
}

fn local() -> Option<SocketAddr> {
    Some("127.0.0.1:8080".parse().unwrap())
}

fn request<'a>(
    method: &'a str,
    target: &'a str,
    fields: &'a [(&'a [u8], &'a [u8])],
    body_length: Option<u64>,
) -> RequestInfo<'a> {
    RequestInfo {
        method: method.as_bytes(),
        target: target.as_bytes(),
        protocol: b"HTTP/1.1",
        fields,
        peer: peer(),
        local: local(),
        scheme: Scheme::Http,
        body_length,
    }
}

fn strings(p: &UwsgiParams, req: &RequestInfo<'_>) -> Vec<(String, String)> {
    p.vars(req)
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8(k.into_owned()).unwrap(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn get_with_decoded_path_query_duplicates_and_cookies() {
    let cookie = format!("big={}", "c".repeat(60 * 1024));
    let fields: Vec<(&[u8], &[u8])> = vec![
        (b"Host", b"Example.ORG:8080"),
        (b"User-Agent", b"uwsgi-proto-test/1"),
        (b"X-Dup", b"one"),
        (b"x-dup", b"two"),
        (b"Cookie", cookie.as_bytes()),
        (b"Connection", b"close"),
        (b"Cookie", b"second=1"),
    ];
    let req = request("GET", "/a%20b/caf%C3%A9?x=1&y=%20", &fields, None);
    let got = strings(&params(), &req);
    let joined_cookie = format!("{cookie}; second=1");
    let want = pairs(&[
        ("QUERY_STRING", "x=1&y=%20"),
        ("REQUEST_METHOD", "GET"),
        ("CONTENT_TYPE", ""),
        ("CONTENT_LENGTH", ""),
        ("REQUEST_URI", "/a%20b/caf%C3%A9?x=1&y=%20"),
        ("PATH_INFO", "/a b/café"),
        ("DOCUMENT_ROOT", "/srv/html"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_SCHEME", "http"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_PORT", "40001"),
        ("SERVER_PORT", "8080"),
        ("SERVER_NAME", "ferrule.test"),
        ("HTTP_HOST", "example.org"),
        ("HTTP_USER_AGENT", "uwsgi-proto-test/1"),
        ("HTTP_X_DUP", "one, two"),
        ("HTTP_COOKIE", &joined_cookie),
        ("HTTP_CONNECTION", "close"),
    ]);
    assert_eq!(got, want);
    // The stock params come first, in the file's order (HTTPS is if_not_empty).
    let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).take(14).collect();
    let stock: Vec<&str> = DEBIAN_UWSGI_PARAMS
        .iter()
        .copied()
        .filter(|k| *k != "HTTPS")
        .collect();
    assert_eq!(keys, stock);
}

#[test]
fn form_post_sends_content_vars_and_their_http_duplicates() {
    let fields: Vec<(&[u8], &[u8])> = vec![
        (b"Host", b"ferrule.test"),
        (b"Content-Type", b"application/x-www-form-urlencoded"),
        (b"Content-Length", b"22"),
    ];
    let got = strings(&params(), &request("POST", "/form", &fields, Some(22)));
    let find = |k: &str| got.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(
        find("CONTENT_TYPE"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(find("CONTENT_LENGTH"), Some("22"));
    assert_eq!(
        find("HTTP_CONTENT_TYPE"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(find("HTTP_CONTENT_LENGTH"), Some("22"));
    assert_eq!(find("QUERY_STRING"), Some(""));
    assert_eq!(find("PATH_INFO"), Some("/form"));
}

#[test]
fn chunked_body_gets_the_decoded_length_and_keeps_transfer_encoding() {
    let fields: Vec<(&[u8], &[u8])> = vec![
        (b"Host", b"ferrule.test"),
        (b"Transfer-Encoding", b"chunked"),
    ];
    let got = strings(&params(), &request("POST", "/chunked", &fields, Some(11)));
    assert!(got.contains(&("CONTENT_LENGTH".into(), "11".into())));
    assert!(got.contains(&("HTTP_TRANSFER_ENCODING".into(), "chunked".into())));
    let empty = strings(&params(), &request("POST", "/", &fields[..1], Some(0)));
    assert!(empty.contains(&("CONTENT_LENGTH".into(), "0".into())));
}

#[test]
fn https_unix_peer_http10_without_host() {
    let req = RequestInfo {
        method: b"GET",
        target: b"/",
        protocol: b"HTTP/1.0",
        fields: &[],
        peer: None,
        local: None,
        scheme: Scheme::Https,
        body_length: None,
    };
    let got = strings(&params(), &req);
    let want = pairs(&[
        ("QUERY_STRING", ""),
        ("REQUEST_METHOD", "GET"),
        ("CONTENT_TYPE", ""),
        ("CONTENT_LENGTH", ""),
        ("REQUEST_URI", "/"),
        ("PATH_INFO", "/"),
        ("DOCUMENT_ROOT", "/srv/html"),
        ("SERVER_PROTOCOL", "HTTP/1.0"),
        ("REQUEST_SCHEME", "https"),
        ("HTTPS", "on"),
        ("REMOTE_ADDR", "unix:"),
        ("REMOTE_PORT", ""),
        ("SERVER_PORT", ""),
        ("SERVER_NAME", "ferrule.test"),
        ("HTTP_HOST", "ferrule.test"),
    ]);
    assert_eq!(got, want);
    assert_eq!(
        got.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        DEBIAN_UWSGI_PARAMS.to_vec()
    );
}

#[test]
fn ipv6_peer_and_absolute_form_target() {
    let fields: Vec<(&[u8], &[u8])> = vec![(b"Host", b"malformedhost")];
    let mut req = request("GET", "http://Example.COM:8080/p%41th?q=1", &fields, None);
    req.peer = Some("[2001:db8::1]:5555".parse().unwrap());
    req.local = Some("[::1]:443".parse().unwrap());
    let got = strings(&params(), &req);
    let find = |k: &str| got.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(find("REMOTE_ADDR").as_deref(), Some("2001:db8::1"));
    assert_eq!(find("REMOTE_PORT").as_deref(), Some("5555"));
    assert_eq!(find("SERVER_PORT").as_deref(), Some("443"));
    // The request line's host wins over a forged Host field (the Debian workaround).
    assert_eq!(find("HTTP_HOST").as_deref(), Some("example.com"));
    assert_eq!(find("REQUEST_URI").as_deref(), Some("/p%41th?q=1"));
    assert_eq!(find("PATH_INFO").as_deref(), Some("/pAth"));
    assert_eq!(find("QUERY_STRING").as_deref(), Some("q=1"));
    assert_eq!(got.iter().filter(|(k, _)| k == "HTTP_HOST").count(), 1);
}

#[test]
fn host_var_rules() {
    let with_host = |host: &'static [u8]| {
        let fields: &'static [(&'static [u8], &'static [u8])] =
            Box::leak(vec![(&b"Host"[..], host)].into_boxed_slice());
        host_var(&request("GET", "/", fields, None), b"default").into_owned()
    };
    assert_eq!(with_host(b"Example.ORG:8080"), b"example.org");
    assert_eq!(with_host(b"example.org."), b"example.org");
    assert_eq!(with_host(b"[::1]:8080"), b"[::1]");
    assert_eq!(with_host(b"[::1]"), b"[::1]");
    assert_eq!(with_host(b"10.0.0.1"), b"10.0.0.1");
    assert_eq!(with_host(b""), b"default");
    assert_eq!(
        host_var(&request("GET", "/", &[], None), b"default"),
        &b"default"[..]
    );
}

#[test]
fn header_names_map_like_nginx_and_underscores_are_dropped() {
    assert_eq!(http_var_name(b"x-forwarded-for"), b"HTTP_X_FORWARDED_FOR");
    assert_eq!(http_var_name(b"Accept-Encoding"), b"HTTP_ACCEPT_ENCODING");
    assert_eq!(http_var_name(b"X.Odd"), b"HTTP_X.ODD");
    let fields: Vec<(&[u8], &[u8])> = vec![
        (b"X-Real-IP", b"1.1.1.1"),
        (b"X_Real_IP", b"6.6.6.6"),
        (b"x-real-ip", b"2.2.2.2"),
    ];
    let got = strings(&params(), &request("GET", "/", &fields, None));
    let reals: Vec<_> = got
        .iter()
        .filter(|(k, _)| k.starts_with("HTTP_X_REAL"))
        .collect();
    assert_eq!(
        reals,
        vec![&("HTTP_X_REAL_IP".to_string(), "1.1.1.1, 2.2.2.2".to_string())]
    );

    let mut allow = params();
    allow.underscores(true);
    let got = strings(&allow, &request("GET", "/", &fields, None));
    let reals: Vec<_> = got
        .iter()
        .filter(|(k, _)| k.starts_with("HTTP_X_REAL"))
        .collect();
    // Different names (`-` vs `_`) are not joined: two keys, as nginx sends them.
    assert_eq!(
        reals,
        vec![
            &("HTTP_X_REAL_IP".to_string(), "1.1.1.1, 2.2.2.2".to_string()),
            &("HTTP_X_REAL_IP".to_string(), "6.6.6.6".to_string()),
        ]
    );
}

#[test]
fn script_name_and_extra_params() {
    let fields: Vec<(&[u8], &[u8])> = vec![
        (b"Host", b"h"),
        (b"X-Foo", b"from-client"),
        (b"Script-Name", b"/evil"),
    ];
    let mut p = params();
    p.script_name(Some(b"/app".to_vec()), false)
        .param("HTTP_X_FOO", "fixed")
        .param("UWSGI_SCHEME", "https");
    let got = strings(&p, &request("GET", "/app/x", &fields, None));
    // 13 stock params (no HTTPS on http) + HTTP_HOST, then ours, then the fields.
    let tail: Vec<(String, String)> = got[14..].to_vec();
    assert_eq!(
        tail,
        pairs(&[
            ("SCRIPT_NAME", "/app"),
            ("HTTP_X_FOO", "fixed"),
            ("UWSGI_SCHEME", "https"),
            // Only HTTP_* params hide fields (nginx strips "HTTP_" to build that hash).
            ("HTTP_SCRIPT_NAME", "/evil"),
        ])
    );
    assert!(got.contains(&("PATH_INFO".into(), "/app/x".into())));

    let mut strip = params();
    strip.script_name(Some(b"/app/".to_vec()), true);
    let path = |target: &str| {
        strings(&strip, &request("GET", target, &[], None))
            .into_iter()
            .find(|(k, _)| k == "PATH_INFO")
            .unwrap()
            .1
    };
    assert_eq!(path("/app/x/y"), "/x/y");
    assert_eq!(path("/app"), "");
    assert_eq!(path("/apple"), "/apple");
    assert_eq!(path("/other"), "/other");
}

#[test]
fn bad_paths_are_400() {
    for (target, err) in [
        ("/..", PathError::AboveRoot),
        ("/%zz", PathError::BadEscape { offset: 1 }),
        ("/a%00", PathError::Nul),
        ("*", PathError::NotAbsolute),
    ] {
        let e = params()
            .vars(&request("OPTIONS", target, &[], None))
            .unwrap_err();
        assert_eq!(e, ParamsError::Path(err), "{target}");
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn encode_round_trips_through_the_decoder() {
    let fields: Vec<(&[u8], &[u8])> =
        vec![(b"Host", b"h"), (b"Cookie", b"a=1"), (b"cookie", b"b=2")];
    let req = request("GET", "/x?y", &fields, None);
    let mut p = params();
    p.modifiers(Modifier1(30), 7);
    let mut dst = BytesMut::from(&b"prefix"[..]);
    p.encode(&req, &mut dst).unwrap();
    assert_eq!(&dst[..6], b"prefix");
    let header = Header::decode(&dst[6..10]).unwrap();
    assert_eq!(header.modifier1, Modifier1(30));
    assert_eq!(header.modifier2, 7);
    assert_eq!(usize::from(header.datasize), dst.len() - 10);
    let vars = Vars::parse(&dst[10..], &Limits::default()).unwrap();
    let decoded: Vec<(Vec<u8>, Vec<u8>)> =
        vars.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
    let built: Vec<(Vec<u8>, Vec<u8>)> = p
        .vars(&req)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(decoded, built);
    assert_eq!(vars.get(b"HTTP_COOKIE"), Some(&b"a=1; b=2"[..]));
}

#[test]
fn too_big_is_500_and_writes_nothing() {
    let big = vec![b'c'; 70 * 1024];
    let fields: Vec<(&[u8], &[u8])> = vec![(b"Cookie", &big)];
    let mut dst = BytesMut::new();
    let err = params()
        .encode(&request("GET", "/", &fields, None), &mut dst)
        .unwrap_err();
    assert!(matches!(err, ParamsError::TooLarge { size } if size > 70 * 1024));
    assert_eq!(err.status(), 500);
    assert!(dst.is_empty());
    // Just under the limit goes through (nginx sent 60 KB cookies in the reference).
    let ok = vec![b'c'; 60 * 1024];
    let fields: Vec<(&[u8], &[u8])> = vec![(b"Cookie", &ok)];
    params()
        .encode(&request("GET", "/", &fields, None), &mut dst)
        .unwrap();
    assert!(dst.len() > 60 * 1024);

    let mut empty_key = params();
    empty_key.param("", "x");
    let err = empty_key
        .encode(&request("GET", "/", &[], None), &mut dst)
        .unwrap_err();
    assert_eq!(err, ParamsError::EmptyKey);
}
