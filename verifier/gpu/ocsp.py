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
responder unreachable or failing) is a FetchError ``gpu.ocsp.fetch``. Only that can be waived
(the policy's ``waive = ["gpu.ocsp"]``, docs/policy.md "Waivers"): the caller then passes
``unavailable`` and gets those errors back instead, while every answer that *can* be had is
still verified, so a stapled answer that says revoked, or is badly signed, still refuses.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from attest.collateral.ocsp_fetch import (
    NONCE_SIZE,
    NVIDIA_OCSP_URL,
    build_request,
    fetch_response,
    request_url,
)
from attest.collateral.ocsp_fetch import cert_fingerprint as _fp
from transparency_log.common.errors import (
    FetchError,
    FormatError,
    SignatureError,
    VerificationError,
)
from transparency_log.common.http_fetch import Fetch

__all__ = ["NONCE_SIZE", "NVIDIA_OCSP_URL", "OcspCache", "OcspStatus", "build_request",
           "check_chain_ocsp", "request_url", "verify_response"]

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
    """Verified answers by certificate fingerprint, reused while ``at`` is inside them."""

    def __init__(self) -> None:
        self._answers: dict[x509.Certificate, OcspStatus] = {}  # certificates hash by DER

    def get(self, cert: x509.Certificate, at: datetime) -> OcspStatus | None:
        hit = self._answers.get(cert)
        return hit if hit is not None and hit.this_update <= at <= hit.next_update else None

    def put(self, cert: x509.Certificate, status: OcspStatus) -> None:
        self._answers[cert] = status


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
    try:
        resp = ocsp.load_der_ocsp_response(der)
    except ValueError as err:
        raise FormatError("gpu.ocsp.format", f"OCSP answer does not parse: {err}",
                          field=f"{role}.ocsp") from None
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


def check_chain_ocsp(
    chain: Sequence[x509.Certificate], *, roles: Sequence[str], at: datetime,
    fetch: Fetch | None, url: str = NVIDIA_OCSP_URL, cache: OcspCache | None = None,
    stapled: Mapping[bytes, bytes] | None = None,
    nonce_source: Callable[[int], bytes] = os.urandom,
    unavailable: list[FetchError] | None = None,
) -> list[OcspStatus]:
    """OCSP for every certificate of a verified chain (leaf first) except the root.

    ``stapled`` maps a certificate's SHA-256 fingerprint to a DER OCSP answer the node
    supplied. Returns one status per certificate or raises the first failure. With
    ``unavailable`` (a waiver), a certificate whose answer cannot be had is appended there
    (a ``gpu.ocsp.fetch`` FetchError) instead, and the other certificates are still checked;
    an answer that was had and does not verify raises whatever ``unavailable`` says.
    """
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    out = []
    for i in range(len(chain) - 1):
        cert, issuer = chain[i], chain[i + 1]
        role = roles[i] if i < len(roles) else f"cert[{i}]"
        if cache is not None and (hit := cache.get(cert, at)) is not None:
            out.append(hit)
            continue
        der = (stapled or {}).get(_fp(cert))
        nonce = None
        if der is None:
            try:
                if fetch is None:
                    raise FetchError("gpu.ocsp.fetch", "no OCSP answer stapled or cached, "
                                     "and offline", field=f"{role}.ocsp")
                nonce = nonce_source(NONCE_SIZE)
                der = fetch_response(fetch, cert, issuer, url=url, nonce=nonce, role=role)
            except FetchError as err:
                if unavailable is None:
                    raise
                unavailable.append(err if err.check == "gpu.ocsp.fetch" else FetchError(
                    "gpu.ocsp.fetch", f"OCSP responder unreachable: {err.message}",
                    field=f"{role}.ocsp"))
                continue
        status = verify_response(der, cert, issuer, role=role, at=at, nonce=nonce,
                                 trusted=chain[i + 1:])
        if cache is not None:
            cache.put(cert, status)
        out.append(status)
    return out
