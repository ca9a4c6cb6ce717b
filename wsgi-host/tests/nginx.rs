//! Debian's nginx 1.22 in front of the worker (`include uwsgi_params; uwsgi_pass unix:…`),
//! as the seeds deploy it. The test starts nginx itself (no daemon, no master process, all
//! paths in a temp dir) and stops it when done, also on failure.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use support::*;
use wsgi_host::{AppSpec, AppTable, PythonConfig, ServerConfig, UwsgiListener, Worker, load_app};

/// Kills the nginx we started when the test ends, however it ends.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port below 32768 (the ephemeral range here starts at 32768).
fn free_port() -> u16 {
    let start = 20000 + (std::process::id() % 10000) as u16;
    (start..start + 2000)
        .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port")
}

fn start_nginx(dir: &Path, socket: &Path) -> (Nginx, SocketAddr) {
    let port = free_port();
    let conf = format!(
        "daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 50m;
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        location / {{
            include /etc/nginx/uwsgi_params;
            uwsgi_pass unix:{socket};
        }}
    }}
}}
",
        dir = dir.display(),
        socket = socket.display(),
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .spawn()
        .expect("nginx is installed (Debian package nginx)");
    let nginx = Nginx(child);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (nginx, addr)
}

/// One HTTP/1.0 request through nginx; returns the response read to EOF.
fn http(addr: SocketAddr, request: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream.write_all(request).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    Response::parse(raw, true)
}

#[test]
fn behind_nginx_uwsgi_pass() {
    init_logging();
    let mut config = PythonConfig::new();
    config.pythonpath(apps_dir());
    wsgi_host::initialize(&config).expect("interpreter");
    let worker = Python::attach(|py| {
        let load = |s: &str| load_app(py, &AppSpec::parse_module(s).unwrap()).unwrap();
        let mut apps = AppTable::new();
        apps.mount("", load("probe_app:application")).unwrap();
        apps.mount("/raw", load("probe_app:raw_application"))
            .unwrap();
        apps.manage_script_name(true);
        Arc::new(Worker::new(py, apps, ServerConfig::new()).unwrap())
    });
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("app.sock");
    spawn_worker(
        worker,
        UwsgiListener::bind_unix(&socket).unwrap(),
        "nginx-backend",
    );
    let (_nginx, addr) = start_nginx(dir.path(), &socket);

    // A validated GET.
    let resp = http(addr, b"GET /hello HTTP/1.0\r\nHost: localhost\r\n\r\n");
    assert_eq!(resp.status, 200, "{:?}", String::from_utf8_lossy(&resp.raw));
    assert_eq!(resp.text(), "Hello, World!");

    // What nginx sends becomes a clean environ: decoded PATH_INFO, SCRIPT_NAME from the
    // mount, Debian's HTTP_HOST, repeated headers joined (1.22 sends the key twice).
    let resp = http(
        addr,
        b"GET /raw/env?q=%20 HTTP/1.0\r\nHost: example.org:8080\r\nX-Dup: one\r\nX-Dup: two\r\n\
          Cookie: a=1\r\nCookie: b=2\r\n\r\n",
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let f = |e: &str| json_field(&resp.body, e);
    assert_eq!(f("d['cgi']['SCRIPT_NAME']"), "/raw");
    assert_eq!(f("d['cgi']['PATH_INFO']"), "/env");
    assert_eq!(f("d['cgi']['QUERY_STRING']"), "q=%20");
    assert_eq!(f("d['cgi']['HTTP_X_DUP']"), "one, two");
    assert_eq!(f("d['cgi']['HTTP_COOKIE']"), "a=1; b=2");
    assert_eq!(f("d['cgi']['HTTP_HOST']"), "example.org");
    assert_eq!(
        f("'CONTENT_LENGTH' in d['cgi'] or 'CONTENT_TYPE' in d['cgi']"),
        "False"
    );
    let resp = http(
        addr,
        b"GET /raw/pathinfo/w%20rld HTTP/1.0\r\nHost: x\r\n\r\n",
    );
    assert_eq!(json_field(&resp.body, "d['path']"), "/pathinfo/w rld");

    // A POST, and a chunked client body (nginx de-chunks it and sends CONTENT_LENGTH).
    let resp = http(
        addr,
        b"POST /echo HTTP/1.0\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "hello");
    let resp = http(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.text();
    assert!(body.contains("hello world"), "{body:?}");

    // The app answers 401 without reading a 2 MB body: the worker drains it, so nginx
    // relays the 401 instead of a 502 (reference §6.4: uWSGI got 4 of 5 wrong).
    let mut request =
        b"POST /raw/unread HTTP/1.0\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n".to_vec();
    request.extend(std::iter::repeat_n(b'z', 2 << 20));
    for _ in 0..5 {
        let resp = http(addr, &request);
        assert_eq!(
            resp.status,
            401,
            "{}",
            String::from_utf8_lossy(&resp.raw[..200.min(resp.raw.len())])
        );
        assert_eq!(resp.text(), "denied");
    }

    // Streaming without Content-Length ends at the backend's close; lazy start_response;
    // HEAD; a file_wrapper sent with sendfile.
    let resp = http(addr, b"GET /stream HTTP/1.0\r\nHost: x\r\n\r\n");
    assert_eq!(resp.text(), "chunk1,chunk2,chunk3");
    let resp = http(addr, b"GET /lazy404 HTTP/1.0\r\nHost: x\r\n\r\n");
    assert_eq!(resp.status, 404);
    assert_eq!(resp.header("X-Lazy"), Some("yes"));
    let resp = http(addr, b"HEAD /head HTTP/1.0\r\nHost: x\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert!(resp.body.is_empty());
    let resp = http(addr, b"GET /raw/sendfile HTTP/1.0\r\nHost: x\r\n\r\n");
    let want: Vec<u8> = (0..1000).flat_map(|_| 0..=255u8).collect();
    assert_eq!(resp.body, want);

    // An app error before the headers: nginx relays our 500.
    let resp = http(addr, b"GET /raw/error_before HTTP/1.0\r\nHost: x\r\n\r\n");
    assert_eq!(resp.status, 500);

    let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
    assert!(
        !log.contains("upstream prematurely closed") && !log.contains("reset by peer"),
        "nginx saw broken upstream connections:\n{log}"
    );
}
