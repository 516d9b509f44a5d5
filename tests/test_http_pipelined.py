"""The pipelined keep-alive fetcher of the log's read path (``PipelinedFetcher``,
``HttpSource``): the guarantees of ``HttpFetcher`` (timeouts, bounded retries with back-off
and Retry-After, a body cap, FetchError, 404 passed through) and the reconnects that
pipelining needs, against local servers only."""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from attest.simulate.fake_service import FakeService, serve
from transparency_log.client.log_client import (
    CheckpointStore,
    HttpSource,
    LogClient,
    http_source,
    monitor,
)
from transparency_log.common.errors import FetchError
from transparency_log.common.http_fetch import PipelinedFetcher
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import Signer, generate_keys
from transparency_log.log.lifecycle import Log
from transparency_log.log.publish import publish_tiles
from transparency_log.log.storage.sqlite import SqliteStorage

ORIGIN = "example.com/pipelined-test"
SKEY, VKEY = generate_keys(ORIGIN, seed=bytes([5]) * 32)


def no_sleep(_: float) -> None:
    return None


@contextmanager
def raw_server(answer: Callable[[int, bytes], bytes | None]) -> Iterator[str]:
    """An HTTP/1.1 server on 127.0.0.1 that reads pipelined requests and writes
    ``answer(n, request_line)`` for the n-th request of a connection (0-based); None closes
    the connection at once (dropping whatever was pipelined after it), and so does an
    answer with ``Connection: close`` once written."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        buf, n = b"", 0
        with conn:
            while not stop.is_set():
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                reply = answer(n, head.split(b"\r\n", 1)[0])
                n += 1
                if reply is None:
                    return
                conn.sendall(reply)
                if b"\r\nConnection: close\r\n" in reply:
                    return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()


def ok(body: bytes, extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def echo_path(line: bytes) -> bytes:
    return line.split(b" ")[1]


def test_many_in_order_over_http10_one_response_per_connection() -> None:
    # BaseHTTPRequestHandler speaks HTTP/1.0 and closes after each response: every pipelined
    # request after the first is dropped and sent again on a new connection
    service = FakeService(fallback=lambda m, t, b: (200, {}, t.encode()))
    service.routes["/gone"] = (404, {}, b"no")
    fetch = PipelinedFetcher(retries=0, sleep=no_sleep)
    with serve(service) as base:
        urls = [f"{base}/p{i}" for i in range(40)] + [f"{base}/gone"]
        got = list(fetch.many(urls))
    assert [r.body for r in got[:40]] == [b"/p%d" % i for i in range(40)]
    assert got[40].status == 404
    assert [t for _, t in service.requests] == [f"/p{i}" for i in range(40)] + ["/gone"]


def test_keep_alive_limit_and_abrupt_close_reopen_without_a_failed_try() -> None:
    # three answers per connection: the third says Connection: close, or the server just
    # closes before answering a fourth
    for closing in (True, False):
        def answer(n: int, line: bytes, closing: bool = closing) -> bytes | None:
            if n == 3 or (n == 2 and closing):
                return None if n == 3 else ok(echo_path(line), "Connection: close\r\n")
            return ok(echo_path(line))

        fetch = PipelinedFetcher(retries=0, window=8, sleep=no_sleep)
        with raw_server(answer) as base:
            bodies = [r.body for r in fetch.many([f"{base}/t{i}" for i in range(25)])]
            assert bodies == [b"/t%d" % i for i in range(25)]
            assert fetch(base + "/again").body == b"/again"  # an idle connection reused


def test_429_and_5xx_back_off_honouring_retry_after_then_give_up() -> None:
    calls = {"n": 0}

    def flaky(method: str, target: str, body: bytes):
        calls["n"] += 1
        if calls["n"] < 3:
            return 429, {"Retry-After": "2"}, b""
        return 200, {"X-Tile": "yes"}, b"payload"

    slept: list[float] = []
    fetch = PipelinedFetcher(retries=3, backoff=0.01, sleep=slept.append)
    with serve(FakeService({"/flaky": flaky, "/down": (503, {}, b""),
                            "/forbidden": (403, {}, b"")})) as base:
        resp = fetch(base + "/flaky")
        assert resp.body == b"payload" and resp.header("x-tile") == "yes"
        assert slept == [2.0, 2.0]
        slept.clear()
        with pytest.raises(FetchError) as info:
            fetch(base + "/down")
        assert info.value.check == "fetch.unreachable" and "HTTP 503" in str(info.value)
        assert slept == [0.01, 0.02, 0.04]  # 3 retries, then no sleep before giving up
        with pytest.raises(FetchError) as info:
            fetch(base + "/forbidden")
        assert info.value.check == "fetch.status"


def test_unreachable_timeout_and_bad_urls_are_fetch_errors() -> None:
    with pytest.raises(FetchError) as info:
        PipelinedFetcher(retries=1, backoff=0, timeout=0.5)("http://127.0.0.1:9/nothing")
    assert info.value.check == "fetch.unreachable"
    silent = threading.Event()

    def never(n: int, line: bytes) -> None:
        silent.wait(5)  # no answer until the client has given up

    with raw_server(never) as base:
        with pytest.raises(FetchError) as info:
            PipelinedFetcher(retries=0, timeout=0.2)(base + "/slow")
        silent.set()
    assert info.value.check == "fetch.unreachable" and "timed out" in str(info.value)
    for url in ["https://example.com/checkpoint", "http://127.0.0.1:1/a b",
                "http://127.0.0.1:1/a\r\nX: y", "ftp://example.com/x"]:
        with pytest.raises(FetchError) as info:
            PipelinedFetcher()(url)
        assert info.value.check == "fetch.url"
    with pytest.raises(ValueError, match="one origin"):
        list(PipelinedFetcher().many(["http://127.0.0.1:1/a", "http://127.0.0.1:2/a"]))


def test_body_cap_headers_cap_gzip_and_malformed_responses() -> None:
    big = b"x" * 5000
    packed = gzip.compress(big)
    bomb = gzip.compress(b"\0" * 100_000)

    def answer(n: int, line: bytes) -> bytes | None:
        path = echo_path(line)
        if path == b"/big":
            return ok(big)
        if path == b"/gz":
            return ok(packed, "Content-Encoding: gzip\r\n")
        if path == b"/bomb":
            return ok(bomb, "Content-Encoding: gzip\r\n")
        if path == b"/br":
            return ok(b"x", "Content-Encoding: br\r\n")
        if path == b"/headers":
            return b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 200 + b"Content-Length: 0\r\n\r\n"
        if path == b"/chunked":
            return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        if path == b"/until-close":
            return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"
        return b"garbage\r\n\r\n"

    fetch = PipelinedFetcher(max_bytes=4096, retries=0, sleep=no_sleep)
    with raw_server(answer) as base:
        for path, check in [("/big", "fetch.size"), ("/bomb", "fetch.size"), ("/gz", "fetch.size"),
                            ("/br", "fetch.encoding"), ("/headers", "fetch.headers"),
                            ("/junk", "fetch.unreachable")]:
            with pytest.raises(FetchError) as info:
                fetch(base + path)
            assert info.value.check == check, path
        assert fetch(base + "/chunked").body == b"abcde"
        assert fetch(base + "/until-close").body == b"all of it"
    roomy = PipelinedFetcher(max_bytes=8192)
    with raw_server(answer) as base:
        assert roomy(base + "/gz").body == big


def test_http_source_uses_pipelining_for_direct_http_only(monkeypatch) -> None:
    assert isinstance(http_source("http://127.0.0.1:1/log"), HttpSource)
    assert not isinstance(http_source("https://log.example/"), HttpSource)
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert not isinstance(http_source("http://log.example/"), HttpSource)


def published_log(tmp_path: Path, n: int) -> Path:
    storage = SqliteStorage(tmp_path / "log.db")
    log = Log(storage, ORIGIN)
    log.add([b"entry %d" % i for i in range(n)])
    log.publish(Signer(SKEY), datetime(2026, 11, 23, tzinfo=UTC))
    publish_tiles(log, tmp_path / "tiles")
    storage.close()
    return tmp_path / "tiles"


def serve_dir(root: Path) -> FakeService:
    def files(method: str, target: str, body: bytes):
        path = root / target.lstrip("/")
        if not path.is_file():
            return 404, {}, b""
        return 200, {}, path.read_bytes()

    return FakeService(fallback=files)


def test_monitor_streams_tiles_through_many_and_names_a_missing_tile(tmp_path: Path) -> None:
    root = published_log(tmp_path, 256 * 5 + 7)
    with serve(serve_dir(root)) as base:
        source = http_source(base)
        assert isinstance(source, HttpSource)
        client = LogClient(source, Verifier(VKEY), store=CheckpointStore(tmp_path / "s1"))
        result = monitor(client)
        assert result.new_entries == 256 * 5 + 7
        (root / "tile/0/003").unlink()
        client = LogClient(http_source(base), Verifier(VKEY),
                           store=CheckpointStore(tmp_path / "s2"))
        with pytest.raises(FetchError, match="hash tile missing") as info:
            monitor(client)
        assert info.value.field == "tile/0/003"
