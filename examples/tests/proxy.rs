//! `ferrule-proxy` end to end, against real peers started here: uWSGI (pyuwsgi) and ferrule
//! serving the Flask app over a unix uwsgi socket, gunicorn over an HTTP unix socket; static
//! files and TLS checked with curl.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{Addr, TempDir, curl, ferrule, ferrule_proxy, pattern_file, raw_http, uwsgi_flask};

/// The issue's matrix through the proxy on `port`.
fn matrix(name: &str, port: u16, dir: &TempDir, cookie_bytes: usize) {
    let r = curl(port, "/", &[]);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hello from Flask"),
        "{name} GET"
    );

    let r = curl(port, "/form", &["-d", "name=ferrule"]);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "name=ferrule"),
        "{name} form"
    );

    let r = curl(port, "/redirect", &[]);
    assert_eq!(r.status, 302, "{name} redirect");

    // 10 MB upload, plain and chunked (the proxy buffers it and sends a CONTENT_LENGTH).
    let file = dir.path("upload.bin");
    let sha = pattern_file(&file, 10 << 20);
    let at_file = format!("@{}", file.display());
    for chunked in [false, true] {
        let mut args = vec![
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &at_file,
        ];
        if chunked {
            args.extend(["-H", "Transfer-Encoding: chunked"]);
        }
        let r = curl(port, "/upload", &args);
        assert_eq!(
            r.status,
            200,
            "{name} upload (chunked: {chunked}): {}",
            r.text()
        );
        assert!(
            r.text().contains(&format!(r#""sha256":"{sha}""#))
                && r.text().contains(r#""size":10485760"#),
            "{name} upload (chunked: {chunked}): {}",
            r.text()
        );
    }

    // An app that answers without reading the 10 MB body.
    let r = curl(
        port,
        "/ignore-body",
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &at_file,
        ],
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (401, "ignored"),
        "{name} ignore-body"
    );

    let r = curl(port, "/stream", &[]);
    let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
    assert_eq!((r.status, r.text()), (200, expected), "{name} stream");

    let cookie = format!("Cookie: big={}", "c".repeat(cookie_bytes));
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

    // Joined by the uwsgi vars ("one, two"); an HTTP upstream gets both fields and
    // gunicorn joins them itself ("one,two").
    let r = curl(port, "/headers", &["-H", "X-Dup: one", "-H", "X-Dup: two"]);
    assert!(
        r.text().contains(r#""X-Dup":"one, two""#) || r.text().contains(r#""X-Dup":"one,two""#),
        "{name} repeated: {}",
        r.text()
    );

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
fn proxy_to_real_uwsgi() {
    let dir = TempDir::new("proxy-uwsgi");
    let (uwsgi, sock) = uwsgi_flask(&dir, "uwsgi");
    let upstream = format!("unix:{}", sock.display());
    let (proxy, port) = ferrule_proxy(&dir, &["--uwsgi-pass", &upstream]);
    matrix("uwsgi", port, &dir, 60_000);
    drop(proxy);
    drop(uwsgi);
}

#[test]
fn proxy_to_ferrule_over_unix_uwsgi_socket() {
    let dir = TempDir::new("proxy-ferrule");
    let sock = dir.path("app.sock");
    let venv = support::venv();
    let apps = support::apps();
    let app = ferrule(
        &dir,
        &[
            "--socket",
            sock.to_str().unwrap(),
            "--chdir",
            apps.to_str().unwrap(),
            "--module",
            "flaskapp:app",
            "--virtualenv",
            venv.to_str().unwrap(),
            "--buffer-size",
            "65535",
        ],
        Addr::Unix(sock.clone()),
    );
    let upstream = format!("unix:{}", sock.display());
    let (proxy, port) = ferrule_proxy(&dir, &["--uwsgi-pass", &upstream]);
    matrix("ferrule", port, &dir, 60_000);
    drop(proxy);
    drop(app);
}

#[test]
fn proxy_to_gunicorn_over_http_unix_socket() {
    let dir = TempDir::new("proxy-gunicorn");
    let sock = dir.path("gunicorn.sock");
    let apps = support::apps();
    let mut cmd = Command::new(support::venv().join("bin/gunicorn"));
    cmd.args([
        "--bind",
        &format!("unix:{}", sock.display()),
        "--chdir",
        apps.to_str().unwrap(),
        "--workers",
        "2",
        "--limit-request-field_size",
        "65536",
        "flaskapp:app",
    ]);
    let mut gunicorn = support::Proc::spawn("gunicorn", cmd, dir.path("gunicorn.log"), "TERM");
    gunicorn.wait_for(&Addr::Unix(sock.clone()));
    let upstream = format!("http://unix:{}", sock.display());
    let (proxy, port) = ferrule_proxy(&dir, &["--proxy-pass", &upstream]);
    // gunicorn limits a header line to 8190 bytes unless told otherwise.
    matrix("gunicorn", port, &dir, 60_000);
    let r = curl(port, "/headers", &[]);
    assert!(
        r.text().contains(r#""X-Forwarded-For":"127.0.0.1""#),
        "{}",
        r.text()
    );
    drop(proxy);
    drop(gunicorn);
}

#[test]
fn static_files_and_a_pool_with_one_server_down() {
    let dir = TempDir::new("proxy-static");
    let www = dir.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("a.css"), "body { color: red }\n").unwrap();
    std::fs::write(www.join("a.css.gz"), b"\x1f\x8bnot-really").unwrap();
    let (uwsgi, sock) = uwsgi_flask(&dir, "uwsgi");
    let dead = dir.path("nobody.sock");
    let static_arg = format!("/static={}", www.display());
    let (proxy, port) = ferrule_proxy(
        &dir,
        &[
            "--static",
            &static_arg,
            "--uwsgi-pass",
            &format!("unix:{}", dead.display()),
            "--uwsgi-pass",
            &format!("unix:{}", sock.display()),
        ],
    );
    let r = curl(port, "/static/a.css", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/css; charset=utf-8"));
    let etag = r.header("ETag").unwrap().to_string();
    assert_eq!(
        curl(
            port,
            "/static/a.css",
            &["-H", &format!("If-None-Match: {etag}")]
        )
        .status,
        304
    );
    let r = curl(port, "/static/a.css", &["-H", "Range: bytes=0-3"]);
    assert_eq!((r.status, r.text().as_str()), (206, "body"));
    assert_eq!(
        curl(port, "/static/a.css", &["-H", "Range: bytes=500-"]).status,
        416
    );
    let raw = raw_http(
        port,
        b"GET /static/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        raw.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    for _ in 0..6 {
        let r = curl(port, "/", &[]);
        assert_eq!((r.status, r.text().as_str()), (200, "Hello from Flask"));
    }
    // Graceful stop on SIGTERM.
    let mut proxy = proxy;
    proxy.signal("TERM");
    let status = proxy
        .wait_exit(Duration::from_secs(10))
        .expect("ferrule-proxy exits");
    assert!(status.success(), "{status}");
    assert!(
        proxy
            .log_text()
            .contains("\"GET /static/a.css HTTP/1.1\" 200 20"),
        "{}",
        proxy.log_text()
    );
    drop(uwsgi);
}

#[test]
fn tls_with_curl_cacert_and_sighup_reload() {
    let dir = TempDir::new("proxy-tls");
    let (cert, key) = (dir.path("cert.pem"), dir.path("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let www = dir.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "first\n").unwrap();
    let port = support::free_port();
    let config = dir.path("proxy.toml");
    let write_config = |body: &str| {
        std::fs::write(
            &config,
            format!(
                "[[server]]\nlisten = [\"127.0.0.1:{port}\"]\nserver_name = [\"localhost\"]\n\
                 tls = {{ cert = \"{}\", key = \"{}\" }}\n\
                 [[server.location]]\nprefix = \"/\"\nroot = \"{}\"\n{body}",
                cert.display(),
                key.display(),
                www.display()
            ),
        )
        .unwrap();
    };
    write_config("");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrule-proxy"));
    cmd.arg("--config").arg(&config);
    let mut proxy = support::Proc::spawn("ferrule-proxy", cmd, dir.path("proxy.log"), "TERM");
    proxy.wait_for(&Addr::Tcp(port));
    let get = || {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "--cacert"])
            .arg(&cert)
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .arg(format!("https://localhost:{port}/"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(get(), "first\n");
    // SIGHUP: new connections use the new configuration.
    std::fs::create_dir_all(www.join("v2")).unwrap();
    std::fs::write(www.join("v2/index.html"), "second\n").unwrap();
    let new_root = www.join("v2");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap().replace(
            &format!("root = \"{}\"", www.display()),
            &format!("root = \"{}\"", new_root.display()),
        ),
    )
    .unwrap();
    proxy.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while get() != "second\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "reload not applied:\n{}",
            proxy.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A broken configuration on SIGHUP keeps the old one.
    write_config("nonsense = 1\n");
    proxy.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(), "second\n");
    assert!(
        proxy.log_text().contains("proxy.toml:"),
        "{}",
        proxy.log_text()
    );
    drop(proxy);
}

#[test]
fn config_errors_name_file_line_and_column() {
    let dir = TempDir::new("proxy-config");
    let config = dir.path("bad.toml");
    std::fs::write(&config, "[[server]]\nlisten = [\"127.0.0.1:1\"]\n[[server.location]]\nprefix = \"/\"\nuwsgi_pass = \"nope\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ferrule-proxy"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:5:14: unknown upstream", config.display())),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ferrule-proxy"))
        .args(["--listen", "nowhere"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
