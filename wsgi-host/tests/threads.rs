//! `threads = N`: a slow request on one Python thread never delays requests on other
//! connections (issue 4: 4 threads, `/slow` sleeping 500 ms, 20 `/fast` each under 100 ms).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use support::*;
use wsgi_host::{AppSpec, AppTable, PythonConfig, ServerConfig, UwsgiListener, Worker, load_app};

fn start(threads: usize) -> Target {
    init_logging();
    let mut config = PythonConfig::new();
    config.pythonpath(apps_dir());
    wsgi_host::initialize(&config).expect("interpreter");
    let worker = Python::attach(|py| {
        let app = load_app(
            py,
            &AppSpec::parse_module("probe_app:raw_application").unwrap(),
        )
        .unwrap();
        let mut config = ServerConfig::new();
        config.threads(threads);
        Arc::new(Worker::new(py, AppTable::single(app), config).unwrap())
    });
    let listener = UwsgiListener::bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
    let target = Target::Tcp(listener.local_addr().unwrap());
    spawn_worker(worker, listener, &format!("threads-{threads}"));
    target
}

#[test]
fn slow_request_does_not_delay_fast_ones() {
    let target = start(4);
    // Warm up: imports, first thread states.
    for _ in 0..4 {
        assert_eq!(get(&target, "/fast").status, 200);
    }
    let slow_target = target.clone();
    let slow = std::thread::spawn(move || {
        let started = Instant::now();
        let resp = get(&slow_target, "/slow");
        (resp, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(50));
    let fast: Vec<_> = (0..20)
        .map(|_| {
            let target = target.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let resp = get(&target, "/fast");
                (resp, started.elapsed())
            })
        })
        .collect();
    for handle in fast {
        let (resp, took) = handle.join().unwrap();
        assert_eq!(resp.text(), "fast");
        assert!(
            took < Duration::from_millis(100),
            "a /fast request took {took:?}"
        );
    }
    let (resp, took) = slow.join().unwrap();
    assert_eq!(resp.text(), "slow");
    assert!(took >= Duration::from_millis(500), "{took:?}");

    // The environ says so, and four slow requests run at once on the four threads.
    let resp = get(&target, "/env");
    assert_eq!(json_field(&resp.body, "d['multithread']"), "True");
    let started = Instant::now();
    let slow: Vec<_> = (0..4)
        .map(|_| {
            let target = target.clone();
            std::thread::spawn(move || get(&target, "/slow"))
        })
        .collect();
    for handle in slow {
        assert_eq!(handle.join().unwrap().text(), "slow");
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1200),
        "4 slow requests on 4 threads took {took:?}"
    );
}

#[test]
fn shutdown_finishes_in_flight_requests_then_stops() {
    init_logging();
    let mut config = PythonConfig::new();
    config.pythonpath(apps_dir());
    wsgi_host::initialize(&config).expect("interpreter");
    let worker = Python::attach(|py| {
        let app = load_app(
            py,
            &AppSpec::parse_module("probe_app:raw_application").unwrap(),
        )
        .unwrap();
        let mut config = ServerConfig::new();
        config.threads(2);
        Arc::new(Worker::new(py, AppTable::single(app), config).unwrap())
    });
    let listener = UwsgiListener::bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let target = Target::Tcp(addr);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        wsgi_host::serve_uwsgi(worker, listener, async {
            let _ = stopped.await;
        })
    });
    assert_eq!(get(&target, "/fast").text(), "fast");
    let slow_target = target.clone();
    let slow = std::thread::spawn(move || get(&slow_target, "/slow"));
    std::thread::sleep(Duration::from_millis(100));
    stop.send(()).unwrap();
    // New connections are refused at once, while the request in flight completes.
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "listener still open"
    );
    assert!(
        !slow.is_finished(),
        "the slow request should still be running"
    );
    assert_eq!(slow.join().unwrap().text(), "slow");
    let result = server.join().unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "listener still open"
    );
}
