"""Probe apps for the wsgi-host tests.

``application`` is ``raw_application`` wrapped in ``wsgiref.validate.validator`` with
WSGIWarning turned into an error (the effect of
``PYTHONWARNINGS=error::wsgiref.validate.WSGIWarning``). ``raw_application`` has the routes
that break PEP 3333 on purpose (non-bytes chunks, short bodies, ...) and the helpers.
"""
import io
import json
import os
import sys
import tempfile
import threading
import time
import warnings
import wsgiref.validate

warnings.simplefilter("error", wsgiref.validate.WSGIWarning)

# Failures the validator can only report from __del__ ("Iterator garbage collected without
# being closed") go through sys.unraisablehook: record them so tests can fail on them.
UNRAISABLE = []
_lock = threading.Lock()


def _hook(info):
    with _lock:
        UNRAISABLE.append("%s: %s" % (type(info.exc_value).__name__, info.exc_value))


sys.unraisablehook = _hook

CLOSED = []
EXC_INFO_RERAISED = []
BAD_CALLS = {}
BG_TICKS = []


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _read_all(stream, n=7):
    # wsgiref.validate's InputWrapper.read() asserts exactly one argument.
    out = b""
    while True:
        block = stream.read(n)
        if not block:
            return out
        out += block


class Closing:
    """An iterable whose close() is recorded under a name."""

    def __init__(self, name, chunks):
        self.name = name
        self.chunks = chunks

    def __iter__(self):
        for chunk in self.chunks:
            if callable(chunk):
                chunk = chunk()
            yield chunk

    def close(self):
        with _lock:
            CLOSED.append(self.name)


def raw_application(environ, start_response):
    path = environ["PATH_INFO"]
    method = environ["REQUEST_METHOD"]

    if path.startswith("/pathinfo/"):
        return _json(start_response, {"path": path,
                                      "script": environ["SCRIPT_NAME"],
                                      "uri": environ.get("REQUEST_URI")})

    if path == "/hello":
        body = b"Hello, World!"
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    if path == "/env":
        cgi = {k: v for k, v in environ.items() if isinstance(v, str)}
        types = {k: type(v).__name__ for k, v in environ.items()}
        return _json(start_response, {
            "cgi": cgi,
            "types": types,
            "input_terminated": environ.get("wsgi.input_terminated"),
            "version": list(environ["wsgi.version"]),
            "multithread": environ["wsgi.multithread"],
            "multiprocess": environ["wsgi.multiprocess"],
            "run_once": environ["wsgi.run_once"],
            "environ_type": type(environ).__name__,
            "has_file_wrapper": "wsgi.file_wrapper" in environ,
            "cwd": os.getcwd(),
            "magic_env": os.environ.get("FERRULE_MAGIC"),
            "thread": threading.current_thread().name,
        })

    if path == "/echo":
        data = _read_all(environ["wsgi.input"])
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(data))),
                                  ("X-Body-Len", str(len(data)))])
        return [data]

    if path == "/lines":
        stream = environ["wsgi.input"]
        first = stream.readline()
        limited = stream.readline(3)
        rest = [line.decode("latin-1") for line in stream]
        return _json(start_response, {"first": first.decode("latin-1"),
                                      "limited": limited.decode("latin-1"),
                                      "rest": rest})

    if path == "/readlines":
        stream = environ["wsgi.input"]
        some = stream.readlines(4)
        rest = stream.readlines()
        return _json(start_response, {"some": [l.decode() for l in some],
                                      "rest": [l.decode() for l in rest]})

    if path == "/lazy404":
        def gen():
            start_response("404 Not Found", [("Content-Type", "text/plain"),
                                             ("X-Lazy", "yes")])
            yield b"lazy not found"
        return gen()

    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing("stream", [b"", b"chunk1,", b"", b"chunk2,", b"chunk3"])

    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written,")
        write(b"")
        write(b"more,")
        return [b"returned"]

    if path == "/excinfo":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])
        try:
            raise ValueError("boom")
        except ValueError:
            start_response("500 Internal Server Error",
                           [("Content-Type", "text/plain"), ("X-Second", "1")],
                           sys.exc_info())
        return [b"handled error"]

    if path == "/excinfo_after":
        def gen():
            yield b"partial"
            try:
                raise KeyError("late")
            except KeyError:
                try:
                    start_response("500 Internal Server Error",
                                   [("Content-Type", "text/plain")], sys.exc_info())
                except KeyError:
                    with _lock:
                        EXC_INFO_RERAISED.append(True)
                    raise
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing("excinfo_after", gen())

    if path == "/filewrapper" or path == "/sendfile" or path == "/bytesio":
        data = bytes(range(256)) * 1000  # 256000 bytes
        if path == "/bytesio":
            f = io.BytesIO(data)
        else:
            f = tempfile.TemporaryFile()
            f.write(b"PREFIX_" + data)  # 7 bytes the response must not include
            f.seek(7)
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(data)))])
        return environ["wsgi.file_wrapper"](f, 8192)

    if path == "/head":
        body = b"body that HEAD must not send"
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return Closing("head", [body])

    if path == "/unread":
        start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                            ("Content-Length", "6")])
        return [b"denied"]

    if path == "/nonbytes":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing("nonbytes", ["a str, not bytes"])

    if path == "/nonbytes_list":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["a str in a list"]

    if path == "/bare_bytes":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return b"not wrapped in a list"

    if path == "/cl_extra":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"hello", b" world"]

    if path == "/cl_short":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return Closing("cl_short", [b"hello"])

    if path == "/error_before":
        raise RuntimeError("error before headers")

    if path == "/error_after":
        def gen():
            yield b"partial"
            raise RuntimeError("error after headers")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing("error_after", gen())

    if path == "/nostart":
        return []

    if path == "/tuple":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"a", b"b", b"c")

    if path == "/twice":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            start_response("201 Created", [("Content-Type", "text/plain")])
            outcome = b"second call accepted"
        except RuntimeError as e:
            outcome = b"RuntimeError: " + str(e).encode()
        return [outcome]

    if path == "/badheaders":
        cases = {
            "crlf": ("200 OK", [("X-A", "a\r\nInjected: 1")]),
            "lf_name": ("200 OK", [("X-A\n", "a")]),
            "hop": ("200 OK", [("Connection", "close")]),
            "te": ("200 OK", [("Transfer-Encoding", "chunked")]),
            "bytes_value": ("200 OK", [("X-A", b"bytes")]),
            "not_list": ("200 OK", (("X-A", "a"),)),
            "three": ("200 OK", [("X-A", "a", "b")]),
            "status_no_reason": ("200", []),
            "status_word": ("OK 200", []),
            "status_bytes": (b"200 OK", []),
            "non_latin1": ("200 OK", [("X-A", "\u20ac")]),
        }
        raised = {}
        for name, (status, headers) in cases.items():
            try:
                start_response(status, headers)
                raised[name] = "accepted"
                break  # cannot continue: a second call would be an error
            except (TypeError, ValueError) as e:
                raised[name] = type(e).__name__
        return _json(start_response, raised)

    if path == "/errors":
        errors = environ["wsgi.errors"]
        errors.write("probe-errors line one\nprobe-errors par")
        errors.write("tial line\n")
        errors.writelines(["probe-errors unterminated"])
        errors.flush()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"logged"]

    if path == "/slow":
        time.sleep(0.5)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slow"]

    if path == "/fast":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"fast"]

    if path == "/endless":
        def forever():
            block = b"x" * 65536
            while True:
                yield block
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Closing("endless", forever())

    if path == "/bg_start":
        # A Python thread that ticks while no request runs: it only makes progress if the
        # worker releases the GIL while it waits for connections.
        def tick():
            for _ in range(1000):
                with _lock:
                    BG_TICKS.append(1)
                time.sleep(0.005)
        threading.Thread(target=tick, daemon=True).start()
        return _json(start_response, {"started": True})

    if path == "/bg_count":
        with _lock:
            return _json(start_response, {"ticks": len(BG_TICKS)})

    if path == "/state":
        with _lock:
            return _json(start_response, {"unraisable": list(UNRAISABLE),
                                          "closed": list(CLOSED),
                                          "reraised": len(EXC_INFO_RERAISED)})

    if path == "/upload_size":
        stream = environ["wsgi.input"]
        total = 0
        while True:
            block = stream.read(65536)
            if not block:
                break
            total += len(block)
        return _json(start_response, {"total": total})

    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]


application = wsgiref.validate.validator(raw_application)


def create_app():
    """A factory for the `module:factory()` form."""
    return raw_application


not_callable = 42


def broken_factory():
    raise RuntimeError("factory exploded")
