//! A real Flask app loaded through `virtualenv` from the project-local venv
//! (`<workspace>/.venv`, or `$FERRULE_TEST_VENV`), served over a uwsgi socket.
//!
//! Create the venv with `python3 -m venv .venv && .venv/bin/pip install flask` (the README's
//! test command does it). A missing venv fails the tests with that instruction; it never
//! skips them.

mod support;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use pyo3::prelude::*;
use support::*;
use wsgi_host::{AppSpec, AppTable, PythonConfig, ServerConfig, UwsgiListener, Worker, load_app};

fn venv() -> PathBuf {
    match std::env::var_os("FERRULE_TEST_VENV") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(".venv"),
    }
}

fn server() -> &'static Target {
    static SERVER: OnceLock<Target> = OnceLock::new();
    SERVER.get_or_init(|| {
        init_logging();
        let venv = venv();
        assert!(
            venv.join("pyvenv.cfg").is_file(),
            "the Flask tests need a venv with Flask at {} (set FERRULE_TEST_VENV to use another): \
             run `python3 -m venv .venv && .venv/bin/pip install flask` in the workspace root",
            venv.display()
        );
        let mut config = PythonConfig::new();
        config.pythonpath(apps_dir()).virtualenv(&venv);
        let info = wsgi_host::initialize(&config).expect("interpreter with the venv");
        assert_eq!(
            std::fs::canonicalize(&info.prefix).unwrap(),
            std::fs::canonicalize(&venv).unwrap(),
            "sys.prefix is the venv"
        );
        let worker = Python::attach(|py| {
            let app = load_app(py, &AppSpec::parse_module("flask_app:app").unwrap())
                .unwrap_or_else(|e| panic!("{e}\n{}", e.traceback()));
            Arc::new(Worker::new(py, AppTable::single(app), ServerConfig::new()).unwrap())
        });
        let listener = UwsgiListener::bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        let target = Target::Tcp(listener.local_addr().unwrap());
        spawn_worker(worker, listener, "flask");
        target
    })
}

#[test]
fn flask_comes_from_the_venv() {
    let resp = get(server(), "/where");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let venv = std::fs::canonicalize(venv()).unwrap();
    let flask_file = json_field(&resp.body, "d['flask_file']");
    assert!(
        std::fs::canonicalize(&flask_file)
            .unwrap()
            .starts_with(&venv),
        "{flask_file} is not in {}",
        venv.display()
    );
    // The standard library still comes from the base interpreter.
    assert_ne!(
        json_field(&resp.body, "d['base_prefix']"),
        venv.display().to_string()
    );
}

#[test]
fn routes() {
    let resp = get(server(), "/");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "index page");
    assert!(
        resp.header("Content-Type")
            .unwrap()
            .starts_with("text/html")
    );
    let resp = get(server(), "/user/ferrule");
    assert_eq!(resp.text(), "hello ferrule");
    let resp = get(server(), "/missing");
    assert_eq!(resp.status, 404);
    let resp = exchange(server(), &nginx_vars("DELETE", "/", None, &[]), b"");
    assert_eq!(resp.status, 405);
}

#[test]
fn form_post() {
    let resp = post(
        server(),
        "/form",
        "application/x-www-form-urlencoded",
        b"name=fer%20rule&tag=a&tag=b",
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(json_field(&resp.body, "d['name']"), "fer rule");
    assert_eq!(json_field(&resp.body, "d['tags']"), "['a', 'b']");
}

#[test]
fn json_in_and_out() {
    let resp = get(server(), "/json");
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    assert_eq!(json_field(&resp.body, "d['answer']"), "42");
    let resp = post(
        server(),
        "/json",
        "application/json",
        br#"{"numbers": [1, 2, 3]}"#,
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(json_field(&resp.body, "d['doubled']"), "[2, 4, 6]");
}

#[test]
fn redirects() {
    let resp = get(server(), "/old");
    assert_eq!(resp.status, 302);
    assert_eq!(resp.header("Location"), Some("/"));
}

#[test]
fn cookies() {
    let resp = get(server(), "/cookie/set");
    assert_eq!(resp.status, 200);
    let cookies: Vec<&str> = resp
        .headers
        .iter()
        .filter(|(n, _)| n == "Set-Cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies[0].starts_with("flavor=oatmeal"));
    // nginx 1.22 sends a repeated Cookie header as two HTTP_COOKIE vars.
    let vars = nginx_vars(
        "GET",
        "/cookie/get",
        None,
        &[
            ("HTTP_COOKIE", "flavor=oatmeal"),
            ("HTTP_COOKIE", "size=large"),
        ],
    );
    let resp = exchange(server(), &vars, b"");
    assert_eq!(
        json_field(&resp.body, "d"),
        "{'flavor': 'oatmeal', 'size': 'large'}"
    );
}

#[test]
fn streamed_response() {
    let resp = get(server(), "/stream");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "part0;part1;part2;part3;part4;");
    assert_eq!(resp.header("Transfer-Encoding"), None);
}

#[test]
fn ten_megabyte_streamed_upload_with_bounded_memory() {
    const SIZE: usize = 10 << 20;
    let vars = {
        let mut v = nginx_vars("POST", "/upload", Some(SIZE), &[]);
        v[2].1 = "application/octet-stream".into();
        v
    };
    let mut conn = Conn::open(server());
    conn.send(&packet(0, &vars)).unwrap();
    // Send the body in 64 KiB pieces, as nginx streams it.
    let block = vec![b'q'; 64 * 1024];
    for _ in 0..SIZE / block.len() {
        conn.send(&block).unwrap();
    }
    let (raw, _) = conn.read_to_end();
    let resp = Response::parse(raw, true);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(json_field(&resp.body, "d['total']"), SIZE.to_string());
    let py_peak: usize = json_field(&resp.body, "d['py_peak']").parse().unwrap();
    assert!(py_peak < 1 << 20, "Python held {py_peak} bytes at once");
    let growth: i64 = json_field(&resp.body, "d['rss_growth_kib']")
        .parse()
        .unwrap();
    assert!(
        growth < 8 * 1024,
        "RSS grew by {growth} KiB during a 10 MiB upload"
    );
}

#[test]
fn chunked_upload_without_content_length() {
    // Werkzeug reads a body with no CONTENT_LENGTH because wsgi.input_terminated is set.
    let vars = nginx_vars(
        "POST",
        "/upload",
        None,
        &[("HTTP_TRANSFER_ENCODING", "chunked")],
    );
    let resp = exchange(server(), &vars, b"4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(json_field(&resp.body, "d['total']"), "7");
}

#[test]
fn send_file_goes_through_file_wrapper() {
    let resp = get(server(), "/file");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let want = std::fs::read(apps_dir().join("flask_app.py")).unwrap();
    assert_eq!(
        resp.header("Content-Length"),
        Some(want.len().to_string().as_str())
    );
    assert_eq!(resp.body, want);
}

#[test]
fn view_exception_is_a_500() {
    let resp = get(server(), "/boom");
    assert_eq!(resp.status, 500);
    assert!(wait_for_log("flask view failed"));
}
