//! The master process and the bundled ini files: respawn after kill -9, graceful reload
//! under load, graceful stop during a long request, vacuum, harakiri, max-requests.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::{Addr, TempDir, children, ferrule, free_port, parse_response, raw_http};

/// One request over a uwsgi TCP socket, as nginx would send it; `None` when the
/// connection closes without a response.
fn get(port: u16, target: &str) -> Option<(u16, String)> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut packet = bytes::BytesMut::new();
    uwsgi_proto::encode_request(
        uwsgi_proto::Modifier1::WSGI,
        0,
        &[
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_URI", target),
            ("PATH_INFO", path),
            ("QUERY_STRING", query),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REMOTE_ADDR", "127.0.0.1"),
        ],
        &mut packet,
    )
    .unwrap();
    let raw = raw_http(port, &packet);
    if raw.is_empty() {
        return None;
    }
    let r = parse_response(&raw);
    Some((r.status, r.text()))
}

fn hello_master(dir: &TempDir, extra: &[&str]) -> (support::Proc, u16) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let app = support::apps().join("hello.py");
    let mut args = vec![
        "--socket",
        addr.as_str(),
        "--wsgi-file",
        app.to_str().unwrap(),
        "--master",
        "--processes",
        "2",
    ];
    args.extend_from_slice(extra);
    let proc = ferrule(dir, &args, Addr::Tcp(port));
    (proc, port)
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn killed_worker_is_replaced_and_requests_keep_succeeding() {
    let dir = TempDir::new("kill9");
    let (master, port) = hello_master(&dir, &[]);
    wait_until("two workers", Duration::from_secs(10), || {
        children(master.pid()).len() == 2
    });
    let before = children(master.pid());
    let victim = before[0];
    Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .unwrap();
    let start = Instant::now();
    let mut failures = 0;
    let mut replaced_after = None;
    while start.elapsed() < Duration::from_secs(3) {
        match get(port, "/") {
            Some((200, body)) if body == "Hello, World!" => {}
            other => {
                failures += 1;
                eprintln!("request failed: {other:?}");
            }
        }
        let now = children(master.pid());
        if replaced_after.is_none() && now.len() == 2 && !now.contains(&victim) {
            replaced_after = Some(start.elapsed());
        }
    }
    assert_eq!(failures, 0, "requests failed after kill -9 of a worker");
    let replaced = replaced_after.expect("a new worker appeared");
    assert!(
        replaced < Duration::from_secs(1),
        "respawn took {replaced:?}"
    );
    assert!(
        master
            .log_text()
            .contains(&format!("pid {victim}) died: killed by SIGKILL"))
    );
}

#[test]
fn sighup_reloads_without_failing_a_request() {
    let dir = TempDir::new("hup");
    let (master, port) = hello_master(&dir, &[]);
    wait_until("two workers", Duration::from_secs(10), || {
        children(master.pid()).len() == 2
    });
    let before = children(master.pid());
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match get(port, "/") {
                        Some((200, _)) => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    master.signal("HUP");
    wait_until("the reload", Duration::from_secs(15), || {
        let now = children(master.pid());
        now.len() == 2 && now.iter().all(|p| !before.contains(p))
    });
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed requests during SIGHUP reload"
    );
    assert!(ok.load(Ordering::Relaxed) > 50, "the load generator ran");
}

#[test]
fn sigterm_lets_a_long_request_finish() {
    let dir = TempDir::new("term");
    let (mut master, port) = hello_master(&dir, &[]);
    let request = thread::spawn(move || get(port, "/sleep?ms=2000"));
    thread::sleep(Duration::from_millis(400));
    master.signal("TERM");
    let response = request.join().unwrap();
    assert_eq!(
        response,
        Some((200, "slept".to_string())),
        "the in-flight request completed"
    );
    let status = master
        .wait_exit(Duration::from_secs(10))
        .expect("master exits after SIGTERM");
    assert!(status.success(), "master exit status {status}");
    // New connections are refused once it is gone.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn harakiri_kills_a_stuck_worker_and_it_is_replaced() {
    let dir = TempDir::new("harakiri");
    let (master, port) = hello_master(&dir, &["--harakiri", "1"]);
    wait_until("two workers", Duration::from_secs(10), || {
        children(master.pid()).len() == 2
    });
    let before = children(master.pid());
    // The stuck request gets no response: its worker is killed.
    let stuck = get(port, "/sleep?ms=5000");
    assert!(stuck.is_none(), "a request past harakiri got {stuck:?}");
    wait_until("a replacement worker", Duration::from_secs(5), || {
        let now = children(master.pid());
        now.len() == 2 && now != before
    });
    assert_eq!(get(port, "/"), Some((200, "Hello, World!".to_string())));
    assert!(
        master.log_text().contains("HARAKIRI"),
        "{}",
        master.log_text()
    );
}

#[test]
fn max_requests_recycles_workers() {
    let dir = TempDir::new("maxreq");
    let (master, port) = hello_master(&dir, &["--max-requests", "5", "--processes", "1"]);
    wait_until("one worker", Duration::from_secs(10), || {
        children(master.pid()).len() == 1
    });
    let first = children(master.pid());
    for _ in 0..12 {
        assert_eq!(get(port, "/"), Some((200, "Hello, World!".to_string())));
    }
    wait_until("a recycled worker", Duration::from_secs(5), || {
        let now = children(master.pid());
        now.len() == 1 && now != first
    });
}

#[test]
fn bundled_ini_files_start_serve_and_vacuum() {
    let apps = support::apps();
    // hello.ini: unix uwsgi socket next to the file, chmod 660, vacuum.
    let dir = TempDir::new("ini-hello");
    let sock = apps.join("hello.sock");
    let mut hello = ferrule(
        &dir,
        &[apps.join("hello.ini").to_str().unwrap()],
        Addr::Unix(sock.clone()),
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o660
    );
    // uWSGI's router runs as this user (root in CI), which a 660 socket admits.
    let (router, port) = support::uwsgi_router(&dir, sock.to_str().unwrap(), &[]);
    let r = support::curl(port, "/", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!"));
    drop(router);
    hello.signal("TERM");
    assert!(
        hello
            .wait_exit(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
    assert!(!sock.exists(), "vacuum removed the socket on SIGTERM");

    // mysimplewsgi.ini: the Flask app on a unix socket (664).
    let dir = TempDir::new("ini-simple");
    let sock = apps.join("myapp.sock");
    let mut simple = ferrule(
        &dir,
        &[apps.join("mysimplewsgi.ini").to_str().unwrap()],
        Addr::Unix(sock.clone()),
    );
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o664
    );
    let (router, port) = support::uwsgi_router(&dir, sock.to_str().unwrap(), &[]);
    let r = support::curl(port, "/", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "Hello from Flask"));
    drop(router);
    simple.signal("TERM");
    assert!(
        simple
            .wait_exit(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
    assert!(!sock.exists(), "vacuum removed the socket on SIGTERM");

    // dashapp.ini: protocol = http turns its socket (127.0.0.1:8050) into an HTTP listener;
    // the Flask app from the venv, 2 processes of 4 threads.
    let dir = TempDir::new("ini-dash");
    let dash = ferrule(
        &dir,
        &[apps.join("dashapp.ini").to_str().unwrap()],
        Addr::Tcp(8050),
    );
    let r = support::curl(8050, "/", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "Hello from Flask"));
    drop(dash);
}

#[test]
fn systemd_socket_activation_hands_over_the_listener() {
    // What systemd does for a .socket unit: bind, put the socket on fd 3, set LISTEN_FDS
    // and LISTEN_PID to the pid that will exec the service.
    let dir = TempDir::new("listenfds");
    let port = free_port();
    let app = support::apps().join("hello.py");
    let launcher = format!(
        "import os, socket, sys\n\
         s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('127.0.0.1', {port})); s.listen(64)\n\
         if s.fileno() != 3: os.dup2(s.fileno(), 3)\n\
         os.set_inheritable(3, True)\n\
         os.environ['LISTEN_FDS'] = '1'; os.environ['LISTEN_PID'] = str(os.getpid())\n\
         os.execv(sys.argv[1], sys.argv[1:])\n"
    );
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        &launcher,
        env!("CARGO_BIN_EXE_ferrule"),
        "--wsgi-file",
    ])
    .arg(&app)
    .args(["--protocol", "http"]);
    let mut proc = support::Proc::spawn(
        "ferrule (socket-activated)",
        cmd,
        dir.path("ferrule.log"),
        "INT",
    );
    proc.wait_for(&Addr::Tcp(port));
    let r = support::curl(port, "/", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!"));
    assert!(
        proc.log_text().contains("1 socket(s) passed by systemd"),
        "{}",
        proc.log_text()
    );
}

fn proc_status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn pidfile_logto_gid_and_daemonize() {
    let dir = TempDir::new("procopts");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let app = support::apps().join("hello.py");
    let pidfile = dir.path("ferrule.pid");
    let logfile = dir.path("ferrule-logto.log");
    let mut master = ferrule(
        &dir,
        &[
            "--socket",
            &addr,
            "--wsgi-file",
            app.to_str().unwrap(),
            "--master",
            "--processes",
            "1",
            "--pidfile",
            pidfile.to_str().unwrap(),
            "--logto",
            logfile.to_str().unwrap(),
            "--gid",
            "nogroup",
            "--vacuum",
        ],
        Addr::Tcp(port),
    );
    assert_eq!(get(port, "/"), Some((200, "Hello, World!".to_string())));
    let written: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(written, master.pid(), "pidfile holds the master's pid");
    // Root drops its group before starting workers (the user stays root here: this
    // machine's Python lives under /root, which other users cannot read).
    let worker = children(master.pid())[0];
    assert!(
        proc_status_field(worker, "Gid:").starts_with("65534"),
        "worker gid"
    );
    let log = std::fs::read_to_string(&logfile).unwrap();
    assert!(
        log.contains("is ready") && log.contains("\"GET / HTTP/1.1\" 200 13"),
        "{log}"
    );
    master.signal("TERM");
    assert!(
        master
            .wait_exit(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
    assert!(!pidfile.exists(), "vacuum removed the pidfile");

    // daemonize: the command returns at once; the daemon writes its pidfile and logs to the file.
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let pidfile = dir.path("daemon.pid");
    let logfile = dir.path("daemon.log");
    let status = Command::new(env!("CARGO_BIN_EXE_ferrule"))
        .args([
            "--socket",
            &addr,
            "--wsgi-file",
            app.to_str().unwrap(),
            "--master",
        ])
        .args([
            "--pidfile",
            pidfile.to_str().unwrap(),
            "--daemonize",
            logfile.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    wait_until("the daemon's pidfile", Duration::from_secs(10), || {
        pidfile.exists()
    });
    wait_until("the daemon to listen", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert_eq!(get(port, "/"), Some((200, "Hello, World!".to_string())));
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    wait_until("the daemon to stop", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    let log = std::fs::read_to_string(&logfile).unwrap();
    assert!(
        log.contains("master") && log.contains("all workers stopped"),
        "{log}"
    );
}

#[test]
fn sigint_and_sigquit_stop_at_once() {
    for signal in ["INT", "QUIT"] {
        let dir = TempDir::new(&format!("stop-{signal}"));
        let (mut master, port) = hello_master(&dir, &[]);
        // A request that would take 5 s is cut, not waited for.
        let request = thread::spawn(move || get(port, "/sleep?ms=5000"));
        thread::sleep(Duration::from_millis(400));
        let sent = Instant::now();
        master.signal(signal);
        let status = master
            .wait_exit(Duration::from_secs(4))
            .expect("master exits at once");
        assert!(status.success(), "SIG{signal}: exit status {status}");
        assert!(
            sent.elapsed() < Duration::from_secs(4),
            "SIG{signal} took {:?}",
            sent.elapsed()
        );
        assert_eq!(
            request.join().unwrap(),
            None,
            "SIG{signal}: the long request was cut"
        );
    }
}

#[test]
fn several_listeners_at_once() {
    // A uwsgi TCP socket, a unix uwsgi socket and an HTTP socket, served by every worker.
    let dir = TempDir::new("multi");
    let uwsgi_port = free_port();
    let http_port = free_port();
    let sock = dir.path("app.sock");
    let app = support::apps().join("hello.py");
    let uwsgi_addr = format!("127.0.0.1:{uwsgi_port}");
    let http_addr = format!("127.0.0.1:{http_port}");
    let master = ferrule(
        &dir,
        &[
            "--socket",
            &uwsgi_addr,
            "--socket",
            sock.to_str().unwrap(),
            "--http-socket",
            &http_addr,
            "--wsgi-file",
            app.to_str().unwrap(),
            "--master",
            "--processes",
            "2",
        ],
        Addr::Tcp(http_port),
    );
    assert_eq!(
        get(uwsgi_port, "/"),
        Some((200, "Hello, World!".to_string()))
    );
    let r = support::curl(http_port, "/", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!"));
    let (router, port) = support::uwsgi_router(&dir, sock.to_str().unwrap(), &[]);
    let r = support::curl(port, "/", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!"));
    drop(router);
    drop(master);
}
