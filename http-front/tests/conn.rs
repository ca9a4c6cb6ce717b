//! The connection driver over real loopback sockets (127.0.0.1, port 0). Every wait is
//! bounded (`support::WAIT`); timeouts under test are configured short.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_front::{
    BodyConfig, Builder, ChannelBody, Either, Full, Handler, Request, Response, ResponseHead,
    ServerConfig,
};
use support::Client;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Default)]
struct Stats {
    connections: AtomicUsize,
    max_chunk: AtomicUsize,
    total: AtomicU64,
    handled: AtomicUsize,
}

struct TestHandler {
    stats: Arc<Stats>,
}

type TestBody = Either<Full, ChannelBody>;

fn ok(status: u16, body: impl Into<Bytes>) -> Response<TestBody> {
    let mut head = ResponseHead::new(status).unwrap();
    head.append("Content-Type", "text/plain").unwrap();
    Response::new(head, Either::Left(Full::new(body)))
}

impl Handler for TestHandler {
    type Body = TestBody;

    async fn call(&self, mut req: Request<'_>) -> Response<TestBody> {
        self.stats.handled.fetch_add(1, Ordering::SeqCst);
        let path = req.head.path().to_owned();
        match path.as_str() {
            "/echo" => {
                let mut body = BytesMut::new();
                match req.body.read_to_end(&mut body, 1 << 20).await {
                    Ok(_) => ok(200, body.freeze()),
                    Err(e) => ok(e.status().unwrap_or(500), "body error"),
                }
            }
            "/count" => {
                // Streams the body, never holding more than one chunk.
                let mut total = 0u64;
                while let Some(chunk) = req.body.chunk().await {
                    let chunk = match chunk {
                        Ok(c) => c,
                        Err(e) => return ok(e.status().unwrap_or(500), "body error"),
                    };
                    self.stats
                        .max_chunk
                        .fetch_max(chunk.len(), Ordering::SeqCst);
                    total += chunk.len() as u64;
                    self.stats.total.store(total, Ordering::SeqCst);
                }
                ok(200, total.to_string())
            }
            "/read" => {
                // AsyncRead with a small buffer: chunks are split across reads.
                use tokio::io::AsyncReadExt;
                let mut out = Vec::new();
                let mut small = [0u8; 7];
                loop {
                    match req.body.read(&mut small).await {
                        Ok(0) => break,
                        Ok(n) => out.extend_from_slice(&small[..n]),
                        Err(_) => return ok(400, "read error"),
                    }
                }
                ok(200, out)
            }
            "/pause" => {
                // Reads one chunk, then stops reading for a while (backpressure).
                let first = req.body.chunk().await.map(|c| c.map(|c| c.len()));
                self.stats
                    .total
                    .store(req.body.received(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                ok(200, format!("{first:?}"))
            }
            "/stream" => {
                let (tx, body) = ChannelBody::channel(2);
                tokio::spawn(async move {
                    for part in ["one,", "two,", "three"] {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        if tx.send(Ok(Bytes::from(part))).await.is_err() {
                            return;
                        }
                    }
                });
                let head = ResponseHead::new(200).unwrap();
                Response::new(head, Either::Right(body))
            }
            "/ready-stream" => {
                // Unknown length, but all chunks ready: coalesced into one Content-Length write.
                let (tx, body) = ChannelBody::channel(4);
                for part in ["a", "b", "c"] {
                    tx.try_send(Ok(Bytes::from(part))).unwrap();
                }
                drop(tx);
                Response::new(ResponseHead::new(200).unwrap(), Either::Right(body))
            }
            "/slow" => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                ok(200, "slow done")
            }
            "/interim" => {
                Response::new(ResponseHead::new(103).unwrap(), Either::Left(Full::empty()))
            }
            "/bad-length" => {
                let mut head = ResponseHead::new(200).unwrap();
                head.append("Content-Length", "10").unwrap();
                Response::new(head, Either::Left(Full::new("short")))
            }
            _ => ok(200, format!("{} {}", req.head.method(), req.head.target())),
        }
    }
}

/// Starts a server on 127.0.0.1:0; returns its address, stats and a shutdown trigger.
async fn serve(config: ServerConfig) -> (SocketAddr, Arc<Stats>, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(Stats::default());
    let handler = Arc::new(TestHandler {
        stats: stats.clone(),
    });
    let builder = Arc::new(Builder::new(config));
    let (tx, rx) = watch::channel(false);
    let st = stats.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            st.connections.fetch_add(1, Ordering::SeqCst);
            let handler = handler.clone();
            let builder = builder.clone();
            let mut rx = rx.clone();
            // A spawned (Send) task: the connection future is Send with a Send handler.
            tokio::spawn(async move {
                let shutdown = async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                };
                let _ = builder
                    .serve_connection_with_shutdown(stream, &*handler, shutdown)
                    .await;
            });
        }
    });
    (addr, stats, tx)
}

fn short_timeouts() -> ServerConfig {
    let mut c = ServerConfig::default();
    c.head_timeout(Duration::from_millis(200))
        .body_timeout(Duration::from_millis(500))
        .idle_timeout(Duration::from_millis(500));
    c
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let (addr, stats, _stop) = serve(ServerConfig::default()).await;
    let mut c = Client::connect(addr).await;
    for i in 0..3 {
        c.send(format!("GET /r{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
            .await;
        let r = c.response(false).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, format!("GET /r{i}").as_bytes());
        assert_eq!(r.header("connection"), None);
        assert!(r.header("date").is_some());
    }
    assert_eq!(stats.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn http10_keep_alive_and_close() {
    let (addr, _stats, _stop) = serve(ServerConfig::default()).await;
    let mut c = Client::connect(addr).await;
    c.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await;
    let r = c.response(false).await;
    assert_eq!(r.header("connection"), Some("keep-alive"));
    c.send(b"GET /b HTTP/1.0\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!(r.body, b"GET /b");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed().await);
}

#[tokio::test]
async fn close_token_on_any_line_wins() {
    let (addr, _stats, _stop) = serve(ServerConfig::default()).await;
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nConnection: keep-alive\r\n\r\nGET /never HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!(r.header("connection"), Some("close"));
    // No more requests processed after close (RFC 9112 §9.6).
    assert!(c.closed().await);
}

#[tokio::test]
async fn three_pipelined_requests_are_answered_in_order() {
    let (addr, stats, _stop) = serve(ServerConfig::default()).await;
    let mut c = Client::connect(addr).await;
    c.send(
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n\
          POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
          GET /3 HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await;
    assert_eq!(c.response(false).await.body, b"GET /1");
    assert_eq!(c.response(false).await.body, b"hello");
    assert_eq!(c.response(false).await.body, b"GET /3");
    assert_eq!(stats.handled.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn expect_continue_is_sent_when_the_body_is_read() {
    let (addr, _stats, _stop) = serve(ServerConfig::default()).await;
    let mut c = Client::connect(addr).await;
    c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        .await;
    let interim = c.read_exact_bytes(25).await;
    assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"data").await;
    let r = c.response(false).await;
    assert_eq!((r.status, &r.body[..]), (200, &b"data"[..]));
    // Connection stays usable.
    c.send(b"GET /again HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(c.response(false).await.body, b"GET /again");
}

#[tokio::test]
async fn expect_continue_is_skipped_when_the_handler_answers_first() {
    let (addr, _stats, _stop) = serve(ServerConfig::default()).await;
    let mut c = Client::connect(addr).await;
    c.send(b"POST /other HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        .await;
    let r = c.response(false).await;
    assert_eq!(r.status, 200, "a final response, no 100 first");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed().await);
}

#[tokio::test]
async fn expect_continue_not_sent_for_a_body_over_the_limit() {
    let mut config = ServerConfig::default();
    let mut body = BodyConfig::default();
    body.max_body_bytes(10);
    config.body(body);
    let (addr, stats, _stop) = serve(config).await;
    let mut c = Client::connect(addr).await;
    c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n")
        .await;
    let r = c.response(false).await;
    assert_eq!(r.status, 413);
    assert_eq!(stats.handled.load(Ordering::SeqCst), 0);
    assert!(c.closed().await);
}

#[tokio::test]
async fn refused_upload_lingers_instead_of_resetting() {
    // The client keeps sending a body the server refused (413 up front): the server lingers,
    // reading and discarding, instead of closing on unread data (which answers with a reset).
    let mut config = ServerConfig::default();
    let mut body = BodyConfig::default();
    body.max_body_bytes(10);
    config.body(body);
    let (addr, _stats, _stop) = serve(config).await;
    let mut c = Client::connect(addr).await;
    c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 60000\r\n\r\n")
        .await;
    let r = c.response(false).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    use tokio::io::AsyncWriteExt;
    let part = vec![b'b'; 20_000];
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let sent = tokio::time::timeout(support::WAIT, c.stream.write_all(&part)).await;
        assert!(
            matches!(sent, Ok(Ok(()))),
            "server reset the connection: {sent:?}"
        );
    }
}

#[tokio::test]
async fn slow_client_gets_408_at_the_head_timeout() {
    let (addr, stats, _stop) = serve(short_timeouts()).await;
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHo").await;
    let started = std::time::Instant::now();
    let r = c.response(false).await;
    assert_eq!(r.status, 408);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(c.closed().await);
    assert_eq!(stats.handled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn silent_connection_and_idle_keep_alive_are_closed_without_a_response() {
    let (addr, _stats, _stop) = serve(short_timeouts()).await;
    let mut c = Client::connect(addr).await;
    assert!(c.closed().await, "no bytes at all: closed silently");
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(c.response(false).await.status, 200);
    assert!(
        c.closed().await,
        "idle keep-alive connection closed after idle_timeout"
    );
}

#[tokio::test]
async fn body_timeout_answers_408() {
    let (addr, _stats, _stop) = serve(short_timeouts()).await;
    let mut c = Client::connect(addr).await;
    c.send(b"POST /count HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        .await;
    let r = c.response(false).await;
    assert_eq!(r.status, 408);
    assert!(c.closed().await);
}

#[tokio::test]
async fn chunked_upload_of_100_mb_streams_with_bounded_chunks() {
    let (addr, stats, _stop) = serve(ServerConfig::default()).await;
    let mut c = Client::connect(addr).await;
    c.send(b"POST /count HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await;
    const CHUNK: usize = 64 * 1024;
    const COUNT: usize = 1600; // 100 MiB
    let data = vec![b'x'; CHUNK];
    let mut frame = Vec::with_capacity(CHUNK + 16);
    frame.extend_from_slice(format!("{CHUNK:x}\r\n").as_bytes());
    frame.extend_from_slice(&data);
    frame.extend_from_slice(b"\r\n");
    for _ in 0..COUNT {
        c.send(&frame).await;
    }
    c.send(b"0\r\n\r\n").await;
    let r = c.response(false).await;
    let total = (CHUNK * COUNT) as u64;
    assert_eq!(r.body, total.to_string().as_bytes());
    assert_eq!(stats.total.load(Ordering::SeqCst), total);
    // Each chunk handed to the handler is at most one read buffer (16 KiB by default):
    // the body streams, it is never gathered.
    let max = stats.max_chunk.load(Ordering::SeqCst);
    assert!(max > 0 && max <= 16 * 1024, "max chunk {max}");
}

#[tokio::test]
async fn server_reads_the_body_only_when_the_handler_asks() {
    let (addr, stats, _stop) = serve(ServerConfig::default()).await;
    let c = Client::connect(addr).await;
    let (mut rd, mut wr) = c.stream.into_split();
    use tokio::io::AsyncWriteExt;
    wr.write_all(b"POST /pause HTTP/1.1\r\nHost: a\r\nContent-Length: 104857600\r\n\r\n")
        .await
        .unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let w = written.clone();
    let writer = tokio::spawn(async move {
        let block = vec![b'y'; 64 * 1024];
        for _ in 0..1600 {
            if wr.write_all(&block).await.is_err() {
                return;
            }
            w.fetch_add(block.len() as u64, Ordering::SeqCst);
        }
    });
    // The handler pauses 300 ms after its first chunk; the client can only fill the socket
    // buffers meanwhile, then the server closes (remainder too long to drain).
    let mut buf = BytesMut::new();
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout_at(deadline, rd.read_buf(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "EOF before the response");
    }
    let seen_by_handler = stats.total.load(Ordering::SeqCst);
    assert!(
        seen_by_handler <= 16 * 1024,
        "handler got {seen_by_handler}"
    );
    let sent = written.load(Ordering::SeqCst);
    assert!(
        sent < 100 * 1024 * 1024,
        "client could write everything: {sent}"
    );
    assert!(buf.starts_with(b"HTTP/1.1 200 OK"));
    let text = String::from_utf8_lossy(&buf).to_lowercase();
    assert!(text.contains("connection: close"), "{text}");
    writer.abort();
}

#[tokio::test]
async fn body_as_async_read() {
    let (addr, _stats, _stop) = serve(ServerConfig::default()).await;
    let mut c = Client::connect(addr).await;
    c.send(b"POST /read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n3\r\nxyz\r\n0\r\n\r\n").await;
    assert_eq!(c.response(false).await.body, b"0123456789abcdefxyz");
}

#[tokio::test]
async fn unread_small_body_is_drained_and_the_connection_reused() {
    let (addr, stats, _stop) = serve(ServerConfig::default()).await;
    let mut c = Client::connect(addr).await;
    c.send(b"POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n")
        .await;
    c.send(&[b'z'; 1000]).await;
    let r = c.response(false).await;
    assert_eq!(r.header("connection"), None);
    c.send(b"POST /ignore2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n").await;
    assert_eq!(c.response(false).await.body, b"POST /ignore2");
    c.send(b"GET /last HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(c.response(false).await.body, b"GET /last");
    assert_eq!(stats.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unread_long_body_closes_the_connection() {
    let (addr, _stats, _stop) = serve(ServerConfig::default()).await;
    let mut c = Client::connect(addr).await;
    c.send(b"POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n")
        .await;
    let r = c.response(false).await;
    assert_eq!(r.header("connection"), Some("close"));
}

#[tokio::test]
async fn bad_requests_get_their_status_and_close() {
    let cases: &[(&[u8], u16)] = &[
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nHost: a\r\nExpect: nope\r\n\r\n", 417),
        (b"POST /count HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400),
    ];
    let (addr, _stats, _stop) = serve(ServerConfig::default()).await;
    for (req, status) in cases {
        let mut c = Client::connect(addr).await;
        c.send(req).await;
        let r = c.response(false).await;
        assert_eq!(r.status, *status, "{:?}", String::from_utf8_lossy(req));
        assert_eq!(r.header("connection"), Some("close"));
        assert!(r.body.starts_with(status.to_string().as_bytes()));
        assert!(c.closed().await);
    }
    // 414 and 431 with long inputs.
    let mut c = Client::connect(addr).await;
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(10_000));
    c.send(long.as_bytes()).await;
    assert_eq!(c.response(false).await.status, 414);
    let mut c = Client::connect(addr).await;
    let mut big = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..200 {
        big.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    big.extend_from_slice(b"\r\n");
    c.send(&big).await;
    assert_eq!(c.response(false).await.status, 431);
}

#[tokio::test]
async fn chunked_body_over_the_limit_gets_413() {
    let mut config = ServerConfig::default();
    let mut body = BodyConfig::default();
    body.max_body_bytes(5);
    config.body(body);
    let (addr, _stats, _stop) = serve(config).await;
    let mut c = Client::connect(addr).await;
    c.send(b"POST /count HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!(r.status, 413);
    assert!(c.closed().await);
}

#[tokio::test]
async fn response_framing_over_the_wire() {
    let (addr, _stats, _stop) = serve(ServerConfig::default()).await;
    let mut c = Client::connect(addr).await;
    // HEAD: length advertised, no body.
    c.send(b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let r = c.response(true).await;
    assert_eq!(r.header("content-length"), Some("7"));
    // Streaming body of unknown length on 1.1: chunked.
    c.send(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body, b"one,two,three");
    // Unknown length but all ready: Content-Length, one write.
    c.send(b"GET /ready-stream HTTP/1.1\r\nHost: a\r\n\r\n")
        .await;
    let r = c.response(false).await;
    assert_eq!(r.header("content-length"), Some("3"));
    assert_eq!(r.body, b"abc");
    // HEAD right after, to check nothing of a body leaked into the stream.
    c.send(b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(c.response(false).await.body, b"GET /after");
    // HTTP/1.0 client and a streaming body: close-delimited.
    let mut c = Client::connect(addr).await;
    c.send(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await;
    let r = c.response(false).await;
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.body, b"one,two,three");
}

#[tokio::test]
async fn invalid_responses_become_500_or_close() {
    let (addr, _stats, _stop) = serve(ServerConfig::default()).await;
    let mut c = Client::connect(addr).await;
    c.send(b"GET /interim HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!(r.status, 500);
    assert!(c.closed().await);
    let mut c = Client::connect(addr).await;
    c.send(b"GET /bad-length HTTP/1.1\r\nHost: a\r\n\r\n").await;
    // Declared 10, body of 5: refused before anything is written.
    let r = c.response(false).await;
    assert_eq!(r.status, 500);
}

#[tokio::test]
async fn request_cap_per_connection() {
    let mut config = ServerConfig::default();
    config.max_requests_per_connection(2);
    let (addr, _stats, _stop) = serve(config).await;
    let mut c = Client::connect(addr).await;
    c.send(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(c.response(false).await.header("connection"), None);
    c.send(b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(c.response(false).await.header("connection"), Some("close"));
    assert!(c.closed().await);
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_and_closes_idle() {
    let (addr, _stats, stop) = serve(ServerConfig::default()).await;
    let mut idle = Client::connect(addr).await;
    idle.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(idle.response(false).await.status, 200);
    let mut busy = Client::connect(addr).await;
    busy.send(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.send(true).unwrap();
    // The idle keep-alive connection is closed at once.
    assert!(idle.closed().await);
    // The in-flight request completes, with Connection: close.
    let r = busy.response(false).await;
    assert_eq!(r.body, b"slow done");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(busy.closed().await);
}
