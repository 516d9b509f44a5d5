"""``attest issuer serve``: a Privacy Pass issuer for token type 0x0002 (RFC 9578 §5, §6).

- ``GET /.well-known/private-token-issuer-directory`` (RFC 9578 §4): the issuer directory
  (``issuer-request-uri`` and the type-2 token key), ``Cache-Control: max-age=3600``.
- ``POST /token-request`` (RFC 9578 §5, §6.2): body a TokenRequest
  (``application/private-token-request``), ``Authorization: Bearer <account token>``;
  answers a TokenResponse (``application/private-token-response``). The blind signature is
  computed with the signer's own base and exponent blinding and verified before it is
  returned (attest/private/blind_rsa.py ``blind_sign``; RFC 9474 §4.3, §7.1).

The account is authenticated (the server holds only SHA-256 of each account's bearer
token, compared in constant time) and counted against an hourly quota; that count is the
only per-account state, in memory. The issuer sees the blinded message, which is
statistically independent of the token the client will hold (RFC 9474 §7.2: blindness),
and writes nothing at all: no log line names an account or carries a request's bytes.

Errors are one ``text/plain`` line: 400 malformed request (``privacypass.format``) or another
key (``privacypass.key_id``), 401 no or unknown credential (``issuer.account``), 413 / 408
body, 415 wrong media type, 429 quota spent (``issuer.quota``, ``Retry-After``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from attest.formats.privacy_pass import TOKEN_REQUEST_LEN
from attest.formats.privacy_pass_http import (
    DIRECTORY_MEDIA_TYPE,
    DIRECTORY_PATH,
    TOKEN_REQUEST_MEDIA_TYPE,
    TOKEN_RESPONSE_MEDIA_TYPE,
    IssuerDirectory,
    TokenKeyEntry,
)
from attest.private.privacy_pass import Issuer, Rng
from transparency_log.common.asgi_serving import (
    ONE_LINE_ERRORS,
    BodyError,
    read_body,
    text_response,
)
from transparency_log.common.errors import AttestlogError
from transparency_log.common.throttled_log import ThrottledLog, one_line
from transparency_log.serve.server import AuthError, Submitters

log = logging.getLogger("attest.oblivious.issuer")
ISSUE_PATH = "/token-request"
CHECK_ACCOUNT = "issuer.account"
CHECK_QUOTA = "issuer.quota"
WINDOW = 3600.0


class HourlyQuota:
    """At most ``per_hour`` tokens per account per fixed hour window (memory only)."""

    def __init__(self, per_hour: int, clock: Callable[[], float]) -> None:
        self.per_hour, self.clock = per_hour, clock
        self._counts: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def take(self, account: str) -> float:
        """0.0 if the account may have one more token now, else seconds to wait."""
        with self._lock:
            now = self.clock()
            start, count = self._counts.get(account, (now, 0))
            if now - start >= WINDOW:
                start, count = now, 0
            if count >= self.per_hour:
                return WINDOW - (now - start)
            self._counts[account] = (start, count + 1)
            return 0.0


def create_issuer_app(issuer: Issuer, *, accounts: Submitters, request_uri: str,
                      quota: HourlyQuota, rng: Rng, not_before: int | None = None,
                      body_timeout: float = 10.0) -> Starlette:
    directory = IssuerDirectory(issuer_request_uri=request_uri, token_keys=(
        TokenKeyEntry(token_type=2, token_key=issuer.key.spki, not_before=not_before),
    )).encode()
    throttled = ThrottledLog(log)

    async def get_directory(request: Request) -> Response:
        return Response(directory, media_type=DIRECTORY_MEDIA_TYPE,
                        headers={"Cache-Control": "max-age=3600"})

    async def token_request(request: Request) -> Response:
        if request.headers.get("content-type", "").lower() != TOKEN_REQUEST_MEDIA_TYPE:
            return text_response(415, f"want Content-Type: {TOKEN_REQUEST_MEDIA_TYPE}")
        try:
            account = accounts.authenticate(request.headers.get("authorization"), None, b"")
        except AuthError as err:
            return text_response(401, f"{CHECK_ACCOUNT}: {err}",
                                 {"WWW-Authenticate": "Bearer"})
        try:
            body = await read_body(request, TOKEN_REQUEST_LEN, body_timeout)
        except BodyError as err:
            return err.response()
        wait = quota.take(account)
        if wait:
            return text_response(429, f"{CHECK_QUOTA}: this account's tokens for the hour "
                                 "are spent", {"Retry-After": str(int(wait) + 1)})
        try:
            response = await run_in_threadpool(issuer.evaluate, body, rng)
        except AttestlogError as err:
            if err.check == "blindrsa.sign":  # a fault: say so, return nothing
                throttled.error("sign", f"signing fault, nothing returned: {one_line(err)}")
                return text_response(500, "blindrsa.sign: signing failure")
            return text_response(400, str(err))
        return Response(response.encode(), media_type=TOKEN_RESPONSE_MEDIA_TYPE,
                        headers={"Cache-Control": "no-store"})

    return Starlette(routes=[
        Route(DIRECTORY_PATH, get_directory, methods=["GET", "HEAD"]),
        Route(ISSUE_PATH, token_request, methods=["POST"]),
    ], exception_handlers=ONE_LINE_ERRORS)
