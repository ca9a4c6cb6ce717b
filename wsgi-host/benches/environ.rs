//! Building the environ for a 20-header request (what nginx sends for a browser GET),
//! compared in the same group with CPython evaluating a dict literal of the same content.
//!
//! `cargo bench -p wsgi-host --bench environ`; the ratio of the two means is the number the
//! issue asks for.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, criterion_group, criterion_main};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use uwsgi_proto::{Limits, Modifier1, OwnedVars, encode_request};
use wsgi_host::{AppTable, PythonConfig, ServerConfig, Worker, WsgiApp};

/// nginx's uwsgi_params (Debian) plus 20 request headers.
const VARS: &[(&str, &str)] = &[
    ("QUERY_STRING", "page=2&sort=desc"),
    ("REQUEST_METHOD", "GET"),
    ("CONTENT_TYPE", ""),
    ("CONTENT_LENGTH", ""),
    ("REQUEST_URI", "/articles/rust-and-python?page=2&sort=desc"),
    ("PATH_INFO", "/articles/rust-and-python"),
    ("DOCUMENT_ROOT", "/usr/share/nginx/html"),
    ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("REQUEST_SCHEME", "https"),
    ("HTTPS", "on"),
    ("REMOTE_ADDR", "203.0.113.7"),
    ("REMOTE_PORT", "51234"),
    ("SERVER_PORT", "443"),
    ("SERVER_NAME", "example.org"),
    ("HTTP_HOST", "example.org"),
    (
        "HTTP_USER_AGENT",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ),
    (
        "HTTP_ACCEPT",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ),
    ("HTTP_ACCEPT_LANGUAGE", "en-US,en;q=0.5"),
    ("HTTP_ACCEPT_ENCODING", "gzip, deflate, br, zstd"),
    ("HTTP_CONNECTION", "keep-alive"),
    (
        "HTTP_COOKIE",
        "session=eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoxfQ.abc; theme=dark",
    ),
    ("HTTP_REFERER", "https://example.org/articles/"),
    ("HTTP_CACHE_CONTROL", "max-age=0"),
    ("HTTP_UPGRADE_INSECURE_REQUESTS", "1"),
    ("HTTP_SEC_FETCH_DEST", "document"),
    ("HTTP_SEC_FETCH_MODE", "navigate"),
    ("HTTP_SEC_FETCH_SITE", "same-origin"),
    ("HTTP_SEC_FETCH_USER", "?1"),
    ("HTTP_DNT", "1"),
    ("HTTP_X_FORWARDED_FOR", "203.0.113.7"),
    ("HTTP_X_REAL_IP", "203.0.113.7"),
    ("HTTP_X_REQUEST_ID", "7f1c2a9e-4b1d-4c59-9a0e-2f0d7c1e8b11"),
    ("HTTP_IF_NONE_MATCH", "\"5d8c72a5edda8\""),
    ("HTTP_PRAGMA", "no-cache"),
];

fn environ(c: &mut Criterion) {
    wsgi_host::initialize(&PythonConfig::new()).expect("interpreter");
    let mut block = BytesMut::new();
    encode_request(Modifier1::WSGI, 0, VARS, &mut block).expect("encodable");
    let block = block.split_off(4).freeze();
    let vars = OwnedVars::parse(block, &Limits::default()).expect("valid vars");
    assert_eq!(
        vars.iter().filter(|(k, _)| k.starts_with(b"HTTP_")).count(),
        20
    );

    Python::attach(|py| {
        let app = py
            .eval(c"lambda environ, start_response: []", None, None)
            .expect("lambda");
        let worker = Worker::new(
            py,
            AppTable::single(WsgiApp::from_callable(app.unbind(), "bench")),
            ServerConfig::new(),
        )
        .expect("worker");
        let input = py.None().into_bound(py);

        let build = || {
            let mut builder = worker.template().builder(py).expect("copy");
            for (key, value) in vars.iter() {
                builder.var(key, value).expect("var");
            }
            builder.finish(worker.apps(), &input).expect("environ").0
        };

        // The same content as a dict literal: str items as literals, objects by name.
        let sample = build();
        let globals = PyDict::new(py);
        globals.set_item("sample", &sample).expect("set");
        py.run(
            c"
items = []
for k, v in sample.items():
    if isinstance(v, str) or isinstance(v, bool) or isinstance(v, tuple):
        items.append('%r: %r' % (k, v))
    else:
        name = 'obj_' + k.replace('.', '_')
        globals()[name] = v
        items.append('%r: %s' % (k, name))
literal = '{' + ', '.join(items) + '}'
code = compile(literal, '<bench>', 'eval')
assert eval(code) == sample
",
            Some(&globals),
            None,
        )
        .expect("literal");
        let code = globals.get_item("code").expect("lookup").expect("code");
        let eval = py
            .import("builtins")
            .and_then(|b| b.getattr("eval"))
            .expect("eval");

        let mut group = c.benchmark_group("environ");
        group.bench_function("ferrule_uwsgi_vars_20_headers", |b| {
            b.iter(|| black_box(build()));
        });
        group.bench_function("cpython_dict_literal_same_content", |b| {
            b.iter(|| black_box(eval.call1((&code, &globals)).expect("eval")));
        });
        group.finish();
    });
}

criterion_group!(benches, environ);
criterion_main!(benches);
