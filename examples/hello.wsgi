"""The example application served by scripts/serve-example."""

import sys


def application(environ, start_response):
    body = (
        "Hello from mod_wsgi_rs!\n"
        f"Python {sys.version.split()[0]}, {environ['SERVER_SOFTWARE']}\n"
        f"Path: {environ['SCRIPT_NAME']}{environ['PATH_INFO']}\n"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
