"""``attest router``: the untrusted router / load balancer of the private path (issue 13).

- ``GET /.well-known/attestlog/node-directory``: the node directory
  (attest/formats/node_directory.py; docs/formats.md "Node directory").
- ``POST /nodes/<id>``: a ``message/ohttp-req`` (RFC 9458 §4.3) for the node the client
  chose, with ``Authorization: PrivateToken token=...`` (RFC 9577 §2.2). The router
  1. reads the body (limit, deadline), 2. checks the token against the issuer key pinned in
  its configuration and the one challenge it publishes (attest/private/privacy_pass.py
  ``verify_token``), 3. spends it in the spent-token store (refused if spent before:
  ``router.token.spent``; the token stays spent whatever happens next), 4. POSTs the body,
  byte for byte, to that node's gateway and answers the gateway's ``message/ohttp-res``
  byte for byte.

It never decrypts (it holds no HPKE key) and logs no request: no address, no node choice,
no body, no token; only rate-limited one-line errors about itself or a node's gateway.

Refusals (one ``text/plain`` line): 401 with ``WWW-Authenticate: PrivateToken challenge=...,
token-key=...`` for a missing (``router.token.missing``), malformed (``privacypass.format``),
foreign-key (``privacypass.key_id``), other-challenge (``privacypass.challenge``), forged
(``privacypass.signature``) or spent (``router.token.spent``) token; 404 unknown node;
415 not ``message/ohttp-req``; 413 / 408 body; 502 the gateway is unreachable or did not
answer ``message/ohttp-res`` (``router.gateway``); 503 the spent-token store is down.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from attest.formats.node_directory import DIRECTORY_PATH, MEDIA_TYPE, NodeDirectory
from attest.formats.ohttp import MEDIA_TYPE_REQUEST as REQUEST_MEDIA_TYPE
from attest.formats.ohttp import MEDIA_TYPE_RESPONSE as RESPONSE_MEDIA_TYPE
from attest.formats.privacy_pass_http import (
    PrivateTokenChallenge,
    parse_authorization,
    www_authenticate,
)
from attest.oblivious.forward_client import Forwarder
from attest.oblivious.spent_tokens import SpentTokenStore, spend_key
from attest.private.privacy_pass import IssuerKey, verify_token
from transparency_log.common.asgi_serving import (
    ONE_LINE_ERRORS,
    BodyError,
    read_body,
    text_response,
)
from transparency_log.common.errors import AttestlogError, FetchError
from transparency_log.common.throttled_log import ThrottledLog, one_line

log = logging.getLogger("attest.oblivious.router")
CHECK_MISSING = "router.token.missing"
CHECK_SPENT = "router.token.spent"
CHECK_GATEWAY = "router.gateway"


def create_router_app(directory: NodeDirectory, gateways: Mapping[str, str], *,
                      issuer: IssuerKey, spent: SpentTokenStore, forwarder: Forwarder,
                      max_request_bytes: int = 1024 * 1024,
                      body_timeout: float = 10.0) -> Starlette:
    """``gateways``: node id -> the URL of its OHTTP gateway resource (RFC 9540 §3)."""
    published = directory.encode()
    challenge = directory.token_challenge
    www = www_authenticate([PrivateTokenChallenge(challenge=challenge, token_key=issuer.spki)])
    throttled = ThrottledLog(log)

    def unauthorized(message: str) -> Response:
        return text_response(401, message, {"WWW-Authenticate": www})

    async def get_directory(request: Request) -> Response:
        return Response(published, media_type=MEDIA_TYPE,
                        headers={"Cache-Control": "max-age=60"})

    async def forward(request: Request) -> Response:
        gateway = gateways.get(request.path_params["node"])
        if gateway is None:
            return text_response(404, "unknown node")
        if request.headers.get("content-type", "").lower() != REQUEST_MEDIA_TYPE:
            return text_response(415, f"want Content-Type: {REQUEST_MEDIA_TYPE}")
        try:
            body = await read_body(request, max_request_bytes, body_timeout)
        except BodyError as err:
            return err.response()
        authorization = request.headers.get("authorization")
        if authorization is None:
            return unauthorized(f"{CHECK_MISSING}: a PrivateToken is required")
        try:
            token = verify_token(parse_authorization(authorization), issuer,
                                 challenge=challenge)
        except AttestlogError as err:
            return unauthorized(str(err))
        try:
            fresh = await run_in_threadpool(spent.spend, spend_key(token), token.token_key_id)
        except Exception as err:  # the database is down: refuse, spend nothing
            throttled.error("spent", f"spent-token store unavailable: {one_line(err)}")
            return text_response(503, "spent-token store unavailable; retry later",
                                 {"Retry-After": "1"})
        if not fresh:
            return unauthorized(f"{CHECK_SPENT}: this token was already spent")
        try:
            answer = await run_in_threadpool(forwarder.send, "POST", gateway, body,
                                             {"Content-Type": REQUEST_MEDIA_TYPE})
        except FetchError as err:
            throttled.error("gateway", f"a node gateway is unreachable: {one_line(err)}")
            return text_response(502, f"{CHECK_GATEWAY}: the node's gateway is unreachable")
        if answer.status != 200 or answer.content_type.lower() != RESPONSE_MEDIA_TYPE:
            return text_response(502, f"{CHECK_GATEWAY}: the node's gateway answered "
                                 f"{answer.status} {answer.content_type[:40]!r}")
        return Response(answer.body, media_type=RESPONSE_MEDIA_TYPE,
                        headers={"Cache-Control": "no-store"})

    return Starlette(routes=[
        Route(DIRECTORY_PATH, get_directory, methods=["GET", "HEAD"]),
        Route("/nodes/{node}", forward, methods=["POST"]),
    ], exception_handlers=ONE_LINE_ERRORS)
