"""A small Flask app in the shape of the seeds' apps (shared/seeds/): routes, a form, JSON,
redirects, cookies, uploads and a streamed response. Used by the real-peer tests (nginx and
uWSGI's router in front of ferrule) and by ferrule-proxy's tests.
"""

import hashlib

from flask import Flask, Response, jsonify, redirect, request, stream_with_context

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask"


@app.route("/form", methods=["GET", "POST"])
def form():
    if request.method == "POST":
        return f"name={request.form.get('name', '')}"
    return '<form method="post"><input name="name"></form>'


@app.post("/json")
def json_echo():
    data = request.get_json(force=True)
    return jsonify(received=data, method=request.method)


@app.get("/redirect")
def go_home():
    return redirect("/")


@app.get("/cookie")
def cookie():
    resp = Response(f"cookies={sorted(request.cookies)}")
    resp.set_cookie("visited", "yes")
    return resp


@app.post("/upload")
def upload():
    """Reads the body in blocks (never whole) and returns its size and sha256."""
    digest = hashlib.sha256()
    size = 0
    stream = request.stream
    while True:
        block = stream.read(64 * 1024)
        if not block:
            break
        size += len(block)
        digest.update(block)
    return jsonify(size=size, sha256=digest.hexdigest())


@app.post("/ignore-body")
def ignore_body():
    """Answers without reading the body (nginx must not answer 502 for this)."""
    return "ignored", 401


@app.get("/stream")
def stream():
    def generate():
        for i in range(100):
            yield f"line {i}\n"

    return Response(stream_with_context(generate()), mimetype="text/plain")


@app.get("/headers")
def headers():
    return jsonify({k: v for k, v in request.headers.items()})


@app.get("/nothing")
def nothing():
    return "", 204


@app.get("/cached")
def cached():
    resp = Response("cached body")
    resp.set_etag("v1")
    return resp.make_conditional(request)


application = app
