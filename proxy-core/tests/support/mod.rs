//! Shared helpers for the server tests: the proxy under test, a raw HTTP/1.1 client, and
//! emulated uwsgi and HTTP upstreams. Everything is loopback and bounded in time.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use proxy_core::config::{ProxyConfig, QuickFlags};
use proxy_core::server::{Options, Server};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uwsgi_proto::chunked::{ChunkedDecoder, ChunkedEvent};
use uwsgi_proto::{Frame, OwnedVars, RequestDecoder};

/// Every network step of a test is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(20);

/// A running proxy.
pub struct Proxy {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub reload: proxy_core::server::ReloadHandle,
}

impl Proxy {
    pub fn start(config: ProxyConfig) -> Proxy {
        Proxy::start_with(config, Options::default())
    }

    pub fn start_with(config: ProxyConfig, options: Options) -> Proxy {
        let server = Server::bind(config, options).expect("bind");
        let addr = server.local_addrs()[0];
        let reload = server.reload_handle();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Proxy {
            addr,
            stop: Some(stop),
            task: Some(task),
            reload,
        }
    }

    /// Graceful stop; waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(LIMIT, t)
                .await
                .expect("server stops in time")
                .expect("server task")
                .expect("server run");
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// A configuration from quick flags with one listener on a free loopback port.
pub fn flags(uwsgi: &[&str], proxy: Option<&str>, statics: &[&str]) -> ProxyConfig {
    ProxyConfig::from_flags(&QuickFlags {
        listen: vec!["127.0.0.1:0".into()],
        uwsgi_pass: uwsgi.iter().map(|s| s.to_string()).collect(),
        proxy_pass: proxy.map(str::to_owned),
        statics: statics.iter().map(|s| s.to_string()).collect(),
    })
    .expect("valid flags")
}

/// A configuration from TOML text.
pub fn toml(src: &str) -> ProxyConfig {
    ProxyConfig::parse(src, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"))
}

/// A parsed response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parses one response read until the connection closed.
pub fn parse_response(raw: &[u8]) -> Resp {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line[9..12].parse().expect("status code");
    let mut headers = HashMap::new();
    for l in lines {
        let (n, v) = l.split_once(':').expect("field");
        headers.insert(n.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let rest = &raw[end + 4..];
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v == "chunked")
    {
        let mut buf = BytesMut::from(rest);
        let mut dec = ChunkedDecoder::new();
        let mut out = Vec::new();
        loop {
            match dec.decode(&mut buf).expect("valid chunked body") {
                Some(ChunkedEvent::Data(d)) => out.extend_from_slice(&d),
                Some(ChunkedEvent::End { .. }) => break,
                None => panic!("truncated chunked body"),
            }
        }
        out
    } else {
        rest.to_vec()
    };
    Resp {
        status,
        headers,
        body,
    }
}

/// Sends a raw request on `io` and reads until the server closes.
pub async fn exchange<IO>(mut io: IO, request: &[u8]) -> Resp
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    tokio::time::timeout(LIMIT, async {
        io.write_all(request).await.expect("write request");
        let mut raw = Vec::new();
        let _ = io.read_to_end(&mut raw).await;
        parse_response(&raw)
    })
    .await
    .expect("response in time")
}

/// Sends a raw request to `addr`.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Resp {
    let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    exchange(s, request).await
}

/// GET (or another body-less method) with extra header lines, `Connection: close`.
pub async fn request(addr: SocketAddr, method: &str, path: &str, extra: &[&str]) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for e in extra {
        req.push_str(e);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    raw(addr, req.as_bytes()).await
}

pub async fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "GET", path, &[]).await
}

/// What an emulated upstream saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub vars: Vec<(String, String)>,
    pub body: Bytes,
}

impl Seen {
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A fake upstream on loopback: counts accepted connections and keeps every request it
/// saw (`S`); stopped on drop.
pub struct Backend<S> {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    pub seen: Arc<std::sync::Mutex<Vec<S>>>,
    task: tokio::task::JoinHandle<()>,
}

impl<S> Drop for Backend<S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<S: Send + 'static> Backend<S> {
    /// Accepts connections and runs `serve(stream, seen)` for each on its own task.
    async fn spawn<F, Fut>(serve: F) -> Backend<S>
    where
        F: Fn(TcpStream, Arc<std::sync::Mutex<Vec<S>>>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let accepted = Arc::clone(&accepted);
            let seen = Arc::clone(&seen);
            async move {
                loop {
                    let Ok((s, _)) = listener.accept().await else {
                        return;
                    };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve(s, Arc::clone(&seen)));
                }
            }
        });
        Backend {
            addr,
            accepted,
            seen,
            task,
        }
    }
}

/// A uwsgi upstream answering each request with `respond(seen)` (raw bytes), then closing.
pub type UwsgiBackend = Backend<Seen>;

async fn read_uwsgi<IO: AsyncRead + Unpin>(io: &mut IO) -> Option<Seen> {
    let mut dec = RequestDecoder::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut vars: Option<OwnedVars> = None;
    let mut body = BytesMut::new();
    loop {
        loop {
            match dec.decode(&mut buf).ok()? {
                Some(Frame::Request(h)) => vars = Some(h.vars),
                Some(Frame::Body(b)) => body.extend_from_slice(&b),
                Some(Frame::BodyEnd { .. }) => {
                    let vars = vars?
                        .pairs()
                        .map(|(k, v)| {
                            (
                                String::from_utf8_lossy(&k).into_owned(),
                                String::from_utf8_lossy(&v).into_owned(),
                            )
                        })
                        .collect();
                    return Some(Seen {
                        vars,
                        body: body.freeze(),
                    });
                }
                Some(Frame::Packet(_)) => return None,
                None => break,
            }
        }
        if io.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
    }
}

impl UwsgiBackend {
    pub async fn start<F>(respond: F) -> UwsgiBackend
    where
        F: Fn(&Seen) -> Vec<u8> + Send + Sync + 'static,
    {
        let respond = Arc::new(respond);
        Backend::spawn(move |mut s, seen| {
            let respond = Arc::clone(&respond);
            async move {
                if let Some(req) = read_uwsgi(&mut s).await {
                    let out = respond(&req);
                    seen.lock().unwrap().push(req);
                    let _ = s.write_all(&out).await;
                    let _ = s.shutdown().await;
                }
            }
        })
        .await
    }

    /// Echoes PATH_INFO, QUERY_STRING, CONTENT_LENGTH and the body length.
    pub async fn echo() -> UwsgiBackend {
        UwsgiBackend::start(|req| {
            let text = format!(
                "path={} query={} cl={} body={}",
                req.var("PATH_INFO").unwrap_or("-"),
                req.var("QUERY_STRING").unwrap_or("-"),
                req.var("CONTENT_LENGTH").unwrap_or("-"),
                req.body.len()
            );
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            )
            .into_bytes()
        })
        .await
    }
}

/// A parsed request seen by [`HttpBackend`].
#[derive(Debug, Clone)]
pub struct HttpSeen {
    pub head: String,
    pub body: Vec<u8>,
}

/// An HTTP/1.1 upstream with keep-alive, answering with `respond(seen)` (raw bytes).
pub type HttpBackend = Backend<HttpSeen>;

async fn read_http<IO: AsyncRead + Unpin>(io: &mut IO, buf: &mut BytesMut) -> Option<HttpSeen> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                if io.read_buf(buf).await.ok()? == 0 {
                    return None;
                }
            }
            let _ = buf.split_to(end + 4);
            let body = buf.split_to(len).to_vec();
            return Some(HttpSeen { head, body });
        }
        if io.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
}

impl HttpBackend {
    pub async fn start<F>(respond: F) -> HttpBackend
    where
        F: Fn(&HttpSeen) -> Vec<u8> + Send + Sync + 'static,
    {
        let respond = Arc::new(respond);
        Backend::spawn(move |mut s, seen| {
            let respond = Arc::clone(&respond);
            async move {
                let mut buf = BytesMut::new();
                while let Some(req) = read_http(&mut s, &mut buf).await {
                    let out = respond(&req);
                    seen.lock().unwrap().push(req);
                    if s.write_all(&out).await.is_err() {
                        return;
                    }
                }
            }
        })
        .await
    }
}

/// A free loopback TCP address with nothing listening (bound then released).
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}
