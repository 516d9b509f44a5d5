"""Run an ASGI app (the log server, a witness) with uvicorn: in the foreground for the CLI,
or in a background thread on 127.0.0.1 and a free port for tests and the demo.

A CLI service binds its listening socket first (:func:`bind_listener`), before it takes its
locks or writes anything, and hands the socket to uvicorn: a second process on a taken
address stops there, having written nothing (uvicorn alone binds only after the app's
startup has run)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response

from transparency_log.errors import StartupError

# Limits that protect the server from slow or idle clients: an idle keep-alive connection is
# closed after KEEP_ALIVE_TIMEOUT, a request whose headers are not complete within
# HEADER_TIMEOUT is dropped (uvicorn has no such timer of its own: slowloris), and request
# bodies have their own deadline (read_body). Past MAX_CONCURRENCY connections: 503.
KEEP_ALIVE_TIMEOUT = 5
HEADER_TIMEOUT = 10.0
MAX_CONCURRENCY = 1000


def _header_timeout_protocol(seconds: float) -> type[asyncio.Protocol] | str:
    """uvicorn's httptools protocol with a deadline for the request line and headers."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency
        return "auto"

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expired(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeoutProtocol


def make_server(app: Any, host: str, port: int, *, header_timeout: float = HEADER_TIMEOUT,
                log_level: str = "warning") -> uvicorn.Server:
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            access_log=False, timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
                            limit_concurrency=MAX_CONCURRENCY, server_header=False,
                            lifespan="on", http=_header_timeout_protocol(header_timeout))
    return uvicorn.Server(config)


def bind_listener(host: str, port: int, *, check: str) -> socket.socket:
    """A socket bound and listening on ``host:port``; StartupError ``check`` (one line, exit
    7) when the address is taken or cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise StartupError(check, f"cannot listen: {err.strerror or err}; nothing was "
                           "written", field="listen", got=f"{host}:{port}") from None
    return sock


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", *,
                    header_timeout: float = HEADER_TIMEOUT) -> Iterator[tuple[str, int]]:
    """Serve ``app`` on ``host`` and a free port in a daemon thread; yields (host, port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = make_server(app, host, port, header_timeout=header_timeout)
    server.config.install_signal_handlers = False  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    ready = threading.Event()
    for _ in range(500):
        if server.started:
            ready.set()
            break
        ready.wait(0.01)
    if not ready.is_set():
        server.should_exit = True
        thread.join(5)
        sock.close()
        raise RuntimeError("server did not start")
    try:
        yield host, port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class BodyError(Exception):
    """A request body that cannot be accepted: ``status`` (400, 408, 413) and a reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> Response:
        return text_response(self.status, self.message, {"Connection": "close"})


def text_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """A one-line ``text/plain`` answer (errors are never more than one line)."""
    return PlainTextResponse(message.replace("\n", " ").rstrip() + "\n", status_code=status,
                             headers=headers)


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body, refusing more than ``limit`` bytes (413), a malformed
    Content-Length (400) or a sender slower than ``timeout`` seconds in all (408)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BodyError(400, "malformed Content-Length")
        if int(declared) > limit:
            raise BodyError(413, f"request body over {limit} bytes")

    async def collect() -> bytes:
        chunks: list[bytes] = []
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise BodyError(413, f"request body over {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        async with asyncio.timeout(timeout):  # no extra task per request, unlike wait_for
            return await collect()
    except TimeoutError as err:
        raise BodyError(408, "request body not received in time") from err
    except ClientDisconnect as err:
        raise BodyError(400, "client disconnected") from err
