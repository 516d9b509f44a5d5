"""Fetching over HTTP(S), the only place (with the log client) that imports ``requests``.

Everything else receives a :data:`Fetch` callable, so tests hand in fakes and offline mode
hands in nothing. :class:`HttpFetcher` adds timeouts, bounded retries with back-off on 429 and
5xx (honouring ``Retry-After``), and maps every transport failure to FetchError: unreachable
never means invalid (DESIGN.md error table). :class:`DiskCache` keeps fetched bytes by key.

:class:`PipelinedFetcher` gives the same guarantees for the log's read path, where one
monitor run makes thousands of small GETs to one server: requests costs ~550 µs of CPU per
GET here, a pipelined keep-alive connection (RFC 9112 §9.3.2) parsed by httptools (llhttp,
the C parser uvicorn uses) ~10 µs. Plain ``http://`` only; HTTPS and proxies go through
requests (:class:`HttpFetcher`).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httptools
import requests

from transparency_log.common.errors import FetchError


@dataclass(frozen=True)
class FetchResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        low = name.lower()
        for k, v in self.headers.items():
            if k.lower() == low:
                return v
        return None


def network_reason(err: BaseException) -> str:
    """A transport failure in a few words, without the HTTP library's internals (connection
    pool reprs, object addresses): the innermost OS error's reason, else the error's kind."""
    seen: list[BaseException] = []
    cur: BaseException | None = err
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    for e in reversed(seen):
        if isinstance(e, socket.gaierror):
            return "host name not found"
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, TimeoutError | socket.timeout):
            return "timed out"
        if isinstance(e, OSError) and e.strerror:
            return e.strerror.lower()
    text = str(err)
    for word, reason in (("timed out", "timed out"), ("Timeout", "timed out"),
                         ("refused", "connection refused"), ("SSL", "TLS handshake failed"),
                         ("Name or service not known", "host name not found"),
                         ("getaddrinfo", "host name not found")):
        if word in text:
            return reason
    return type(err).__name__


Fetch = Callable[[str], FetchResponse]
"""``url -> FetchResponse``. Raises FetchError when the service cannot be reached."""


class HttpFetcher:
    """GET with timeouts, retries and back-off. Non-2xx after retries is a FetchError unless
    the status is in ``pass_statuses`` (e.g. 404 where "absent" is a meaningful answer)."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_bytes: int = 16 << 20,
        pass_statuses: frozenset[int] = frozenset({404}),
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_bytes = max_bytes
        self.pass_statuses = pass_statuses
        self.sleep = sleep
        self.session = session or requests.Session()

    def __call__(self, url: str) -> FetchResponse:
        last = ""
        for attempt in range(self.retries + 1):
            try:
                resp = self.session.get(url, timeout=self.timeout, stream=True)
                body = resp.raw.read(self.max_bytes + 1, decode_content=True)
                if len(body) > self.max_bytes:
                    raise FetchError("fetch.size", "response too large", field=url,
                                     got=f"> {self.max_bytes}", want=f"<= {self.max_bytes}")
            except requests.RequestException as err:
                last = network_reason(err)
                self._wait(attempt, None)
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                last = f"HTTP {resp.status_code}"
                self._wait(attempt, resp.headers.get("Retry-After"))
                continue
            if 200 <= resp.status_code < 300 or resp.status_code in self.pass_statuses:
                return FetchResponse(resp.status_code, body, dict(resp.headers))
            raise FetchError("fetch.status", f"HTTP {resp.status_code}", field=url)
        raise FetchError("fetch.unreachable", f"gave up after {self.retries + 1} tries: {last}",
                         field=url)

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        if attempt >= self.retries:
            return
        self.sleep(backoff_delay(self.backoff, attempt, retry_after))


def backoff_delay(backoff: float, attempt: int, retry_after: str | None) -> float:
    """Exponential back-off after failed try ``attempt`` (0-based), at least the server's
    ``Retry-After`` seconds (capped at 60; the HTTP-date form is ignored)."""
    delay = backoff * (2**attempt)
    if retry_after and retry_after.isdigit():
        delay = max(delay, min(float(retry_after), 60.0))
    return delay


_TARGET = re.compile(r"/[!-~]*")  # printable ASCII, no space: nothing can split the request
MAX_HEADER_BYTES = 64 << 10
MAX_HEADERS = 100


class _Dropped(Exception):
    """The connection ended before the response in progress was complete."""


class _Connection:
    """One keep-alive HTTP/1.1 connection: requests are written ahead, responses parsed in
    order by httptools as they arrive (callbacks below)."""

    def __init__(self, host: str, port: int, timeout: float, max_bytes: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.max_bytes = max_bytes
        self.parser = httptools.HttpResponseParser(self)
        self.done: deque[tuple[int, dict[str, str], bytes, bool]] = deque()
        self.completed = 0  # responses completed on this connection
        self.error: FetchError | None = None
        self._begin()

    def _begin(self) -> None:
        self.headers: dict[str, str] = {}
        self.header_count = 0
        self.body: list[bytes] = []
        self.size = 0
        self.in_headers = False
        self.started = False

    # httptools callbacks (they must not raise: problems are noted and raised after feed)
    def on_message_begin(self) -> None:
        self.started, self.in_headers = True, True

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        if self.header_count > MAX_HEADERS:
            self.error = FetchError("fetch.headers", "too many response headers",
                                    got=f"> {MAX_HEADERS}", want=f"<= {MAX_HEADERS}")
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.in_headers = False

    def on_body(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            self.error = FetchError("fetch.size", "response too large", got=f"> {self.max_bytes}",
                                    want=f"<= {self.max_bytes}")
        else:
            self.body.append(chunk)

    def on_message_complete(self) -> None:
        self.done.append((self.parser.get_status_code(), self.headers, b"".join(self.body),
                          self.parser.should_keep_alive()))
        self.completed += 1
        self._begin()

    def receive(self) -> tuple[int, dict[str, str], bytes, bool]:
        """The next response, in request order."""
        fed = 0
        while not self.done:
            data = self.sock.recv(1 << 18)
            if not data:
                if (self.started and not self.in_headers and "content-length" not in self.headers
                        and "transfer-encoding" not in self.headers):
                    self.on_message_complete()  # a body delimited by the connection's end
                    self.done[-1] = (*self.done[-1][:3], False)
                    break
                raise _Dropped("connection closed")
            self.parser.feed_data(data)
            fed = fed + len(data) if self.in_headers else 0
            if self.error is None and fed > MAX_HEADER_BYTES:
                self.error = FetchError("fetch.headers", "response headers too large",
                                        want=f"<= {MAX_HEADER_BYTES} bytes")
            if self.error is not None:
                raise self.error
        return self.done.popleft()

    def close(self) -> None:
        self.sock.close()


class PipelinedFetcher:
    """GETs over keep-alive ``http://`` connections, pipelined ``window`` requests deep, with
    :class:`HttpFetcher`'s guarantees: ``timeout`` per connect/read, at most ``retries`` retries
    of a request (transport failure, 429, 5xx) with exponential back-off honouring
    ``Retry-After``, ``max_bytes`` per body, FetchError for everything else but 2xx and
    ``pass_statuses``.

    A connection that the server closes after some responses (``Connection: close``, a
    keep-alive limit, an idle timeout) is reopened and the unanswered requests are sent
    again (GETs are idempotent); only a connection that fails before answering anything
    counts as a failed try. ``many`` keeps one connection for its whole run; connections
    left idle are reused by the next call (thread-safe). Responses are asked for without
    compression (``Accept-Encoding: identity``); a gzip body is decoded all the same.
    """

    def __init__(self, *, timeout: float = 10.0, retries: int = 3, backoff: float = 0.5,
                 max_bytes: int = 16 << 20, window: int = 16,
                 pass_statuses: frozenset[int] = frozenset({404}),
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_bytes = max_bytes
        self.window = max(1, window)
        self.pass_statuses = pass_statuses
        self.sleep = sleep
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._lock = threading.Lock()

    def __call__(self, url: str) -> FetchResponse:
        responses = self.many([url])
        try:
            return next(responses)
        finally:
            responses.close()

    def many(self, urls: Iterable[str]) -> Iterator[FetchResponse]:
        """The responses to GET each of ``urls`` (one host and port), in order."""
        targets = [self._target(u) for u in urls]
        if not targets:
            return
        origin = targets[0][0]
        if any(t[0] != origin for t in targets):
            raise ValueError("PipelinedFetcher.many: the URLs must share one origin")
        sent = got = attempt = 0
        last = ""
        conn = self._take(origin)
        try:
            while got < len(targets):
                url = targets[got][2]
                try:
                    if conn is None:
                        conn = _Connection(*origin, self.timeout, self.max_bytes)
                    if sent - got < self.window // 2 + 1:  # top the window up in one write
                        end = min(len(targets), got + self.window)
                        conn.sock.sendall(b"".join(t[1] for t in targets[sent:end]))
                        sent = end
                    status, headers, body, keep = conn.receive()
                except (OSError, httptools.HttpParserError, _Dropped) as err:
                    progressed = conn is not None and conn.completed > 0
                    if conn is not None:
                        conn.close()
                    conn, sent = None, got
                    if progressed:
                        continue  # a closed keep-alive connection: reopen, resend the rest
                    last = network_reason(err)
                    attempt = self._failed(attempt, url, last, None)
                    continue
                if status == 429 or status >= 500:
                    conn.close()
                    conn, sent = None, got
                    last = f"HTTP {status}"
                    attempt = self._failed(attempt, url, last, headers.get("retry-after"))
                    continue
                got += 1
                attempt = 0
                if not keep:
                    conn.close()
                    conn, sent = None, got
                if not (200 <= status < 300 or status in self.pass_statuses):
                    raise FetchError("fetch.status", f"HTTP {status}", field=url)
                if headers.get("content-encoding", "identity") != "identity":
                    body = self._decode(headers["content-encoding"], body, url)
                yield FetchResponse(status, body, headers)
        finally:
            if conn is not None:
                if sent == got:
                    with self._lock:
                        self._idle.setdefault(origin, []).append(conn)
                else:
                    conn.close()

    def _failed(self, attempt: int, url: str, last: str, retry_after: str | None) -> int:
        if attempt >= self.retries:
            raise FetchError("fetch.unreachable",
                             f"gave up after {self.retries + 1} tries: {last}", field=url)
        self.sleep(backoff_delay(self.backoff, attempt, retry_after))
        return attempt + 1

    def _decode(self, encoding: str, body: bytes, url: str) -> bytes:
        if encoding != "gzip":
            raise FetchError("fetch.encoding", "unsupported Content-Encoding", field=url,
                             got=encoding, want="identity or gzip")
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = inflate.decompress(body, self.max_bytes + 1)
        except zlib.error as err:
            raise FetchError("fetch.encoding", f"bad gzip body: {err}", field=url) from None
        if len(out) > self.max_bytes:
            raise FetchError("fetch.size", "response too large", field=url,
                             got=f"> {self.max_bytes}", want=f"<= {self.max_bytes}")
        return out

    def _take(self, origin: tuple[str, int]) -> _Connection | None:
        with self._lock:
            idle = self._idle.get(origin)
            return idle.pop() if idle else None

    @staticmethod
    def _target(url: str) -> tuple[tuple[str, int], bytes, str]:
        """``((host, port), request bytes, url)``; FetchError for anything but http:// URLs
        whose path and query are printable ASCII (so nothing can split the request)."""
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if parts.scheme != "http" or not parts.hostname or not _TARGET.fullmatch(target):
            raise FetchError("fetch.url", "not a plain http:// URL", field="url", got=url)
        host, port = parts.hostname, parts.port or 80
        authority = f"[{host}]" if ":" in host else host
        request = (f"GET {target} HTTP/1.1\r\nHost: {authority}:{port}\r\n"
                   "User-Agent: attestlog\r\nAccept-Encoding: identity\r\n\r\n")
        return (host, port), request.encode("ascii"), url


class DiskCache:
    """A content store on disk: ``get(key)`` / ``put(key, data)``; writes are atomic."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)

    def _path(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.dir / digest[:2] / digest

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
