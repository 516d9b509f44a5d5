"""Revocation of the GPU device chain through OCSP (RFC 6960), via an injected Fetch.

For every certificate of a *verified* chain except the root: build an OCSPRequest with a
SHA-384 CertID and a fresh nonce (RFC 8954), send it as ``GET {url}/{urlencode(base64(DER))}``
(RFC 6960 appendix A.1; building and fetching live in attest/collateral/ocsp_fetch.py, shared
with the node agent), and check the answer:

- ``gpu.ocsp.format``    the response parses and its status is ``successful``;
- ``gpu.ocsp.signature`` signed by the issuer itself or by a delegated responder certificate
  with the OCSPSigning EKU issued by a certificate of the verified chain (RFC 6960 §4.2.2.2);
- ``gpu.ocsp.certid``    it is about this certificate (serial and issuer key hash);
- ``gpu.ocsp.nonce``     it echoes our nonce (only when we asked; stapled answers cannot);
- ``gpu.ocsp.fresh``     thisUpdate <= at (+ skew) <= nextUpdate;
- ``gpu.ocsp.revoked``   the status is good (revoked or unknown refuse).

Answers are cached per certificate and reused while ``at`` is inside their validity. Offline
(no fetch) uses stapled answers and the cache; a certificate with no answer (offline, or the
responder unreachable or failing) is a FetchError ``gpu.ocsp.fetch`` (:func:`chain_ocsp`
lists them). Only that can be waived (the policy's ``waive = ["gpu.ocsp"]``, docs/policy.md
"Waivers"; verifier/gpu/evidence.py raises CheckNotRun), while every answer that *can* be had
is still verified, so a stapled answer that says revoked, or is badly signed, still refuses.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from attest.certificates import LOADER_ERRORS
from attest.collateral.ocsp_fetch import (
    NONCE_SIZE,
    NVIDIA_OCSP_URL,
    build_request,
    fetch_response,
    request_url,
)
from transparency_log.common.errors import (
    FetchError,
    FormatError,
    SignatureError,
    VerificationError,
)
from transparency_log.common.http_fetch import Fetch
from verifier.verified_cache import CACHE_SOURCE, DEFAULT_MAXSIZE, VerifiedCache
from verifier.x509chain import fingerprint as _fp  # SHA-256 of the DER, memo by object

__all__ = ["NONCE_SIZE", "NVIDIA_OCSP_URL", "ChainOcsp", "OcspCache", "OcspStatus",
           "build_request", "chain_ocsp", "check_chain_ocsp", "request_url", "stapled_answers",
           "verify_response"]

CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class OcspStatus:
    """A verified OCSP answer for one certificate."""

    role: str
    serial: int
    status: str  # "good"
    this_update: datetime
    next_update: datetime
    nonce_checked: bool


class OcspCache:
    """Verified answers by certificate, keyed by the SHA-256 of its DER (remembered per
    certificate object: hashing a ``Certificate`` re-encodes its DER on every lookup), reused
    while ``at`` is inside thisUpdate..nextUpdate; bounded (LRU) and safe to share between
    threads (verifier/verified_cache.py)."""

    def __init__(self, maxsize: int = DEFAULT_MAXSIZE) -> None:
        self._answers: VerifiedCache[bytes, OcspStatus] = VerifiedCache(maxsize)

    def get(self, cert: x509.Certificate, at: datetime) -> OcspStatus | None:
        return self._answers.get(_fp(cert), at)

    def put(self, cert: x509.Certificate, status: OcspStatus) -> None:
        self._answers.put(_fp(cert), status, status.this_update, status.next_update)


def _verify_signed_by(resp: ocsp.OCSPResponse, key: object, role: str) -> None:
    try:
        algorithm = resp.signature_hash_algorithm
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(resp.signature, resp.tbs_response_bytes, padding.PKCS1v15(), algorithm)
        else:
            raise UnsupportedAlgorithm("responder key type")
    except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError):
        raise SignatureError("gpu.ocsp.signature", f"OCSP answer for the {role} does not verify",
                             field=f"{role}.ocsp.signature") from None


def _responder_key(resp: ocsp.OCSPResponse, issuer: x509.Certificate,
                   trusted: Sequence[x509.Certificate], role: str, at: datetime) -> object:
    """The issuer's key, or a delegated responder's issued by a certificate of the chain."""
    if not resp.certificates:
        return issuer.public_key()
    responder = resp.certificates[0]
    if responder == issuer or responder in trusted:
        return responder.public_key()
    try:
        eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        delegated = ExtendedKeyUsageOID.OCSP_SIGNING in eku
    except x509.ExtensionNotFound:
        delegated = False
    if not delegated:
        raise SignatureError("gpu.ocsp.signature", "responder certificate lacks OCSPSigning",
                             field=f"{role}.ocsp.responder")
    if not (responder.not_valid_before_utc <= at <= responder.not_valid_after_utc):
        raise SignatureError("gpu.ocsp.signature", "responder certificate not valid at `at`",
                             field=f"{role}.ocsp.responder", got=at.isoformat())
    for ca in trusted:
        if responder.issuer != ca.subject:
            continue
        try:
            responder.verify_directly_issued_by(ca)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
            continue
        return responder.public_key()
    raise SignatureError("gpu.ocsp.signature", "responder certificate is not issued by the chain",
                         field=f"{role}.ocsp.responder",
                         got=responder.issuer.rfc4514_string())


def verify_response(
    der: bytes, cert: x509.Certificate, issuer: x509.Certificate, *, role: str,
    at: datetime, nonce: bytes | None, trusted: Sequence[x509.Certificate] = (),
) -> OcspStatus:
    """Check one OCSP answer for ``cert`` (see the module docstring for the check ids)."""
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    try:  # cryptography parses the answer's fields (extensions, certificates) lazily too
        resp = ocsp.load_der_ocsp_response(der)
        return _verify_response(resp, cert, issuer, role=role, at=at, nonce=nonce,
                                trusted=trusted)
    except LOADER_ERRORS as err:
        raise FormatError("gpu.ocsp.format", f"OCSP answer does not parse: {err}",
                          field=f"{role}.ocsp") from None


def _verify_response(
    resp: ocsp.OCSPResponse, cert: x509.Certificate, issuer: x509.Certificate, *, role: str,
    at: datetime, nonce: bytes | None, trusted: Sequence[x509.Certificate],
) -> OcspStatus:
    if resp.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise FormatError("gpu.ocsp.format", "OCSP answer is not successful",
                          field=f"{role}.ocsp.responseStatus", got=resp.response_status.name,
                          want="SUCCESSFUL")
    _verify_signed_by(resp, _responder_key(resp, issuer, trusted, role, at), role)
    algorithm = resp.hash_algorithm
    spki = issuer.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    key_hash = _issuer_key_hash(spki, algorithm)
    if resp.serial_number != cert.serial_number or resp.issuer_key_hash != key_hash:
        raise VerificationError("gpu.ocsp.certid", "OCSP answer is about another certificate",
                                field=f"{role}.ocsp.certID", got=resp.serial_number,
                                want=cert.serial_number)
    if nonce is not None:
        got = next((e.value.nonce for e in resp.extensions
                    if isinstance(e.value, x509.OCSPNonce)), None)
        if got != nonce:
            raise VerificationError("gpu.ocsp.nonce", "OCSP answer does not echo our nonce",
                                    field=f"{role}.ocsp.nonce",
                                    got=got if got is not None else "(absent)", want=nonce)
    this_update = resp.this_update_utc
    next_update = resp.next_update_utc
    if next_update is None or not (this_update - CLOCK_SKEW <= at <= next_update):
        raise VerificationError("gpu.ocsp.fresh", "OCSP answer is not current",
                                field=f"{role}.ocsp.thisUpdate..nextUpdate", got=at.isoformat(),
                                want=f"{this_update.isoformat()}..{next_update}")
    if resp.certificate_status is not ocsp.OCSPCertStatus.GOOD:
        raise VerificationError("gpu.ocsp.revoked", f"the {role} certificate is not good",
                                field=f"{role}.ocsp.certStatus",
                                got=resp.certificate_status.name, want="GOOD")
    return OcspStatus(role, cert.serial_number, "good", this_update, next_update,
                      nonce is not None)


def _issuer_key_hash(spki_der: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    """Hash of the issuer's subjectPublicKey BIT STRING contents (RFC 6960 §4.1.1)."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    key = load_der_public_key(spki_der)
    if isinstance(key, ec.EllipticCurvePublicKey):
        raw = key.public_bytes(serialization.Encoding.X962,
                               serialization.PublicFormat.UncompressedPoint)
    else:
        raw = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    h = hashes.Hash(algorithm)
    h.update(raw)
    return h.finalize()


@dataclass(frozen=True)
class ChainOcsp:
    """OCSP for a chain: a verified answer per certificate that had one (leaf first), where
    it came from (``cache``, ``stapled`` or ``fetched``), and for each certificate whose
    answer cannot be had its role and the ``gpu.ocsp.fetch`` (or the fetcher's own)
    FetchError."""

    statuses: tuple[OcspStatus, ...]
    sources: tuple[str, ...]
    missing: tuple[tuple[str, FetchError], ...]


def chain_ocsp(
    chain: Sequence[x509.Certificate], *, roles: Sequence[str], at: datetime,
    fetch: Fetch | None, url: str = NVIDIA_OCSP_URL, cache: OcspCache | None = None,
    stapled: Mapping[bytes, bytes] | None = None,
    nonce_source: Callable[[int], bytes] = os.urandom,
) -> ChainOcsp:
    """OCSP for every certificate of a verified chain (leaf first) except the root: the
    cache, then the answer ``stapled`` by the node (by the certificate's SHA-256
    fingerprint), then the responder through ``fetch`` (absent offline).

    Every answer that was had is verified and the first bad one raises (revoked, badly
    signed, about another certificate, out of date: never waivable); a certificate with no
    answer to be had is listed in ``missing``, and the other certificates are still checked.
    """
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    statuses: list[OcspStatus] = []
    sources: list[str] = []
    missing: list[tuple[str, FetchError]] = []
    for i in range(len(chain) - 1):
        cert, issuer = chain[i], chain[i + 1]
        role = roles[i] if i < len(roles) else f"cert[{i}]"
        if cache is not None and (hit := cache.get(cert, at)) is not None:
            statuses.append(hit)
            sources.append(CACHE_SOURCE)
            continue
        der = (stapled or {}).get(_fp(cert))
        nonce = None
        source = "stapled"
        if der is None:
            source = "fetched"
            try:
                if fetch is None:
                    raise FetchError("gpu.ocsp.fetch", "no OCSP answer stapled or cached, "
                                     "and offline", field=f"{role}.ocsp")
                nonce = nonce_source(NONCE_SIZE)
                der = fetch_response(fetch, cert, issuer, url=url, nonce=nonce, role=role)
            except FetchError as err:
                missing.append((role, err))
                continue
        status = verify_response(der, cert, issuer, role=role, at=at, nonce=nonce,
                                 trusted=chain[i + 1:])
        if cache is not None:
            cache.put(cert, status)
        statuses.append(status)
        sources.append(source)
    return ChainOcsp(tuple(statuses), tuple(sources), tuple(missing))


def check_chain_ocsp(chain: Sequence[x509.Certificate], **kwargs: Any) -> list[OcspStatus]:
    """:func:`chain_ocsp` that raises the first certificate's FetchError when an answer
    cannot be had (after every answer that was had verified); one status per certificate."""
    got = chain_ocsp(chain, **kwargs)
    if got.missing:
        raise got.missing[0][1]
    return list(got.statuses)


@lru_cache(maxsize=1024)
def _answer_serial(der: bytes) -> int | None:
    """The serial number an OCSP answer is about (None unless SUCCESSFUL), by its exact bytes
    (bounded memo, issue 15; a ValueError is raised again each time). Only sorts answers to
    certificates: each is verified by ``gpu.ocsp`` all the same."""
    resp = ocsp.load_der_ocsp_response(der)
    return (resp.serial_number if resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
            else None)


def stapled_answers(answers: Mapping[str, bytes], chain: Sequence[x509.Certificate]
                    ) -> dict[bytes, bytes]:
    """The node's stapled OCSP answers (name -> DER) by the SHA-256 fingerprint of the chain
    certificate each is about (by serial number); an answer about no certificate of the
    chain is ignored, one that is not DER OCSP is a FormatError ``gpu.ocsp``."""
    by_serial = {c.serial_number: c for c in chain}
    out: dict[bytes, bytes] = {}
    for name, der in answers.items():
        try:
            serial = _answer_serial(der)
        except ValueError:
            raise FormatError("gpu.ocsp", "stapled OCSP response is not DER OCSP",
                              field=f"ocsp[{name}]") from None
        cert = by_serial.get(serial)
        if cert is not None:
            out[_fp(cert)] = der
    return out
