"""Fetching over HTTP(S), the only place (with the log client) that imports ``requests``.

Everything else receives a :data:`Fetch` callable, so tests hand in fakes and offline mode
hands in nothing. :class:`HttpFetcher` adds timeouts, bounded retries with back-off on 429 and
5xx (honouring ``Retry-After``), and maps every transport failure to FetchError: unreachable
never means invalid (DESIGN.md error table). :class:`DiskCache` keeps fetched bytes by key.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from transparency_log.errors import FetchError


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
                last = f"{type(err).__name__}: {err}"
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
        delay = self.backoff * (2**attempt)
        if retry_after and retry_after.isdigit():
            delay = max(delay, min(float(retry_after), 60.0))
        self.sleep(delay)


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
