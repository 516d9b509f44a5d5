"""An attested ``requests`` session: verify a node before the first request, then talk only to
the TLS key its evidence is bound to (issue 7, "Python API"; docs/verification.md).

How the pinning works. A node serves HTTPS with a **self-signed** certificate whose public key
is the bundle's ``node_key`` (DER SubjectPublicKeyInfo). The certificate is not CA-verified:
the evidence is what vouches for the key. So:

1. :func:`fetch_node_bundle` POSTs a fresh nonce to ``/.well-known/attestlog/bundle`` and
   records the SPKI of the certificate the server presented on that connection;
2. :func:`verifier.pipeline.run_pipeline` verifies the bundle (evidence, binding of
   REPORT_DATA to the nonce and node key, log, measurements, policy);
3. ``tls.node_key``: only then is the recorded SPKI compared with the verified ``node_key``;
4. every later connection of the session goes through :class:`PinnedHTTPSConnection`, which
   checks the peer certificate's SPKI **right after the TLS handshake, before any request
   byte is written**, and refuses (:class:`NodeKeyMismatch`, connection closed) otherwise.

:class:`AttestedSession` does 1-3 before the first request, caches the accepted verdict for
at most ``max_age``, re-verifies after that (or after :meth:`AttestedSession.forget`), and
never sends a request — body or not — to a node it has not verified. Plain ``http://`` is
refused (there is no key to pin). The wall clock is a parameter (``clock``), like everywhere
outside the CLI: pass ``lambda: datetime.now(UTC)``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import InsecureRequestWarning
from urllib3.poolmanager import PoolManager

from attest.certificates import load_certificate
from attest.formats.bundle import MAX_BUNDLE_SIZE
from transparency_log.common.errors import FetchError, TrustConfigError, VerificationError
from transparency_log.common.http_fetch import network_reason
from verifier.pipeline import run_pipeline
from verifier.policy import Policy
from verifier.result import Result

__all__ = [
    "BUNDLE_PATH",
    "CHECK_TLS_KEY",
    "AttestedSession",
    "NodeBundle",
    "NodeKeyMismatch",
    "PinnedAdapter",
    "check_tls_key",
    "fetch_node_bundle",
    "peer_spki",
    "verify_node",
]

BUNDLE_PATH = "/.well-known/attestlog/bundle"
CHECK_TLS_KEY = "tls.node_key"
CHECK_FETCH = "node.fetch"
NONCE_SIZE = 32


class NodeKeyMismatch(VerificationError):
    """The TLS server's key is not the node key the evidence is bound to."""


def peer_spki(cert_der: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of a DER certificate."""
    cert = load_certificate(cert_der, check=CHECK_TLS_KEY, field="TLS certificate")
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


class PinnedHTTPSConnection(HTTPSConnection):
    """Checks the server's SPKI after the handshake, before anything is sent.

    Subclassed per adapter with ``pin`` (None: record only) and ``observer`` (called with the
    SPKI of every connection made).
    """

    pin: bytes | None = None
    observer: Callable[[bytes], None] | None = None

    def connect(self) -> None:
        super().connect()
        der = self.sock.getpeercert(binary_form=True) if self.sock is not None else None
        if not der:
            self.close()
            raise NodeKeyMismatch(CHECK_TLS_KEY, "the server presented no certificate",
                                  field="TLS certificate", want=self.pin)
        spki = peer_spki(der)
        if type(self).observer is not None:
            type(self).observer(spki)  # type: ignore[misc]
        if self.pin is not None:
            if spki != self.pin:
                self.close()
                raise NodeKeyMismatch(CHECK_TLS_KEY, "the TLS server's key is not the "
                                      "attested node key; nothing was sent",
                                      field="TLS SubjectPublicKeyInfo", got=spki, want=self.pin)
            self.is_verified = True  # by the pin, which is stronger than a CA here


class PinnedAdapter(HTTPAdapter):
    """An HTTPS adapter whose connections are :class:`PinnedHTTPSConnection` (no CA check)."""

    def __init__(self, pin: bytes | None, observer: Callable[[bytes], None] | None = None,
                 **kwargs: Any) -> None:
        self.pin = pin
        self.observer = observer
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        conn_cls = type("PinnedConnection", (PinnedHTTPSConnection,),
                        {"pin": self.pin, "observer": self.observer})
        pool_cls = type("PinnedPool", (HTTPSConnectionPool,), {"ConnectionCls": conn_cls})
        self.poolmanager = PoolManager(num_pools=connections, maxsize=maxsize, block=block,
                                       **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {"https": pool_cls}  # type: ignore[assignment]
        self.poolmanager.key_fn_by_scheme = dict(self.poolmanager.key_fn_by_scheme)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
             ) -> requests.Response:
        if not (request.url or "").lower().startswith("https://"):
            raise TrustConfigError(CHECK_TLS_KEY, "only https:// can be pinned", field="url",
                                   got=request.url)
        kwargs["verify"] = False  # the certificate is self-signed; the pin is the check
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureRequestWarning)
            return super().send(request, *args, **kwargs)


@dataclass(frozen=True)
class NodeBundle:
    """A bundle as served, and the SPKI of the TLS server that served it."""

    data: bytes
    server_spki: bytes


def _base(url: str) -> str:
    if not url.lower().startswith("https://"):
        raise TrustConfigError(CHECK_TLS_KEY, "a node URL must be https:// (the TLS key is what "
                               "the evidence binds)", field="url", got=url)
    return url.rstrip("/")


def fetch_node_bundle(url: str, nonce: bytes, *, timeout: float = 10.0) -> NodeBundle:
    """POST ``nonce`` (raw bytes, ``application/octet-stream``) to ``URL/.well-known/attestlog/
    bundle`` and return the CBOR bundle with the server's SPKI. FetchError when unreachable or
    not HTTP 200; the bundle is at most :data:`MAX_BUNDLE_SIZE` bytes."""
    seen: list[bytes] = []
    with requests.Session() as s:
        s.mount("https://", PinnedAdapter(None, seen.append))
        try:
            resp = s.post(_base(url) + BUNDLE_PATH, data=bytes(nonce), timeout=timeout,
                          headers={"Content-Type": "application/octet-stream",
                                   "Accept": "application/cbor"}, stream=True)
            try:
                body = resp.raw.read(MAX_BUNDLE_SIZE + 1, decode_content=True)
            finally:
                resp.close()
        except requests.RequestException as err:
            raise FetchError(CHECK_FETCH, f"node unreachable: {network_reason(err)}",
                             field=url) from None
    if resp.status_code != 200:
        raise FetchError(CHECK_FETCH, f"node answered HTTP {resp.status_code}",
                         field=url + BUNDLE_PATH, got=resp.status_code, want=200)
    if len(body) > MAX_BUNDLE_SIZE:
        raise FetchError(CHECK_FETCH, "bundle larger than the cap", field=url + BUNDLE_PATH,
                         want=f"<= {MAX_BUNDLE_SIZE} bytes")
    if len(set(seen)) != 1:
        raise NodeKeyMismatch(CHECK_TLS_KEY, "the bundle came over more than one TLS key",
                              field="TLS SubjectPublicKeyInfo", got=len(set(seen)), want=1)
    return NodeBundle(body, seen[0])


def check_tls_key(result: Result, server_spki: bytes) -> None:
    """``tls.node_key``: the server that served an *accepted* bundle holds its node key.

    Recorded in the result's transcript; on mismatch the result becomes refused.
    """
    t = result.transcript
    if not result.accepted or result.node_key is None:
        return
    if server_spki != result.node_key:
        err = NodeKeyMismatch(CHECK_TLS_KEY, "the TLS server's key is not the bundle's node key",
                              field="TLS SubjectPublicKeyInfo", got=server_spki,
                              want=result.node_key)
        t.failed(CHECK_TLS_KEY, str(err))
        t.error = err
        return
    t.passed(CHECK_TLS_KEY, "the TLS server holds the attested node key (pinned)")


def verify_node(url: str, policy: Policy, *, at: datetime, nonce: bytes | None = None,
                timeout: float = 10.0, **pipeline: Any) -> Result:
    """Fetch a bundle for ``nonce`` (fresh random 32 bytes by default), verify it with
    :func:`run_pipeline` (``pipeline``: trust, fetch, caches, checkpoint_store, ...) and
    check the TLS key. Returns the Result (accepted or refused); FetchError when unreachable."""
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    served = fetch_node_bundle(url, nonce, timeout=timeout)
    result = run_pipeline(served.data, policy, at=at, expected_nonce=nonce, **pipeline)
    check_tls_key(result, served.server_spki)
    return result


class AttestedSession(requests.Session):
    """A ``requests.Session`` bound to one node, which it verifies before the first request.

    ``base_url``: the node (``https://host:port``); requests to other origins are refused.
    ``policy``, ``clock`` (returns an aware datetime), ``max_age``: how long an accepted
    verdict is reused; ``nonce_source``: fresh nonces (32 bytes each); ``verify_kwargs``:
    passed to :func:`run_pipeline` (trust, fetch, caches, checkpoint_store, revocations, ...).
    A refusal raises the pipeline's error (with ``err.result``) and sends nothing.
    """

    def __init__(self, base_url: str, policy: Policy, *, clock: Callable[[], datetime],
                 max_age: timedelta = timedelta(minutes=5), timeout: float = 10.0,
                 nonce_source: Callable[[int], bytes] = os.urandom,
                 **verify_kwargs: Any) -> None:
        super().__init__()
        self.base_url = _base(base_url)
        self.policy = policy
        self.clock = clock
        self.max_age = max_age
        self.timeout = timeout
        self.nonce_source = nonce_source
        self.verify_kwargs = verify_kwargs
        self.result: Result | None = None
        self._verified_at: datetime | None = None
        self.mount("https://", _Refuse())
        self.mount("http://", _Refuse())
        self.mount(self.base_url + "/", _Refuse())

    def _replace(self, prefix: str, adapter: HTTPAdapter) -> None:
        old = self.adapters.get(prefix)
        self.mount(prefix, adapter)
        if old is not None:
            old.close()  # its pooled connections were pinned to the previous verdict

    def forget(self) -> None:
        """Drop the cached verdict and its pinned connections: the next request re-verifies."""
        self.result = None
        self._verified_at = None
        self._replace(self.base_url + "/", _Refuse())

    def verify_node(self) -> Result:
        """Verify the node now; on acceptance pin its key for this session's connections."""
        self.forget()
        now = self.clock()
        result = verify_node(self.base_url, self.policy, at=now, timeout=self.timeout,
                             nonce=self.nonce_source(NONCE_SIZE), **self.verify_kwargs)
        if not result.accepted or result.node_key is None:
            err = result.error or NodeKeyMismatch(CHECK_TLS_KEY, "refused")
            err.result = result  # type: ignore[attr-defined]
            raise err
        self.result = result
        self._verified_at = now
        self._replace(self.base_url + "/", PinnedAdapter(result.node_key))
        return result

    def _fresh(self) -> bool:
        if self.result is None or self._verified_at is None:
            return False
        age = self.clock() - self._verified_at
        return timedelta(0) <= age <= self.max_age

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:  # type: ignore[override]
        text = url.decode() if isinstance(url, bytes) else url
        if not (text == self.base_url or text.startswith(self.base_url + "/")):
            raise TrustConfigError(CHECK_TLS_KEY, "this attested session is bound to one node",
                                   field="url", got=text, want=self.base_url + "/...")
        if not self._fresh():
            self.verify_node()
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


class _Refuse(HTTPAdapter):
    """Mounted for anything not (yet) pinned: refuses to send."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
             ) -> requests.Response:
        raise NodeKeyMismatch(CHECK_TLS_KEY, "no verified node for this URL; nothing was sent",
                              field="url", got=request.url)
