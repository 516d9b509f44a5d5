"""``attest relay``: an Oblivious HTTP relay resource (RFC 9458 §2, §6.2, §7) in front of one
router.

- ``POST /nodes/<id>`` with a ``message/ohttp-req`` body: forwarded to
  ``<router>/nodes/<id>``, the body byte for byte. The relay builds the forwarded request
  from scratch: ``Content-Type: message/ohttp-req`` and, when the client sent one, its
  ``Authorization`` if (and only if) its scheme is ``PrivateToken`` (an anonymous,
  single-use token: RFC 9577 §2.2). Nothing else goes on: no address (no ``Forwarded`` /
  ``X-Forwarded-For`` / ``Via``), no cookie, no ``User-Agent`` or other client header
  (RFC 9458 §7: the relay MUST NOT add information identifying the client, and removes
  what could). The answer is returned with its status, ``Content-Type``, and
  ``WWW-Authenticate`` / ``Retry-After`` (so a client can get the token challenge); every
  other upstream header (``Set-Cookie`` first) is dropped.
- ``GET /.well-known/attestlog/node-directory``: the router's directory, the same way.

Rate limits (docs/private.md): a token bucket for all clients together and one per client
address. The per-client buckets live in memory only, keyed by a keyed hash of the address
(HMAC-SHA-256 under a key drawn at start, never written), at most :data:`MAX_CLIENTS` of
them (least recently used dropped first). The relay logs no request: no address, no path,
no body; only rate-limited one-line errors about the router.

Refusals (one ``text/plain`` line): 404 unknown path or bad node id, 415 not
``message/ohttp-req``, 413 / 408 body, 429 ``relay.rate`` with ``Retry-After``, 502
``relay.upstream`` when the router is unreachable.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from attest.agent.service import TokenBucket
from attest.formats.node_directory import DIRECTORY_PATH, NODE_ID
from attest.formats.node_directory import MEDIA_TYPE as DIRECTORY_MEDIA_TYPE
from attest.formats.ohttp import MEDIA_TYPE_REQUEST
from attest.formats.privacy_pass_http import SCHEME
from attest.oblivious.forward_client import Forwarder, Upstream
from transparency_log.common.asgi_serving import (
    ONE_LINE_ERRORS,
    BodyError,
    read_body,
    text_response,
)
from transparency_log.common.errors import FetchError
from transparency_log.common.throttled_log import ThrottledLog, one_line

log = logging.getLogger("attest.oblivious.relay")
CHECK_RATE = "relay.rate"
CHECK_UPSTREAM = "relay.upstream"
MAX_CLIENTS = 65536
RETURNED_HEADERS = ("www-authenticate", "retry-after")


class ClientLimits:
    """A global token bucket and one per client (keyed hash of its address; module doc)."""

    def __init__(self, rate: float, burst: int, client_rate: float, client_burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.all = TokenBucket(rate, burst, clock)
        self.client_rate, self.client_burst = client_rate, client_burst
        self._key = os.urandom(32)
        self._buckets: OrderedDict[bytes, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, address: str) -> float:
        """0.0 when the request may go, else the seconds to wait."""
        tag = hmac.new(self._key, address.encode(), hashlib.sha256).digest()[:16]
        with self._lock:
            bucket = self._buckets.pop(tag, None)
            if bucket is None:
                bucket = TokenBucket(self.client_rate, self.client_burst, self.clock)
            self._buckets[tag] = bucket
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
        return bucket.take() or self.all.take()


def create_relay_app(router: str, *, forwarder: Forwarder, limits: ClientLimits,
                     max_request_bytes: int = 1024 * 1024,
                     body_timeout: float = 10.0) -> Starlette:
    """``router``: the router's base URL (no trailing slash)."""
    throttled = ThrottledLog(log)

    def refuse_rate(request: Request) -> Response | None:
        wait = limits.take(request.client.host if request.client else "")
        if wait:
            return text_response(429, f"{CHECK_RATE}: too many requests",
                                 {"Retry-After": str(int(wait) + 1)})
        return None

    async def upstream(method: str, path: str, body: bytes | None,
                       headers: dict[str, str]) -> Upstream | Response:
        try:
            return await run_in_threadpool(forwarder.send, method, router + path, body,
                                           headers)
        except FetchError as err:
            throttled.error("upstream", f"the router is unreachable: {one_line(err)}")
            return text_response(502, f"{CHECK_UPSTREAM}: the router is unreachable")

    def answer(up: Upstream) -> Response:
        headers = {k: v for k, v in up.headers.items() if k.lower() in RETURNED_HEADERS}
        headers["Cache-Control"] = "no-store"
        return Response(up.body, status_code=up.status,
                        media_type=up.content_type or None, headers=headers)

    async def relay(request: Request) -> Response:
        node = request.path_params["node"]
        if not NODE_ID.fullmatch(node):
            return text_response(404, "not found")
        refused = refuse_rate(request)
        if refused is not None:
            return refused
        if request.headers.get("content-type", "").lower() != MEDIA_TYPE_REQUEST:
            return text_response(415, f"want Content-Type: {MEDIA_TYPE_REQUEST}")
        try:
            body = await read_body(request, max_request_bytes, body_timeout)
        except BodyError as err:
            return err.response()
        headers = {"Content-Type": MEDIA_TYPE_REQUEST}
        authorization = request.headers.get("authorization", "")
        if authorization.split(" ", 1)[0].lower() == SCHEME.lower():
            headers["Authorization"] = authorization
        up = await upstream("POST", f"/nodes/{node}", body, headers)
        return up if isinstance(up, Response) else answer(up)

    async def directory(request: Request) -> Response:
        refused = refuse_rate(request)
        if refused is not None:
            return refused
        up = await upstream("GET", DIRECTORY_PATH, None, {"Accept": DIRECTORY_MEDIA_TYPE})
        return up if isinstance(up, Response) else answer(up)

    return Starlette(routes=[
        Route(DIRECTORY_PATH, directory, methods=["GET"]),
        Route("/nodes/{node}", relay, methods=["POST"]),
    ], exception_handlers=ONE_LINE_ERRORS)
