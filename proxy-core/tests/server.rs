//! The server over real loopback sockets: static files, uwsgi and HTTP upstreams, pools,
//! 502/504, TLS, reload and graceful shutdown.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use proxy_core::server::{Options, Timeouts};
use support::*;

fn www() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.txt"), "hello world\n").unwrap();
    std::fs::write(dir.path().join("app.js"), "console.log(1)\n").unwrap();
    std::fs::write(dir.path().join("app.js.gz"), b"\x1f\x8bfake-gzip").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/index.html"), "<p>index</p>").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("big.bin"), big).unwrap();
    dir
}

fn static_flag(dir: &tempfile::TempDir) -> String {
    format!("/s={}", dir.path().display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_200_etag_type_and_access() {
    let dir = www();
    let proxy = Proxy::start(flags(&[], None, &[&static_flag(&dir)]));
    let r = get(proxy.addr, "/s/a.txt").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello world\n");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(r.header("etag").is_some());
    assert!(r.header("last-modified").is_some());
    assert_eq!(r.header("content-length"), Some("12"));
    let missing = get(proxy.addr, "/s/nope.txt").await;
    assert_eq!(missing.status, 404);
    let index = get(proxy.addr, "/s/sub/").await;
    assert_eq!(index.status, 200);
    assert_eq!(index.text(), "<p>index</p>");
    let redirect = get(proxy.addr, "/s/sub?x=1").await;
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), Some("/s/sub/?x=1"));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_304_206_416_and_head() {
    let dir = www();
    let proxy = Proxy::start(flags(&[], None, &[&static_flag(&dir)]));
    let etag = get(proxy.addr, "/s/a.txt")
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let r = request(
        proxy.addr,
        "GET",
        "/s/a.txt",
        &[&format!("If-None-Match: {etag}")],
    )
    .await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    let r = request(proxy.addr, "GET", "/s/a.txt", &["Range: bytes=0-4"]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.text(), "hello");
    assert_eq!(r.header("content-range"), Some("bytes 0-4/12"));
    let r = request(proxy.addr, "GET", "/s/a.txt", &["Range: bytes=100-"]).await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */12"));
    let r = request(proxy.addr, "HEAD", "/s/a.txt", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("12"));
    assert!(r.body.is_empty());
    let r = request(proxy.addr, "POST", "/s/a.txt", &["Content-Length: 0"]).await;
    assert_eq!(r.status, 405);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_large_file_streamed_and_ranged() {
    let dir = www();
    let proxy = Proxy::start(flags(&[], None, &[&static_flag(&dir)]));
    let want = std::fs::read(dir.path().join("big.bin")).unwrap();
    let r = get(proxy.addr, "/s/big.bin").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), want.len());
    assert!(r.body == want);
    let r = request(
        proxy.addr,
        "GET",
        "/s/big.bin",
        &["Range: bytes=100000-250000"],
    )
    .await;
    assert_eq!(r.status, 206);
    assert!(r.body == want[100_000..=250_000]);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_traversal_refused() {
    let dir = www();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "secret").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
    let proxy = Proxy::start(flags(&[], None, &[&static_flag(&dir)]));
    for path in [
        "/s/../../etc/passwd",
        "/s/%2e%2e/%2e%2e/etc/passwd",
        "/s/sub%2f..%2f..%2fsecret",
        "/s/..%2f..%2fetc/passwd",
    ] {
        let r = get(proxy.addr, path).await;
        assert!(r.status == 400 || r.status == 404, "{path}: {}", r.status);
        assert!(!r.text().contains("root:"), "{path}");
    }
    let r = get(proxy.addr, "/s/link").await;
    assert_eq!(r.status, 403);
    assert!(!r.text().contains("secret"));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_precompressed_gzip() {
    let dir = www();
    let config = toml(&format!(
        r#"
[[server]]
listen = ["127.0.0.1:0"]
[[server.location]]
prefix = "/s/"
alias = "{}/"
precompressed = ["gzip"]
"#,
        dir.path().display()
    ));
    let proxy = Proxy::start(config);
    let r = request(
        proxy.addr,
        "GET",
        "/s/app.js",
        &["Accept-Encoding: gzip, br"],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert_eq!(r.body, b"\x1f\x8bfake-gzip");
    let r = get(proxy.addr, "/s/app.js").await;
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.text(), "console.log(1)\n");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_fallback_to_uwsgi() {
    let dir = www();
    let backend = UwsgiBackend::echo().await;
    let config = toml(&format!(
        r#"
[[server]]
listen = ["127.0.0.1:0"]
[[server.location]]
prefix = "/"
root = "{}"
fallback = "app"
[upstream.app]
protocol = "uwsgi"
servers = [{{ address = "{}" }}]
"#,
        dir.path().display(),
        backend.addr
    ));
    let proxy = Proxy::start(config);
    assert_eq!(get(proxy.addr, "/a.txt").await.text(), "hello world\n");
    let r = get(proxy.addr, "/dynamic?q=1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "path=/dynamic query=q=1 cl= body=0");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uwsgi_get_post_and_vars() {
    let backend = UwsgiBackend::echo().await;
    let proxy = Proxy::start(flags(&[&backend.addr.to_string()], None, &[]));
    let r = get(proxy.addr, "/hello/w%C3%B6rld?a=1&b=2").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "path=/hello/wörld query=a=1&b=2 cl= body=0");
    let r = raw(
        proxy.addr,
        b"POST /form HTTP/1.1\r\nHost: example.com:8080\r\nContent-Type: application/x-www-form-urlencoded\r\nCookie: a=1\r\nCookie: b=2\r\nContent-Length: 7\r\nConnection: close\r\n\r\nx=1&y=2",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "path=/form query= cl=7 body=7");
    let seen = backend.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen.var("REQUEST_METHOD"), Some("POST"));
    assert_eq!(seen.var("HTTP_HOST"), Some("example.com"));
    assert_eq!(seen.var("HTTP_COOKIE"), Some("a=1; b=2"));
    assert_eq!(
        seen.var("CONTENT_TYPE"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(seen.var("REMOTE_ADDR"), Some("127.0.0.1"));
    assert_eq!(&seen.body[..], b"x=1&y=2");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uwsgi_chunked_and_large_uploads_are_buffered() {
    let backend = UwsgiBackend::echo().await;
    let config = toml(&format!(
        r#"
[[server]]
listen = ["127.0.0.1:0"]
client_max_body_size = "10m"
[[server.location]]
prefix = "/"
uwsgi_pass = "{}"
"#,
        backend.addr
    ));
    let proxy = Proxy::start(config);
    let r = raw(
        proxy.addr,
        b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "path=/up query= cl=11 body=11");
    let first = backend.seen.lock().unwrap()[0].clone();
    assert_eq!(first.var("HTTP_TRANSFER_ENCODING"), None, "de-chunked body");
    assert_eq!(first.var("CONTENT_LENGTH"), Some("11"));
    // 3 MB: spills to a temporary file.
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let mut req = format!(
        "PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let r = raw(proxy.addr, &req).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "path=/big query= cl=3000000 body=3000000");
    let seen = backend.seen.lock().unwrap().last().cloned().unwrap();
    assert!(seen.body[..] == body[..]);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uwsgi_body_over_limit_is_413() {
    let backend = UwsgiBackend::echo().await;
    // A configuration file gets nginx's default client_max_body_size of 1m.
    let proxy = Proxy::start(toml(&format!(
        "[[server]]\nlisten = [\"127.0.0.1:0\"]\n[[server.location]]\nprefix = \"/\"\nuwsgi_pass = \"{}\"\n",
        backend.addr
    )));
    let r = raw(
        proxy.addr,
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 413);
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 0);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uwsgi_cgi_status_and_streamed_response() {
    let backend = UwsgiBackend::start(|seen| {
        if seen.var("PATH_INFO") == Some("/missing") {
            b"Status: 404 Not Found\r\nContent-Type: text/plain\r\nX-Accel-Buffering: no\r\n\r\nnot here"
                .to_vec()
        } else {
            // No length: read until close, re-framed as chunked for the client.
            let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n".to_vec();
            for i in 0..2000 {
                out.extend_from_slice(format!("line {i}\n").as_bytes());
            }
            out
        }
    })
    .await;
    let proxy = Proxy::start(flags(&[&backend.addr.to_string()], None, &[]));
    let r = get(proxy.addr, "/missing").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "not here");
    assert_eq!(r.header("x-accel-buffering"), None);
    let r = get(proxy.addr, "/stream").await;
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("line 0\nline 1\n"));
    assert!(r.text().ends_with("line 1999\n"));
    let r = request(proxy.addr, "HEAD", "/stream", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_with_one_server_down_keeps_succeeding() {
    let backend = UwsgiBackend::echo().await;
    let dead = dead_addr();
    let proxy = Proxy::start(flags(
        &[&dead.to_string(), &backend.addr.to_string()],
        None,
        &[],
    ));
    for i in 0..8 {
        let r = get(proxy.addr, &format!("/r{i}")).await;
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.text(), format!("path=/r{i} query= cl= body=0"));
    }
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 8);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_upstream_is_502_and_refused_is_502() {
    let backend = UwsgiBackend::start(|_| b"garbage\x01\x02 not a head\r\n\r\n".to_vec()).await;
    let proxy = Proxy::start(flags(&[&backend.addr.to_string()], None, &[]));
    let r = get(proxy.addr, "/").await;
    assert_eq!(r.status, 502);
    proxy.stop().await;

    let http = HttpBackend::start(|_| b"NOT HTTP AT ALL\r\n\r\n".to_vec()).await;
    let proxy = Proxy::start(flags(&[], Some(&format!("http://{}", http.addr)), &[]));
    assert_eq!(get(proxy.addr, "/").await.status, 502);
    proxy.stop().await;

    let proxy = Proxy::start(flags(&[&dead_addr().to_string()], None, &[]));
    assert_eq!(get(proxy.addr, "/").await.status, 502);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_upstream_is_504() {
    // Accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            conns.push(s);
        }
    });
    let options = Options {
        timeouts: Timeouts {
            read: Duration::from_millis(300),
            ..Timeouts::default()
        },
        ..Options::default()
    };
    let proxy = Proxy::start_with(flags(&[&addr.to_string()], None, &[]), options);
    let started = std::time::Instant::now();
    let r = get(proxy.addr, "/").await;
    assert_eq!(r.status, 504);
    assert!(started.elapsed() < Duration::from_secs(5));
    proxy.stop().await;
    hold.abort();
}

/// `keepalive = 0` on an upstream turns reuse off: every request opens a connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_upstream_keepalive_zero_opens_a_connection_per_request() {
    let backend =
        HttpBackend::start(|_| b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()).await;
    let mut config = flags(&[], Some(&format!("http://{}", backend.addr)), &[]);
    config
        .upstreams
        .values_mut()
        .for_each(|up| up.keepalive = Some(0));
    let proxy = Proxy::start(config);
    for i in 0..3 {
        let r = get(proxy.addr, &format!("/k{i}")).await;
        assert_eq!((r.status, r.text()), (200, "ok".to_owned()));
    }
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 3);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_upstream_keepalive_reuse_and_forwarded() {
    let backend = HttpBackend::start(|seen| {
        let body = format!("got {} bytes", seen.body.len());
        if seen.head.starts_with("GET /chunked") {
            format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            )
            .into_bytes()
        } else {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        }
    })
    .await;
    let proxy = Proxy::start(flags(&[], Some(&format!("http://{}", backend.addr)), &[]));
    for i in 0..5 {
        let r = request(
            proxy.addr,
            "GET",
            &format!("/p{i}"),
            &["X-Forwarded-For: 6.6.6.6"],
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "got 0 bytes");
    }
    let r = raw(
        proxy.addr,
        b"POST /post HTTP/1.1\r\nHost: app.example\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd",
    )
    .await;
    assert_eq!(r.text(), "got 4 bytes");
    let r = get(proxy.addr, "/chunked").await;
    assert_eq!(r.text(), "got 0 bytes");
    assert_eq!(
        backend.accepted.load(Ordering::SeqCst),
        1,
        "one upstream connection reused"
    );
    let seen = backend.seen.lock().unwrap().clone();
    let first = &seen[0].head;
    assert!(first.contains("X-Forwarded-For: 127.0.0.1\r\n"), "{first}");
    assert!(first.contains("X-Real-IP: 127.0.0.1\r\n"), "{first}");
    assert!(first.contains("X-Forwarded-Proto: http\r\n"), "{first}");
    assert!(!first.contains("6.6.6.6"), "untrusted XFF dropped: {first}");
    assert!(
        !first.to_ascii_lowercase().contains("connection: close"),
        "{first}"
    );
    assert!(seen[5].head.contains("Host: app.example\r\n"));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_upstream_over_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("app.sock");
    let listener = tokio::net::UnixListener::bind(&sock).unwrap();
    let server = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4\r\n\r\nunix",
                    )
                    .await;
            });
        }
    });
    let proxy = Proxy::start(flags(
        &[],
        Some(&format!("http://unix:{}", sock.display())),
        &[],
    ));
    for _ in 0..3 {
        let r = get(proxy.addr, "/").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "unix");
    }
    proxy.stop().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_self_signed_certificate() {
    use std::sync::Arc;
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = www();
    let certs = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
    let backend = UwsgiBackend::start(|seen| {
        let text = format!(
            "scheme={}",
            seen.var("UWSGI_SCHEME")
                .or(seen.var("REQUEST_SCHEME"))
                .unwrap_or("-")
        );
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        )
        .into_bytes()
    })
    .await;
    let config = toml(&format!(
        r#"
[[server]]
listen = ["127.0.0.1:0"]
server_name = ["localhost"]
tls = {{ cert = "{}", key = "{}" }}
[[server.location]]
prefix = "/s/"
alias = "{}/"
[[server.location]]
prefix = "/"
uwsgi_pass = "{}"
"#,
        cert_path.display(),
        key_path.display(),
        dir.path().display(),
        backend.addr
    ));
    let proxy = Proxy::start(config);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    for (path, want) in [("/s/a.txt", "hello world\n"), ("/app", "scheme=https")] {
        let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio::time::timeout(LIMIT, connector.connect(name, tcp))
            .await
            .unwrap()
            .expect("handshake");
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let r = exchange(tls, req.as_bytes()).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.text(), want);
    }
    // Plain HTTP on the TLS port fails.
    let plain = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let mut raw_out = Vec::new();
    tokio::time::timeout(LIMIT, async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut plain = plain;
        let _ = plain.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let _ = plain.read_to_end(&mut raw_out).await;
    })
    .await
    .unwrap();
    assert!(!raw_out.starts_with(b"HTTP/1.1 200"));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_to_new_connections() {
    let a = www();
    let b = tempfile::tempdir().unwrap();
    std::fs::write(b.path().join("a.txt"), "second\n").unwrap();
    let proxy = Proxy::start(flags(&[], None, &[&static_flag(&a)]));
    assert_eq!(get(proxy.addr, "/s/a.txt").await.text(), "hello world\n");
    // The reloaded configuration keeps the listening address.
    let mut next = flags(&[], None, &[&static_flag(&b)]);
    next.servers[0].listen = vec!["127.0.0.1:0".parse().unwrap()];
    proxy.reload.reload(next).unwrap();
    assert_eq!(get(proxy.addr, "/s/a.txt").await.text(), "second\n");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let backend = UwsgiBackend::start(|_| {
        std::thread::sleep(Duration::from_millis(500));
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow".to_vec()
    })
    .await;
    let proxy = Proxy::start(flags(&[&backend.addr.to_string()], None, &[]));
    let addr = proxy.addr;
    let inflight = tokio::spawn(async move { get(addr, "/slow").await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    proxy.stop().await;
    let r = inflight.await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "slow");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_answering_before_reading_the_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Answers 401 after the vars, reads nothing more, lingers briefly, then closes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 4];
                if s.read_exact(&mut head).await.is_err() {
                    return;
                }
                let size = u16::from_le_bytes([head[1], head[2]]) as usize;
                let mut vars = vec![0u8; size];
                if s.read_exact(&mut vars).await.is_err() {
                    return;
                }
                let _ = s
                    .write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 7\r\n\r\nignored")
                    .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            });
        }
    });
    let config = toml(&format!(
        "[[server]]\nlisten = [\"127.0.0.1:0\"]\nclient_max_body_size = \"10m\"\n\
         [[server.location]]\nprefix = \"/\"\nuwsgi_pass = \"{addr}\"\n"
    ));
    let proxy = Proxy::start(config);
    let mut req =
        b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\nConnection: close\r\n\r\n"
            .to_vec();
    req.extend(std::iter::repeat_n(b'x', 4_000_000));
    let r = raw(proxy.addr, &req).await;
    assert_eq!((r.status, r.text().as_str()), (401, "ignored"));
    proxy.stop().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_location() {
    let config = toml(
        r#"
[[server]]
listen = ["127.0.0.1:0"]
[[server.location]]
prefix = "/"
redirect = "https://$host$request_uri"
"#,
    );
    let proxy = Proxy::start(config);
    let r = raw(
        proxy.addr,
        b"GET /a/b?c=d HTTP/1.1\r\nHost: Example.COM:8080\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://example.com/a/b?c=d"));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_keepalive_connection_is_replaced() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Claims keep-alive but closes each connection right after its response.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&accepted);
    let server = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    let proxy = Proxy::start(flags(&[], Some(&format!("http://{addr}")), &[]));
    for i in 0..4 {
        let r = get(proxy.addr, "/").await;
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "request {i}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
    proxy.stop().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificate_chosen_by_sni() {
    use std::sync::Arc;
    let certs = tempfile::tempdir().unwrap();
    let mut blocks = String::new();
    let mut ders = Vec::new();
    for (i, name) in ["one.test", "two.test"].iter().enumerate() {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        let (c, k) = (
            certs.path().join(format!("{i}.pem")),
            certs.path().join(format!("{i}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, signing_key.serialize_pem()).unwrap();
        let dir = certs.path().join(format!("www{i}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("who"), name).unwrap();
        blocks.push_str(&format!(
            "[[server]]\nlisten = [\"127.0.0.1:0\"]\nserver_name = [\"{name}\"]\n\
             tls = {{ cert = \"{}\", key = \"{}\" }}\n\
             [[server.location]]\nprefix = \"/\"\nroot = \"{}\"\n",
            c.display(),
            k.display(),
            dir.display()
        ));
        ders.push(cert.der().clone());
    }
    let proxy = Proxy::start(toml(&blocks));
    for (name, der) in ["one.test", "two.test"].iter().zip(ders) {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        let sni = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        let tls = tokio::time::timeout(LIMIT, connector.connect(sni, tcp))
            .await
            .unwrap()
            .expect("handshake with the certificate for the SNI name");
        let req = format!("GET /who HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n");
        let r = exchange(tls, req.as_bytes()).await;
        assert_eq!((r.status, r.text()), (200, name.to_string()));
    }
    proxy.stop().await;
}
