//! Helpers for the end-to-end tests: run `ferrule`, nginx and uWSGI as real processes on
//! loopback or unix sockets in a temp dir, talk to them with curl, stop them by pid.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `examples/apps`.
pub fn apps() -> PathBuf {
    root().join("examples/apps")
}

/// The project's test virtualenv (made by scripts/test.sh): Flask, pyuwsgi, gunicorn.
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("FERRULE_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv"));
    assert!(
        venv.join("bin/python").exists(),
        "the test virtualenv {} is missing: run scripts/test.sh (the README's test command), \
         which creates it with Flask, pyuwsgi and gunicorn",
        venv.display()
    );
    venv
}

/// A fresh directory under the system temp dir, traversable by nginx's unprivileged
/// workers, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir =
            std::env::temp_dir().join(format!("ferrule-e2e-{}-{name}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        set_mode(&dir, 0o777);
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Keep the logs of a failed test for a look afterwards.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where a server listens, to wait for it.
#[derive(Clone, Debug)]
pub enum Addr {
    Tcp(u16),
    Unix(PathBuf),
}

impl Addr {
    fn accepts(&self) -> bool {
        match self {
            Addr::Tcp(port) => TcpStream::connect(("127.0.0.1", *port)).is_ok(),
            Addr::Unix(path) => UnixStream::connect(path).is_ok(),
        }
    }
}

/// A process we started, stopped on drop (signal, then SIGKILL after a grace period).
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
    stop_signal: &'static str,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf, stop_signal: &'static str) -> Proc {
        let file = std::fs::File::create(&log).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_string(),
            child,
            log,
            stop_signal,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `addr` accepts connections; panics with the log if the process exits.
    pub fn wait_for(&mut self, addr: &Addr) {
        let deadline = Instant::now() + TIMEOUT;
        while !addr.accepts() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status}:\n{}", self.name, self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen on {addr:?}:\n{}",
                self.name,
                self.log_text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args([&format!("-{}", self.stop_signal), &self.pid().to_string()])
                .status();
            if self.wait_exit(Duration::from_secs(10)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Starts `ferrule` with `args` and waits until `addr` accepts.
pub fn ferrule(dir: &TempDir, args: &[&str], addr: Addr) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrule"));
    cmd.args(args).current_dir(root());
    let mut proc = Proc::spawn("ferrule", cmd, dir.path("ferrule.log"), "INT");
    proc.wait_for(&addr);
    proc
}

/// nginx with the stock `include uwsgi_params; uwsgi_pass <upstream>` (upstream as nginx
/// writes it: `unix:/path` or `127.0.0.1:PORT`), listening on a fresh loopback port.
pub fn nginx_uwsgi_front(dir: &TempDir, upstream: &str) -> (Proc, u16) {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("nginx is not installed: run scripts/test.sh, which installs nginx-light");
    let port = free_port();
    let d = dir.path("nginx");
    for sub in ["logs", "tmp"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
        set_mode(&d.join(sub), 0o777);
    }
    let d = d.display();
    let conf = format!(
        r#"
worker_processes 1;
error_log {d}/logs/error.log info;
pid {d}/logs/nginx.pid;
events {{ worker_connections 256; }}
http {{
  access_log {d}/logs/access.log;
  client_body_temp_path {d}/tmp/body; uwsgi_temp_path {d}/tmp/uwsgi;
  proxy_temp_path {d}/tmp/proxy; fastcgi_temp_path {d}/tmp/fcgi; scgi_temp_path {d}/tmp/scgi;
  client_max_body_size 100m;
  large_client_header_buffers 8 64k;
  uwsgi_buffer_size 64k;
  uwsgi_buffers 8 64k;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      include /etc/nginx/uwsgi_params;
      uwsgi_pass {upstream};
    }}
  }}
}}
"#
    );
    let conf_path = dir.path("nginx/nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut cmd = Command::new(nginx);
    cmd.arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(dir.path("nginx"))
        .args(["-g", "daemon off;"]);
    let mut proc = Proc::spawn("nginx", cmd, dir.path("nginx.out"), "QUIT");
    proc.wait_for(&Addr::Tcp(port));
    (proc, port)
}

/// nginx's error log for a front started by [`nginx_uwsgi_front`].
pub fn nginx_errors(dir: &TempDir) -> String {
    std::fs::read_to_string(dir.path("nginx/logs/error.log")).unwrap_or_default()
}

/// uWSGI's HTTP router (pyuwsgi from the test venv) in front of `upstream`.
pub fn uwsgi_router(dir: &TempDir, upstream: &str, extra: &[&str]) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = Command::new(venv().join("bin/uwsgi"));
    cmd.args([
        "--master",
        "--http",
        &format!("127.0.0.1:{port}"),
        "--http-to",
        upstream,
    ])
    .args(extra);
    let mut proc = Proc::spawn("uwsgi router", cmd, dir.path("router.log"), "INT");
    proc.wait_for(&Addr::Tcp(port));
    (proc, port)
}

/// A response as curl saw it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Runs curl against `http://127.0.0.1:{port}{path}` with `args`; returns the last response.
pub fn curl(port: u16, path: &str, args: &[&str]) -> Response {
    // `-I` prints the head as the output already; otherwise dump the head, then the body.
    let dump: &[&str] = if args.contains(&"-I") {
        &[]
    } else {
        &["-D", "-", "-o", "-"]
    };
    let out: Output = Command::new("curl")
        .args(["-sS", "--max-time", "60"])
        .args(dump)
        .args(args)
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl is installed (scripts/test.sh)");
    assert!(
        out.status.success(),
        "curl {path} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_response(&out.stdout)
}

/// Splits curl's `-D - -o -` output (possibly several heads, e.g. after 100 Continue).
pub fn parse_response(raw: &[u8]) -> Response {
    let mut rest = raw;
    loop {
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head");
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        let body = &rest[end + 4..];
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        if (100..200).contains(&status) && body.starts_with(b"HTTP/") {
            rest = body;
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        return Response {
            status,
            headers,
            body: body.to_vec(),
        };
    }
}

/// A raw HTTP/1.1 request over TCP with `Connection: close`; returns the raw response.
pub fn raw_http(port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// Writes `size` bytes of a deterministic pattern to `path`; returns its sha256 (via Python,
/// so the test checks the app's digest against an independent one).
pub fn pattern_file(path: &Path, size: usize) -> String {
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    std::fs::write(path, &data).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())",
        ])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Pids of the direct children of `pid` (the master's workers).
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
                out.extend(
                    list.split_whitespace()
                        .filter_map(|p| p.parse::<u32>().ok()),
                );
            }
        }
    }
    out.sort_unstable();
    out
}

/// Starts `ferrule-proxy` with `args` plus `--listen 127.0.0.1:PORT` on a fresh port and
/// waits until it accepts.
pub fn ferrule_proxy(dir: &TempDir, args: &[&str]) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrule-proxy"));
    cmd.args(["--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .args(["--workers", "2"])
        .current_dir(root());
    let mut proc = Proc::spawn("ferrule-proxy", cmd, dir.path("proxy.log"), "TERM");
    proc.wait_for(&Addr::Tcp(port));
    (proc, port)
}

/// Real uWSGI (pyuwsgi from the test venv) serving the Flask app on a unix uwsgi socket.
pub fn uwsgi_flask(dir: &TempDir, name: &str) -> (Proc, PathBuf) {
    let sock = dir.path(&format!("{name}.sock"));
    let apps = apps();
    let mut cmd = Command::new(venv().join("bin/uwsgi"));
    cmd.args([
        "--socket",
        sock.to_str().unwrap(),
        "--chdir",
        apps.to_str().unwrap(),
        "--wsgi-file",
        apps.join("flaskapp.py").to_str().unwrap(),
        "--buffer-size",
        "65535",
        "--master",
        "--processes",
        "2",
    ]);
    let mut proc = Proc::spawn("uwsgi", cmd, dir.path(&format!("{name}.log")), "INT");
    proc.wait_for(&Addr::Unix(sock.clone()));
    (proc, sock)
}
