//! Real-peer test: Debian's nginx with the stock `include uwsgi_params; uwsgi_pass` in front
//! of a plain TCP listener in this test. Every packet nginx sends is captured, decoded with
//! this crate and with an independent naive decoder, and compared with the vars that nginx's
//! `uwsgi_params` file and the request must produce.
//!
//! nginx is required: the README's test command installs it (`nginx-light`). The test fails,
//! rather than skips, when it is missing.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use uwsgi_proto::{BodyKind, Frame, Modifier1, RequestDecoder};

const TIMEOUT: Duration = Duration::from_secs(15);

fn nginx_binary() -> PathBuf {
    for candidate in ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "nginx is not installed: run the README's test command (scripts/test.sh), \
         which installs Debian's nginx-light"
    );
}

/// An nginx process with its own prefix directory, stopped (SIGQUIT) on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Nginx {
    fn start(upstream: SocketAddr) -> Nginx {
        let nginx = nginx_binary();
        let dir = std::env::temp_dir().join(format!(
            "uwsgi-proto-nginx-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        std::fs::create_dir_all(dir.join("html")).unwrap();
        // nginx's workers run as an unprivileged user when started as root.
        Command::new("chmod")
            .args(["-R", "777"])
            .arg(&dir)
            .status()
            .unwrap();
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            r#"
worker_processes 1;
error_log {d}/logs/error.log info;
pid {d}/logs/nginx.pid;
events {{ worker_connections 64; }}
http {{
  access_log {d}/logs/access.log;
  client_body_temp_path {d}/tmp/body; uwsgi_temp_path {d}/tmp/uwsgi;
  proxy_temp_path {d}/tmp/proxy; fastcgi_temp_path {d}/tmp/fcgi; scgi_temp_path {d}/tmp/scgi;
  client_max_body_size 100m;
  large_client_header_buffers 8 64k;
  server {{
    listen 127.0.0.1:{port};
    server_name ferrule.test;
    root {d}/html;
    location / {{
      include /etc/nginx/uwsgi_params;
      uwsgi_pass {upstream};
    }}
  }}
}}
"#
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(&nginx)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-p")
            .arg(&dir)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", nginx.display()));
        let mut server = Nginx { child, dir, port };
        let deadline = Instant::now() + TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("nginx exited with {status}: {}", server.error_log());
            }
            assert!(Instant::now() < deadline, "nginx did not listen in time");
            thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One request as nginx delivered it to the upstream.
#[derive(Debug)]
struct Captured {
    raw: Vec<u8>,
    modifier1: Modifier1,
    modifier2: u8,
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    body_kind: BodyKind,
    body: Vec<u8>,
}

/// Accepts connections, decodes one request from each with `RequestDecoder`, answers
/// `200 ok` and closes, as a uwsgi server does.
fn spawn_upstream() -> (SocketAddr, mpsc::Receiver<Captured>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            stream.set_read_timeout(Some(TIMEOUT)).unwrap();
            let captured = read_request(&mut stream);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            drop(stream);
            if tx.send(captured).is_err() {
                return;
            }
        }
    });
    (addr, rx)
}

fn read_request(stream: &mut TcpStream) -> Captured {
    let mut decoder = RequestDecoder::new();
    let mut src = BytesMut::with_capacity(64 * 1024);
    let mut raw = Vec::new();
    let mut head = None;
    let mut body = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match decoder.decode(&mut src).expect("nginx sent a valid packet") {
            Some(Frame::Request(h)) => head = Some(h),
            Some(Frame::Body(b)) => body.extend_from_slice(&b),
            Some(Frame::BodyEnd { .. }) => break,
            Some(Frame::Packet(p)) => panic!("unexpected packet {p:?}"),
            None => {
                let n = stream.read(&mut buf).expect("read from nginx");
                assert!(n > 0, "nginx closed before the request was complete");
                raw.extend_from_slice(&buf[..n]);
                src.extend_from_slice(&buf[..n]);
            }
        }
    }
    assert!(src.is_empty(), "bytes after the request: {:?}", &src[..]);
    let head = head.expect("a request head");
    Captured {
        raw,
        modifier1: head.header.modifier1,
        modifier2: head.header.modifier2,
        pairs: head
            .vars
            .iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect(),
        body_kind: head.body,
        body,
    }
}

/// A deliberately plain decoder, written from the protocol description and nothing else,
/// to check the crate against.
/// modifier1, modifier2, pairs, bytes after the vars.
type NaiveDecoded = (u8, u8, Vec<(Vec<u8>, Vec<u8>)>, Vec<u8>);

fn naive_decode(raw: &[u8]) -> NaiveDecoded {
    let size = raw[1] as usize + 256 * raw[2] as usize;
    let block = &raw[4..4 + size];
    let mut pairs = Vec::new();
    let mut i = 0;
    while i < block.len() {
        let kl = block[i] as usize + 256 * block[i + 1] as usize;
        let key = block[i + 2..i + 2 + kl].to_vec();
        i += 2 + kl;
        let vl = block[i] as usize + 256 * block[i + 1] as usize;
        let value = block[i + 2..i + 2 + vl].to_vec();
        i += 2 + vl;
        pairs.push((key, value));
    }
    (raw[0], raw[3], pairs, raw[4 + size..].to_vec())
}

/// A raw HTTP/1.1 request sent by this test, and what nginx's variables will be for it.
struct Request {
    method: &'static str,
    target: String,
    /// Decoded path, as `$document_uri`.
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    /// Raw body bytes as sent (chunk-framed when Transfer-Encoding is chunked).
    wire_body: Vec<u8>,
    /// The body the upstream must receive.
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sends the request; returns the response status and the client's local port.
    fn send(&self, nginx: &Nginx) -> (u16, u16) {
        let mut stream = TcpStream::connect(("127.0.0.1", nginx.port)).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut wire = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        for (name, value) in &self.headers {
            wire.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        wire.extend_from_slice(b"\r\n");
        wire.extend_from_slice(&self.wire_body);
        stream.write_all(&wire).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let local_port = stream.local_addr().unwrap().port();
        let status = std::str::from_utf8(&response[9..12])
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            response.ends_with(b"ok") || status != 200,
            "response {response:?}"
        );
        (status, local_port)
    }

    /// The vars nginx must send: the `uwsgi_param`s of the installed `uwsgi_params` file in
    /// order, then the request's headers in arrival order as `HTTP_*` (minus those a param
    /// already sets), repeated headers as repeated keys (nginx 1.22).
    fn expected_vars(&self, nginx: &Nginx, remote_port: u16) -> Vec<(Vec<u8>, Vec<u8>)> {
        let host = self
            .header("Host")
            .map(|h| h.split(':').next().unwrap().to_ascii_lowercase())
            .unwrap_or_default();
        let content_length = if self.header("Transfer-Encoding").is_some() {
            self.body.len().to_string()
        } else {
            self.header("Content-Length").unwrap_or("").to_string()
        };
        let variables: HashMap<&str, String> = HashMap::from([
            ("$query_string", self.query.clone()),
            ("$request_method", self.method.to_string()),
            (
                "$content_type",
                self.header("Content-Type").unwrap_or("").to_string(),
            ),
            ("$content_length", content_length),
            ("$request_uri", self.target.clone()),
            ("$document_uri", self.path.clone()),
            ("$document_root", format!("{}/html", nginx.dir.display())),
            ("$server_protocol", "HTTP/1.1".to_string()),
            ("$scheme", "http".to_string()),
            ("$https", String::new()),
            ("$remote_addr", "127.0.0.1".to_string()),
            ("$remote_port", remote_port.to_string()),
            ("$server_port", nginx.port.to_string()),
            ("$server_name", "ferrule.test".to_string()),
            ("$host", host),
        ]);
        let params = std::fs::read_to_string("/etc/nginx/uwsgi_params").unwrap();
        let mut vars = Vec::new();
        for line in params.lines() {
            let words: Vec<&str> = line
                .trim()
                .trim_end_matches(';')
                .split_whitespace()
                .collect();
            if words.first() != Some(&"uwsgi_param") {
                continue;
            }
            let value = variables
                .get(words[2])
                .unwrap_or_else(|| panic!("uwsgi_params uses {}: teach this test", words[2]));
            if words.get(3) == Some(&"if_not_empty") && value.is_empty() {
                continue;
            }
            vars.push((words[1].as_bytes().to_vec(), value.as_bytes().to_vec()));
        }
        let params: Vec<Vec<u8>> = vars.iter().map(|(k, _)| k.clone()).collect();
        for (name, value) in &self.headers {
            let key = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_")).into_bytes();
            if !params.contains(&key) {
                vars.push((key, value.as_bytes().to_vec()));
            }
        }
        vars
    }
}

fn check(nginx: &Nginx, upstream: &mpsc::Receiver<Captured>, request: Request) {
    let (status, remote_port) = request.send(nginx);
    assert_eq!(status, 200, "nginx error log:\n{}", nginx.error_log());
    let got = upstream
        .recv_timeout(TIMEOUT)
        .expect("nginx reached the upstream");

    // The crate and the naive decoder agree on every byte.
    let (m1, m2, pairs, body) = naive_decode(&got.raw);
    assert_eq!((Modifier1(m1), m2), (got.modifier1, got.modifier2));
    assert_eq!(got.modifier1, Modifier1::WSGI);
    assert_eq!(got.modifier2, 0);
    assert_eq!(pairs, got.pairs);
    assert_eq!(body, got.body);

    // Every var nginx sent is what it had to send, in order.
    let expected = request.expected_vars(nginx, remote_port);
    let show = |v: &[(Vec<u8>, Vec<u8>)]| {
        v.iter()
            .map(|(k, v)| {
                let v = String::from_utf8_lossy(v);
                let v: String = v.chars().take(60).collect();
                format!("{}={v}", String::from_utf8_lossy(k))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        got.pairs == expected,
        "vars differ\n--- got:\n{}\n--- expected:\n{}",
        show(&got.pairs),
        show(&expected)
    );
    // The body follows the vars.
    assert_eq!(got.body, request.body);
    let expected_kind = match request.body.len() {
        0 => BodyKind::Empty,
        n => BodyKind::Length(n as u64),
    };
    assert_eq!(got.body_kind, expected_kind);
}

#[test]
fn nginx_uwsgi_pass_packets_decode_exactly() {
    let (addr, upstream) = spawn_upstream();
    let nginx = Nginx::start(addr);

    // GET with a decoded path, a query, duplicate headers, a 60 KB cookie and an empty
    // CONTENT_TYPE / CONTENT_LENGTH (uwsgi_params has no if_not_empty on them).
    let cookie = format!("big={}", "c".repeat(60 * 1024));
    check(
        &nginx,
        &upstream,
        Request {
            method: "GET",
            target: "/a%20b/caf%C3%A9?x=1&y=%20".into(),
            path: "/a b/café".into(),
            query: "x=1&y=%20".into(),
            headers: vec![
                ("Host".into(), "Example.ORG:8080".into()),
                ("User-Agent".into(), "uwsgi-proto-test/1".into()),
                ("X-Dup".into(), "one".into()),
                ("X-Dup".into(), "two".into()),
                ("Cookie".into(), cookie),
                ("Cookie".into(), "second=1".into()),
                ("Connection".into(), "close".into()),
            ],
            wire_body: vec![],
            body: vec![],
        },
    );

    // A form POST: CONTENT_* and their HTTP_* duplicates, then the body.
    let form = b"name=ferrule&lang=rust".to_vec();
    check(
        &nginx,
        &upstream,
        Request {
            method: "POST",
            target: "/form".into(),
            path: "/form".into(),
            query: String::new(),
            headers: vec![
                ("Host".into(), "ferrule.test".into()),
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                ("Content-Length".into(), form.len().to_string()),
                ("Connection".into(), "close".into()),
            ],
            wire_body: form.clone(),
            body: form,
        },
    );

    // A chunked body: nginx de-chunks it, sets CONTENT_LENGTH to the decoded length and
    // still passes HTTP_TRANSFER_ENCODING; CONTENT_LENGTH must frame the body.
    check(
        &nginx,
        &upstream,
        Request {
            method: "POST",
            target: "/chunked".into(),
            path: "/chunked".into(),
            query: String::new(),
            headers: vec![
                ("Host".into(), "ferrule.test".into()),
                ("Transfer-Encoding".into(), "chunked".into()),
                ("Connection".into(), "close".into()),
            ],
            wire_body: b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n".to_vec(),
            body: b"hello world".to_vec(),
        },
    );

    // A 1 MiB binary body arrives intact after the vars.
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    check(
        &nginx,
        &upstream,
        Request {
            method: "PUT",
            target: "/upload?name=blob".into(),
            path: "/upload".into(),
            query: "name=blob".into(),
            headers: vec![
                ("Host".into(), "ferrule.test".into()),
                ("Content-Type".into(), "application/octet-stream".into()),
                ("Content-Length".into(), big.len().to_string()),
                ("Connection".into(), "close".into()),
            ],
            wire_body: big.clone(),
            body: big,
        },
    );
}
