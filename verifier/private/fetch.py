"""What :class:`verifier.private.PrivateClient` gets from outside (issue 13): the node
directory, each node's evidence bundle, the node's attested HPKE key configuration, and a
Privacy Pass token. Each is a small callable so that tests and deployments can swap it.

- :class:`KeyConfigSource`: the OHTTP key configuration (RFC 9458 §3) that an **accepted**
  verification result binds; the default is :func:`verifier.ohttp_keys.attested_key_config`
  (``binding.ohttp_keys`` when the evidence binds none: fail closed).
- :class:`BundleSource`: a node's evidence bundle for a nonce the client drew
  (:func:`http_bundle_source` POSTs it to the directory's ``bundle_url``).
- :class:`TokenSource`: one token for the directory's challenge (:class:`IssuerTokens`:
  RFC 9578 issuance with the account's bearer token).

HTTP here sends no cookie and no ``User-Agent`` (a fresh connection each call, requests'
default ``User-Agent`` removed), so nothing stable rides along (issue 13).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Protocol

import requests

from attest.formats.bundle import MAX_BUNDLE_SIZE
from attest.formats.node_directory import NodeEntry
from attest.formats.ohttp import KeyConfig
from attest.formats.privacy_pass_http import (
    TOKEN_REQUEST_MEDIA_TYPE,
    TOKEN_RESPONSE_MEDIA_TYPE,
    IssuerDirectory,
)
from attest.private import privacy_pass as pp
from attest.private.hpke import Rng
from transparency_log.common.errors import FetchError
from transparency_log.common.http_fetch import network_reason
from verifier.requests import PinnedAdapter
from verifier.result import Result

__all__ = ["CHECK_FETCH", "CHECK_TOKEN", "BundleSource", "IssuerTokens", "KeyConfigSource",
           "TokenSource", "http", "http_bundle_source"]

CHECK_FETCH = "private.fetch"
CHECK_TOKEN = "private.token"  # noqa: S105 (a check id)
MAX_ANSWER = 16 * 1024 * 1024 + 4096  # the largest padding bucket, and OHTTP's overhead
_NO_UA = {"User-Agent": None}  # requests drops a header set to None


class KeyConfigSource(Protocol):
    """The HPKE key configuration an accepted :class:`Result` binds; raises a
    VerificationError (``binding.ohttp_keys``) when it binds none."""

    def __call__(self, result: Result) -> KeyConfig: ...


class BundleSource(Protocol):
    """The evidence bundle ``entry`` serves for ``nonce`` (FetchError when it cannot)."""

    def __call__(self, entry: NodeEntry, nonce: bytes) -> bytes: ...


TokenSource = Callable[[bytes], bytes]  # TokenChallenge bytes -> encoded Token


def http(method: str, url: str, *, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 30.0,
         cap: int = MAX_ANSWER, check: str = CHECK_FETCH,
         self_authenticating: bool = False) -> requests.Response:
    """One request on a fresh connection, no cookies, no User-Agent; the body read up to
    ``cap`` bytes into ``resp._content``. FetchError (``check``) when unreachable or over.

    ``self_authenticating``: the answer proves itself (an evidence bundle answering a fresh
    nonce), so an HTTPS server's certificate is not checked against CAs: a node's certificate
    is self-signed for the key its evidence binds (verifier/requests.py, as `verifier node`).
    """
    merged: dict[str, str | None] = {**_NO_UA, **(headers or {})}
    try:
        with requests.Session() as s:
            if self_authenticating:
                s.mount("https://", PinnedAdapter(None))
            resp = s.request(method, url, data=body, headers=merged, timeout=timeout,
                             stream=True, allow_redirects=False)
            try:
                content = resp.raw.read(cap + 1, decode_content=True)
            finally:
                resp.close()
    except requests.RequestException as err:
        raise FetchError(check, f"unreachable: {network_reason(err)}", field=url) from None
    if len(content) > cap:
        raise FetchError(check, "answer larger than the cap", field=url, want=f"<= {cap}")
    resp._content = content
    return resp


def _ok(resp: requests.Response, url: str, check: str, media_type: str | None = None
        ) -> bytes:
    if resp.status_code != 200:
        first = resp.content[:200].decode("utf-8", "replace").splitlines()
        raise FetchError(check, f"HTTP {resp.status_code}" + (f": {first[0]}" if first else ""),
                         field=url, got=resp.status_code, want=200)
    got = resp.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type is not None and got != media_type:
        raise FetchError(check, "unexpected Content-Type", field=url, got=got, want=media_type)
    return resp.content


def get_ok(url: str, *, timeout: float = 30.0, cap: int = MAX_ANSWER,
           check: str = CHECK_FETCH) -> bytes:
    """GET ``url`` and return the body of a 200 answer (FetchError otherwise)."""
    return _ok(http("GET", url, timeout=timeout, cap=cap, check=check), url, check)


def http_bundle_source(timeout: float = 10.0) -> BundleSource:
    """POST the nonce to the entry's ``bundle_url`` (as ``verifier node`` does) and return
    the bundle. Every node in the directory is asked, so asking reveals no choice."""

    def fetch(entry: NodeEntry, nonce: bytes) -> bytes:
        resp = http("POST", entry.bundle_url, body=bytes(nonce), timeout=timeout,
                    cap=MAX_BUNDLE_SIZE, headers={"Content-Type": "application/octet-stream",
                                                  "Accept": "application/cbor"},
                    self_authenticating=True)
        return _ok(resp, entry.bundle_url, CHECK_FETCH)

    return fetch


class IssuerTokens:
    """RFC 9578 issuance: the issuer directory (``directory_url``), a TokenRequest under its
    current key with ``Authorization: Bearer <account token>``, the finalized token. The
    issuer sees the account and a blinded message, never the token (RFC 9474 §7.2)."""

    def __init__(self, directory_url: str, account_token: str, *, rng: Rng = os.urandom,
                 clock: Callable[[], float] = time.time, timeout: float = 30.0) -> None:
        self.directory_url = directory_url
        self._account = account_token
        self._rng = rng
        self._clock = clock
        self._timeout = timeout

    def __repr__(self) -> str:  # never the account token
        return f"IssuerTokens({self.directory_url!r})"

    def __call__(self, challenge: bytes) -> bytes:
        directory = IssuerDirectory.decode(get_ok(self.directory_url, timeout=self._timeout,
                                                  cap=1 << 20, check=CHECK_TOKEN))
        key = pp.select_token_key(directory, now=int(self._clock()))
        request, pending = pp.Client(key).begin(challenge, self._rng)
        url = directory.issuer_request_uri
        resp = http("POST", url, body=request.encode(), timeout=self._timeout, cap=4096,
                    check=CHECK_TOKEN,
                    headers={"Content-Type": TOKEN_REQUEST_MEDIA_TYPE,
                             "Authorization": f"Bearer {self._account}"})
        return pending.finalize(_ok(resp, url, CHECK_TOKEN, TOKEN_RESPONSE_MEDIA_TYPE)).encode()
