"""One WSGI application, one route per behaviour (dispatch on PATH_INFO).

Served by the integration tests through both mod_wsgi_rs and Debian's mod_wsgi 4.9.4.
Standard library only. Routes that misbehave on purpose say so in their docstring; the
tests in tests/*.rs assert what the server does about it.
"""

import io
import json
import os
import sys
import threading
import time

# Module-level state survives between requests in one process (one interpreter).
CLOSE_LOG = []
LOCAL = threading.local()
LOAD_COUNT = [0]
LOAD_COUNT[0] += 1


def ok(start_response, body, ctype="text/plain", extra=()):
    if isinstance(body, str):
        body = body.encode("utf-8")
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))] + list(extra))
    return [body]


def as_json(start_response, obj, status="200 OK"):
    body = json.dumps(obj, sort_keys=True).encode("utf-8")
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def environ_route(environ, start_response):
    """str-valued keys as they are, everything else as its type name (and repr for wsgi.*)."""
    out = {}
    types = {}
    for k, v in environ.items():
        types[k] = type(v).__name__
        if isinstance(v, str):
            out[k] = v
        elif isinstance(v, (bool, int, float)):
            out[k] = v
        elif isinstance(v, tuple):
            out[k] = list(v)
    result = {
        "environ": out,
        "types": types,
        "file_wrapper_callable": callable(environ.get("wsgi.file_wrapper")),
        "errors_has_write": hasattr(environ.get("wsgi.errors"), "write"),
        "input_has_read": hasattr(environ.get("wsgi.input"), "read"),
        "thread": threading.get_ident(),
        "pid": os.getpid(),
        "sys_prefix": sys.prefix,
        "python": sys.version.split()[0],
    }
    return as_json(start_response, result)


def wsgiref_validate_route(environ, start_response):
    """wsgiref.validate's checks of environ and start_response, on a simple answer."""
    from wsgiref.validate import validator

    def inner(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"validated"]

    # The validator raises AssertionError on any PEP 3333 violation in the environ.
    it = validator(inner)(environ, start_response)
    try:
        return [b"".join(it)]
    finally:
        it.close()


def echo(environ, start_response):
    data = environ["wsgi.input"].read()
    return ok(start_response, data, ctype="application/octet-stream")


def echo_sized(environ, start_response):
    """Reads exactly CONTENT_LENGTH bytes with read(n) in 1000-byte steps."""
    inp = environ["wsgi.input"]
    chunks = []
    while True:
        c = inp.read(1000)
        if not c:
            break
        chunks.append(c)
    return ok(start_response, b"".join(chunks), ctype="application/octet-stream")


def read_first(environ, start_response):
    """Reads only the first N bytes (N from the query string) with read(N) and answers
    with them, leaving the rest of the body unread."""
    data = environ["wsgi.input"].read(int(environ["QUERY_STRING"]))
    return ok(start_response, data, ctype="application/octet-stream")


def trickle(environ, start_response):
    """?N,S: N small blocks back to back, a pause of S seconds, then a last block."""
    count, pause = environ["QUERY_STRING"].split(",")

    def blocks():
        for i in range(int(count)):
            yield b"block%03d;" % i
        time.sleep(float(pause))
        yield b"last"

    start_response("200 OK", [("Content-Type", "text/plain")])
    return blocks()


def jitter(environ, start_response):
    """?N: N blocks with short, uneven pauses between them (some none), logging to
    wsgi.errors now and then: held blocks are flushed while the application runs."""
    count = int(environ["QUERY_STRING"])
    errors = environ["wsgi.errors"]

    def blocks():
        for i in range(count):
            if i % 3 == 1:
                time.sleep(0.0005 * (i % 7))
            if i % 10 == 9:
                errors.write("jitter block %d\n" % i)
            yield b"%05d," % i

    start_response("200 OK", [("Content-Type", "text/plain")])
    return blocks()


def sizes(environ, start_response):
    """?N: N blocks whose sizes cycle through 1, 1000, 7999, 8000, 8001 and 20000 bytes,
    block i filled with the byte i % 251 (copies of small blocks share buffers)."""
    count = int(environ["QUERY_STRING"])
    cycle = [1, 1000, 7999, 8000, 8001, 20000]

    def blocks():
        for i in range(count):
            yield bytes([i % 251]) * cycle[i % len(cycle)]

    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return blocks()


def one_block(environ, start_response):
    """?N: one block of N bytes (bytes 0..255 over and over)."""
    count = int(environ["QUERY_STRING"])
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [(bytes(range(256)) * (count // 256 + 1))[:count]]


def slow_stream(environ, start_response):
    """?N: a tick every 50 ms, N times; logs how many went out when it stops."""
    count = int(environ["QUERY_STRING"])

    def ticks():
        sent = 0
        try:
            for sent in range(count):
                yield b"tick\n"
                time.sleep(0.05)
        finally:
            sys.stderr.write("slow-stream stopped after %d ticks\n" % sent)
            sys.stderr.flush()

    start_response("200 OK", [("Content-Type", "text/plain")])
    return ticks()


def duplex(environ, start_response):
    """Answers each line of the request body as it arrives: the client sends the next
    line only after it has seen the answer to the last."""
    inp = environ["wsgi.input"]

    def answers():
        while True:
            line = inp.readline()
            if not line:
                return
            yield b"got:" + line

    start_response("200 OK", [("Content-Type", "text/plain")])
    return answers()


def read_mixed(environ, start_response):
    """readline, read(n), readline(size), readlines, iteration, read() mixed, in order."""
    inp = environ["wsgi.input"]
    got = []
    got.append(["readline", inp.readline().decode("latin-1")])
    got.append(["read5", inp.read(5).decode("latin-1")])
    got.append(["readline3", inp.readline(3).decode("latin-1")])
    got.append(["readline", inp.readline().decode("latin-1")])
    got.append(["readlines1", [l.decode("latin-1") for l in inp.readlines(1)]])
    it = iter(inp)
    try:
        got.append(["next", next(it).decode("latin-1")])
    except StopIteration:
        got.append(["next", None])
    got.append(["read", inp.read().decode("latin-1")])
    got.append(["eof_read", inp.read().decode("latin-1")])
    got.append(["eof_readline", inp.readline().decode("latin-1")])
    return as_json(start_response, got)


def readline_size(environ, start_response):
    """readline(n) for n = 1, 2, 4, ... : each piece, then the rest."""
    inp = environ["wsgi.input"]
    pieces = []
    n = 1
    while True:
        p = inp.readline(n)
        if not p:
            break
        pieces.append(p.decode("latin-1"))
        n = min(n * 2, 16)
    return as_json(start_response, pieces)


def readlines_route(environ, start_response):
    lines = environ["wsgi.input"].readlines()
    return as_json(start_response, [l.decode("latin-1") for l in lines])


def iter_input(environ, start_response):
    lines = [l.decode("latin-1") for l in environ["wsgi.input"]]
    return as_json(start_response, lines)


def read_log(environ, start_response):
    """Reads the body in 64 KiB blocks to the end, then logs how much it read (a read
    that fails raises, and nothing is logged)."""
    inp = environ["wsgi.input"]
    total = 0
    while True:
        c = inp.read(65536)
        if not c:
            break
        total += len(c)
    environ["wsgi.errors"].write("read-log: %d bytes, to the end\n" % total)
    return as_json(start_response, {"length": total})


def input_len(environ, start_response):
    """Reads the body in 64 KiB blocks, answers its length and a checksum."""
    inp = environ["wsgi.input"]
    total = 0
    acc = 0
    while True:
        c = inp.read(65536)
        if not c:
            break
        total += len(c)
        for b in c[:: max(1, len(c) // 64)]:
            acc = (acc * 31 + b) % 1000000007
    return as_json(start_response, {"length": total})


def write_callable(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written-1;")
    write(b"written-2;")
    return [b"returned"]


def lazy_start(environ, start_response):
    def gen():
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-Lazy", "yes")])
        yield b"lazy-"
        yield b"body"

    return gen()


def exc_info_before(environ, start_response):
    """start_response, then an error before any body: replaced with exc_info."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])
    try:
        raise ValueError("boom before body")
    except ValueError:
        start_response("500 Internal Server Error", [("Content-Type", "text/plain"), ("X-Second", "1")], sys.exc_info())
    return [b"error page"]


def exc_info_after_headers(environ, start_response):
    """Body already sent, then start_response(exc_info): must re-raise; response cut."""

    def gen():
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first chunk;"
        try:
            raise ValueError("boom after headers")
        except ValueError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        yield b"must-not-be-sent"

    return gen()


def start_twice(environ, start_response):
    """start_response called twice without exc_info (PEP 3333: an error)."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    start_response("202 Accepted", [("Content-Type", "text/plain")])
    return [b"twice"]


def start_twice_after_body(environ, start_response):
    def gen():
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"body;"
        start_response("202 Accepted", [("Content-Type", "text/plain")])
        yield b"after"

    return gen()


def str_body(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["a str, not bytes"]


def none_body(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return None


def no_start_response(environ, start_response):
    return [b"never started"]


def bad_status(environ, start_response):
    start_response("abc", [("Content-Type", "text/plain")])
    return [b"bad status"]


def bad_status_bytes(environ, start_response):
    start_response(b"200 OK", [("Content-Type", "text/plain")])
    return [b"bytes status"]


def status_injection(environ, start_response):
    start_response("200 OK\r\nX-Injected: yes", [("Content-Type", "text/plain")])
    return [b"status injection"]


def header_injection(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Evil", "a\r\nX-Injected: yes")])
    return [b"header injection"]


def header_name_bad(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X Bad Name", "v")])
    return [b"bad header name"]


def header_not_tuple(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), "X-Not-A-Tuple"])
    return [b"bad header list"]


def hop_by_hop(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close")])
    return [b"hop by hop"]


def non_latin1_header(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Snowman", "\u2603")])
    return [b"non latin-1"]


def latin1_header(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Latin1", "caf\xe9")])
    return [b"latin-1"]


def raise_before_start(environ, start_response):
    raise RuntimeError("raised before start_response")


def raise_after_start(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    raise RuntimeError("raised after start_response, before body")


def raise_in_iter(environ, start_response):
    def gen():
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first chunk;"
        raise RuntimeError("raised in iteration")

    return gen()


def content_length_short(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"01234", b"56789"]


class ClosingIterable:
    def __init__(self, tag, chunks, fail_at=None):
        self.tag = tag
        self.chunks = chunks
        self.fail_at = fail_at

    def __iter__(self):
        for i, c in enumerate(self.chunks):
            if self.fail_at is not None and i == self.fail_at:
                raise RuntimeError("close-test failure in iteration")
            yield c

    def close(self):
        CLOSE_LOG.append(self.tag)


def close_called(environ, start_response):
    tag = environ.get("QUERY_STRING") or "ok"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ClosingIterable(tag, [b"close-", b"test"])


def close_on_error(environ, start_response):
    tag = environ.get("QUERY_STRING") or "error"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ClosingIterable(tag, [b"a", b"b", b"c"], fail_at=1)


def close_on_disconnect(environ, start_response):
    """Streams slowly for a long time; the client goes away; close() must still run."""
    tag = environ.get("QUERY_STRING") or "disconnect"
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    class Slow(ClosingIterable):
        def __iter__(self):
            for _ in range(2000):
                time.sleep(0.01)
                yield b"x" * 65536

    return Slow(tag, [])


def close_log(environ, start_response):
    return as_json(start_response, CLOSE_LOG)


def file_path(environ):
    return os.path.join(os.path.dirname(__file__), "static", "file.bin")


def file_wrapper(environ, start_response):
    f = open(file_path(environ), "rb")
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](f)


def file_wrapper_offset(environ, start_response):
    """A real file positioned at 1000: only the rest is sent."""
    f = open(file_path(environ), "rb")
    f.seek(1000)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](f)


def file_wrapper_length(environ, start_response):
    """A real file with a declared Content-Length smaller than the file: only that much."""
    f = open(file_path(environ), "rb")
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", "100")])
    return environ["wsgi.file_wrapper"](f, 4096)


def file_wrapper_filelike(environ, start_response):
    data = bytes(range(256)) * 40
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](io.BytesIO(data), 1000)


def errors_route(environ, start_response):
    marker = environ.get("QUERY_STRING") or "marker"
    environ["wsgi.errors"].write("wsgi-errors-%s\n" % marker)
    environ["wsgi.errors"].flush()
    print("print-stdout-%s" % marker)
    sys.stdout.flush()
    print("print-stderr-%s" % marker, file=sys.stderr)
    sys.stderr.flush()
    environ["wsgi.errors"].writelines(["writelines-%s\n" % marker])
    return ok(start_response, "logged")


def threadlocal(environ, start_response):
    LOCAL.count = getattr(LOCAL, "count", 0) + 1
    return as_json(
        start_response,
        {"pid": os.getpid(), "thread": threading.get_ident(), "count": LOCAL.count},
    )


def stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def gen():
        for i in range(100):
            yield (b"%03d" % i) + b"." * 1021

    return gen()


def big_stream(environ, start_response):
    """About 64 MiB in 64 KiB pieces (for client-disconnect tests)."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def gen():
        block = b"y" * 65536
        for _ in range(1024):
            yield block

    return gen()


def status_route(environ, start_response, code):
    reasons = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified",
               404: "Not Found", 418: "I'm a teapot", 500: "Internal Server Error",
               503: "Service Unavailable"}
    status = "%d %s" % (code, reasons.get(code, "Custom"))
    if code in (204, 304):
        start_response(status, [])
        return [b""]
    return ok_status(start_response, status, ("status %d" % code).encode())


def ok_status(start_response, status, body):
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def head_route(environ, start_response):
    body = ("method=%s" % environ["REQUEST_METHOD"]).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                              ("X-Method", environ["REQUEST_METHOD"])])
    return [body]


def slow(environ, start_response):
    time.sleep(float(environ.get("QUERY_STRING") or "0.5"))
    return ok(start_response, "slow")


def headers_route(environ, start_response):
    """Several headers with the same name, and an empty value."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Multi", "a"), ("X-Multi", "b"),
                              ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Empty", "")])
    return [b"headers"]


def empty_iter(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return []


def empty_strings(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"", b"after-empty", b""]


def generator_body(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return (b"gen-%d;" % i for i in range(5))


def load_count(environ, start_response):
    return as_json(start_response, {"loads": LOAD_COUNT[0], "module": __name__})


ROUTES = {
    "/environ": environ_route,
    "/validate": wsgiref_validate_route,
    "/echo": echo,
    "/echo-sized": echo_sized,
    "/read-first": read_first,
    "/trickle": trickle,
    "/duplex": duplex,
    "/slow-stream": slow_stream,
    "/jitter": jitter,
    "/sizes": sizes,
    "/one-block": one_block,
    "/read-mixed": read_mixed,
    "/readline-size": readline_size,
    "/readlines": readlines_route,
    "/iter-input": iter_input,
    "/input-len": input_len,
    "/read-log": read_log,
    "/write-callable": write_callable,
    "/lazy-start": lazy_start,
    "/exc-info-before": exc_info_before,
    "/exc-info-after-headers": exc_info_after_headers,
    "/start-twice": start_twice,
    "/start-twice-after-body": start_twice_after_body,
    "/str-body": str_body,
    "/none-body": none_body,
    "/no-start-response": no_start_response,
    "/bad-status": bad_status,
    "/bad-status-bytes": bad_status_bytes,
    "/status-injection": status_injection,
    "/header-injection": header_injection,
    "/header-name-bad": header_name_bad,
    "/header-not-tuple": header_not_tuple,
    "/hop-by-hop": hop_by_hop,
    "/non-latin1-header": non_latin1_header,
    "/latin1-header": latin1_header,
    "/raise-before-start": raise_before_start,
    "/raise-after-start": raise_after_start,
    "/raise-in-iter": raise_in_iter,
    "/content-length-short": content_length_short,
    "/close-called": close_called,
    "/close-on-error": close_on_error,
    "/close-on-disconnect": close_on_disconnect,
    "/close-log": close_log,
    "/file-wrapper": file_wrapper,
    "/file-wrapper-offset": file_wrapper_offset,
    "/file-wrapper-length": file_wrapper_length,
    "/file-wrapper-filelike": file_wrapper_filelike,
    "/errors": errors_route,
    "/threadlocal": threadlocal,
    "/stream": stream,
    "/big-stream": big_stream,
    "/head": head_route,
    "/slow": slow,
    "/headers": headers_route,
    "/empty-iter": empty_iter,
    "/empty-strings": empty_strings,
    "/generator": generator_body,
    "/load-count": load_count,
}


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path.startswith("/status/"):
        return status_route(environ, start_response, int(path[len("/status/"):]))
    if path.startswith("/environ/"):
        return environ_route(environ, start_response)
    route = ROUTES.get(path)
    if route is None:
        body = ("no route %r" % path).encode()
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    return route(environ, start_response)
