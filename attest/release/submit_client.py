"""Submitting a release or revocation entry to the log over HTTP (``tlog serve``'s write path,
docs/formats.md "Log service HTTP API").

``POST <log>/add?wait=proof`` with the entry as the body, authenticated either by
``Authorization: Bearer <token>`` or by ``Tlog-Signature: <submitter> <base64 Ed25519
signature over "attestlog/tlog-submit/v1\\n" || entry>``. The log answers once the entry is
in a witness-cosigned published checkpoint, with a c2sp.org/tlog-proof. Errors: 403 is a
TrustConfigError (``publish.auth``: wrong credentials), 400 a FormatError (``publish.entry``:
the log refused the entry), anything else (unreachable, 5xx, 504 proof wait timed out) a
FetchError (``publish.fetch``).

The wait can be long (the log answers only once its witnesses have cosigned): ``progress``,
if given, is called every ``progress_every`` seconds with the seconds waited so far, so a
command can say that it is waiting (on stderr; its stdout stays the command's output).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from transparency_log.common.errors import FetchError, FormatError, TrustConfigError
from transparency_log.common.http_fetch import network_reason
from transparency_log.serve.server import sign_submission

__all__ = ["SubmitAuth", "submit_entry"]


@dataclass(frozen=True)
class SubmitAuth:
    """A bearer token, or a submitter name and its Ed25519 key."""

    token: str | None = None
    submitter: str | None = None
    key: Ed25519PrivateKey | None = None

    def headers(self, entry: bytes) -> dict[str, str]:
        if self.token is not None:
            return {"Authorization": f"Bearer {self.token}"}
        if self.submitter is not None and self.key is not None:
            return {"Tlog-Signature": f"{self.submitter} {sign_submission(self.key, entry)}"}
        raise TrustConfigError("publish.auth", "no submitter credentials",
                               want="a bearer token, or a submitter name and key")


def _with_progress(call: Callable[[], requests.Response],
                   progress: Callable[[float], None] | None,
                   every: float) -> requests.Response:
    """``call()``, reporting the seconds waited every ``every`` seconds while it runs."""
    if progress is None:
        return call()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="submit") as pool:
        pending = pool.submit(call)
        while True:
            try:
                return pending.result(timeout=every)
            except FutureTimeout:
                progress(time.monotonic() - started)


def submit_entry(log_url: str, entry: bytes, auth: SubmitAuth, *, timeout: float = 90.0,
                 session: requests.Session | None = None,
                 progress: Callable[[float], None] | None = None,
                 progress_every: float = 5.0) -> bytes:
    """Add ``entry`` and wait for its tlog-proof (the proof's bytes; verify it yourself)."""
    url = log_url.rstrip("/") + "/add?wait=proof"
    http = session or requests.Session()
    headers = {"Content-Type": "application/octet-stream", **auth.headers(entry)}
    try:
        reply = _with_progress(lambda: http.post(url, data=entry, timeout=timeout,
                                                 headers=headers), progress, progress_every)
    except requests.RequestException as err:
        raise FetchError("publish.fetch", f"log unreachable: {network_reason(err)}",
                         field=url) from None
    text = reply.text.strip()[:200]
    if reply.status_code == 504:
        raise FetchError("publish.fetch", "the log accepted the entry but its witnesses did not "
                         "cosign a checkpoint holding it in time (HTTP 504): check that the "
                         "witnesses are up (tlog serve logs which one fails), then publish "
                         f"again; {text}", field=url, got=reply.status_code)
    if reply.status_code == 200:
        return reply.content
    if reply.status_code == 403:
        raise TrustConfigError("publish.auth", f"the log refused our credentials: {text}",
                               field="submitter", got=reply.status_code)
    if reply.status_code in (400, 413):
        raise FormatError("publish.entry", f"the log refused the entry: {text}",
                          field="entry", got=reply.status_code)
    raise FetchError("publish.fetch", f"the log answered HTTP {reply.status_code}: {text}",
                     field=url, got=reply.status_code)
