//! ferrule serving the Flask app behind real fronts, over a unix uwsgi socket:
//! Debian's nginx (`include uwsgi_params; uwsgi_pass unix:…`) and uWSGI's HTTP router
//! (`uwsgi --http … --http-to …`, from the pyuwsgi wheel). The same matrix runs through both.

mod support;

use support::{
    Addr, TempDir, curl, ferrule, nginx_errors, nginx_uwsgi_front, pattern_file, uwsgi_router,
};

/// Starts ferrule with the Flask app on a unix uwsgi socket in `dir`.
fn flask_on_unix_socket(dir: &TempDir) -> (support::Proc, String) {
    let sock = dir.path("app.sock");
    let venv = support::venv();
    let apps = support::apps();
    let proc = ferrule(
        dir,
        &[
            "--socket",
            sock.to_str().unwrap(),
            "--chmod-socket",
            "666",
            "--chdir",
            apps.to_str().unwrap(),
            "--module",
            "flaskapp:app",
            "--virtualenv",
            venv.to_str().unwrap(),
            "--master",
            "--processes",
            "2",
        ],
        Addr::Unix(sock.clone()),
    );
    (proc, sock.display().to_string())
}

/// What the front supports.
struct Front {
    name: &'static str,
    /// nginx de-chunks; the router forwards raw chunks only with --http-chunked-input.
    chunked_upload: bool,
    /// Size of the big cookie. uWSGI's router keeps the whole request head in a 64 KiB
    /// buffer: measured here, a 61,000-byte cookie passes and a 61,440-byte one gets no
    /// answer, with ferrule or uWSGI behind it. nginx takes 60 KiB.
    cookie_bytes: usize,
}

fn matrix(front: &Front, port: u16, dir: &TempDir) {
    let name = front.name;
    // GET
    let r = curl(port, "/", &[]);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hello from Flask"),
        "{name} GET"
    );

    // Form POST
    let r = curl(port, "/form", &["-d", "name=ferrule"]);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "name=ferrule"),
        "{name} form"
    );

    // JSON and a redirect
    let r = curl(
        port,
        "/json",
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"a":[1,2]}"#,
        ],
    );
    assert_eq!(r.status, 200, "{name} json");
    assert!(
        r.text().contains(r#""received":{"a":[1,2]}"#),
        "{name} json: {}",
        r.text()
    );
    let r = curl(port, "/redirect", &[]);
    assert_eq!(r.status, 302, "{name} redirect");
    assert!(
        r.header("Location").unwrap().ends_with('/'),
        "{name} redirect"
    );

    // 10 MB upload, checked by the app's sha256 against an independent one.
    let file = dir.path("upload.bin");
    let sha = pattern_file(&file, 10 << 20);
    let at_file = format!("@{}", file.display());
    let r = curl(
        port,
        "/upload",
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &at_file,
        ],
    );
    assert_eq!(r.status, 200, "{name} upload: {}", r.text());
    assert!(
        r.text().contains(&format!(r#""sha256":"{sha}""#)),
        "{name} upload: {}",
        r.text()
    );
    assert!(
        r.text().contains(r#""size":10485760"#),
        "{name} upload: {}",
        r.text()
    );

    // Chunked upload
    if front.chunked_upload {
        let r = curl(
            port,
            "/upload",
            &[
                "-H",
                "Transfer-Encoding: chunked",
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                &at_file,
            ],
        );
        assert_eq!(r.status, 200, "{name} chunked upload: {}", r.text());
        assert!(
            r.text().contains(&format!(r#""sha256":"{sha}""#)),
            "{name} chunked: {}",
            r.text()
        );
    }

    // Streamed response
    let r = curl(port, "/stream", &[]);
    assert_eq!(r.status, 200, "{name} stream");
    let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
    assert_eq!(r.text(), expected, "{name} stream");

    // 60 KB cookie
    let cookie = format!("Cookie: big={}", "c".repeat(front.cookie_bytes));
    let r = curl(port, "/cookie", &["-H", &cookie]);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "cookies=['big']"),
        "{name} cookie"
    );
    assert!(
        r.header("Set-Cookie").unwrap().starts_with("visited=yes"),
        "{name} set-cookie"
    );

    // Repeated headers arrive joined, as PEP 3333 / CGI want one value.
    let r = curl(port, "/headers", &["-H", "X-Dup: one", "-H", "X-Dup: two"]);
    assert!(
        r.text().contains(r#""X-Dup":"one, two""#),
        "{name} repeated headers: {}",
        r.text()
    );

    // HEAD, 204, 304
    let r = curl(port, "/", &["-I"]);
    assert_eq!(r.status, 200, "{name} HEAD");
    assert!(r.body.is_empty(), "{name} HEAD body");
    let r = curl(port, "/nothing", &[]);
    assert_eq!((r.status, r.body.len()), (204, 0), "{name} 204");
    let r = curl(port, "/cached", &[]);
    let etag = r.header("ETag").unwrap().to_string();
    let r = curl(port, "/cached", &["-H", &format!("If-None-Match: {etag}")]);
    assert_eq!((r.status, r.body.len()), (304, 0), "{name} 304");
}

#[test]
fn flask_behind_nginx_uwsgi_pass() {
    let dir = TempDir::new("nginx");
    let (app, sock) = flask_on_unix_socket(&dir);
    let (nginx, port) = nginx_uwsgi_front(&dir, &format!("unix:{sock}"));
    matrix(
        &Front {
            name: "nginx",
            chunked_upload: true,
            cookie_bytes: 60 * 1024,
        },
        port,
        &dir,
    );

    // 20 POSTs of 2 MB to a route that does not read the body: nginx must never see a
    // connection reset (502), because ferrule drains the body before closing.
    let file = dir.path("two-mb.bin");
    pattern_file(&file, 2 << 20);
    let at_file = format!("@{}", file.display());
    for i in 0..20 {
        let r = curl(port, "/ignore-body", &["--data-binary", &at_file]);
        assert_eq!(
            r.status,
            401,
            "POST {i}: {}\nnginx errors:\n{}",
            r.text(),
            nginx_errors(&dir)
        );
    }
    let errors = nginx_errors(&dir);
    assert!(
        !errors.contains("upstream prematurely closed") && !errors.contains("reset by peer"),
        "{errors}"
    );
    drop(nginx);
    drop(app);
}

#[test]
fn flask_behind_uwsgi_http_router() {
    let dir = TempDir::new("router");
    let (app, sock) = flask_on_unix_socket(&dir);
    let (router, port) = uwsgi_router(
        &dir,
        &sock,
        &["--http-chunked-input", "--buffer-size", "65535"],
    );
    matrix(
        &Front {
            name: "uwsgi router",
            chunked_upload: true,
            cookie_bytes: 60_000,
        },
        port,
        &dir,
    );
    drop(router);
    drop(app);
}

#[test]
fn flask_over_ferrules_own_http_socket() {
    for threads in ["1", "4"] {
        let dir = TempDir::new(&format!("http-{threads}"));
        let port = support::free_port();
        let addr = format!("127.0.0.1:{port}");
        let venv = support::venv();
        let apps = support::apps();
        let app = ferrule(
            &dir,
            &[
                "--http-socket",
                &addr,
                "--chdir",
                apps.to_str().unwrap(),
                "--module",
                "flaskapp:app",
                "--virtualenv",
                venv.to_str().unwrap(),
                "--threads",
                threads,
            ],
            Addr::Tcp(port),
        );
        matrix(
            &Front {
                name: if threads == "1" {
                    "http-socket, 1 thread"
                } else {
                    "http-socket, 4 threads"
                },
                chunked_upload: true,
                cookie_bytes: 60 * 1024,
            },
            port,
            &dir,
        );
        // Keep-alive and pipelining: two requests on one connection, answered in order.
        let raw = support::raw_http(
            port,
            b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /nothing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        let text = String::from_utf8_lossy(&raw);
        let first = text.find("HTTP/1.1 200").expect("first response");
        let second = text
            .find("HTTP/1.1 204")
            .expect("second response on the same connection");
        assert!(
            first < second && text.contains("Hello from Flask"),
            "{text}"
        );
        drop(app);
    }
}
