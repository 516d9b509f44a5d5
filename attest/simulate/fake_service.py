"""A tiny HTTP server on 127.0.0.1 for fake vendor services (KDS, PCS, RIM, OCSP) in tests
and the demo. Routes map a path (query string included or not) to a handler returning
``(status, headers, body)``. Serves real formats; knows nothing about them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

Reply = tuple[int, dict[str, str], bytes]
Handler = Callable[[str, str, bytes], Reply]
"""``(method, path_with_query, body) -> (status, headers, body)``; return None-free replies."""


class FakeService:
    """Dispatch by exact path+query first, then by path alone, then by ``fallback``."""

    def __init__(self, routes: dict[str, Handler | Reply] | None = None,
                 fallback: Handler | None = None) -> None:
        self.routes: dict[str, Handler | Reply] = dict(routes or {})
        self.fallback = fallback
        self.requests: list[tuple[str, str]] = []

    def handle(self, method: str, target: str, body: bytes) -> Reply:
        self.requests.append((method, target))
        path = urlsplit(target).path
        route = self.routes.get(target, self.routes.get(path))
        if route is None:
            if self.fallback is not None:
                return self.fallback(method, target, body)
            return 404, {"Content-Type": "text/plain"}, b"not found\n"
        if callable(route):
            return route(method, target, body)
        return route


@contextmanager
def serve(service: FakeService) -> Iterator[str]:
    """Run ``service`` on 127.0.0.1 (a free port) in a thread; yields the base URL."""

    class _Handler(BaseHTTPRequestHandler):
        def _do(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, headers, payload = service.handle(self.command, self.path, body)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _do
        do_POST = _do

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
