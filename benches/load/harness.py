"""Load harness: ferrule beside bjoern, Granian, uWSGI, gunicorn and nginx, in one run.

Each scenario starts every contender with the same app (examples/apps/hello.py) and one
worker, then runs `wrk -t1 -c64` against each in turn, for several rounds that alternate the
order, so that machine noise hits everyone alike. It prints requests/s (median of rounds),
p99 latency and the ratio of ferrule to each peer. Only ratios measured in the same run mean
anything on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "examples" / "apps"
FERRULE = ROOT / "target" / "release" / "ferrule"
FERRULE_PROXY = ROOT / "target" / "release" / "ferrule-proxy"
STATIC_10K = b"x" * 10240
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url_host: str, port: int | None, path: str | None, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if path:
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
            else:
                s = socket.create_connection((url_host, port), timeout=1)
            s.close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {path or port} after {timeout}s")


@dataclass
class Server:
    """A process tree we started: stopped by its pid (process group) when done."""

    name: str
    argv: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    wait_unix: str | None = None
    proc: subprocess.Popen | None = None
    log: Path | None = None

    def start(self, workdir: Path) -> None:
        self.log = workdir / f"{self.name.replace(' ', '_').replace('/', '_')}.log"
        env = dict(os.environ, **self.env)
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            if self.wait_unix:
                wait_for("", None, self.wait_unix)
            else:
                wait_for("127.0.0.1", self.port, None)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"{self.name} did not start; log:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)


@dataclass
class Result:
    rps: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    errors: int = 0


def parse_wrk(out: str) -> tuple[float, float, int]:
    """(req/s, p99 ms, errors) from wrk's output; a run wrk could not finish counts as
    0 req/s with one error, so one bad run never hides the others."""
    rps_m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    if not rps_m or not m:
        print(f"  wrk produced no summary:\n{out[-500:]}", flush=True)
        return 0.0, 0.0, 1
    rps = float(rps_m.group(1))
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    errors = 0
    e = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if e:
        errors += int(e.group(1))
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if e:
        errors += sum(int(x) for x in e.groups())
    return rps, float(m.group(1)) * scale, errors


def wrk(url: str, seconds: int, connections: int) -> tuple[float, float, int]:
    run = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    )
    out = run.stdout + run.stderr
    rps, p99, errors = parse_wrk(out)
    if errors:
        print(f"  wrk reported {errors} errors against {url}:", flush=True)
        for line in out.splitlines():
            if "errors" in line or "Non-2xx" in line:
                print(f"    {line.strip()}", flush=True)
    return rps, p99, errors


# The forwarding fields the seeds' nginx sites set (seeds 000 and 003), plus the scheme:
# the same fields ferrule-proxy sends upstream, so both backends parse the same request.
NGINX_FORWARDED = (
    "proxy_set_header Host $host; proxy_set_header X-Real-IP $remote_addr; "
    "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; "
    "proxy_set_header X-Forwarded-Proto $scheme;"
)


def nginx_conf(workdir: Path, name: str, body: str) -> tuple[Server, int]:
    """nginx with one worker and `body` inside `http {}` after a `listen` line is added."""
    port = free_port()
    d = workdir / f"nginx-{name}"
    (d / "logs").mkdir(parents=True, exist_ok=True)
    (d / "tmp").mkdir(exist_ok=True)
    os.chmod(d, 0o777)
    os.chmod(d / "tmp", 0o777)
    conf = d / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
error_log {d}/logs/error.log warn;
pid {d}/logs/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp/body; uwsgi_temp_path {d}/tmp/uwsgi;
  proxy_temp_path {d}/tmp/proxy; fastcgi_temp_path {d}/tmp/fcgi; scgi_temp_path {d}/tmp/scgi;
  {body.replace("LISTEN", f"listen 127.0.0.1:{port};")}
}}
"""
    )
    return Server(f"nginx-{name}", [NGINX, "-c", str(conf), "-p", str(d), "-g", "daemon off;"], port), port


def nginx_uwsgi_front(workdir: Path, sock: str, name: str) -> tuple[Server, int]:
    """nginx with the stock `uwsgi_params`, passing everything to the unix socket `sock`."""
    return nginx_conf(
        workdir, name,
        f"server {{ LISTEN location / {{ include /etc/nginx/uwsgi_params; uwsgi_pass unix:{sock}; }} }}")


def scenario_http(venv: Path, workdir: Path) -> list[tuple[str, list[Server], str]]:
    """ferrule --http-socket vs bjoern, Granian, uWSGI --http-socket, gunicorn; 1 worker."""
    py = str(venv / "bin" / "python")
    servers = []
    if FERRULE.exists():
        p = free_port()
        servers.append(Server("ferrule", [str(FERRULE), "--http-socket", f"127.0.0.1:{p}",
                                          "--wsgi-file", str(APPS / "hello.py"), "--disable-logging"], p))
    p = free_port()
    servers.append(Server("bjoern", [py, "-c", f"import bjoern, sys; sys.path.insert(0, {str(APPS)!r}); "
                                     f"import hello; bjoern.run(hello.application, '127.0.0.1', {p})"], p))
    p = free_port()
    servers.append(Server("granian", [str(venv / "bin" / "granian"), "--interface", "wsgi", "--host", "127.0.0.1",
                                      "--port", str(p), "--workers", "1", "--blocking-threads", "1",
                                      "--no-ws", "hello:application"], p, cwd=APPS))
    p = free_port()
    servers.append(Server("uwsgi", [str(venv / "bin" / "uwsgi"), "--http-socket", f"127.0.0.1:{p}",
                                    "--wsgi-file", str(APPS / "hello.py"), "--processes", "1",
                                    "--disable-logging", "--master", "--listen", "1024"], p))
    p = free_port()
    servers.append(Server("gunicorn", [str(venv / "bin" / "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{p}",
                                       "--chdir", str(APPS), "hello:application"], p))
    return [(s.name, [s], f"http://127.0.0.1:{s.port}/") for s in servers]


def scenario_nginx_uwsgi(venv: Path, workdir: Path) -> list[tuple[str, list[Server], str]]:
    """nginx -> unix uwsgi socket -> ferrule vs nginx -> uWSGI; 1 worker each."""
    out = []
    if FERRULE.exists():
        sock = str(workdir / "ferrule.sock")
        app = Server("ferrule", [str(FERRULE), "--socket", sock, "--chmod-socket", "666",
                                 "--wsgi-file", str(APPS / "hello.py"), "--disable-logging"], 0, wait_unix=sock)
        front, port = nginx_uwsgi_front(workdir, sock, "ferrule")
        out.append(("nginx+ferrule", [app, front], f"http://127.0.0.1:{port}/"))
    sock = str(workdir / "uwsgi.sock")
    app = Server("uwsgi", [str(venv / "bin" / "uwsgi"), "--socket", sock, "--chmod-socket=666",
                           "--wsgi-file", str(APPS / "hello.py"), "--processes", "1", "--master",
                           "--disable-logging", "--listen", "1024"], 0, wait_unix=sock)
    front, port = nginx_uwsgi_front(workdir, sock, "uwsgi")
    out.append(("nginx+uwsgi", [app, front], f"http://127.0.0.1:{port}/"))
    return out


def scenario_threads(venv: Path, workdir: Path) -> list[tuple[str, list[Server], str]]:
    """An app that sleeps 10 ms: ferrule --threads 32 vs Granian with 32 blocking threads."""
    out = []
    if FERRULE.exists():
        p = free_port()
        s = Server("ferrule", [str(FERRULE), "--http-socket", f"127.0.0.1:{p}", "--threads", "32",
                               "--wsgi-file", str(APPS / "hello.py"), "--disable-logging"], p)
        out.append(("ferrule --threads 32", [s], f"http://127.0.0.1:{p}/sleep?ms=10"))
    p = free_port()
    s = Server("granian", [str(venv / "bin" / "granian"), "--interface", "wsgi", "--host", "127.0.0.1",
                           "--port", str(p), "--workers", "1", "--blocking-threads", "32", "--no-ws",
                           "hello:application"], p, cwd=APPS)
    out.append(("granian 32 threads", [s], f"http://127.0.0.1:{p}/sleep?ms=10"))
    return out


def scenario_proxy_uwsgi(venv: Path, workdir: Path) -> list[tuple[str, list[Server], str]]:
    """ferrule-proxy -> ferrule vs nginx -> uWSGI, both over a unix uwsgi socket, 1 worker each."""
    out = []
    if FERRULE.exists() and FERRULE_PROXY.exists():
        sock = str(workdir / "ferrule-p.sock")
        app = Server("ferrule", [str(FERRULE), "--socket", sock, "--chmod-socket", "666",
                                 "--wsgi-file", str(APPS / "hello.py"), "--disable-logging"], 0, wait_unix=sock)
        p = free_port()
        front = Server("ferrule-proxy", [str(FERRULE_PROXY), "--listen", f"127.0.0.1:{p}",
                                         "--uwsgi-pass", f"unix:{sock}", "--workers", "1"], p,
                       env={"FERRULE_LOG": "warn,access=off"})
        out.append(("ferrule-proxy+ferrule", [app, front], f"http://127.0.0.1:{p}/"))
    sock = str(workdir / "uwsgi-p.sock")
    app = Server("uwsgi", [str(venv / "bin" / "uwsgi"), "--socket", sock, "--chmod-socket=666",
                           "--wsgi-file", str(APPS / "hello.py"), "--processes", "1", "--master",
                           "--disable-logging", "--listen", "1024"], 0, wait_unix=sock)
    front, port = nginx_uwsgi_front(workdir, sock, "uwsgi-p")
    out.append(("nginx+uwsgi", [app, front], f"http://127.0.0.1:{port}/"))
    return out


def scenario_static(venv: Path, workdir: Path) -> list[tuple[str, list[Server], str]]:
    """A 10 KB static file: ferrule-proxy vs nginx, 1 worker each."""
    root = workdir / "static"
    root.mkdir(exist_ok=True)
    (root / "10k.bin").write_bytes(STATIC_10K)
    os.chmod(workdir, 0o755)
    os.chmod(root, 0o755)
    out = []
    if FERRULE_PROXY.exists():
        p = free_port()
        proxy = Server("ferrule-proxy", [str(FERRULE_PROXY), "--listen", f"127.0.0.1:{p}",
                                         "--static", f"/static={root}", "--workers", "1"], p,
                       env={"FERRULE_LOG": "warn,access=off"})
        out.append(("ferrule-proxy", [proxy], f"http://127.0.0.1:{p}/static/10k.bin"))
    nginx, port = nginx_conf(workdir, "static", f"server {{ LISTEN location /static/ {{ alias {root}/; }} }}")
    out.append(("nginx", [nginx], f"http://127.0.0.1:{port}/static/10k.bin"))
    return out


def scenario_http_upstream(venv: Path, workdir: Path) -> list[tuple[str, list[Server], str]]:
    """An HTTP upstream with keep-alive (ferrule --http-socket, hello app): ferrule-proxy
    --proxy-pass vs nginx proxy_pass with an upstream keepalive pool, 1 worker each. Each
    front gets its own backend, started the same way."""
    out = []
    if FERRULE.exists() and FERRULE_PROXY.exists():
        bp = free_port()
        backend = Server("backend", [str(FERRULE), "--http-socket", f"127.0.0.1:{bp}", "--wsgi-file",
                                     str(APPS / "hello.py"), "--disable-logging"], bp)
        p = free_port()
        proxy = Server("ferrule-proxy", [str(FERRULE_PROXY), "--listen", f"127.0.0.1:{p}",
                                         "--proxy-pass", f"http://127.0.0.1:{bp}", "--workers", "1"], p,
                       env={"FERRULE_LOG": "warn,access=off"})
        out.append(("ferrule-proxy", [backend, proxy], f"http://127.0.0.1:{p}/"))
        bp2 = free_port()
        backend2 = Server("backend2", [str(FERRULE), "--http-socket", f"127.0.0.1:{bp2}", "--wsgi-file",
                                       str(APPS / "hello.py"), "--disable-logging"], bp2)
        nginx, port = nginx_conf(
            workdir, "http",
            f"upstream app {{ server 127.0.0.1:{bp2}; keepalive 32; }} "
            "server { LISTEN location / { proxy_pass http://app; proxy_http_version 1.1; "
            "proxy_set_header Connection \"\"; " + NGINX_FORWARDED + " } }")
        out.append(("nginx", [backend2, nginx], f"http://127.0.0.1:{port}/"))
    return out


SCENARIOS = {
    "http": (scenario_http, "ferrule", "HTTP direct, hello app, 1 worker"),
    "nginx-uwsgi": (scenario_nginx_uwsgi, "nginx+ferrule", "nginx -> unix uwsgi socket, hello app, 1 worker"),
    "threads": (scenario_threads, "ferrule --threads 32", "app sleeping 10 ms, 32 threads, 1 worker"),
    "proxy-uwsgi": (scenario_proxy_uwsgi, "ferrule-proxy+ferrule",
                    "front -> unix uwsgi socket -> app server, hello app, 1 worker each"),
    "static": (scenario_static, "ferrule-proxy", "10 KB static file, 1 worker"),
    "http-upstream": (scenario_http_upstream, "ferrule-proxy",
                      "front -> HTTP/1.1 upstream with keep-alive (ferrule --http-socket), 1 worker each"),
}


def run_scenario(name: str, venv: Path, rounds: int, seconds: int, connections: int) -> str:
    build, reference, title = SCENARIOS[name]
    workdir = Path(tempfile.mkdtemp(prefix=f"ferrule-load-{name}-"))
    # nginx's workers run unprivileged and must reach the unix sockets in here.
    os.chmod(workdir, 0o755)
    contenders = build(venv, workdir)
    results: dict[str, Result] = {label: Result() for label, _, _ in contenders}
    try:
        for r in range(rounds):
            order = contenders if r % 2 == 0 else list(reversed(contenders))
            for label, servers, url in order:
                for s in servers:
                    s.start(workdir)
                try:
                    wrk(url, 2, connections)  # warm-up
                    rps, p99, errors = wrk(url, seconds, connections)
                finally:
                    for s in reversed(servers):
                        s.stop()
                results[label].rps.append(rps)
                results[label].p99_ms.append(p99)
                results[label].errors += errors
                print(f"  round {r + 1} {label:<22} {rps:>10.0f} req/s  p99 {p99:7.2f} ms", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ref = results.get(reference)
    ref_rps = statistics.median(ref.rps) if ref and ref.rps else None
    lines = [f"### {name}: {title}", "",
             f"wrk -t1 -c{connections} -d{seconds}s, {rounds} rounds, median req/s", "",
             "| server | req/s | p99 ms | errors | ferrule ÷ this |", "|---|---:|---:|---:|---:|"]
    for label, res in results.items():
        rps = statistics.median(res.rps)
        p99 = statistics.median(res.p99_ms)
        ratio = f"{ref_rps / rps:.2f}×" if ref_rps else "n/a (no ferrule binary)"
        lines.append(f"| {label} | {rps:.0f} | {p99:.2f} | {res.errors} | {ratio} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    ap.add_argument("--venv", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    args = ap.parse_args()
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {unknown}; known: {list(SCENARIOS)}")
    report = []
    for name in args.scenarios:
        print(f"== {name}", flush=True)
        report.append(run_scenario(name, args.venv.resolve(), args.rounds, args.seconds, args.connections))
    print()
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
