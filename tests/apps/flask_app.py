"""A small Flask app for the framework tests: forms, sessions, uploads, JSON, streaming."""

import hashlib

from flask import Flask, Response, jsonify, request, session, stream_with_context

app = Flask(__name__)
app.secret_key = "mod_wsgi_rs-test-secret"


@app.route("/")
def index():
    return "flask index"


@app.route("/form", methods=["POST"])
def form():
    return "hello %s, you are %s" % (request.form["name"], request.form.get("age", "?"))


@app.route("/session/set/<value>")
def session_set(value):
    session["value"] = value
    return "stored"


@app.route("/session/get")
def session_get():
    return "session value: %s" % session.get("value", "<none>")


@app.route("/upload", methods=["POST"])
def upload():
    f = request.files["file"]
    data = f.read()
    return jsonify(
        filename=f.filename,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        note=request.form.get("note"),
    )


@app.route("/json", methods=["POST"])
def json_route():
    payload = request.get_json()
    return jsonify(total=sum(payload["numbers"]), echo=payload.get("text"))


@app.route("/stream")
def stream():
    def gen():
        for i in range(50):
            yield "line %d\n" % i

    return Response(stream_with_context(gen()), mimetype="text/plain")


@app.route("/error")
def error():
    raise RuntimeError("flask-route-error-marker")
