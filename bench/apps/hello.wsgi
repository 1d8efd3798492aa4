"""hello: a 12-byte body in one block, with Content-Length (as the C handler's bench-hello)."""

BODY = b"Hello World\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
