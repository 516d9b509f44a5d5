"""`verifier serve`: an HTTP attestation service (docs/ear.md, docs/formats.md "Verifier
service HTTP API"), so a gateway or a router can verify nodes without embedding Python.

``POST /verify?nonce=HEX`` with the node's evidence bundle (deterministic CBOR) as the body
answers ``application/json``::

    {"verdict": "accepted" | "refused", "ear": "<compact JWS>", "transcript": {...}}

- ``200``: the bundle was appraised; a refused node is a 200 whose EAR is contraindicated
  (a malformed bundle too: it is the node's evidence that is bad, not the request);
- ``400``: a malformed request (nonce absent, not hex, not 32..64 bytes; an unknown query
  parameter; an empty body), ``404`` unknown path, ``405`` wrong method, ``408`` body too slow,
  ``413`` body over the limit (one ``text/plain`` line each, like the log server);
- ``503``: the verifier could not decide (collateral unreachable, FetchError; a bad trust
  configuration): the JSON body still carries the transcript and an EAR whose submodules are
  ``none`` with ``verifier_malfunction`` claims; ``Retry-After`` is set.

- ``500``: a bug of ours while appraising (an exception that is not an AttestlogError): one
  ``text/plain`` line, never a verdict, and one line in the log.

Never a traceback. Body limits and deadlines are the log server's
(transparency_log/common/asgi_serving.py). Verifications run one at a time in a worker thread (the
collateral caches are shared). The clock is a parameter.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from attest.formats.bundle import MAX_BUNDLE_SIZE
from transparency_log.common.asgi_serving import (
    BodyError,
    bug_response,
    read_body,
    text_response,
)
from transparency_log.common.errors import FetchError, TrustConfigError
from transparency_log.common.http_fetch import Fetch
from verifier.ear_token import EarSigner
from verifier.pipeline import run_pipeline
from verifier.pipeline_trust import VerifierCaches, VerifierTrust
from verifier.policy import Policy
from verifier.result import Result

__all__ = ["ServiceLimits", "create_app"]

log = logging.getLogger("verifier.serve")

MIN_NONCE, MAX_NONCE = 32, 64  # as `verifier node --nonce` (docs/verification.md)


@dataclass(frozen=True)
class ServiceLimits:
    """Request limits: the bundle's size (at most the format's own cap) and the body deadline."""

    max_bundle_bytes: int = MAX_BUNDLE_SIZE
    body_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.max_bundle_bytes <= MAX_BUNDLE_SIZE:
            raise TrustConfigError("serve.limits", "bundle limit out of range",
                                   field="max_bundle_bytes", got=self.max_bundle_bytes,
                                   want=f"1..{MAX_BUNDLE_SIZE}")


def _nonce(request: Request) -> bytes | str:
    """The nonce from ``?nonce=HEX``, or the one-line reason it is refused."""
    params = request.query_params
    if set(params) - {"nonce"} or len(params.getlist("nonce")) > 1:
        return "unknown or repeated query parameter (only nonce=HEX)"
    text = params.get("nonce")
    if text is None:
        return "missing nonce (POST /verify?nonce=HEX)"
    if not all(c in "0123456789abcdefABCDEF" for c in text):
        return "nonce is not hex"
    try:
        nonce = bytes.fromhex(text)
    except ValueError:
        return "nonce is not hex"
    if not MIN_NONCE <= len(nonce) <= MAX_NONCE:
        return f"nonce is {len(nonce)} bytes, want {MIN_NONCE}..{MAX_NONCE}"
    return nonce


def create_app(policy: Policy, signer: EarSigner, *, now: Callable[[], datetime],
               trust: VerifierTrust | None = None, fetch: Fetch | None = None,
               caches: VerifierCaches | None = None, limits: ServiceLimits | None = None,
               pipeline_args: dict[str, Any] | None = None) -> Starlette:
    """The service's ASGI app. ``now``: the clock; ``fetch``: network access for collateral
    the node did not staple (None: offline); ``pipeline_args``: further
    :func:`~verifier.pipeline.run_pipeline` parameters (checkpoint store, revocations)."""
    lim = limits or ServiceLimits()
    shared = caches if caches is not None else VerifierCaches()
    roots = trust or VerifierTrust.production()
    extra = dict(pipeline_args or {})
    one_at_a_time = threading.Lock()

    def appraise(bundle: bytes, nonce: bytes) -> tuple[Result, str]:
        with one_at_a_time:
            result = run_pipeline(bundle, policy, at=now(), expected_nonce=nonce, trust=roots,
                                  fetch=fetch, caches=shared, **extra)
            return result, signer.sign(result, nonce)

    async def verify(request: Request) -> Response:
        nonce = _nonce(request)
        if isinstance(nonce, str):
            return text_response(400, nonce)
        try:
            bundle = await read_body(request, lim.max_bundle_bytes, lim.body_timeout)
        except BodyError as err:
            return err.response()
        if not bundle:
            return text_response(400, "empty body: POST the evidence bundle (CBOR)")
        try:
            result, ear = await run_in_threadpool(appraise, bundle, nonce)
        except Exception as err:  # a bug of ours: a 500, never a verdict
            return bug_response(log, request.url.path, err)
        body = {"verdict": result.verdict, "ear": ear, "transcript": result.to_json()}
        if isinstance(result.error, FetchError | TrustConfigError):
            return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
        return JSONResponse(body)

    async def ear_key(request: Request) -> Response:
        return Response(signer.public_pem(), media_type="application/x-pem-file")

    async def not_found(request: Request, exc: Exception) -> Response:
        return text_response(404, "not found")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return text_response(405, "method not allowed")

    async def server_error(request: Request, exc: Exception) -> Response:
        return bug_response(log, request.url.path, exc)

    return Starlette(
        routes=[Route("/verify", verify, methods=["POST"]),
                Route("/ear-key", ear_key, methods=["GET", "HEAD"])],
        exception_handlers={404: not_found, 405: not_allowed, Exception: server_error},
    )
