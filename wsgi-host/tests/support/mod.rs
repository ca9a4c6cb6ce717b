//! Shared helpers for the wsgi-host integration tests: log capture, a uwsgi client that
//! reads raw HTTP responses, and worker start-up.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::BytesMut;
use uwsgi_proto::{Modifier1, encode_request};
use wsgi_host::{UwsgiListener, Worker};

/// How long any client operation may take before the test fails.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

#[derive(Clone, Copy)]
struct CaptureWriter;

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        std::io::stderr().write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs a subscriber that keeps every log line (for assertions) and echoes it to stderr.
pub fn init_logging() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(|| CaptureWriter)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber per binary");
    });
}

/// Everything logged so far.
pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

/// Waits up to 5 s for `needle` to show up in the logs.
pub fn wait_for_log(needle: &str) -> bool {
    for _ in 0..100 {
        if logs().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// `wsgi-host/tests/apps`.
pub fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("apps")
}

/// Where a test server listens.
#[derive(Debug, Clone)]
pub enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

pub enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    pub fn open(target: &Target) -> Conn {
        let conn = match target {
            Target::Tcp(addr) => {
                Conn::Tcp(TcpStream::connect_timeout(addr, CLIENT_TIMEOUT).expect("connect"))
            }
            Target::Unix(path) => Conn::Unix(UnixStream::connect(path).expect("connect unix")),
        };
        match &conn {
            Conn::Tcp(s) => {
                s.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
                s.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
            }
            Conn::Unix(s) => {
                s.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
                s.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
            }
        }
        conn
    }

    pub fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Tcp(s) => s.write_all(data),
            Conn::Unix(s) => s.write_all(data),
        }
    }

    pub fn read_some(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }

    /// Reads until the server closes. Returns the bytes and whether the close was clean
    /// (EOF) rather than a reset.
    pub fn read_to_end(&mut self) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match self.read_some(&mut buf) {
                Ok(0) => return (out, true),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (out, false),
                Err(e) => panic!(
                    "reading the response failed: {e} (after {} bytes)",
                    out.len()
                ),
            }
        }
    }
}

/// A parsed raw response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status_line: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub raw: Vec<u8>,
    pub clean_close: bool,
}

impl Response {
    pub fn parse(raw: Vec<u8>, clean_close: bool) -> Response {
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Response {
                status_line: String::new(),
                status: 0,
                headers: Vec::new(),
                body: Vec::new(),
                raw,
                clean_close,
            };
        };
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_owned();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        Response {
            status_line,
            status,
            headers,
            body: raw[end + 4..].to_vec(),
            raw,
            clean_close,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The vars nginx's `uwsgi_params` (Debian) sends for `method uri`, plus `extra` pairs.
pub fn nginx_vars(
    method: &str,
    uri: &str,
    body_len: Option<usize>,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut vars: Vec<(String, String)> = vec![
        ("QUERY_STRING".into(), query.into()),
        ("REQUEST_METHOD".into(), method.into()),
        ("CONTENT_TYPE".into(), String::new()),
        (
            "CONTENT_LENGTH".into(),
            body_len.map(|n| n.to_string()).unwrap_or_default(),
        ),
        ("REQUEST_URI".into(), uri.into()),
        ("PATH_INFO".into(), path.into()),
        ("DOCUMENT_ROOT".into(), "/usr/share/nginx/html".into()),
        ("SERVER_PROTOCOL".into(), "HTTP/1.1".into()),
        ("REQUEST_SCHEME".into(), "http".into()),
        ("REMOTE_ADDR".into(), "127.0.0.1".into()),
        ("REMOTE_PORT".into(), "50000".into()),
        ("SERVER_PORT".into(), "80".into()),
        ("SERVER_NAME".into(), "localhost".into()),
        ("HTTP_HOST".into(), "localhost".into()),
    ];
    for (k, v) in extra {
        vars.push(((*k).into(), (*v).into()));
    }
    vars
}

pub fn packet(modifier1: u8, vars: &[(String, String)]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_request(Modifier1(modifier1), 0, vars, &mut out).expect("encodable");
    out.to_vec()
}

/// Sends one uwsgi request (`vars` then `body`) and reads the raw response to EOF.
pub fn exchange(target: &Target, vars: &[(String, String)], body: &[u8]) -> Response {
    let mut conn = Conn::open(target);
    let mut data = packet(0, vars);
    data.extend_from_slice(body);
    conn.send(&data).expect("send request");
    let (raw, clean) = conn.read_to_end();
    Response::parse(raw, clean)
}

pub fn get(target: &Target, uri: &str) -> Response {
    exchange(target, &nginx_vars("GET", uri, None, &[]), b"")
}

pub fn post(target: &Target, uri: &str, content_type: &str, body: &[u8]) -> Response {
    let mut vars = nginx_vars("POST", uri, Some(body.len()), &[]);
    vars[2].1 = content_type.into();
    vars.push(("HTTP_CONTENT_TYPE".into(), content_type.into()));
    vars.push(("HTTP_CONTENT_LENGTH".into(), body.len().to_string()));
    exchange(target, &vars, body)
}

/// A worker serving `listener` on its own thread until the process ends.
pub fn spawn_worker(worker: Arc<Worker>, listener: UwsgiListener, name: &str) {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let result = wsgi_host::serve_uwsgi(worker, listener, std::future::pending());
            panic!("worker stopped: {result:?}");
        })
        .expect("spawn worker thread");
}

/// A unix socket path in a private directory under Cargo's `target/tmp` (statics are
/// never dropped, so the directory stays there, not in `/tmp`; `cargo clean` removes it).
pub fn unix_socket_path(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("wsgi-host-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("tempdir")
            .keep()
    })
    .join(name)
}

/// Decodes a JSON object response (`json.dumps(sort_keys=True)`) with Python semantics by
/// asking the embedded interpreter.
pub fn json_field(body: &[u8], expr: &str) -> String {
    use pyo3::prelude::*;
    Python::attach(|py| {
        let json = py.import("json").unwrap();
        let data = json
            .call_method1("loads", (pyo3::types::PyBytes::new(py, body),))
            .unwrap_or_else(|e| panic!("not JSON: {e}: {}", String::from_utf8_lossy(body)));
        let locals = pyo3::types::PyDict::new(py);
        locals.set_item("d", data).unwrap();
        let code = std::ffi::CString::new(expr).unwrap();
        let value = py
            .eval(&code, None, Some(&locals))
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        value.str().unwrap().to_string()
    })
}
