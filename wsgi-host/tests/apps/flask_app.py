"""A real Flask app, loaded from the project venv through `virtualenv`."""
import os
import tracemalloc

import flask
from flask import Flask, jsonify, redirect, request, stream_with_context, url_for

app = Flask(__name__)


@app.route("/")
def index():
    return "index page"


@app.route("/where")
def where():
    import sys
    return jsonify(flask_file=flask.__file__, prefix=sys.prefix, base_prefix=sys.base_prefix)


@app.route("/user/<name>")
def user(name):
    return f"hello {name}"


@app.route("/form", methods=["POST"])
def form():
    return jsonify(name=request.form["name"], tags=request.form.getlist("tag"))


@app.route("/json", methods=["GET", "POST"])
def json_route():
    if request.method == "POST":
        data = request.get_json()
        return jsonify(received=data, doubled=[x * 2 for x in data["numbers"]])
    return jsonify(answer=42, items=["a", "b"])


@app.route("/upload", methods=["POST"])
def upload():
    # Stream the body in blocks; measure what Python allocates meanwhile.
    def rss_kib():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    rss_before = rss_kib()
    tracemalloc.start()
    total = 0
    stream = request.stream
    while True:
        block = stream.read(64 * 1024)
        if not block:
            break
        total += len(block)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return jsonify(total=total, py_peak=peak, rss_growth_kib=rss_kib() - rss_before)


@app.route("/old")
def old():
    return redirect(url_for("index"))


@app.route("/cookie/set")
def cookie_set():
    resp = flask.make_response("cookie set")
    resp.set_cookie("flavor", "oatmeal")
    resp.set_cookie("size", "large")
    return resp


@app.route("/cookie/get")
def cookie_get():
    return jsonify(dict(request.cookies))


@app.route("/stream")
def stream():
    @stream_with_context
    def generate():
        for i in range(5):
            yield f"part{i};"
    return app.response_class(generate(), mimetype="text/plain")


@app.route("/file")
def file():
    # werkzeug hands the open file to environ["wsgi.file_wrapper"].
    return flask.send_file(os.path.abspath(__file__), mimetype="text/plain")


@app.route("/boom")
def boom():
    raise RuntimeError("flask view failed")
