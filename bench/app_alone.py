"""The application alone: CPU microseconds per call of each bench app with no server
around it (no sockets, no Apache), measured two ways:

- "one": called in a loop in one Python thread. No module that runs the app can spend less
  per request than this plus what Apache itself spends (the C handler's CPU per request),
  so it bounds what any WSGI module can gain.
- "turns": called by 16 threads taking turns, one call each, as the 16 worker threads of an
  Apache child do when one of them at a time runs Python. The Python work is the same, but
  every call starts on another thread, often woken on the other CPU, whose caches hold
  none of the app's data (pinned to one CPU, most of the difference goes). Only the call itself is timed, on its thread's
  CPU clock, so the hand-off between threads is not counted.

Usage (bench/run calls it with the bench virtualenv's Python):
    python app_alone.py APPS_DIR SECONDS KEY=FILE:PATH:POST_BYTES ...
Prints one JSON object: {key: {"one": microseconds per call, "turns": ...}}.
"""

import importlib.machinery
import importlib.util
import io
import json
import sys
import threading
import time


def load(path):
    loader = importlib.machinery.SourceFileLoader("bench_app", path)  # .wsgi is no known suffix
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module.application


def environ(path, body):
    return {
        "REQUEST_METHOD": "POST" if body else "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/octet-stream" if body else "",
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def start_response(status, headers, exc_info=None):
    return lambda data: None


def call(app, path, body):
    result = app(environ(path, body), start_response)
    try:
        for _ in result:
            pass
    finally:
        if hasattr(result, "close"):
            result.close()


def per_call_us(app, path, body, seconds):
    for _ in range(200):  # warm-up: imports, template compilation, caches
        call(app, path, body)
    calls, started = 0, time.thread_time()
    while time.thread_time() - started < seconds:
        for _ in range(50):
            call(app, path, body)
        calls += 50
    return (time.thread_time() - started) / calls * 1e6


THREADS = 16  # ThreadsPerChild in every bench scenario


def per_call_us_in_turns(app, path, body, seconds):
    for _ in range(200):
        call(app, path, body)
    batons = [threading.Event() for _ in range(THREADS)]
    deadline = time.monotonic() + seconds
    stop = False
    spent, calls = [0.0] * THREADS, [0] * THREADS
    failed = []

    def worker(i):
        nonlocal stop
        turn = 0
        try:
            while True:
                batons[i].wait()
                batons[i].clear()
                if stop:
                    return
                # What reading the thread's CPU clock costs (a system call), taken off.
                before = time.thread_time()
                started = time.thread_time()
                call(app, path, body)
                ended = time.thread_time()
                if turn >= 3:  # each thread's first calls warm it up
                    spent[i] += (ended - started) - (started - before)
                    calls[i] += 1
                turn += 1
                if turn > 3 and time.monotonic() >= deadline:
                    return
                batons[(i + 1) % THREADS].set()
        except BaseException as e:
            failed.append(e)
        finally:  # a thread leaves only at the end: the others must not wait for a turn
            stop = True
            for b in batons:
                b.set()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    batons[0].set()
    for t in threads:
        t.join()
    if failed:
        raise failed[0]
    return sum(spent) / max(1, sum(calls)) * 1e6


def main():
    apps_dir, seconds = sys.argv[1], float(sys.argv[2])
    sys.path.insert(0, apps_dir)
    out = {}
    for spec in sys.argv[3:]:
        key, rest = spec.split("=", 1)
        filename, path, post_bytes = rest.split(":")
        app = load(f"{apps_dir}/{filename}")
        body = b"p" * int(post_bytes)
        out[key] = {"one": per_call_us(app, path, body, seconds),
                    "turns": per_call_us_in_turns(app, path, body, seconds)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
