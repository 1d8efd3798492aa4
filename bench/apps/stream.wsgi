"""stream: a generator yielding 100 blocks of 1 KiB, no Content-Length (so the response is
chunked and every block is passed on as it is produced)."""

BLOCK = b"y" * 1024


def blocks():
    for _ in range(100):
        yield BLOCK


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return blocks()
