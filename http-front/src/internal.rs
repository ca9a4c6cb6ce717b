//! Test, fuzz and bench hooks. Not part of the stable API.

use bytes::BytesMut;

use crate::body::{BodyDecoder, BodyEvent};
use crate::config::{BodyConfig, HeadConfig};
use crate::head::{BodyLength, HeadParser, RequestHead, TargetForm, Version};

/// Re-serializes a parsed head the way a proxy forwards it (RFC 9112 §3, §5): request line,
/// each kept field as `name: value` CRLF, final CRLF. Dropped fields stay dropped.
pub fn serialize_head(head: &RequestHead, dst: &mut Vec<u8>) {
    dst.extend_from_slice(head.method().as_bytes());
    dst.push(b' ');
    dst.extend_from_slice(head.target().as_bytes());
    dst.push(b' ');
    dst.extend_from_slice(head.version().as_str().as_bytes());
    dst.extend_from_slice(b"\r\n");
    for f in head.fields() {
        dst.extend_from_slice(f.name().as_bytes());
        dst.extend_from_slice(b": ");
        dst.extend_from_slice(f.value());
        dst.extend_from_slice(b"\r\n");
    }
    dst.extend_from_slice(b"\r\n");
}

/// Everything the parser derived from a head, comparable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadSummary {
    /// Method.
    pub method: String,
    /// Target.
    pub target: String,
    /// Version.
    pub version: Version,
    /// Fields, in order.
    pub fields: Vec<(String, Vec<u8>)>,
    /// Framing.
    pub body: BodyLength,
    /// Target form.
    pub form: TargetForm,
    /// Effective host.
    pub host: Option<Vec<u8>>,
    /// Path.
    pub path: String,
    /// Query.
    pub query: Option<String>,
    /// Keep-alive wish.
    pub keep_alive: bool,
    /// 100-continue wish.
    pub expects_continue: bool,
}

/// Summarizes a head.
pub fn summarize(head: &RequestHead) -> HeadSummary {
    HeadSummary {
        method: head.method().to_owned(),
        target: head.target().to_owned(),
        version: head.version(),
        fields: head
            .fields()
            .map(|f| (f.name().to_owned(), f.value().to_vec()))
            .collect(),
        body: head.body_length(),
        form: head.target_form(),
        host: head.host().map(<[u8]>::to_vec),
        path: head.path().to_owned(),
        query: head.query().map(str::to_owned),
        keep_alive: head.keep_alive(),
        expects_continue: head.expects_continue(),
    }
}

/// The `http_head` fuzz invariant: whatever the input, parsing does not panic, consumes only
/// what it reports, and an accepted head re-serializes to a head that parses to the same
/// fields (with the strict default config and with bare LF allowed).
///
/// # Panics
///
/// When the invariant is broken (that is the point).
pub fn fuzz_http_head(data: &[u8]) {
    let (lenient, data) = match data.split_first() {
        Some((flags, rest)) => (flags & 1 == 1, rest),
        None => (false, data),
    };
    let mut config = HeadConfig::default();
    config.allow_bare_lf(lenient);
    let mut parser = HeadParser::new(config.clone());
    let mut buf = BytesMut::from(data);
    let Ok(Some(head)) = parser.parse(&mut buf) else {
        return;
    };
    assert!(head.raw().len() + buf.len() <= data.len());
    assert!(data.ends_with(&buf));
    let mut wire = Vec::new();
    serialize_head(&head, &mut wire);
    let mut strict = HeadParser::new(HeadConfig::default());
    let again = strict
        .parse(&mut BytesMut::from(&wire[..]))
        .unwrap_or_else(|e| {
            panic!(
                "re-serialized head refused: {e}: {:?}",
                wire.escape_ascii().to_string()
            )
        })
        .expect("re-serialized head is complete");
    assert_eq!(summarize(&head), summarize(&again));
}

/// The `chunked` fuzz invariant: chunks cut from `data` and encoded with
/// [`uwsgi_proto::chunked`] decode to the same bytes whatever the read boundaries; and `data`
/// itself decoded as a chunked body never yields more bytes than it holds.
///
/// # Panics
///
/// When the invariant is broken.
pub fn fuzz_chunked(data: &[u8]) {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step) + 1;
    // Chunks: each length byte is followed by that many bytes (or what is left).
    let mut chunks = Vec::new();
    let mut at = 0;
    while at < rest.len() {
        let len = usize::from(rest[at]);
        let end = (at + 1 + len).min(rest.len());
        chunks.push(&rest[at + 1..end]);
        at = end;
    }
    let mut wire = BytesMut::new();
    for c in &chunks {
        uwsgi_proto::chunked::encode_chunk(c, &mut wire);
    }
    uwsgi_proto::chunked::encode_last_chunk(b"", &mut wire);
    let mut decoder = BodyDecoder::new(BodyLength::Chunked, &BodyConfig::default())
        .expect("chunked needs no length check");
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut fed = 0;
    loop {
        match decoder.decode(&mut buf).expect("encoder output decodes") {
            Some(BodyEvent::Data(d)) => out.extend_from_slice(&d),
            Some(BodyEvent::End(t)) => {
                assert!(t.is_empty());
                break;
            }
            None => {
                assert!(fed < wire.len(), "incomplete after all input");
                let n = step.min(wire.len() - fed);
                buf.extend_from_slice(&wire[fed..fed + n]);
                fed += n;
            }
        }
    }
    assert_eq!(out, chunks.concat());
    assert_eq!(fed, wire.len());
    assert!(buf.is_empty());

    // Arbitrary bytes as a chunked body: decoded + left over never exceed the input.
    let mut decoder = BodyDecoder::new(BodyLength::Chunked, &BodyConfig::default())
        .expect("chunked needs no length check");
    let mut buf = BytesMut::from(rest);
    let mut decoded = 0;
    while let Ok(Some(BodyEvent::Data(d))) = decoder.decode(&mut buf) {
        assert!(!d.is_empty());
        decoded += d.len();
    }
    assert!(decoded + buf.len() <= rest.len());
}
