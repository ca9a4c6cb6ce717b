//! The uwsgi-socket path end to end: an embedded interpreter, real loopback and unix
//! connections, raw uwsgi packets in, raw HTTP responses out. Covers every row of the probe
//! table (reference/wsgi-servers.md §1.7) that applies to a uwsgi socket, with the probe app
//! wrapped in `wsgiref.validate.validator` (WSGIWarning as an error).

mod support;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use support::*;
use wsgi_host::{AppSpec, AppTable, PythonConfig, ServerConfig, UwsgiListener, Worker, load_app};

struct Servers {
    /// threads = 1; "" -> validated probe app, "/raw" -> raw app, manage-script-name on.
    main: Target,
    /// The same worker on a unix socket.
    unix: Target,
    /// Routing by the SCRIPT_NAME var (manage-script-name off): "/app" -> raw app.
    by_script_name: Target,
    /// post-buffering 1024 bytes (larger bodies spill to a temp file).
    buffered: Target,
    /// limit-post 1000, socket-timeout 1 s.
    strict: Target,
}

fn load(py: Python<'_>, spec: &str) -> wsgi_host::WsgiApp {
    load_app(py, &AppSpec::parse_module(spec).unwrap()).unwrap()
}

fn tcp_listener() -> (UwsgiListener, Target) {
    let listener = UwsgiListener::bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, Target::Tcp(addr))
}

fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        init_logging();
        let mut config = PythonConfig::new();
        config.pythonpath(apps_dir());
        let info = wsgi_host::initialize(&config).expect("interpreter");
        assert!(info.version.starts_with("3.11"), "{info:?}");
        let (main, unix, by_script_name, buffered, strict) = Python::attach(|py| {
            let mut apps = AppTable::new();
            apps.mount("", load(py, "probe_app:application")).unwrap();
            apps.mount("/raw", load(py, "probe_app:raw_application"))
                .unwrap();
            apps.manage_script_name(true);
            let main = Arc::new(Worker::new(py, apps, ServerConfig::new()).unwrap());

            let mut apps = AppTable::new();
            apps.mount("/", load(py, "probe_app:application")).unwrap();
            apps.mount("/app/", load(py, "probe_app:raw_application"))
                .unwrap();
            let by_script_name = Arc::new(Worker::new(py, apps, ServerConfig::new()).unwrap());

            let mut config = ServerConfig::new();
            config.post_buffering(1024);
            let buffered = Arc::new(
                Worker::new(
                    py,
                    AppTable::single(load(py, "probe_app:raw_application")),
                    config,
                )
                .unwrap(),
            );

            let mut config = ServerConfig::new();
            config
                .limit_post(1000)
                .socket_timeout(Duration::from_secs(1));
            let strict = Arc::new(
                Worker::new(
                    py,
                    AppTable::single(load(py, "probe_app:raw_application")),
                    config,
                )
                .unwrap(),
            );
            (
                main,
                by_script_name.clone(),
                by_script_name,
                buffered,
                strict,
            )
        });
        let _ = unix;
        let (l, main_target) = tcp_listener();
        spawn_worker(Arc::clone(&main), l, "main");
        let path = unix_socket_path("main.sock");
        spawn_worker(
            Arc::clone(&main),
            UwsgiListener::bind_unix(&path).unwrap(),
            "unix",
        );
        let (l, script_target) = tcp_listener();
        spawn_worker(by_script_name, l, "script-name");
        let (l, buffered_target) = tcp_listener();
        spawn_worker(buffered, l, "buffered");
        let (l, strict_target) = tcp_listener();
        spawn_worker(strict, l, "strict");
        Servers {
            main: main_target,
            unix: Target::Unix(path),
            by_script_name: script_target,
            buffered: buffered_target,
            strict: strict_target,
        }
    })
}

fn main_server() -> &'static Target {
    &servers().main
}

/// Fails if wsgiref.validate reported anything through `sys.unraisablehook` (its
/// "Iterator garbage collected without being closed" check runs in `__del__`).
fn assert_no_unraisable() {
    let state = get(main_server(), "/raw/state");
    assert_eq!(state.status, 200, "{}", state.text());
    assert_eq!(json_field(&state.body, "d['unraisable']"), "[]");
}

fn closed(name: &str) -> bool {
    let state = get(main_server(), "/raw/state");
    json_field(&state.body, &format!("{name:?} in d['closed']")) == "True"
}

fn env_field(resp: &Response, expr: &str) -> String {
    assert_eq!(resp.status, 200, "{}", resp.text());
    json_field(&resp.body, expr)
}

// ===== response basics =====

#[test]
fn hello_list_fast_path_is_one_raw_http_response() {
    let resp = get(main_server(), "/raw/hello");
    assert_eq!(
        resp.raw,
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
    );
    assert!(resp.clean_close);
}

#[test]
fn validated_get() {
    let resp = get(main_server(), "/hello");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "Hello, World!");
    assert_no_unraisable();
}

#[test]
fn unix_socket_serves_the_same_app() {
    let resp = get(&servers().unix, "/hello");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "Hello, World!");
}

#[test]
fn tuple_result() {
    let resp = get(main_server(), "/raw/tuple");
    assert_eq!(resp.text(), "abc");
}

// ===== environ =====

#[test]
fn environ_types_and_defaults() {
    let resp = get(main_server(), "/env?a=1&b=%20");
    let check = |expr: &str, want: &str| assert_eq!(env_field(&resp, expr), want, "{expr}");
    // Probe row "non-str CGI values": every CGI key is a str.
    check(
        "[k for k, t in d['types'].items() if k.isupper() and t != 'str']",
        "[]",
    );
    check("d['environ_type']", "dict");
    check("d['version']", "[1, 0]");
    // Probe row "wsgi.input_terminated".
    check("d['input_terminated']", "True");
    check("d['multithread']", "False");
    check("d['multiprocess']", "False");
    check("d['run_once']", "False");
    check("d['has_file_wrapper']", "True");
    check("d['cgi']['SCRIPT_NAME']", "");
    check("d['cgi']['PATH_INFO']", "/env");
    check("d['cgi']['QUERY_STRING']", "a=1&b=%20");
    check("d['cgi']['wsgi.url_scheme']", "http");
    check("d['cgi']['SERVER_NAME']", "localhost");
    check("d['cgi']['SERVER_PORT']", "80");
    // nginx sends CONTENT_TYPE/CONTENT_LENGTH empty: omitted.
    check(
        "'CONTENT_TYPE' in d['cgi'] or 'CONTENT_LENGTH' in d['cgi']",
        "False",
    );
    assert_no_unraisable();
}

#[test]
fn content_headers_are_not_duplicated_as_http_vars() {
    let mut vars = nginx_vars("POST", "/raw/env", Some(3), &[]);
    vars[2].1 = "text/plain".into();
    vars.push(("HTTP_CONTENT_TYPE".into(), "text/plain".into()));
    vars.push(("HTTP_CONTENT_LENGTH".into(), "3".into()));
    let resp = exchange(main_server(), &vars, b"abc");
    assert_eq!(env_field(&resp, "d['cgi']['CONTENT_TYPE']"), "text/plain");
    assert_eq!(env_field(&resp, "d['cgi']['CONTENT_LENGTH']"), "3");
    assert_eq!(
        env_field(
            &resp,
            "[k for k in d['cgi'] if k.startswith('HTTP_CONTENT')]"
        ),
        "[]"
    );
}

#[test]
fn repeated_headers_are_joined() {
    // Probe row "duplicate X-Dup / Cookie" (nginx 1.22 repeats the key).
    let vars = nginx_vars(
        "GET",
        "/raw/env",
        None,
        &[
            ("HTTP_X_DUP", "a"),
            ("HTTP_COOKIE", "c1=1"),
            ("HTTP_X_DUP", "b"),
            ("HTTP_COOKIE", "c2=2"),
            ("HTTP_X_CUSTOM_THING", "x"),
            ("HTTP_X_CUSTOM_THING", "y"),
            ("HTTP_X_CUSTOM_THING", "z"),
        ],
    );
    let resp = exchange(main_server(), &vars, b"");
    assert_eq!(env_field(&resp, "d['cgi']['HTTP_X_DUP']"), "a, b");
    assert_eq!(env_field(&resp, "d['cgi']['HTTP_COOKIE']"), "c1=1; c2=2");
    assert_eq!(
        env_field(&resp, "d['cgi']['HTTP_X_CUSTOM_THING']"),
        "x, y, z"
    );
}

#[test]
fn url_scheme_follows_uwsgi_rules() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("HTTPS", "on")], "https"),
        (&[("HTTPS", "1")], "https"),
        (&[("HTTPS", "off")], "http"),
        (&[("UWSGI_SCHEME", "https")], "https"),
        (&[("UWSGI_SCHEME", "http"), ("HTTPS", "on")], "http"),
        // Not trusted without configuration.
        (&[("HTTP_X_FORWARDED_PROTO", "https")], "http"),
        (&[("UWSGI_SCHEME", "gopher")], "http"),
    ];
    for (extra, want) in cases {
        let vars = nginx_vars("GET", "/raw/env", None, extra);
        let resp = exchange(main_server(), &vars, b"");
        assert_eq!(
            env_field(&resp, "d['cgi']['wsgi.url_scheme']"),
            *want,
            "{extra:?}"
        );
    }
    let mut vars = nginx_vars("GET", "/raw/env", None, &[]);
    vars[8].1 = "https".into(); // REQUEST_SCHEME
    let resp = exchange(main_server(), &vars, b"");
    assert_eq!(env_field(&resp, "d['cgi']['wsgi.url_scheme']"), "https");
}

#[test]
fn any_byte_survives_as_latin1() {
    // nginx sends PATH_INFO percent-decoded, so raw UTF-8 (and any other byte) arrives.
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = nginx_vars("GET", "/raw/env", None, &[])
        .into_iter()
        .map(|(k, v)| (k.into_bytes(), v.into_bytes()))
        .collect();
    pairs[4].1 = b"/raw/pathinfo/caf%C3%A9%FF".to_vec(); // REQUEST_URI, raw
    pairs[5].1 = b"/raw/pathinfo/caf\xc3\xa9\xff".to_vec(); // PATH_INFO, decoded
    pairs.push((b"HTTP_X_BIN".to_vec(), b"\x00\x80\xfe".to_vec()));
    let mut out = bytes::BytesMut::new();
    uwsgi_proto::encode_request(uwsgi_proto::Modifier1::WSGI, 0, &pairs, &mut out).unwrap();
    let mut conn = Conn::open(main_server());
    conn.send(&out).unwrap();
    let (raw, _) = conn.read_to_end();
    let resp = Response::parse(raw, true);
    assert_eq!(
        env_field(&resp, "d['path'] == '/pathinfo/caf\\xc3\\xa9\\xff'"),
        "True",
        "{}",
        resp.text()
    );
    assert_eq!(
        env_field(&resp, "d['path'].encode('latin-1')"),
        "b'/pathinfo/caf\\xc3\\xa9\\xff'"
    );
    assert_eq!(env_field(&resp, "d['script']"), "/raw");
    assert_eq!(env_field(&resp, "d['uri']"), "/raw/pathinfo/caf%C3%A9%FF");
    // A header value with NUL and high bytes.
    pairs[5].1 = b"/raw/env".to_vec();
    let mut out = bytes::BytesMut::new();
    uwsgi_proto::encode_request(uwsgi_proto::Modifier1::WSGI, 0, &pairs, &mut out).unwrap();
    let mut conn = Conn::open(main_server());
    conn.send(&out).unwrap();
    let (raw, _) = conn.read_to_end();
    let resp = Response::parse(raw, true);
    assert_eq!(
        env_field(&resp, "d['cgi']['HTTP_X_BIN'] == '\\x00\\x80\\xfe'"),
        "True"
    );
}

#[test]
fn magic_vars_are_never_acted_on() {
    let vars = nginx_vars(
        "GET",
        "/raw/env",
        None,
        &[
            ("UWSGI_SETENV", "FERRULE_MAGIC=1"),
            ("UWSGI_CHDIR", "/tmp"),
            ("UWSGI_SCRIPT", "os:system"),
            ("UWSGI_POSTFILE", "/etc/passwd"),
        ],
    );
    let resp = exchange(main_server(), &vars, b"");
    assert_eq!(env_field(&resp, "d['magic_env']"), "None");
    assert_ne!(env_field(&resp, "d['cwd']"), "/tmp");
    assert_eq!(
        env_field(&resp, "d['cgi']['UWSGI_SETENV']"),
        "FERRULE_MAGIC=1"
    );
    // UWSGI_POSTFILE does not become the body.
    let vars = nginx_vars(
        "POST",
        "/raw/echo",
        None,
        &[("UWSGI_POSTFILE", "/etc/passwd")],
    );
    let resp = exchange(main_server(), &vars, b"");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"");
}

#[test]
fn mount_points_with_manage_script_name() {
    let resp = get(main_server(), "/raw/env");
    assert_eq!(env_field(&resp, "d['cgi']['SCRIPT_NAME']"), "/raw");
    assert_eq!(env_field(&resp, "d['cgi']['PATH_INFO']"), "/env");
    // "/rawx" is not under "/raw": the default (validated) app gets it whole.
    let resp = get(main_server(), "/rawx/env");
    assert_eq!(resp.status, 404);
    assert_eq!(resp.text(), "not found");
    let resp = get(main_server(), "/raw");
    assert_eq!(resp.status, 404, "PATH_INFO '' in the raw app");
}

#[test]
fn mount_points_by_script_name_var() {
    let target = &servers().by_script_name;
    let vars = nginx_vars("GET", "/env", None, &[("SCRIPT_NAME", "/app")]);
    let resp = exchange(target, &vars, b"");
    assert_eq!(env_field(&resp, "d['cgi']['SCRIPT_NAME']"), "/app");
    assert_eq!(env_field(&resp, "d['cgi']['PATH_INFO']"), "/env");
    // SCRIPT_NAME "/" is never passed on as "/" (PEP 3333); the default app answers.
    let vars = nginx_vars("GET", "/env", None, &[("SCRIPT_NAME", "/")]);
    let resp = exchange(target, &vars, b"");
    assert_eq!(env_field(&resp, "d['cgi']['SCRIPT_NAME']"), "");
    // modifier1 30 strips SCRIPT_NAME from PATH_INFO.
    let vars = nginx_vars("GET", "/app/env", None, &[("SCRIPT_NAME", "/app")]);
    let mut conn = Conn::open(target);
    conn.send(&packet(30, &vars)).unwrap();
    let (raw, _) = conn.read_to_end();
    let resp = Response::parse(raw, true);
    assert_eq!(env_field(&resp, "d['cgi']['PATH_INFO']"), "/env");
}

// ===== wsgi.input =====

#[test]
fn post_body_is_read_with_read_n() {
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let resp = post(main_server(), "/echo", "application/octet-stream", &body);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.body, body);
    assert_no_unraisable();
}

#[test]
fn readline_keeps_newlines_and_iteration_yields_lines() {
    // Probe row "readline + iterate body".
    let resp = post(
        main_server(),
        "/lines",
        "text/plain",
        b"line1\nline2\nline3",
    );
    assert_eq!(env_field(&resp, "d['first']"), "line1\n");
    assert_eq!(env_field(&resp, "d['limited']"), "lin");
    assert_eq!(env_field(&resp, "d['rest']"), "['e2\\n', 'line3']");
    assert_no_unraisable();
}

#[test]
fn readlines_with_hint() {
    let resp = post(
        main_server(),
        "/raw/readlines",
        "text/plain",
        b"ab\ncd\nef\ngh",
    );
    assert_eq!(env_field(&resp, "d['some']"), "['ab\\n', 'cd\\n']");
    assert_eq!(env_field(&resp, "d['rest']"), "['ef\\n', 'gh']");
}

#[test]
fn raw_chunked_body_is_decoded() {
    // Probe row "chunked request body": uWSGI's router with --http-chunked-input sends the
    // raw chunked stream, HTTP_TRANSFER_ENCODING and no CONTENT_LENGTH.
    let vars = nginx_vars(
        "POST",
        "/echo",
        None,
        &[("HTTP_TRANSFER_ENCODING", "chunked")],
    );
    let resp = exchange(
        main_server(),
        &vars,
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "hello world");
    assert_no_unraisable();
}

#[test]
fn nginx_dechunked_body_trusts_content_length() {
    let vars = nginx_vars(
        "POST",
        "/echo",
        Some(11),
        &[("HTTP_TRANSFER_ENCODING", "chunked")],
    );
    let resp = exchange(main_server(), &vars, b"chunkeddata");
    assert_eq!(resp.text(), "chunkeddata");
}

#[test]
fn body_past_content_length_is_not_read() {
    let vars = nginx_vars("POST", "/raw/echo", Some(5), &[]);
    let resp = exchange(main_server(), &vars, b"helloEXTRA");
    assert_eq!(resp.text(), "hello");
}

#[test]
fn ten_megabyte_streamed_upload() {
    let body = vec![b'u'; 10 << 20];
    let resp = post(
        main_server(),
        "/raw/upload_size",
        "application/octet-stream",
        &body,
    );
    assert_eq!(env_field(&resp, "d['total']"), (10 << 20).to_string());
}

#[test]
fn post_buffering_small_and_spilled() {
    let target = &servers().buffered;
    let small = b"tiny body".to_vec();
    let resp = post(target, "/echo", "text/plain", &small);
    assert_eq!(resp.body, small);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let resp = post(target, "/echo", "application/octet-stream", &big);
    assert_eq!(resp.body, big);
    let resp = post(target, "/lines", "text/plain", b"line1\nline2\nline3");
    assert_eq!(env_field(&resp, "d['rest']"), "['e2\\n', 'line3']");
}

#[test]
fn post_buffering_slow_upload_does_not_block_the_worker() {
    // threads = 1 with post-buffering: the body is read asynchronously before the app runs,
    // so a slow uploader does not stall other connections.
    let target = &servers().buffered;
    let vars = nginx_vars("POST", "/echo", Some(20), &[]);
    let mut slow = Conn::open(target);
    let mut data = packet(0, &vars);
    data.extend_from_slice(b"first half");
    slow.send(&data).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let resp = get(target, "/fast");
    assert_eq!(resp.text(), "fast");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    slow.send(b"other half").unwrap();
    let (raw, _) = slow.read_to_end();
    assert_eq!(Response::parse(raw, true).text(), "first halfother half");
    // A raw chunked body through post-buffering.
    let vars = nginx_vars(
        "POST",
        "/echo",
        None,
        &[("HTTP_TRANSFER_ENCODING", "chunked")],
    );
    let resp = exchange(target, &vars, b"3\r\nabc\r\n0\r\n\r\n");
    assert_eq!(resp.text(), "abc");
}

#[test]
fn unread_body_is_drained_before_close() {
    // The app answers 401 without reading a 2 MB body: the server must drain it, or the
    // close resets the connection and nginx answers 502 (reference §6.4).
    let body = vec![b'z'; 2 << 20];
    let vars = nginx_vars("POST", "/raw/unread", Some(body.len()), &[]);
    let mut conn = Conn::open(main_server());
    let mut data = packet(0, &vars);
    data.extend_from_slice(&body);
    conn.send(&data).unwrap();
    let (raw, clean) = conn.read_to_end();
    let resp = Response::parse(raw, clean);
    assert_eq!(resp.status, 401);
    assert_eq!(resp.text(), "denied");
    assert!(resp.clean_close, "connection was reset instead of closed");
}

#[test]
fn limit_post_closes_without_calling_the_app() {
    let vars = nginx_vars("POST", "/echo", Some(5000), &[]);
    let resp = exchange(&servers().strict, &vars, &[b'a'; 5000]);
    assert!(resp.raw.is_empty(), "{:?}", resp.raw);
    assert!(wait_for_log(
        "CONTENT_LENGTH 5000 is over the body limit of 1000 bytes"
    ));
}

#[test]
fn chunked_body_over_limit_post_fails_the_read() {
    let vars = nginx_vars(
        "POST",
        "/echo",
        None,
        &[("HTTP_TRANSFER_ENCODING", "chunked")],
    );
    let mut body = Vec::new();
    for _ in 0..4 {
        body.extend_from_slice(b"200\r\n");
        body.extend_from_slice(&[b'c'; 0x200]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let resp = exchange(&servers().strict, &vars, &body);
    assert_eq!(resp.status, 500);
    assert!(wait_for_log("request body is over the limit of 1000 bytes"));
}

#[test]
fn truncated_body_times_out_and_the_app_gets_an_error() {
    let vars = nginx_vars("POST", "/echo", Some(100), &[]);
    let mut conn = Conn::open(&servers().strict);
    let mut data = packet(0, &vars);
    data.extend_from_slice(b"only ten b");
    conn.send(&data).unwrap();
    let started = Instant::now();
    let (raw, _) = conn.read_to_end();
    let resp = Response::parse(raw, true);
    assert_eq!(resp.status, 500);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(wait_for_log("timed out waiting for the request body"));
}

// ===== start_response and the response =====

#[test]
fn head_sends_no_body() {
    let resp = exchange(main_server(), &nginx_vars("HEAD", "/head", None, &[]), b"");
    assert_eq!(resp.status, 200, "{:?}", resp);
    assert_eq!(resp.header("Content-Length"), Some("28"));
    assert!(resp.body.is_empty(), "{:?}", resp.text());
    assert!(closed("head"));
    assert_no_unraisable();
}

#[test]
fn lazy_start_response_in_a_generator() {
    // Probe row "lazy start_response('404') in generator".
    let resp = get(main_server(), "/lazy404");
    assert_eq!(resp.status, 404);
    assert_eq!(resp.header("X-Lazy"), Some("yes"));
    assert_eq!(resp.text(), "lazy not found");
    assert_no_unraisable();
}

#[test]
fn streaming_response_is_close_delimited_and_closed() {
    // Probe rows "close() on returned iterable" and "no Content-Length": on a uwsgi socket
    // the body ends at close, never chunked.
    let resp = get(main_server(), "/stream");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "chunk1,chunk2,chunk3");
    assert_eq!(resp.header("Transfer-Encoding"), None);
    assert_eq!(resp.header("Content-Length"), None);
    assert!(resp.clean_close);
    assert!(closed("stream"));
    assert_no_unraisable();
}

#[test]
fn write_callable_works() {
    // Probe row "write() callable".
    let resp = get(main_server(), "/write");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "written,more,returned");
    assert_no_unraisable();
}

#[test]
fn exc_info_before_headers_replaces_them() {
    // Probe row "exc_info before headers sent": 500, no duplicated headers.
    let resp = get(main_server(), "/excinfo");
    assert_eq!(resp.status, 500);
    assert_eq!(resp.header_count("Content-Type"), 1);
    assert_eq!(resp.header("X-Second"), Some("1"));
    assert_eq!(resp.header("X-First"), None);
    assert_eq!(resp.text(), "handled error");
    assert_no_unraisable();
}

#[test]
fn exc_info_after_headers_reraises_and_cuts() {
    let before = json_field(&get(main_server(), "/raw/state").body, "d['reraised']");
    let resp = get(main_server(), "/excinfo_after");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "partial");
    let after = json_field(&get(main_server(), "/raw/state").body, "d['reraised']");
    assert!(after.parse::<u32>().unwrap() > before.parse::<u32>().unwrap());
    assert!(closed("excinfo_after"));
    assert!(wait_for_log("KeyError: 'late'"));
}

#[test]
fn second_start_response_without_exc_info_is_an_error() {
    let resp = get(main_server(), "/raw/twice");
    assert_eq!(resp.status, 200);
    assert!(
        resp.text()
            .starts_with("RuntimeError: start_response() called a second time"),
        "{}",
        resp.text()
    );
}

#[test]
fn invalid_status_and_headers_are_refused() {
    let resp = get(main_server(), "/raw/badheaders");
    assert_eq!(resp.status, 200, "{}", resp.text());
    for (case, error) in [
        ("crlf", "ValueError"),
        ("lf_name", "ValueError"),
        ("hop", "ValueError"),
        ("te", "ValueError"),
        ("bytes_value", "TypeError"),
        ("not_list", "TypeError"),
        ("three", "TypeError"),
        ("status_no_reason", "ValueError"),
        ("status_word", "ValueError"),
        ("status_bytes", "TypeError"),
        ("non_latin1", "ValueError"),
    ] {
        assert_eq!(
            json_field(&resp.body, &format!("d[{case:?}]")),
            error,
            "{case}"
        );
    }
}

#[test]
fn file_wrapper_through_the_validator() {
    let resp = get(main_server(), "/filewrapper");
    assert_eq!(resp.status, 200);
    let want: Vec<u8> = (0..1000).flat_map(|_| 0..=255u8).collect();
    assert_eq!(resp.body, want);
    assert_no_unraisable();
}

#[test]
fn file_wrapper_with_a_real_file_uses_sendfile_from_its_position() {
    let resp = get(main_server(), "/raw/sendfile");
    assert_eq!(resp.status, 200);
    let want: Vec<u8> = (0..1000).flat_map(|_| 0..=255u8).collect();
    assert_eq!(resp.body.len(), want.len());
    assert_eq!(resp.body, want);
    assert!(wait_for_log("file_wrapper response sent with sendfile"));
}

#[test]
fn file_wrapper_without_fileno_is_iterated() {
    let resp = get(main_server(), "/raw/bytesio");
    let want: Vec<u8> = (0..1000).flat_map(|_| 0..=255u8).collect();
    assert_eq!(resp.body, want);
}

#[test]
fn non_bytes_chunk_is_a_500_when_nothing_was_sent() {
    let resp = get(main_server(), "/raw/nonbytes");
    assert_eq!(resp.status, 500);
    assert!(closed("nonbytes"));
    let resp = get(main_server(), "/raw/nonbytes_list");
    assert_eq!(resp.status, 500);
    assert!(wait_for_log("yielded str, not bytes"));
}

#[test]
fn bare_bytes_result_is_a_500_with_a_hint() {
    let resp = get(main_server(), "/raw/bare_bytes");
    assert_eq!(resp.status, 500);
    assert!(wait_for_log(
        "returned a bytes object; a WSGI application must return an iterable"
    ));
}

#[test]
fn content_length_from_the_app_is_enforced() {
    let resp = get(main_server(), "/raw/cl_extra");
    assert_eq!(resp.header("Content-Length"), Some("5"));
    assert_eq!(resp.text(), "hello");
    let resp = get(main_server(), "/raw/cl_short");
    assert_eq!(resp.text(), "hello");
    assert!(closed("cl_short"));
    assert!(wait_for_log("fewer bytes than its Content-Length"));
}

#[test]
fn exception_before_headers_is_a_500_with_traceback_logged() {
    let resp = get(main_server(), "/raw/error_before");
    assert_eq!(resp.status, 500);
    assert_eq!(resp.text(), "Internal Server Error");
    assert!(wait_for_log("RuntimeError: error before headers"));
    assert!(logs().contains("probe_app.py"), "traceback with file names");
}

#[test]
fn exception_after_headers_cuts_the_connection() {
    let resp = get(main_server(), "/raw/error_after");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "partial");
    assert!(closed("error_after"));
    assert!(wait_for_log("RuntimeError: error after headers"));
}

#[test]
fn returning_without_start_response_is_a_500() {
    let resp = get(main_server(), "/raw/nostart");
    assert_eq!(resp.status, 500);
    assert!(wait_for_log("without calling start_response()"));
}

#[test]
fn client_disconnect_still_closes_the_iterable() {
    let mut conn = Conn::open(main_server());
    conn.send(&packet(0, &nginx_vars("GET", "/raw/endless", None, &[])))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = conn.read_some(&mut buf).unwrap();
    assert!(n > 0);
    drop(conn);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !closed("endless") {
        assert!(
            Instant::now() < deadline,
            "close() not called after the client left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn wsgi_errors_goes_to_the_log_line_by_line() {
    let resp = get(main_server(), "/raw/errors");
    assert_eq!(resp.text(), "logged");
    assert!(wait_for_log("probe-errors line one"));
    assert!(wait_for_log("probe-errors partial line"));
    assert!(wait_for_log("probe-errors unterminated"));
}

// ===== protocol edges =====

#[test]
fn ping_gets_a_pong() {
    let mut conn = Conn::open(main_server());
    conn.send(&[100, 0, 0, 0]).unwrap();
    let (raw, _) = conn.read_to_end();
    assert_eq!(raw, [100, 0, 0, 1]);
}

#[test]
fn unknown_modifier_is_closed_and_logged() {
    let mut conn = Conn::open(main_server());
    conn.send(&[99, 0, 0, 0]).unwrap();
    let (raw, _) = conn.read_to_end();
    assert!(raw.is_empty());
    assert!(wait_for_log("unavailable modifier requested: 99"));
    let mut conn = Conn::open(main_server());
    conn.send(&packet(5, &nginx_vars("GET", "/hello", None, &[])))
        .unwrap();
    let (raw, _) = conn.read_to_end();
    assert!(raw.is_empty());
    assert!(wait_for_log("unavailable modifier requested: 5"));
}

#[test]
fn malformed_vars_are_closed_and_logged() {
    let mut conn = Conn::open(main_server());
    // datasize 6: a pair with a zero-length key.
    conn.send(&[0, 6, 0, 0, 0, 0, 1, 0, b'x', 0]).unwrap();
    let (raw, _) = conn.read_to_end();
    assert!(raw.is_empty());
    assert!(wait_for_log("zero-length key"));
}

#[test]
fn plain_http_is_closed_with_a_hint() {
    let mut conn = Conn::open(main_server());
    conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (raw, _) = conn.read_to_end();
    assert!(raw.is_empty());
    assert!(wait_for_log("plain HTTP request on a uwsgi socket"));
    assert!(logs().contains("http-socket"));
}

#[test]
fn missing_request_method_is_closed_and_logged() {
    let vars = vec![("PATH_INFO".to_owned(), "/hello".to_owned())];
    let resp = exchange(main_server(), &vars, b"");
    assert!(resp.raw.is_empty());
    assert!(wait_for_log("request has no REQUEST_METHOD var"));
}

#[test]
fn slow_head_times_out() {
    let mut conn = Conn::open(&servers().strict);
    conn.send(&[0, 100]).unwrap();
    let started = Instant::now();
    let (raw, _) = conn.read_to_end();
    assert!(raw.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(wait_for_log("no complete request head within"));
}

// ===== execution model =====

#[test]
fn idle_worker_releases_the_gil() {
    // threads = 1: the runtime thread is attached once but detached while it waits, so a
    // Python thread started by the app keeps running between requests.
    let resp = get(main_server(), "/raw/bg_start");
    assert_eq!(resp.status, 200);
    let before: u32 = json_field(&get(main_server(), "/raw/bg_count").body, "d['ticks']")
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let after: u32 = json_field(&get(main_server(), "/raw/bg_count").body, "d['ticks']")
        .parse()
        .unwrap();
    assert!(
        after >= before + 10,
        "background thread starved: {before} -> {after}"
    );
}
