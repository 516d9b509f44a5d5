"""The log's HTTP service (``tlog serve``): the C2SP tlog-tiles read path and an
authenticated write path, on Starlette.

Read path (C2SP tlog-tiles, "Checkpoints and tiles"):

- ``GET /checkpoint``: the latest *published* (witness-cosigned) checkpoint, ``text/plain``,
  ``Cache-Control: max-age=<a few seconds>``.
- ``GET /tile/<L>/<N>[.p/<W>]`` and ``GET /tile/entries/<N>[.p/<W>]``: hash tiles and entry
  bundles, ``Cache-Control: public, max-age=31536000, immutable`` (a path's contents never
  change, partial tiles included). Entry bundles are gzip-encoded when the client accepts it.

Paths are matched strictly against the canonical encoding (``x``-prefixed 3-digit groups, no
leading ``x000`` group, decimal ``L`` and ``W`` without leading zeros, ``1 <= W <= 255``).
Anything else, percent-encoded bytes and ``..`` included, is 404: there is no filesystem path
built from unvalidated input.

Write path: ``POST /add`` with the entry as the body. The caller is authenticated by one of

- ``Authorization: Bearer <token>`` (a CI token; the server holds only SHA-256 of tokens), or
- ``Tlog-Signature: <submitter name> <base64 Ed25519 signature>`` over
  ``b"attestlog/tlog-submit/v1\\n" || entry`` (:data:`SUBMIT_CONTEXT`), by a submitter key
  listed in the log's config.

It answers ``200`` with the index as decimal text once the entry is durable (the log's
``add_entries`` MUST NOT return earlier; concurrent requests are batched into one call), or
with ``?wait=proof`` a c2sp.org/tlog-proof once the entry is in a published checkpoint.
Errors are one ``text/plain`` line: 400 malformed, 403 missing or bad credentials, 404
unknown path, 405 wrong method, 408 body too slow, 413 body over the limit, 414 / 431
request target / head over its limit (asgi_serving), 503 when the log cannot accept writes
(reads keep being served), 504 when a proof wait times out. Never a 500 with a traceback.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gzip
import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from transparency_log.common.asgi_serving import BodyError, read_body, text_response
from transparency_log.common.errors import FormatError, TrustConfigError
from transparency_log.common.throttled_log import ThrottledLog, one_line
from transparency_log.core import tiles
from transparency_log.serve.explorer import CONTENT_SECURITY_POLICY

log = logging.getLogger("transparency_log.serve.server")

SUBMIT_CONTEXT = b"attestlog/tlog-submit/v1\n"
"""Domain separation for submitter signatures: they sign ``SUBMIT_CONTEXT || entry``."""

MAX_ENTRY_SIZE = tiles.MAX_ENTRY_SIZE
"""C2SP tlog-tiles entry bundles frame each entry with a big-endian uint16 length."""

IMMUTABLE = "public, max-age=31536000, immutable"
EXPLORER_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
}

# C2SP tlog-tiles: N is a sequence of 3-digit groups, all but the last prefixed with "x";
# a canonical index has no leading all-zero group. W is 1..255 without leading zeros.
# ASCII digits only ([0-9], not \d, which also matches other scripts' digits). At most
# tiles.MAX_INDEX_GROUPS groups: no tile index of a log of < 2**64 entries needs more.
_INDEX = (r"(?:x(?!000)[0-9]{3}/(?:x[0-9]{3}/)"
          rf"{{0,{tiles.MAX_INDEX_GROUPS - 2}}})?[0-9]{{3}}")
_WIDTH = r"(?:\.p/(?P<width>[1-9][0-9]?|1[0-9][0-9]|2[0-4][0-9]|25[0-5]))?"
_TILE_RE = re.compile(rf"tile/(?P<level>0|[1-9][0-9]?)/(?P<index>{_INDEX}){_WIDTH}")
_ENTRIES_RE = re.compile(rf"tile/entries/(?P<index>{_INDEX}){_WIDTH}")


class ServedLog(Protocol):
    """What the server needs from a log. Implementations are synchronous; the server calls
    them from a worker thread.

    - ``add_entries`` MUST NOT return until the entries are durably sequenced; it returns
      their indexes (the existing one for a duplicate). It raises FormatError for an
      unacceptable entry (then nothing of the call is stored) and anything else when the
      log cannot take writes. The server batches concurrent requests into one call.
    - ``read`` returns the bytes of a tlog-tiles resource by its canonical path
      (``checkpoint``, ``tile/0/x001/234``, ``tile/entries/000.p/5``) or None if absent.
    - ``proof`` returns a c2sp.org/tlog-proof for ``index`` against the latest published
      checkpoint, or None while the entry is not yet in one.
    """

    def add_entries(self, entries: Sequence[bytes]) -> list[int]: ...

    def read(self, path: str) -> bytes | None: ...

    def proof(self, index: int) -> bytes | None: ...


@dataclass(frozen=True)
class Limits:
    """Request limits of the server (all in bytes or seconds)."""

    max_entry_bytes: int = MAX_ENTRY_SIZE
    body_timeout: float = 10.0
    checkpoint_max_age: int = 2
    proof_wait_timeout: float = 30.0
    proof_poll_interval: float = 0.05

    def __post_init__(self) -> None:
        if not 0 < self.max_entry_bytes <= MAX_ENTRY_SIZE:
            raise TrustConfigError("server.limits", "entry limit out of range",
                                   field="max_entry_bytes", got=self.max_entry_bytes,
                                   want=f"1..{MAX_ENTRY_SIZE}")


class AuthError(Exception):
    """The request carries no valid credential (answered 403)."""


@dataclass(frozen=True)
class Submitters:
    """Who may add entries: Ed25519 submitter keys by name and SHA-256 hashes of tokens."""

    keys: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)
    token_sha256: Mapping[bytes, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, keys: Mapping[str, str], tokens: Mapping[str, str]) -> Submitters:
        """``keys``: name -> base64 raw Ed25519 public key; ``tokens``: name -> hex SHA-256
        of the bearer token. Bad values are TrustConfigError."""
        parsed: dict[str, Ed25519PublicKey] = {}
        for name, b64 in keys.items():
            try:
                raw = base64.b64decode(b64, validate=True)
                parsed[name] = Ed25519PublicKey.from_public_bytes(raw)
            except (binascii.Error, ValueError) as err:
                raise TrustConfigError("server.submitters", "bad submitter key",
                                       field=name, got=b64, want="base64 of 32 bytes") from err
        hashes: dict[bytes, str] = {}
        for name, hexhash in tokens.items():
            try:
                digest = bytes.fromhex(hexhash)
            except ValueError:
                digest = b""
            if len(digest) != 32:
                raise TrustConfigError("server.submitters", "bad token hash", field=name,
                                       got=hexhash, want="64 hex digits (SHA-256)")
            hashes[digest] = name
        return cls(parsed, hashes)

    def authenticate(self, authorization: str | None, signature: str | None,
                     entry: bytes) -> str:
        """The submitter's name, or AuthError. Constant-time token comparison."""
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise AuthError("unsupported Authorization scheme")
            digest = hashlib.sha256(token.strip().encode()).digest()
            for known, name in self.token_sha256.items():
                if hmac.compare_digest(known, digest):
                    return name
            raise AuthError("unknown bearer token")
        if signature is not None:
            name, _, b64 = signature.strip().partition(" ")
            key = self.keys.get(name)
            if key is None:
                raise AuthError("unknown submitter")
            try:
                sig = base64.b64decode(b64, validate=True)
                key.verify(sig, SUBMIT_CONTEXT + entry)
            except (binascii.Error, ValueError, InvalidSignature) as err:
                raise AuthError("bad submitter signature") from err
            return name
        raise AuthError("missing credentials (Authorization or Tlog-Signature)")


def sign_submission(private_key: Ed25519PrivateKey, entry: bytes) -> str:
    """The base64 signature part of the ``Tlog-Signature`` header for ``entry``."""
    return base64.b64encode(private_key.sign(SUBMIT_CONTEXT + entry)).decode()


def canonical_resource(path: str) -> str | None:
    """The tlog-tiles resource a request path names, or None (strict: see module doc)."""
    if not path.startswith("/"):
        return None
    rest = path[1:]
    if rest == "checkpoint":
        return rest
    if _TILE_RE.fullmatch(rest) or _ENTRIES_RE.fullmatch(rest):
        return rest
    return None


def create_app(served: ServedLog, *, submitters: Submitters, limits: Limits | None = None,
               lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
               explorer: Mapping[str, tuple[bytes, str]] | None = None,
               ) -> Starlette:
    """The log's ASGI app. ``served`` is the log; ``lifespan`` runs background work (the
    publisher) for the server's lifetime; ``explorer`` is the log explorer's files by name
    (transparency_log.serve.explorer.explorer_assets), served at ``/`` and ``/<name>``."""
    lim = limits or Limits()
    batcher = _AddBatcher(served)
    throttled = ThrottledLog(log)
    pages = dict(explorer or {})
    if "index.html" in pages:
        pages[""] = pages["index.html"]

    async def read(request: Request) -> Response:
        raw = request.scope.get("raw_path", b"").split(b"?", 1)[0]
        path = raw.decode("ascii", "replace")
        if path.startswith("/") and path[1:] in pages:  # an allow-list of exact names
            body, media = pages[path[1:]]
            return Response(body, media_type=media, headers=EXPLORER_HEADERS)
        resource = canonical_resource(path)
        if resource is None:
            return text_response(404, "not found")
        try:
            body = await run_in_threadpool(served.read, resource)
        except Exception as err:  # storage trouble: say so in one line, keep serving
            throttled.error("read", f"read {resource} failed: {one_line(err)}")
            return text_response(503, "log storage unavailable")
        if body is None:
            return text_response(404, "not found")
        if resource == "checkpoint":
            return Response(body, media_type="text/plain; charset=utf-8",
                            headers={"Cache-Control": f"max-age={lim.checkpoint_max_age}"})
        headers = {"Cache-Control": IMMUTABLE}
        if resource.startswith("tile/entries/"):
            headers["Vary"] = "Accept-Encoding"
            if "gzip" in request.headers.get("accept-encoding", ""):
                body = gzip.compress(body, compresslevel=5, mtime=0)
                headers["Content-Encoding"] = "gzip"
        return Response(body, media_type="application/octet-stream", headers=headers)

    async def add(request: Request) -> Response:
        wait = request.query_params.get("wait")
        if wait not in (None, "proof") or set(request.query_params) - {"wait"}:
            return text_response(400, "unknown query parameter (only wait=proof)")
        try:
            entry = await read_body(request, lim.max_entry_bytes, lim.body_timeout)
        except BodyError as err:
            return err.response()
        if not entry:
            return text_response(400, "empty entry")
        try:
            submitters.authenticate(request.headers.get("authorization"),
                                    request.headers.get("tlog-signature"), entry)
        except AuthError as err:
            return text_response(403, str(err))
        try:
            index = await batcher.add(entry)
        except FormatError as err:
            return text_response(400, str(err))
        except Exception as err:  # disk full, database down: one line, rate-limited
            throttled.error("add", f"add refused, the log cannot take writes: {one_line(err)}")
            return text_response(503, "log cannot accept entries now; retry later",
                         {"Retry-After": "1"})
        if wait is None:
            return text_response(200, str(index))
        return await _wait_for_proof(served, index, lim)

    async def not_found(request: Request, exc: Exception) -> Response:
        return text_response(404, "not found")

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled %s on %s: %s", type(exc).__name__, request.url.path, exc)
        return text_response(500, "internal error")

    routes = [
        Route("/add", add, methods=["POST"]),
        Route("/{path:path}", read, methods=["GET", "HEAD"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={404: not_found, Exception: server_error},
        lifespan=lifespan,
    )
    return app


class _AddBatcher:
    """Group commit at the HTTP layer: requests that arrive while a batch is being made
    durable wait together and go to the log in the next single ``add_entries`` call, so the
    event loop hands one batch, not one request, to a worker thread."""

    def __init__(self, served: ServedLog) -> None:
        self.served = served
        self.pending: list[tuple[bytes, asyncio.Future[int]]] = []
        self.running = False

    async def add(self, entry: bytes) -> int:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.pending.append((entry, future))
        if not self.running:
            self.running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                await self._commit(batch)
        finally:
            self.running = False

    async def _commit(self, batch: list[tuple[bytes, asyncio.Future[int]]]) -> None:
        try:
            indexes = await run_in_threadpool(self.served.add_entries, [e for e, _ in batch])
        except FormatError as err:
            if len(batch) == 1:
                _fail(batch, err)
                return
            for one in batch:  # find the refused entry; the others still go in
                await self._commit([one])
            return
        except Exception as err:
            _fail(batch, err)
            return
        for (_, future), index in zip(batch, indexes, strict=True):
            if not future.done():
                future.set_result(index)


def _fail(batch: list[tuple[bytes, asyncio.Future[int]]], err: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(err)


async def _wait_for_proof(served: ServedLog, index: int, lim: Limits) -> Response:
    """Poll the log until ``index`` is in a published checkpoint, then answer its proof."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + lim.proof_wait_timeout
    while True:
        proof = await run_in_threadpool(served.proof, index)
        if proof is not None:
            return Response(proof, media_type="text/plain; charset=utf-8",
                            headers={"Tlog-Index": str(index)})
        if loop.time() >= deadline:
            return text_response(504, f"entry {index} is durable, not yet published; retry",
                                 {"Tlog-Index": str(index)})
        await asyncio.sleep(lim.proof_poll_interval)
