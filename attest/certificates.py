"""The one certificate and CRL loader (RFC 5280): PEM or DER, parsed once per exact bytes,
every lazily decoded field read at load, and every refusal a FormatError naming the check id
and the field given by the caller (never a ValueError escaping later).

Used by the node (attest.collateral) and the verifier (verifier.x509chain and the vendor
packages). ``cryptography`` decodes names, validity, extensions and keys on first access;
reading them here makes a malformed field fail where the certificate enters the program.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from transparency_log.common.errors import FormatError

__all__ = ["LOADER_ERRORS", "PARSE_MEMO_SIZE", "clear_parse_memos", "load_certificate",
           "load_certificates", "load_crl", "load_pem_bundle"]

T = TypeVar("T")

LOADER_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion,
                 x509.DuplicateExtension, x509.UnsupportedGeneralNameType)
"""What ``cryptography``'s X.509 loaders raise on malformed input (an unknown version number is
``InvalidVersion``, not a ValueError)."""


PARSE_MEMO_SIZE = 256
"""How many parsed objects (certificates, bundles, CRLs) are kept by their exact bytes: parsing
is a pure function of the bytes and the parsed objects are immutable, so they are parsed once."""


def clear_parse_memos() -> None:
    """Forget every parsed object (for tests that replace the loaders)."""
    for memo in (_load_certificate, _load_pem_bundle, _load_crl):
        memo.cache_clear()


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
    in full by the chain verification. Parsed once per bytes.
    """
    return _load_certificate(bytes(data), check=check, field=field)


def _fields_parse(cert: x509.Certificate, *, check: str, field: str) -> x509.Certificate:
    """cryptography decodes a certificate's names, validity, extensions and key lazily, on
    first use: read them all now, so a malformed field is a FormatError naming it here and
    never a ValueError escaping from a later check (RFC 5280 §4.1)."""
    reads: dict[str, Callable[[], object]] = {
        "subject": lambda: cert.subject.rfc4514_string(),
        "issuer": lambda: cert.issuer.rfc4514_string(),
        "validity": lambda: (cert.not_valid_before_utc, cert.not_valid_after_utc),
        "signatureAlgorithm": lambda: cert.signature_algorithm_oid,
        "extensions": lambda: list(cert.extensions),
        "subjectPublicKeyInfo": cert.public_key,
    }
    for name, read in reads.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                read()
        except LOADER_ERRORS as err:
            raise FormatError(check, f"certificate field does not parse: {err}",
                              field=f"{field}.{name}") from None
    return cert


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _load_certificate(data: bytes, *, check: str, field: str) -> x509.Certificate:
    cert = _load_pem_or_der(data, x509.load_pem_x509_certificate,
                            x509.load_der_x509_certificate, check=check, field=field,
                            what="certificate")
    return _fields_parse(cert, check=check, field=field)


def load_pem_bundle(data: bytes, *, check: str, field: str) -> list[x509.Certificate]:
    """Load a PEM bundle of one or more certificates, in order (parsed once per bytes)."""
    return list(_load_pem_bundle(bytes(data), check=check, field=field))


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _load_pem_bundle(data: bytes, *, check: str, field: str) -> tuple[x509.Certificate, ...]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            certs = x509.load_pem_x509_certificates(data)
    except LOADER_ERRORS as err:
        raise FormatError(check, f"certificate bundle does not parse: {err}", field=field) from None
    # cryptography skips text that is not a whole PEM block: a block cut off (or a stray
    # BEGIN line) must not pass as a shorter bundle.
    begins = data.count(b"-----BEGIN ")
    if begins != len(certs) or data.count(b"-----END ") != len(certs):
        raise FormatError(check, f"certificate bundle has {begins} PEM block(s) but "
                          f"{len(certs)} whole certificate(s)", field=field)
    return tuple(_fields_parse(c, check=check, field=f"{field}[{i}]")
                 for i, c in enumerate(certs))


def load_crl(data: bytes, *, check: str, field: str) -> x509.CertificateRevocationList:
    """Load a PEM or DER CRL (RFC 5280 §5); a refusal of the loader is a FormatError. Parsed
    once per bytes."""
    return _load_crl(bytes(data), check=check, field=field)


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _load_crl(data: bytes, *, check: str, field: str) -> x509.CertificateRevocationList:
    crl = _load_pem_or_der(data, x509.load_pem_x509_crl, x509.load_der_x509_crl, check=check,
                           field=field, what="CRL")
    reads: dict[str, Callable[[], object]] = {  # decoded lazily: read now (RFC 5280 §5.1)
        "issuer": lambda: crl.issuer.rfc4514_string(),
        "thisUpdate": lambda: (crl.last_update_utc, crl.next_update_utc),
        "signatureAlgorithm": lambda: crl.signature_algorithm_oid,
        "revokedCertificates": lambda: [(r.serial_number, r.revocation_date_utc) for r in crl],
        "extensions": lambda: list(crl.extensions),
    }
    for name, read in reads.items():
        try:
            read()
        except LOADER_ERRORS as err:
            raise FormatError(check, f"CRL field does not parse: {err}",
                              field=f"{field}.{name}") from None
    return crl


def load_certificates(data: bytes, *, check: str, field: str) -> list[x509.Certificate]:
    """A PEM bundle (one or more certificates, in order) or one DER certificate."""
    if bytes(data).lstrip().startswith(b"-----BEGIN"):
        return load_pem_bundle(data, check=check, field=field)
    return [load_certificate(data, check=check, field=field)]
