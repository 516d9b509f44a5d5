"""The log server's HTTP contract (transparency_log/serve/server.py) against an in-memory fake log:
read-path headers, strict paths, authentication, limits, and never a traceback."""

from __future__ import annotations

import base64
import gzip
import hashlib
import socket
import threading

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from transparency_log.common.asgi_serving import serve_in_thread
from transparency_log.common.errors import FormatError, TrustConfigError
from transparency_log.serve.server import (
    Limits,
    Submitters,
    canonical_resource,
    create_app,
    sign_submission,
)

TOKEN = "ci-token-123"


class FakeLog:
    """Durable-enough for HTTP tests: entries in a list, resources in a dict."""

    def __init__(self) -> None:
        self.entries: list[bytes] = []
        self.resources: dict[str, bytes] = {
            "checkpoint": b"example.com/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
            "tile/0/000": bytes(32),
            "tile/entries/000.p/2": b"\x00\x03abc\x00\x03abc",
        }
        self.fail_writes = False
        self.fail_reads = False
        self.published = 0

    def add_entries(self, entries: list[bytes]) -> list[int]:
        if self.fail_writes:
            raise OSError("disk full")
        if any(e.startswith(b"BAD") for e in entries):
            raise FormatError("log.entry", "entry refused")
        out = []
        for entry in entries:
            if entry not in self.entries:
                self.entries.append(entry)
            out.append(self.entries.index(entry))
        return out

    def read(self, path: str) -> bytes | None:
        if self.fail_reads:
            raise RuntimeError("boom")
        return self.resources.get(path)

    def proof(self, index: int) -> bytes | None:
        if index < self.published:
            return f"c2sp.org/tlog-proof@v1\nindex {index}\n".encode()
        return None


@pytest.fixture()
def submitter() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@pytest.fixture()
def setup(submitter):
    fake = FakeLog()
    pub = submitter.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    subs = Submitters.from_config({"ci": base64.b64encode(pub).decode()},
                                  {"ci-token": hashlib.sha256(TOKEN.encode()).hexdigest()})
    app = create_app(fake, submitters=subs,
                     limits=Limits(max_entry_bytes=1024, proof_wait_timeout=0.3,
                                   proof_poll_interval=0.01, body_timeout=0.5))
    with serve_in_thread(app, header_timeout=0.5) as (host, port):
        yield fake, Client(host, port)


class Client:
    """requests against the live server, plus raw request lines (no client-side path
    normalisation, so traversal attempts reach the server as written)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.base = f"http://{host}:{port}"
        self.session = requests.Session()

    def get(self, path: str, **kw) -> requests.Response:
        return self.session.get(self.base + path, timeout=10, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.session.post(self.base + path, timeout=10, **kw)

    def raw(self, request: bytes) -> bytes:
        with socket.create_connection((self.host, self.port), timeout=10) as s:
            s.sendall(request)
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out

    def raw_get(self, path: str) -> tuple[int, bytes]:
        reply = self.raw(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                         .encode())
        head, _, body = reply.partition(b"\r\n\r\n")
        return int(head.split(b" ")[1]), body


def signed(key: Ed25519PrivateKey, entry: bytes) -> dict[str, str]:
    return {"Tlog-Signature": f"ci {sign_submission(key, entry)}"}


def test_checkpoint_served_with_short_max_age(setup) -> None:
    fake, client = setup
    r = client.get("/checkpoint")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["cache-control"] == "max-age=2"
    assert r.content == fake.resources["checkpoint"]


def test_tiles_are_immutable_and_bundles_gzip(setup) -> None:
    fake, client = setup
    r = client.get("/tile/0/000")
    assert r.status_code == 200 and r.content == bytes(32)
    assert "immutable" in r.headers["cache-control"]
    r = client.get("/tile/entries/000.p/2", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert r.content == fake.resources["tile/entries/000.p/2"]  # httpx decodes
    raw = client.get("/tile/entries/000.p/2", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert gzip.compress(raw.content)  # sanity


@pytest.mark.parametrize("path", [
    "/tile/0/001", "/tile/entries/001", "/tile/1/000.p/7",
])
def test_absent_resource_is_404(setup, path) -> None:
    _, client = setup
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("path", [
    "/../checkpoint", "/tile/../checkpoint", "/tile/0/../../etc/passwd", "/%2e%2e/checkpoint",
    "/tile/0/%30%30%30", "/tile/0/x000/001", "/tile/00/000", "/tile/0/0000",
    "/tile/entries/000.p/0", "/tile/entries/000.p/256", "/tile/entries/000.p/01",
    "/tile/0/000/", "//checkpoint", "/checkpoint/", "/etc/passwd", "/add/../checkpoint",
    "/tile/-1/000", "/tile/0/x001", "/tile/0/x1234/000", "/tile/data/000",
])
def test_unknown_or_traversal_paths_are_404(setup, path) -> None:
    _, client = setup
    status, body = client.raw_get(path)
    assert status == 404, path
    assert body == b"not found\n"


def test_canonical_resource_accepts_the_spec_examples() -> None:
    assert canonical_resource("/tile/0/x001/x234/067") == "tile/0/x001/x234/067"
    assert canonical_resource("/tile/entries/x001/x234/067.p/8") == "tile/entries/x001/x234/067.p/8"
    assert canonical_resource("/tile/1/x001/x000/067.p/255") == "tile/1/x001/x000/067.p/255"
    assert canonical_resource("/tile/0/\u0661\u0662\u0663") is None  # non-ASCII digits


def test_add_with_signature_returns_index(setup, submitter) -> None:
    _fake, client = setup
    for i, e in enumerate([b"one", b"two"]):
        r = client.post("/add", data=e, headers=signed(submitter, e))
        assert r.status_code == 200 and r.text == f"{i}\n"
    r = client.post("/add", data=b"one", headers=signed(submitter, b"one"))
    assert r.text == "0\n"  # duplicate: its existing index


def test_add_with_bearer_token(setup) -> None:
    _, client = setup
    r = client.post("/add", data=b"x", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.text == "0\n"


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": "Basic Y2k6eA=="},
    {"Tlog-Signature": "ci AAAA"},
    {"Tlog-Signature": "nobody " + base64.b64encode(bytes(64)).decode()},
    {"Tlog-Signature": "ci not-base64!"},
])
def test_unsigned_or_bad_credentials_are_403(setup, headers) -> None:
    fake, client = setup
    r = client.post("/add", data=b"entry", headers=headers)
    assert r.status_code == 403
    assert r.text.count("\n") == 1
    assert fake.entries == []


def test_signature_over_another_entry_is_403(setup, submitter) -> None:
    _, client = setup
    r = client.post("/add", data=b"entry", headers=signed(submitter, b"other"))
    assert r.status_code == 403


def test_oversized_body_is_413(setup, submitter) -> None:
    fake, client = setup
    big = b"x" * 1025
    assert client.post("/add", data=big, headers=signed(submitter, big)).status_code == 413

    def chunks():
        for _ in range(5):
            yield b"y" * 300

    r = client.post("/add", data=chunks(), headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 413
    assert fake.entries == []


@pytest.mark.parametrize(("body", "headers", "status"), [
    (b"", {"Authorization": f"Bearer {TOKEN}", "Content-Length": "0"}, 400),
    (b"BAD entry", {"Authorization": f"Bearer {TOKEN}"}, 400),
])
def test_malformed_is_400_one_line(setup, body, headers, status) -> None:
    _, client = setup
    r = client.post("/add", data=body, headers=headers)
    assert r.status_code == status
    assert r.text.endswith("\n") and r.text.count("\n") == 1


def test_concurrent_adds_with_one_refused_entry(setup) -> None:
    """Concurrent requests are batched; one refused entry fails only its own request."""
    fake, client = setup
    bodies = [b"good %d" % i for i in range(30)] + [b"BAD one"]
    statuses: dict[bytes, int] = {}

    def post(body: bytes) -> None:
        r = requests.post(client.base + "/add", data=body, timeout=10,
                          headers={"Authorization": f"Bearer {TOKEN}"})
        statuses[body] = r.status_code

    threads = [threading.Thread(target=post, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.pop(b"BAD one") == 400
    assert set(statuses.values()) == {200}
    assert sorted(fake.entries) == sorted(bodies[:-1])


def test_unknown_query_is_400(setup) -> None:
    _, client = setup
    r = client.post("/add?wait=forever", data=b"x", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 400


def test_wrong_method(setup) -> None:
    _, client = setup
    assert client.post("/checkpoint", data=b"x").status_code == 405
    assert client.get("/add").status_code == 404


def test_write_failure_is_503_and_reads_keep_working(setup) -> None:
    fake, client = setup
    fake.fail_writes = True
    r = client.post("/add", data=b"x", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 503 and "Traceback" not in r.text
    assert client.get("/checkpoint").status_code == 200


def test_read_failure_is_one_line_503(setup) -> None:
    fake, client = setup
    fake.fail_reads = True
    r = client.get("/checkpoint")
    assert r.status_code == 503 and r.text.count("\n") == 1


def test_wait_for_proof(setup) -> None:
    fake, client = setup
    fake.published = 1
    r = client.post("/add?wait=proof", data=b"x", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    assert r.text.startswith("c2sp.org/tlog-proof@v1\nindex 0\n")
    r = client.post("/add?wait=proof", data=b"y", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 504 and r.headers["tlog-index"] == "1"


def test_bad_submitter_config_is_trust_config_error() -> None:
    with pytest.raises(TrustConfigError):
        Submitters.from_config({"a": "AAAA"}, {})
    with pytest.raises(TrustConfigError):
        Submitters.from_config({}, {"t": "abcd"})
    with pytest.raises(TrustConfigError):
        Limits(max_entry_bytes=70000)


def test_slow_client_gets_408_and_others_are_served(setup) -> None:
    """A client that sends its headers and then stalls the body does not hold the server:
    it is cut off with 408 while other requests are answered."""
    fake, client = setup
    slow = socket.create_connection((client.host, client.port))
    slow.sendall(b"POST /add HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                 b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\nabc")
    answers: list[bytes] = []
    t = threading.Thread(target=lambda: answers.append(slow.recv(4096)))
    t.start()
    status, _ = client.raw_get("/checkpoint")
    assert status == 200
    t.join(timeout=10)
    slow.close()
    assert answers and answers[0].startswith(b"HTTP/1.1 408"), answers
    assert fake.entries == []


def test_slow_headers_are_cut_off(setup) -> None:
    """Slowloris: a client that never finishes its headers is disconnected."""
    _, client = setup
    with socket.create_connection((client.host, client.port), timeout=10) as s:
        s.sendall(b"GET /checkpoint HTTP/1.1\r\nHost: x\r\n")
        assert s.recv(100) == b""  # closed by the server, no answer
    assert client.raw_get("/checkpoint")[0] == 200


def test_garbage_request_line_does_not_stop_the_server(setup) -> None:
    _, client = setup
    reply = client.raw(b"\x00\x01garbage\r\n\r\n")
    assert b"Traceback" not in reply
    assert client.raw_get("/checkpoint")[0] == 200


# --- hostile input (issue 16 part 8): never a 5xx, a traceback or unbounded memory ---------

def _status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0


@pytest.mark.parametrize("method", [b"GET", b"OPTIONS", b"HEAD", b"POST"])
def test_asterisk_target_is_404(setup, method) -> None:
    """``GET *`` reached the 404 handler with the wrong signature: 500."""
    _, client = setup
    reply = client.raw(method + b" * HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                       b"Connection: close\r\n\r\n")
    assert _status(reply) == 404, reply[:80]


def test_long_target_is_414(setup) -> None:
    """Path and query are capped (MAX_TARGET_BYTES), before any routing or path parsing."""
    _, client = setup
    for target in ("/tile/0/" + "x001/" * 2000 + "000", "/checkpoint?" + "a=b&" * 2000,
                   "/" + "a" * 5000):
        status, body = client.raw_get(target)
        assert status == 414, target[:40]
        assert body.count(b"\n") == 1
    assert client.raw_get("/checkpoint")[0] == 200


def test_index_of_thousands_of_groups_is_404_and_cheap(setup) -> None:
    """Under the target cap, an index path of more groups than a uint64 tree needs is 404
    without converting it (was quadratic: big-integer arithmetic per group)."""
    _, client = setup
    assert canonical_resource("/tile/0/" + "x001/" * 800 + "000") is None
    assert canonical_resource("/tile/0/x072/x057/x594/x037/x927/935") is not None
    status, _ = client.raw_get("/tile/entries/" + "x999/" * 800 + "999")
    assert status == 404


def test_oversized_header_is_431(setup) -> None:
    _, client = setup
    reply = client.raw(b"GET /checkpoint HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000
                       + b"\r\nConnection: close\r\n\r\n")
    assert _status(reply) == 431, reply[:80]
    assert reply.endswith(b"\n") and b"Traceback" not in reply


def test_too_many_header_fields_is_431(setup) -> None:
    _, client = setup
    fields = b"".join(b"X-%d: 1\r\n" % i for i in range(100))
    reply = client.raw(b"GET /checkpoint HTTP/1.1\r\nHost: x\r\n" + fields
                       + b"Connection: close\r\n\r\n")
    assert _status(reply) == 431, reply[:80]


def test_headers_at_the_limits_are_served(setup, submitter) -> None:
    """The caps do not refuse an ordinary request, nor a body past the head in one read."""
    _, client = setup
    headers = {f"X-{i}": "v" * 100 for i in range(40)}
    assert client.get("/checkpoint", headers=headers).status_code == 200
    entry = b"e" * 1000
    r = client.post("/add", data=entry, headers={**signed(submitter, entry), **headers})
    assert r.status_code == 200


def _rss() -> int:
    for line in open("/proc/self/status", encoding="ascii"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_header_flood_is_cut_off_and_memory_stays_bounded() -> None:
    """8 connections each sending a 32 MiB header took the server from 48 to 369 MiB: now
    each is refused (431, or closed) after MAX_HEAD_BYTES and one socket read, so the
    server's memory (this process: it runs in a thread) stays bounded."""
    app = create_app(FakeLog(), submitters=Submitters())
    n, size, chunk = 8, 32 << 20, b"a" * (64 << 10)
    with serve_in_thread(app, header_timeout=60) as (host, port):
        before = _rss()
        socks = [socket.create_connection((host, port), timeout=10) for _ in range(n)]
        sent = [0] * n
        refused = [False] * n

        def flood(i: int) -> None:
            s = socks[i]
            try:
                s.sendall(b"GET /checkpoint HTTP/1.1\r\nHost: x\r\nX-Flood: ")
                while sent[i] < size:
                    s.sendall(chunk)
                    sent[i] += len(chunk)
            except OSError:  # the server closed the connection
                refused[i] = True
                return
            try:
                refused[i] = _status(s.recv(100)) == 431
            except OSError:
                refused[i] = True

        threads = [threading.Thread(target=flood, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        grown = _rss() - before
        for s in socks:
            s.close()
    assert all(refused), sent
    assert max(sent) < size // 2, sent  # cut off early, not after reading it all
    assert grown < 64 << 20, f"server grew by {grown >> 20} MiB"
