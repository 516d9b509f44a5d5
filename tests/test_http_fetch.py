"""The shared fetcher against a local fake service: retries, 429 back-off, errors, cache."""

from __future__ import annotations

import pytest

from attest.simulate.fake_service import FakeService, serve
from transparency_log.common.errors import FetchError
from transparency_log.common.http_fetch import DiskCache, HttpFetcher


def test_fetch_ok_404_and_retry_after_429() -> None:
    calls = {"n": 0}

    def flaky(method: str, target: str, body: bytes):
        calls["n"] += 1
        if calls["n"] < 3:
            return 429, {"Retry-After": "1"}, b""
        return 200, {"X-Chain": "abc"}, b"payload"

    slept: list[float] = []
    fetch = HttpFetcher(retries=3, backoff=0.01, sleep=slept.append)
    with serve(FakeService({"/flaky": flaky, "/ok": (200, {}, b"hello")})) as base:
        assert fetch(base + "/ok").body == b"hello"
        resp = fetch(base + "/flaky?x=1")
        assert resp.body == b"payload" and resp.header("x-chain") == "abc"
        assert slept == [1.0, 1.0]
        assert fetch(base + "/missing").status == 404


def test_fetch_gives_up_with_fetch_error() -> None:
    fetch = HttpFetcher(retries=1, backoff=0.0, sleep=lambda s: None)
    with serve(FakeService({"/down": (503, {}, b"")})) as base:
        with pytest.raises(FetchError) as info:
            fetch(base + "/down")
    assert info.value.check == "fetch.unreachable"
    with pytest.raises(FetchError):
        HttpFetcher(retries=0, timeout=0.5)("http://127.0.0.1:9/nothing-listens")


def test_fetch_refuses_oversized_bodies() -> None:
    fetch = HttpFetcher(max_bytes=10)
    with serve(FakeService({"/big": (200, {}, b"x" * 100)})) as base:
        with pytest.raises(FetchError):
            fetch(base + "/big")


def test_disk_cache_roundtrip(tmp_path) -> None:
    cache = DiskCache(tmp_path)
    assert cache.get("k") is None
    cache.put("k", b"v")
    assert cache.get("k") == b"v"
