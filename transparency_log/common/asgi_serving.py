"""Run an ASGI app (the log server, a witness, the node agent) with uvicorn: in the
foreground for the CLI, or in a background thread on 127.0.0.1 and a free port for tests
and the demo.

Every server made here has the same limits against hostile clients (:func:`make_server`;
docs/operations.md, "Limits and errors of the HTTP service"):

- a TLS handshake not complete within ``HEADER_TIMEOUT`` seconds is dropped (asyncio's own
  default is 60 s), and so is a request whose request line and headers are not complete
  within ``HEADER_TIMEOUT`` (uvicorn has no such timer of its own: slowloris);
- a request target over ``MAX_TARGET_BYTES`` (path and query) is answered 414, a request
  head over ``MAX_HEAD_BYTES`` or with more than ``MAX_HEADERS`` header fields 431, and the
  connection is closed: the parser never holds more than ``MAX_HEAD_BYTES`` plus one socket
  read (256 KiB) of a connection's head (RFC 9110 §15.5.15, RFC 6585 §5);
- an idle keep-alive connection is closed after ``KEEP_ALIVE_TIMEOUT``; past
  ``MAX_CONCURRENCY`` connections requests are answered 503;
- request bodies have their own size limit and deadline (:func:`read_body`).

A CLI service binds its listening socket first (:func:`bind_listener`), before it takes its
locks or writes anything, and hands the socket to uvicorn: a second process on a taken
address stops there, having written nothing (uvicorn alone binds only after the app's
startup has run).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response

from transparency_log.common.errors import BUG, StartupError, bug_line

KEEP_ALIVE_TIMEOUT = 5
HEADER_TIMEOUT = 10.0
MAX_CONCURRENCY = 1000
MAX_TARGET_BYTES = 4096
"""Request target (path and query): tile paths are under 64 bytes."""
MAX_HEAD_BYTES = 16384
"""Request line and header fields together."""
MAX_HEADERS = 64
"""Header fields per request."""

_REASONS = {414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


def _limited_protocol(seconds: float) -> type[asyncio.Protocol] | str:
    """uvicorn's httptools protocol with a deadline for the request line and headers and
    caps on their size and count (module docstring)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency
        return "auto"

    class LimitedHttpProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None
        _in_head = True  # between requests or inside a request's head
        _read_bytes = 0  # bytes received while in the head (memory bound)
        _head_bytes = 0  # request target and header fields, as parsed (exact)
        _fields = 0
        _refusal: tuple[int, str] | None = None

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

        def _refuse(self, status: int, message: str) -> None:
            if self._refusal is None:
                self._refusal = (status, message)

        def _send_refusal(self) -> None:
            assert self._refusal is not None
            status, message = self._refusal
            body = message.encode("ascii") + b"\n"
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                % (status, _REASONS[status], len(body), body))
            self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._refusal is not None:
                return
            if self._in_head:
                self._read_bytes += len(data)
            super().data_received(data)
            if self._in_head and self._read_bytes > MAX_HEAD_BYTES:
                self._refuse(431, f"request head over {MAX_HEAD_BYTES} bytes")
            if self._refusal is not None and not self.transport.is_closing():
                self._disarm()
                self._send_refusal()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_bytes = self._fields = 0
            self._arm()

        def on_url(self, url: bytes) -> None:
            self._head_bytes += len(url)
            if self._head_bytes > MAX_TARGET_BYTES:
                self._refuse(414, f"request target over {MAX_TARGET_BYTES} bytes")
            elif self._refusal is None:
                super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._fields += 1
            self._head_bytes += len(name) + len(value) + 4
            if self._fields > MAX_HEADERS:
                self._refuse(431, f"more than {MAX_HEADERS} header fields")
            elif self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(431, f"request head over {MAX_HEAD_BYTES} bytes")
            elif self._refusal is None:
                super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._disarm()
            self._in_head, self._read_bytes = False, 0
            if self._refusal is None:
                super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if self._refusal is None:
                super().on_body(body)

        def on_message_complete(self) -> None:
            self._in_head, self._read_bytes = True, 0
            if self._refusal is None:
                super().on_message_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return LimitedHttpProtocol


def _handshake_deadline_loop(seconds: float) -> Callable[[], asyncio.AbstractEventLoop]:
    """uvicorn's event loop (uvloop when installed, else asyncio's) whose TLS servers drop a
    handshake not complete within ``seconds``: uvicorn does not pass asyncio's
    ``ssl_handshake_timeout`` (default 60 s), so a half-open TLS connection, or a silent TCP
    one, would otherwise be held that long before any HTTP deadline starts."""
    base: type[asyncio.AbstractEventLoop]
    try:
        import uvloop

        base = uvloop.Loop
    except ImportError:  # pragma: no cover - uvloop is installed with uvicorn[standard]
        base = asyncio.SelectorEventLoop

    class HandshakeDeadlineLoop(base):  # type: ignore[valid-type, misc]
        async def create_server(self, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("ssl") is not None:
                kwargs.setdefault("ssl_handshake_timeout", seconds)
            return await super().create_server(*args, **kwargs)

    return HandshakeDeadlineLoop


def make_server(app: Any, host: str, port: int, *, header_timeout: float = HEADER_TIMEOUT,
                tls: tuple[str, str] | None = None, log_level: str = "warning",
                graceful_shutdown: float | None = None) -> uvicorn.Server:
    """A uvicorn server for ``app`` with the limits of the module docstring; ``tls`` is
    (key file, certificate file) for HTTPS."""
    keyfile, certfile = tls if tls is not None else (None, None)
    # log_config=None: uvicorn's loggers go through the service's handler and format
    # (transparency_log.common.service_logging), not uvicorn's own.
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, log_config=None,
                            access_log=False, timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
                            limit_concurrency=MAX_CONCURRENCY, server_header=False,
                            lifespan="on", http=_limited_protocol(header_timeout),
                            loop=_handshake_deadline_loop(header_timeout),  # type: ignore[arg-type]
                            ssl_keyfile=keyfile, ssl_certfile=certfile,
                            timeout_graceful_shutdown=graceful_shutdown)
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
                    header_timeout: float = HEADER_TIMEOUT,
                    tls: tuple[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """Serve ``app`` on ``host`` and a free port in a daemon thread; yields (host, port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = make_server(app, host, port, header_timeout=header_timeout, tls=tls)
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


async def _not_found(request: Request, exc: Exception) -> Response:
    return text_response(404, "not found")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return text_response(405, "method not allowed")


ONE_LINE_ERRORS: dict[Any, Any] = {404: _not_found, 405: _not_allowed}
"""Starlette ``exception_handlers`` answering an unknown path (404) and a wrong method (405)
with one line, as every error of every service."""


def bug_response(log: Any, path: str, err: BaseException) -> Response:
    """A bug of ours while answering ``path`` (an exception that is not an AttestlogError):
    one line in the log and ``500 internal error``; never a verdict, never a traceback."""
    log.error("%s on %s", bug_line(err), path)
    return text_response(500, BUG)


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
