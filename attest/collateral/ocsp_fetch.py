"""OCSP (RFC 6960) requests for the NVIDIA GPU device chain: building and fetching only.

- :func:`build_request`: a DER OCSPRequest with a SHA-384 CertID and, when given, a nonce
  (RFC 8954);
- :func:`request_url`: ``GET {url}/{urlencode(base64(DER))}`` (RFC 6960 appendix A.1);
- :func:`fetch_response`: send it through the injected Fetch, return the raw DER answer.

Checking an answer (signature, CertID, nonce, freshness, status) is the verifier's job
(verifier/gpu/ocsp.py); the node agent staples the raw answers it fetched here.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from transparency_log.common.errors import FetchError
from transparency_log.common.http_fetch import Fetch

NVIDIA_OCSP_URL = "https://ocsp.ndis.nvidia.com"
NONCE_SIZE = 32
CHECK = "gpu.ocsp.fetch"


@lru_cache(maxsize=1024)
def cert_fingerprint(cert: x509.Certificate) -> bytes:
    """SHA-256 of the certificate's DER (how stapled answers are keyed and named);
    remembered per certificate (hashed and compared by its DER; bounded, issue 15)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()


def build_request(cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None) -> bytes:
    """DER OCSPRequest with a SHA-384 CertID and, when given, a nonce extension."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA384())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def request_url(base: str, request_der: bytes) -> str:
    return base.rstrip("/") + "/" + quote(base64.b64encode(request_der).decode(), safe="")


def fetch_response(fetch: Fetch, cert: x509.Certificate, issuer: x509.Certificate, *,
                   url: str = NVIDIA_OCSP_URL, nonce: bytes | None = None,
                   role: str = "cert") -> bytes:
    """The responder's raw DER answer about ``cert`` (unverified), or FetchError."""
    reply = fetch(request_url(url, build_request(cert, issuer, nonce)))
    if reply.status != 200 or not reply.body:
        raise FetchError(CHECK, f"OCSP responder said HTTP {reply.status}", field=f"{role}.ocsp")
    return reply.body
