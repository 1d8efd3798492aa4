"""64k: a 64 KiB body in one block, with Content-Length (as the C handler's bench-64k)."""

BODY = b"x" * 65536
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
