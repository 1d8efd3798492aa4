"""post: reads the whole request body (1 MiB from bench/wrk/bench.lua) in 64 KiB reads and
answers with its length in bytes as decimal text."""


def application(environ, start_response):
    stream = environ["wsgi.input"]
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    total = 0
    while remaining > 0:
        block = stream.read(min(remaining, 65536))
        if not block:
            break
        total += len(block)
        remaining -= len(block)
    body = str(total).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
