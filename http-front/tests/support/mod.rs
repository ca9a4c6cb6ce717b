//! Helpers shared by the behaviour tests.
#![allow(dead_code, unreachable_pub)]

use bytes::BytesMut;
use http_front::body::{BodyDecoder, BodyEvent, Trailers};
use http_front::{BodyConfig, Error, HeadConfig, HeadParser, RequestHead};

/// Parses one head with `config`; the input must hold the whole head.
pub fn parse_with(config: &HeadConfig, input: &[u8]) -> Result<RequestHead, Error> {
    let mut parser = HeadParser::new(config.clone());
    let mut buf = BytesMut::from(input);
    match parser.parse(&mut buf)? {
        Some(head) => Ok(head),
        None => panic!(
            "incomplete head: {:?}",
            String::from_utf8_lossy(input).escape_debug().to_string()
        ),
    }
}

/// Parses one head with the default config, and checks that feeding the same bytes split at
/// every offset gives the same outcome (fields or status).
pub fn parse(input: &[u8]) -> Result<RequestHead, Error> {
    parse_split_checked(&HeadConfig::default(), input)
}

/// Like [`parse`] with a given config.
pub fn parse_split_checked(config: &HeadConfig, input: &[u8]) -> Result<RequestHead, Error> {
    let whole = parse_with(config, input);
    let want = summary(&whole);
    for split in 1..input.len() {
        let mut parser = HeadParser::new(config.clone());
        let mut buf = BytesMut::from(&input[..split]);
        let got = match parser.parse(&mut buf) {
            Ok(Some(head)) => Ok(head),
            Ok(None) => {
                buf.extend_from_slice(&input[split..]);
                match parser.parse(&mut buf) {
                    Ok(Some(head)) => Ok(head),
                    Ok(None) => panic!("incomplete after all bytes, split {split}"),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        assert_eq!(summary(&got), want, "split at {split}");
    }
    whole
}

/// A comparable view of a parse outcome.
pub fn summary(r: &Result<RequestHead, Error>) -> String {
    match r {
        Ok(h) => format!(
            "{} {} {:?} {:?} {:?}",
            h.method(),
            h.target(),
            h.version(),
            h.fields()
                .map(|f| (f.name().to_owned(), f.value().to_vec()))
                .collect::<Vec<_>>(),
            h.body_length()
        ),
        Err(e) => format!("error {:?}", e.status()),
    }
}

/// Decodes a whole body from `buf`; the error if decoding fails or `None` if incomplete.
pub fn decode_body(
    head: &RequestHead,
    config: &BodyConfig,
    buf: &mut BytesMut,
) -> Result<Option<(Vec<u8>, Trailers)>, Error> {
    let mut decoder = BodyDecoder::new(head.body_length(), config)?;
    let mut body = Vec::new();
    loop {
        match decoder.decode(buf)? {
            Some(BodyEvent::Data(d)) => {
                assert!(!d.is_empty(), "empty Data event");
                body.extend_from_slice(&d);
            }
            Some(BodyEvent::End(t)) => return Ok(Some((body, t))),
            None => return Ok(None),
        }
    }
}

/// `(name, value)` pairs of a head, as owned strings (values lossily).
pub fn fields(head: &RequestHead) -> Vec<(String, String)> {
    head.fields()
        .map(|f| {
            (
                f.name().to_owned(),
                String::from_utf8_lossy(f.value()).into_owned(),
            )
        })
        .collect()
}

// ===== socket helpers =====

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every network wait in the tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// A response as a test client sees it.
#[derive(Debug)]
pub struct ClientResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ClientResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A raw HTTP/1.1 client over a TcpStream with a read buffer.
pub struct Client {
    pub stream: TcpStream,
    pub buf: BytesMut,
}

impl Client {
    pub async fn connect(addr: std::net::SocketAddr) -> Client {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        Client {
            stream,
            buf: BytesMut::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        tokio::time::timeout(WAIT, self.stream.write_all(bytes))
            .await
            .expect("write timed out")
            .expect("write");
    }

    /// Reads more bytes; `false` at EOF.
    async fn fill(&mut self) -> bool {
        self.buf.reserve(64 * 1024);
        let n = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf))
            .await
            .expect("read timed out")
            .unwrap_or(0);
        n > 0
    }

    /// Reads bytes until `pattern` shows up at the front of the buffer region; returns it.
    pub async fn read_exact_bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "EOF before {n} bytes");
        }
        self.buf.split_to(n).to_vec()
    }

    /// Reads one response; `head_only` for responses to HEAD.
    pub async fn response(&mut self, head_only: bool) -> ClientResponse {
        let (status, headers, len) = loop {
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut hs);
            match resp.parse(&self.buf).expect("valid response head") {
                httparse::Status::Complete(n) => {
                    let headers: Vec<(String, String)> = resp
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_owned(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect();
                    break (resp.code.unwrap(), headers, n);
                }
                httparse::Status::Partial => {
                    assert!(self.fill().await, "EOF inside a response head");
                }
            }
        };
        let _ = self.buf.split_to(len);
        let mut r = ClientResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only || status < 200 || status == 204 || status == 304 {
            return r;
        }
        if let Some(cl) = r.header("content-length") {
            let n: usize = cl.parse().unwrap();
            r.body = self.read_exact_bytes(n).await;
        } else if r.header("transfer-encoding") == Some("chunked") {
            let mut d = uwsgi_proto::chunked::ChunkedDecoder::new();
            loop {
                match d.decode(&mut self.buf).expect("valid chunked response") {
                    Some(uwsgi_proto::chunked::ChunkedEvent::Data(b)) => {
                        r.body.extend_from_slice(&b)
                    }
                    Some(uwsgi_proto::chunked::ChunkedEvent::End { .. }) => break,
                    None => assert!(self.fill().await, "EOF inside a chunked response"),
                }
            }
        } else {
            while self.fill().await {}
            r.body = self.buf.split().to_vec();
        }
        r
    }

    /// Whether the server closed the connection (EOF before any further byte).
    pub async fn closed(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        !self.fill().await
    }
}
