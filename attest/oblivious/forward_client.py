"""The one HTTP client of the router and the relay: forwards a body, reads a bounded answer.

It sends only the headers it is given (plus requests' fixed ``User-Agent``, ``Accept``,
``Accept-Encoding`` and ``Connection``, the same for every client), never cookies (the
jar refuses them all, so an upstream cannot plant a value that follows every request), and
ignores proxy settings from the environment. The caller runs it in a worker thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy

import requests

from transparency_log.common.errors import FetchError

CHECK = "oblivious.forward"


@dataclass(frozen=True)
class Upstream:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str]


class Forwarder:
    """``ca_file``: the PEM trust anchors for HTTPS upstreams (the router's ``nodes_ca_file``:
    nodes serve self-signed certificates for their attested keys); None: the system's."""

    def __init__(self, timeout: float, max_response_bytes: int, *,
                 ca_file: str | None = None) -> None:
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.ca_file = ca_file
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            if self.ca_file is not None:
                session.verify = self.ca_file
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            self._local.session = session
        return session

    def send(self, method: str, url: str, body: bytes | None,
             headers: dict[str, str]) -> Upstream:
        """One request upstream; FetchError (one line, no body) when it cannot complete."""
        try:
            with self._session().request(method, url, data=body, headers=headers,
                                         timeout=self.timeout, stream=True,
                                         allow_redirects=False) as resp:
                chunks, total = [], 0
                for chunk in resp.iter_content(64 * 1024):
                    total += len(chunk)
                    if total > self.max_response_bytes:
                        raise FetchError(CHECK, "upstream answer over the limit",
                                         field="response", want=self.max_response_bytes)
                    chunks.append(chunk)
                return Upstream(resp.status_code, resp.headers.get("content-type", ""),
                                b"".join(chunks), dict(resp.headers))
        except requests.RequestException as err:
            raise FetchError(CHECK, f"upstream unreachable: {type(err).__name__}",
                             field="upstream") from None
