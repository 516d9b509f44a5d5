"""The node's OHTTP gateway: private requests decrypted inside the TEE (issue 13; RFC 9458 §5,
RFC 9540; docs/formats.md "Node agent HTTP API", docs/private.md).

- The **request key** is an HPKE key pair (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
  AES-128-GCM or ChaCha20-Poly1305) made when the agent starts, held in this process's memory
  only: never written, never logged, gone at restart (a restart binds a new key). Its key
  configuration (``application/ohttp-keys``, RFC 9458 §3.2) is what every evidence bundle
  binds (``ohttp_keys``, docs/formats.md "Binding") and what ``GET
  /.well-known/ohttp-gateway`` serves.
- :meth:`NodeGateway.answer` takes one Encapsulated Request (``message/ohttp-req``),
  decapsulates it (:class:`attest.private.ohttp.Gateway`), reads the Binary HTTP request in it
  (RFC 9292, :mod:`attest.formats.bhttp`), sends it to the configured local inference
  upstream (``[gateway] upstream``) and encapsulates the upstream's answer, padded to a size
  bucket, as the Encapsulated Response (``message/ohttp-res``).
- A request not encapsulated to this node's key (another Key Identifier, another key, a
  flipped bit) raises before anything is decrypted or forwarded (``ohttp.key_id``,
  ``ohttp.suite``, ``ohttp.format``, ``ohttp.decrypt``); the HTTP layer answers one
  ``text/plain`` line, never plaintext. Once a request has opened, every failure (malformed
  inner request, upstream unreachable) is answered *encapsulated*, as a Binary HTTP 400 or
  502 whose body names only the check.
- Nothing of a request or an answer (method, path, headers, content, status) is logged or
  written. The only log line is that the upstream is unreachable, with no detail of the
  request, at most once a minute. The HTTP client's own logger (``urllib3``, which logs each
  request line at DEBUG) is held at WARNING in the agent's process for that reason.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from attest.formats.bhttp import (
    MAX_CONTENT,
    BinaryResponse,
    check_field_line,
    decode_request,
    encode_response,
    pad_to_bucket,
)
from attest.oblivious.forward_client import Forwarder
from attest.private.hpke import Rng
from attest.private.ohttp import Gateway, GatewayKey
from transparency_log.common.errors import FetchError, FormatError
from transparency_log.common.throttled_log import ThrottledLog

__all__ = ["GATEWAY_PATH", "MAX_ENCAPSULATED_REQUEST", "GatewaySettings", "NodeGateway"]

log = logging.getLogger("attest.agent.gateway")
GATEWAY_PATH = "/.well-known/ohttp-gateway"  # RFC 9540 §3
CHECK_UPSTREAM = "agent.gateway.upstream"
# An encapsulated request: a Binary HTTP message up to the largest padding bucket (16 MiB) and
# the OHTTP header, enc and tag (7 + 32 + 16 bytes).
MAX_ENCAPSULATED_REQUEST = MAX_CONTENT + 64 * 1024
# Fields that describe one hop, not the message (RFC 9110 §7.6.1), and those the HTTP client
# sets itself; they are not passed between the inner request and the upstream.
_HOP_FIELDS = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer",
                         "transfer-encoding", "upgrade", "host", "content-length",
                         "proxy-authorization", "proxy-authenticate"})


@dataclass(frozen=True)
class GatewaySettings:
    """``[gateway]`` of the agent config: the local inference backend (docs/operations.md,
    "Node agent"). Without ``upstream`` the node binds and serves its key but answers every
    private request ``503``."""

    upstream: str | None = None
    timeout: float = 60.0


def _answer(status: int, text: str) -> BinaryResponse:
    return BinaryResponse(status, ((b"content-type", b"text/plain"),), text.encode() + b"\n")


class NodeGateway:
    """One request key and the upstream it forwards to. Thread-safe (the key is read-only; each
    request gets its own HPKE contexts)."""

    def __init__(self, key: GatewayKey, settings: GatewaySettings, *,
                 rng: Rng = os.urandom) -> None:
        self._gateway = Gateway([key])
        self.key_config = key.config()
        self.ohttp_keys = key.ohttp_keys()  # application/ohttp-keys: served and bound
        self.upstream = settings.upstream.rstrip("/") if settings.upstream else None
        self._forwarder = Forwarder(settings.timeout, MAX_CONTENT)
        self._rng = rng
        self._throttled = ThrottledLog(log, interval=60.0)
        logging.getLogger("urllib3").setLevel(logging.WARNING)  # it logs request lines

    @classmethod
    def generate(cls, settings: GatewaySettings, *, rng: Rng = os.urandom) -> NodeGateway:
        """A fresh request key (RFC 9180 §7.1.3 GenerateKeyPair, random Key Identifier)."""
        return cls(GatewayKey.generate(rng), settings, rng=rng)

    def answer(self, enc_request: bytes) -> bytes:
        """The Encapsulated Response to one Encapsulated Request. Raises FormatError or
        DecryptError when the request is not for this key (nothing decrypted or forwarded)."""
        inner, response = self._gateway.decapsulate(enc_request)
        answer = self._forward(inner)
        try:
            message = pad_to_bucket(encode_response(answer))
        except FormatError:  # an upstream answer over the largest bucket
            message = pad_to_bucket(encode_response(_answer(502, f"{CHECK_UPSTREAM}: the "
                                                             "answer is too large")))
        return response.encapsulate(message, rng=self._rng)

    def _forward(self, inner: bytes) -> BinaryResponse:
        try:
            req = decode_request(inner)
        except FormatError as err:
            return _answer(400, f"{err.check}: the inner request is malformed")
        if self.upstream is None:
            return _answer(503, f"{CHECK_UPSTREAM}: no inference upstream configured")
        if not req.path.startswith(b"/") or not req.path.isascii() or not req.method.isascii():
            return _answer(400, "bhttp.format: the inner request needs an absolute path")
        headers: dict[str, str] = {}
        for name, value in req.headers:
            key = name.decode("ascii")  # bhttp field names are lower-case tokens
            if key not in _HOP_FIELDS:
                v = value.decode("latin-1")
                headers[key] = f"{headers[key]}, {v}" if key in headers else v
        try:
            up = self._forwarder.send(req.method.decode("ascii"),
                                      self.upstream + req.path.decode("ascii"),
                                      req.content or None, headers)
        except FetchError:
            self._throttled.error("upstream", "the inference upstream is unreachable")
            return _answer(502, f"{CHECK_UPSTREAM}: the inference upstream is unreachable")
        status = up.status if 200 <= up.status <= 599 else 502
        return BinaryResponse(status, _response_fields(up.headers), up.body)


def _response_fields(headers: dict[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    """The upstream's response header fields that Binary HTTP can carry (RFC 9292 §3.6):
    lower-cased names, hop-by-hop fields and fields with unusable values left out."""
    out = []
    for name, value in headers.items():
        n = name.lower()
        if n in _HOP_FIELDS or n == "content-encoding":  # requests already decoded the body
            continue
        try:
            nb, vb = n.encode("ascii"), value.encode("latin-1")
            check_field_line(nb, vb, "Header Section")
        except (UnicodeEncodeError, FormatError):
            continue
        out.append((nb, vb))
    return tuple(out)
