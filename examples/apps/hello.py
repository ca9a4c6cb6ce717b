"""The smallest useful WSGI app: stdlib only. Used by the README's first command and the
benchmarks (every server in the load harness runs this same file).

Routes:
    /            plain-text greeting (one bytes chunk: the fast path)
    /sleep?ms=N  sleeps N milliseconds, then answers (for the threads benchmark)
    /echo        returns the request body (POST)
    /environ     the environ as text, for debugging a deployment
"""

import time
from urllib.parse import parse_qs

GREETING = b"Hello, World!"


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/sleep":
        query = parse_qs(environ.get("QUERY_STRING", ""))
        time.sleep(int(query.get("ms", ["10"])[0]) / 1000)
        body = b"slept"
    elif path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
    elif path == "/environ":
        body = "".join(
            f"{k}={v!r}\n" for k, v in sorted(environ.items())
        ).encode("utf-8", "replace")
    else:
        body = GREETING
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]


# gunicorn and Granian look for `app` by default in some setups.
app = application
