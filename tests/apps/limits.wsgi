"""Routes for tests/daemon_limits.rs: what the daemon process looks like from inside
(groups, Python prefix, resource limits), and requests that sleep, burn CPU, hold the
GIL, send a huge header or stream a large body. Dispatch on PATH_INFO; the query string
is the argument."""

import ctypes
import json
import os
import resource
import socket
import sys
import time


def as_json(start_response, obj):
    body = json.dumps(obj, sort_keys=True).encode("utf-8")
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def unix_connection_buffers():
    """[SO_SNDBUF, SO_RCVBUF] of every connected UNIX stream socket of this process."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue  # not a socket (or already closed)
        with sock:
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                continue
            try:
                sock.getpeername()  # a listening socket has no peer
            except OSError:
                continue
            found.append([sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
                          sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)])
    return sorted(found)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    arg = environ.get("QUERY_STRING", "")
    if path == "/facts":
        try:
            import flask  # noqa: F401  (present only in the test virtualenv)
            has_flask = True
        except ImportError:
            has_flask = False
        return as_json(start_response, {
            "pid": os.getpid(),
            "groups": sorted(os.getgroups()),
            "prefix": sys.prefix,
            "flask": has_flask,
            "rlimit_data": list(resource.getrlimit(resource.RLIMIT_DATA)),
            "rlimit_cpu": list(resource.getrlimit(resource.RLIMIT_CPU)),
            "unix_connection_buffers": unix_connection_buffers(),
        })
    if path == "/sleep":
        time.sleep(float(arg or "5"))
        return as_json(start_response, {"pid": os.getpid()})
    if path == "/burn":
        deadline = time.process_time() + float(arg or "4")
        while time.process_time() < deadline:
            pass
        return as_json(start_response, {"pid": os.getpid()})
    if path == "/hold-gil":
        # A PyDLL call keeps the GIL for its whole duration: the process cannot run
        # Python, which is what deadlock-timeout watches for.
        ctypes.PyDLL(None).sleep(int(arg or "30"))
        return as_json(start_response, {"pid": os.getpid()})
    if path == "/big-header":
        start_response("200 OK", [("X-Big", "x" * int(arg or "20000"))])
        return [b"big header"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        block = b"0123456789abcdef" * 1024
        return (block for _ in range(int(arg or "64")))
    if path == "/trickle":
        # ?N,G,S: N small blocks G seconds apart, a pause of S seconds, then one last block.
        count, gap, pause = (arg or "50,0,1").split(",")

        def trickle():
            for i in range(int(count)):
                if i and float(gap):
                    time.sleep(float(gap))
                yield b"block%03d;" % i
            time.sleep(float(pause))
            yield b"last"

        start_response("200 OK", [("Content-Type", "text/plain")])
        return trickle()
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such route"]
