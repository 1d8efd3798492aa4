"""Routes for the daemon-mode tests (tests/daemon.rs): who and where the process is, slow
and hanging requests, large uploads read in blocks or only in part, an early answer, and
what the process may touch (files, sockets). Dispatch on PATH_INFO; query string = argument."""

import errno
import hashlib
import json
import os
import socket
import sys
import time
import urllib.parse


def as_json(start_response, obj, status="200 OK"):
    body = json.dumps(obj, sort_keys=True).encode("utf-8")
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def arg(environ):
    return urllib.parse.unquote(environ.get("QUERY_STRING", ""))


def whoami(environ, start_response):
    """The process serving the request: pid, ids, groups, cwd, umask."""
    mask = os.umask(0)
    os.umask(mask)
    return as_json(start_response, {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "uid": os.getuid(),
        "euid": os.geteuid(),
        "gid": os.getgid(),
        "egid": os.getegid(),
        "groups": sorted(os.getgroups()),
        "cwd": os.getcwd(),
        "umask": mask,
        "process_group": environ.get("mod_wsgi.process_group"),
        "lang": os.environ.get("LANG"),
        "sys_path": sys.path,
    })


def sleepy_function_q7(seconds):
    """A recognisable name for the request-timeout stack-trace test."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        time.sleep(0.05)


def sleep_route(environ, start_response):
    """Sleeps for the query's seconds (default 30) in `sleepy_function_q7`."""
    seconds = float(arg(environ) or "30")
    print("daemon-sleep-start pid=%d" % os.getpid(), file=sys.stderr)
    sys.stderr.flush()
    sleepy_function_q7(seconds)
    return as_json(start_response, {"pid": os.getpid(), "slept": seconds})


def upload(environ, start_response):
    """Reads wsgi.input in 64 KiB blocks; answers its length and sha256."""
    stream = environ["wsgi.input"]
    digest = hashlib.sha256()
    total = 0
    while True:
        block = stream.read(65536)
        if not block:
            break
        total += len(block)
        digest.update(block)
    return as_json(start_response, {"length": total, "sha256": digest.hexdigest(),
                                    "pid": os.getpid()})


def early(environ, start_response):
    """Answers at once without reading the request body."""
    return as_json(start_response, {"early": True, "pid": os.getpid()})


def partial(environ, start_response):
    """Reads only as many body bytes as the query says, then streams 4 MiB of 'r'."""
    got = len(environ["wsgi.input"].read(int(arg(environ) or 0)))
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("X-Read", str(got))])
    return (b"r" * 65536 for _ in range(64))


def read_file(environ, start_response):
    """Tries to read the file named by the query; answers ok or the errno."""
    path = arg(environ)
    try:
        with open(path, "rb") as f:
            data = f.read()
        return as_json(start_response, {"ok": True, "content": data.decode("latin-1")})
    except OSError as e:
        return as_json(start_response, {"ok": False, "errno": e.errno,
                                        "error": errno.errorcode.get(e.errno, "?")})


def connect(environ, start_response):
    """Tries to connect to the UNIX socket named by the query; answers ok or the errno."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(arg(environ))
        return as_json(start_response, {"ok": True})
    except OSError as e:
        return as_json(start_response, {"ok": False, "errno": e.errno,
                                        "error": errno.errorcode.get(e.errno, "?")})
    finally:
        s.close()


ROUTES = {
    "/whoami": whoami,
    "/sleep": sleep_route,
    "/upload": upload,
    "/early": early,
    "/partial": partial,
    "/read-file": read_file,
    "/connect": connect,
}


def application(environ, start_response):
    route = ROUTES.get(environ.get("PATH_INFO", ""))
    if route is None:
        body = ("no route %r" % environ.get("PATH_INFO")).encode()
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [body]
    return route(environ, start_response)
