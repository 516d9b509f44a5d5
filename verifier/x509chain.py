"""Certificate chains that must end in an embedded, pinned vendor root.

Shared by the SNP (ARK/ASK/VCEK, RSA-PSS), TDX (Intel SGX Root CA, ECDSA P-256) and GPU
(NVIDIA Device Identity CA, ECDSA P-384) verifiers. What a node sends is never a root: the
chain's last certificate must be byte-identical to a pinned root, or be issued (and verified)
by one. Each certificate is checked at an explicit time (house rule 6).
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from transparency_log.common.errors import ChainError, FormatError, StaleError, TrustConfigError
from verifier.verified_cache import VendorCaches


@dataclass(frozen=True)
class PinnedRoot:
    """A vendor root shipped as package data and pinned by the SHA-256 of its DER."""

    name: str
    certificate: x509.Certificate

    @cached_property
    def fingerprint(self) -> bytes:
        """Computed once: the certificate never changes."""
        return fingerprint(self.certificate)


def fingerprint(cert: x509.Certificate) -> bytes:
    """SHA-256 of the certificate's DER encoding."""
    from cryptography.hazmat.primitives.serialization import Encoding

    return hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()


T = TypeVar("T")

LOADER_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion)
"""What ``cryptography``'s X.509 loaders raise on malformed input (an unknown version number is
``InvalidVersion``, not a ValueError)."""


PARSE_MEMO_SIZE = 256
"""How many parsed objects (certificates, bundles, CRLs) are kept by their exact bytes: parsing
is a pure function of the bytes and the parsed objects are immutable, so they are parsed once."""


def clear_parse_memos() -> None:
    """Forget every parsed object (for tests that replace the loaders, and cold benches)."""
    for memo in (_load_certificate, _load_pem_bundle, _load_crl, _checked_certificate,
                 _name_text):
        memo.cache_clear()


class _ParseFailure(Exception):
    """A refusal of a bytes-keyed loader, turned into the caller's FormatError by
    :func:`_as_format_error` (a memo keyed by the bytes alone serves every caller; failures
    are never memoized, so each caller gets its own check id and field)."""

    def __init__(self, message: str, suffix: str = "") -> None:
        super().__init__(message)
        self.message, self.suffix = message, suffix


def _as_format_error(load: Callable[[bytes], T], data: bytes, *, check: str, field: str) -> T:
    try:
        return load(bytes(data))
    except _ParseFailure as err:
        raise FormatError(check, err.message, field=field + err.suffix) from None


def _load_pem_or_der(data: bytes, pem: Callable[[bytes], T], der: Callable[[bytes], T], *,
                     what: str) -> T:
    """One PEM or DER object; loader warnings silenced, a refusal is a _ParseFailure."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pem(data) if data.lstrip().startswith(b"-----BEGIN") else der(data)
    except LOADER_ERRORS as err:
        raise _ParseFailure(f"{what} does not parse: {err}") from None


def load_certificate(data: bytes, *, check: str, field: str) -> x509.Certificate:
    """Load one PEM or DER certificate; a refusal of the loader is a FormatError, not a crash.

    Warnings from the loader (AMD VCEKs have non-positive serial numbers, which recent
    ``cryptography`` releases warn about) are silenced here: the certificate is still checked
    in full by the chain verification. Parsed once per bytes.
    """
    return _as_format_error(_load_certificate, data, check=check, field=field)


_NAME_READS = {"subject": lambda c: c.subject, "issuer": lambda c: c.issuer}


@lru_cache(maxsize=4 * PARSE_MEMO_SIZE)
def _name_text(cert: x509.Certificate, which: str) -> str:
    """The RFC 4514 text of the certificate's subject or issuer, built once per certificate
    (certificates hash and compare by their DER)."""
    return _NAME_READS[which](cert).rfc4514_string()  # type: ignore[no-any-return]


def name_text(cert: x509.Certificate, which: str = "subject") -> str:
    """The certificate's ``subject`` or ``issuer`` as RFC 4514 text (memoized; a certificate
    loaded here had both names decoded at load, so this meets no malformed name)."""
    return _name_text(cert, which)


@lru_cache(maxsize=4 * PARSE_MEMO_SIZE)
def _checked_certificate(cert: x509.Certificate) -> x509.Certificate:
    """cryptography decodes a certificate's names, validity, extensions and key lazily, on
    first use: read them all now, so a malformed field is refused here (a _ParseFailure naming
    it) and never a ValueError escaping from a later check (RFC 5280 §4.1).

    Once per certificate: the first instance of a DER is returned for every later equal one,
    so what it decoded (cryptography keeps a decoded name, extension list and key on the
    object) is reused by every chain, bundle and check that meets the same certificate."""
    reads: dict[str, Callable[[], object]] = {  # the RFC 4514 texts are built when needed
        "subject": lambda: cert.subject,
        "issuer": lambda: cert.issuer,
        "validity": lambda: (cert.not_valid_before_utc, cert.not_valid_after_utc),
        "signatureAlgorithm": lambda: cert.signature_algorithm_oid,
        "extensions": lambda: list(cert.extensions),
        "subjectPublicKeyInfo": cert.public_key,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, read in reads.items():
            try:
                read()
            except (*LOADER_ERRORS, x509.DuplicateExtension,
                    x509.UnsupportedGeneralNameType) as err:
                raise _ParseFailure(f"certificate field does not parse: {err}",
                                    f".{name}") from None
    return cert


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _load_certificate(data: bytes) -> x509.Certificate:
    cert = _load_pem_or_der(data, x509.load_pem_x509_certificate,
                            x509.load_der_x509_certificate, what="certificate")
    return _checked_certificate(cert)


def load_pem_bundle(data: bytes, *, check: str, field: str) -> list[x509.Certificate]:
    """Load a PEM bundle of one or more certificates, in order (parsed once per bytes,
    whichever check asks)."""
    return list(_as_format_error(_load_pem_bundle, data, check=check, field=field))


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _load_pem_bundle(data: bytes) -> tuple[x509.Certificate, ...]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            certs = x509.load_pem_x509_certificates(data)
    except LOADER_ERRORS as err:
        raise _ParseFailure(f"certificate bundle does not parse: {err}") from None
    # cryptography skips text that is not a whole PEM block: a block cut off (or a stray
    # BEGIN line) must not pass as a shorter bundle.
    begins = data.count(b"-----BEGIN ")
    if begins != len(certs) or data.count(b"-----END ") != len(certs):
        raise _ParseFailure(f"certificate bundle has {begins} PEM block(s) but "
                            f"{len(certs)} whole certificate(s)")
    out = []
    for i, cert in enumerate(certs):
        try:
            out.append(_checked_certificate(cert))
        except _ParseFailure as err:
            raise _ParseFailure(err.message, f"[{i}]{err.suffix}") from None
    return tuple(out)


def load_crl(data: bytes, *, check: str, field: str) -> x509.CertificateRevocationList:
    """Load a PEM or DER CRL (RFC 5280 §5); a refusal of the loader is a FormatError. Parsed
    once per bytes."""
    return _as_format_error(_load_crl, data, check=check, field=field)


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    crl = _load_pem_or_der(data, x509.load_pem_x509_crl, x509.load_der_x509_crl, what="CRL")
    reads: dict[str, Callable[[], object]] = {  # decoded lazily: read now (RFC 5280 §5.1)
        "issuer": lambda: crl.issuer,
        "thisUpdate": lambda: (crl.last_update_utc, crl.next_update_utc),
        "signatureAlgorithm": lambda: crl.signature_algorithm_oid,
        "revokedCertificates": lambda: [(r.serial_number, r.revocation_date_utc) for r in crl],
        "extensions": lambda: list(crl.extensions),
    }
    for name, read in reads.items():
        try:
            read()
        except (*LOADER_ERRORS, x509.DuplicateExtension) as err:
            raise _ParseFailure(f"CRL field does not parse: {err}", f".{name}") from None
    return crl


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


_SELF_SIGNED: set[bytes] = set()
_SELF_SIGNED_LOCK = threading.Lock()


def _check_root_self_signed(cert: x509.Certificate, *, check: str, role: str) -> None:
    """The pinned root's self-signature, verified once per process per root (its DER is fixed
    by the pin, so the outcome cannot change); a failure is never remembered."""
    fp = fingerprint(cert)
    with _SELF_SIGNED_LOCK:
        if fp in _SELF_SIGNED:
            return
    _check_link(cert, cert, check=check, child_role=role, issuer_role=role)
    with _SELF_SIGNED_LOCK:
        _SELF_SIGNED.add(fp)


def verify_chain(
    chain: Sequence[x509.Certificate],
    roots: Sequence[PinnedRoot],
    *,
    at: datetime,
    check: str,
    roles: Sequence[str] | None = None,
    cache: VendorCaches | None = None,
) -> tuple[list[x509.Certificate], PinnedRoot]:
    """Verify ``chain`` (leaf first) up to one of ``roots`` at time ``at``.

    The chain may end with a copy of the root (it must then be byte-identical to the pinned
    one) or with the certificate the root issued. ``roles`` names the certificates for
    messages (for example ``["VCEK", "ASK", "ARK"]``). Returns the full path, root included,
    and the root used. Raises ChainError naming the failed link. ``cache``: see
    :func:`verify_chain_cached`.
    """
    path, root, _ = verify_chain_cached(chain, roots, at=at, check=check, roles=roles,
                                        cache=cache)
    return path, root


def verify_chain_cached(
    chain: Sequence[x509.Certificate],
    roots: Sequence[PinnedRoot],
    *,
    at: datetime,
    check: str,
    roles: Sequence[str] | None = None,
    cache: VendorCaches | None = None,
) -> tuple[list[x509.Certificate], PinnedRoot, bool]:
    """:func:`verify_chain`, reusing a path verified before when ``cache`` holds these exact
    certificates under these exact roots and ``at`` is inside the path's validity window.

    Returns (path, root, from_cache). After a full verification the path and each of its
    proper suffixes (an intermediate's own chain, such as the PCK CRL issuer chain inside
    the PCK chain) are recorded with their windows.
    """
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    key: object = None
    if cache is not None and chain and roots:
        key = (tuple(chain), tuple(r.fingerprint for r in roots))
        hit = cache.chains.get(key, at)
        if hit is not None:
            path, root = hit  # type: ignore[misc]
            return list(path), root, True
    path, root = _verify_chain(chain, roots, at=at, check=check, roles=roles)
    if cache is not None:
        fps = tuple(r.fingerprint for r in roots)
        for i in range(len(chain)):
            sub = tuple(path[i:])
            cache.chains.put((tuple(chain[i:]), fps), (sub, root),
                             max(c.not_valid_before_utc for c in sub),
                             min(c.not_valid_after_utc for c in sub))
    return path, root, False


def _verify_chain(chain: Sequence[x509.Certificate], roots: Sequence[PinnedRoot], *,
                  at: datetime, check: str, roles: Sequence[str] | None,
                  ) -> tuple[list[x509.Certificate], PinnedRoot]:
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
        # The last certificate is not a pinned root: it must be issued by one (the link's
        # signature is checked once, below, like every other link).
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
    appended = len(path) > len(chain)
    for i in range(len(path) - 1):
        _check_is_ca(path[i + 1], check=check, role=_role(names, i + 1))
        if appended and i == len(path) - 2:
            continue  # verified when the issuing root was chosen above
        _check_link(path[i], path[i + 1], check=check, child_role=_role(names, i),
                    issuer_role=_role(names, i + 1))
    # The root must be self-signed (it is pinned by its SHA-256, so this holds for good once
    # checked: it is verified once per process, not per call).
    _check_root_self_signed(path[-1], check=check, role=_role(names, len(path) - 1))
    return path, root


def _role(names: Sequence[str], i: int) -> str:
    return names[i] if i < len(names) else f"cert[{i}]"
