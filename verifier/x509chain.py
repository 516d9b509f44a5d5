"""Certificate chains that must end in an embedded, pinned vendor root.

Shared by the SNP (ARK/ASK/VCEK, RSA-PSS), TDX (Intel SGX Root CA, ECDSA P-256) and GPU
(NVIDIA Device Identity CA, ECDSA P-384) verifiers. What a node sends is never a root: the
chain's last certificate must be byte-identical to a pinned root, or be issued (and verified)
by one. Each certificate is checked at an explicit time (house rule 6).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from transparency_log.errors import ChainError, FormatError, StaleError, TrustConfigError


@dataclass(frozen=True)
class PinnedRoot:
    """A vendor root shipped as package data and pinned by the SHA-256 of its DER."""

    name: str
    certificate: x509.Certificate

    @property
    def fingerprint(self) -> bytes:
        return fingerprint(self.certificate)


def fingerprint(cert: x509.Certificate) -> bytes:
    """SHA-256 of the certificate's DER encoding."""
    from cryptography.hazmat.primitives.serialization import Encoding

    return hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()


T = TypeVar("T")

LOADER_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion)
"""What ``cryptography``'s X.509 loaders raise on malformed input (an unknown version number is
``InvalidVersion``, not a ValueError)."""


def _load_pem_or_der(data: bytes, pem: Callable[[bytes], T], der: Callable[[bytes], T], *,
                     check: str, field: str, what: str) -> T:
    """One PEM or DER object; loader warnings silenced, a refusal is a FormatError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pem(data) if data.lstrip().startswith(b"-----BEGIN") else der(data)
    except LOADER_ERRORS as err:
        raise FormatError(check, f"{what} does not parse: {err}", field=field) from None


def load_certificate(data: bytes, *, check: str, field: str) -> x509.Certificate:
    """Load one PEM or DER certificate; a refusal of the loader is a FormatError, not a crash.

    Warnings from the loader (AMD VCEKs have non-positive serial numbers, which recent
    ``cryptography`` releases warn about) are silenced here: the certificate is still checked
    in full by the chain verification.
    """
    return _load_pem_or_der(data, x509.load_pem_x509_certificate,
                            x509.load_der_x509_certificate, check=check, field=field,
                            what="certificate")


def load_pem_bundle(data: bytes, *, check: str, field: str) -> list[x509.Certificate]:
    """Load a PEM bundle of one or more certificates, in order."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            certs = x509.load_pem_x509_certificates(data)
    except LOADER_ERRORS as err:
        raise FormatError(check, f"certificate bundle does not parse: {err}", field=field) from None
    return certs


def load_crl(data: bytes, *, check: str, field: str) -> x509.CertificateRevocationList:
    """Load a PEM or DER CRL (RFC 5280 §5); a refusal of the loader is a FormatError."""
    return _load_pem_or_der(data, x509.load_pem_x509_crl, x509.load_der_x509_crl, check=check,
                            field=field, what="CRL")


def pinned_root(name: str, pem_or_der: bytes, sha256_hex: str) -> PinnedRoot:
    """Build a PinnedRoot, refusing one whose fingerprint differs from the pin."""
    cert = load_certificate(pem_or_der, check="trust.root", field=name)
    got = fingerprint(cert)
    if got.hex() != sha256_hex.lower():
        raise TrustConfigError(
            "trust.root.pin", f"embedded root {name} does not match its pin",
            field=name, got=got, want=sha256_hex.lower(),
        )
    return PinnedRoot(name, cert)


def _check_time(cert: x509.Certificate, at: datetime, *, check: str, role: str) -> None:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    if at < cert.not_valid_before_utc:
        raise StaleError(
            check, f"{role} certificate not yet valid", field=f"{role}.notBefore",
            got=at.isoformat(), want=f">= {cert.not_valid_before_utc.isoformat()}",
        )
    if at > cert.not_valid_after_utc:
        raise StaleError(
            check, f"{role} certificate expired", field=f"{role}.notAfter",
            got=at.isoformat(), want=f"<= {cert.not_valid_after_utc.isoformat()}",
        )


def _check_is_ca(cert: x509.Certificate, *, check: str, role: str) -> None:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise ChainError(
            check, f"{role} certificate issues others but has no BasicConstraints",
            field=f"{role}.basicConstraints",
        ) from None
    if not bc.ca:
        raise ChainError(
            check, f"{role} certificate issues others but is not a CA",
            field=f"{role}.basicConstraints.cA", got=False, want=True,
        )


def _check_link(child: x509.Certificate, issuer: x509.Certificate, *, check: str,
                child_role: str, issuer_role: str) -> None:
    if child.issuer != issuer.subject:
        raise ChainError(
            check, f"{child_role} certificate is not issued by the {issuer_role}",
            field=f"{child_role}.issuer", got=child.issuer.rfc4514_string(),
            want=issuer.subject.rfc4514_string(),
        )
    try:
        child.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise ChainError(
            check, f"{child_role} certificate signature does not verify under the "
            f"{issuer_role} ({type(err).__name__})", field=f"{child_role}.signature",
        ) from None


def verify_chain(
    chain: Sequence[x509.Certificate],
    roots: Sequence[PinnedRoot],
    *,
    at: datetime,
    check: str,
    roles: Sequence[str] | None = None,
) -> tuple[list[x509.Certificate], PinnedRoot]:
    """Verify ``chain`` (leaf first) up to one of ``roots`` at time ``at``.

    The chain may end with a copy of the root (it must then be byte-identical to the pinned
    one) or with the certificate the root issued. ``roles`` names the certificates for
    messages (for example ``["VCEK", "ASK", "ARK"]``). Returns the full path, root included,
    and the root used. Raises ChainError naming the failed link.
    """
    if not chain:
        raise ChainError(check, "empty certificate chain", field="chain")
    if not roots:
        raise TrustConfigError(check, "no pinned roots configured", field="roots")
    path = list(chain)
    names = list(roles) if roles else [f"cert[{i}]" for i in range(len(path) + 1)]
    last = path[-1]
    last_fp = fingerprint(last)
    root = next((r for r in roots if r.fingerprint == last_fp), None)
    if root is None:
        # The last certificate is not a pinned root: it must be issued by one.
        candidates = [r for r in roots if r.certificate.subject == last.issuer]
        for cand in candidates:
            try:
                last.verify_directly_issued_by(cand.certificate)
            except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
                continue
            root = cand
            path.append(cand.certificate)
            break
        if root is None:
            if last.issuer == last.subject:
                msg = "chain ends in a self-signed certificate that is not a pinned root"
            else:
                msg = "chain does not end in a pinned root"
            raise ChainError(
                check, msg, field=f"{_role(names, len(chain) - 1)}.issuer",
                got=last.issuer.rfc4514_string(),
                want=" | ".join(r.name for r in roots),
            )
    for i, cert in enumerate(path):
        _check_time(cert, at, check=check, role=_role(names, i))
    for i in range(len(path) - 1):
        _check_is_ca(path[i + 1], check=check, role=_role(names, i + 1))
        _check_link(path[i], path[i + 1], check=check, child_role=_role(names, i),
                    issuer_role=_role(names, i + 1))
    # The root itself must be self-signed (it is pinned, but check it is what it claims).
    _check_link(path[-1], path[-1], check=check, child_role=_role(names, len(path) - 1),
                issuer_role=_role(names, len(path) - 1))
    return path, root


def _role(names: Sequence[str], i: int) -> str:
    return names[i] if i < len(names) else f"cert[{i}]"
