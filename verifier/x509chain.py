"""Certificate chains that must end in an embedded, pinned vendor root.

Shared by the SNP (ARK/ASK/VCEK, RSA-PSS), TDX (Intel SGX Root CA, ECDSA P-256) and GPU
(NVIDIA Device Identity CA, ECDSA P-384) verifiers. What a node sends is never a root: the
chain's last certificate must be byte-identical to a pinned root, or be issued (and verified)
by one. Each certificate is checked at an explicit time (house rule 6).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from attest.certificates import der_of, load_certificate, register_trusted
from transparency_log.common.errors import ChainError, StaleError, TrustConfigError
from transparency_log.common.parse_cache import ObjectMemo
from verifier.verified_cache import VendorCaches, VerifiedCache
from verifier.x509link import signed_parts, verify_issued_by


@dataclass(frozen=True)
class PinnedRoot:
    """A vendor root shipped as package data and pinned by the SHA-256 of its DER."""

    name: str
    certificate: x509.Certificate
    intermediates: tuple[x509.Certificate, ...] = ()
    """Certificates this root issued that are trust configuration too (package data, each
    pinned by its SHA-256, such as Intel's PCK Platform CA): a chain link from one of them
    to its root is verified once per process (like the root's self-signature); their time
    and revocation checks still run on every call, and a certificate with other bytes (a
    re-issued or look-alike one) is verified like any other."""

    @cached_property
    def fingerprint(self) -> bytes:
        """Computed once: the certificate never changes."""
        return fingerprint(self.certificate)

    @cached_property
    def intermediate_fingerprints(self) -> frozenset[bytes]:
        return frozenset(fingerprint(c) for c in self.intermediates)


_FP_MEMO_SIZE = 1024
fingerprint: ObjectMemo[x509.Certificate, bytes] = ObjectMemo(
    lambda cert: hashlib.sha256(der_of(cert)).digest(), _FP_MEMO_SIZE)
"""``fingerprint(cert)``: the SHA-256 of the certificate's DER, remembered per certificate
object (cryptography re-encodes the DER on each ``public_bytes``)."""


def issuer_named(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``child.issuer == issuer.subject`` (RFC 5280 §4.1.2.4), remembered per pair of exact
    certificates (by SHA-256; cryptography compares names attribute by attribute in Python).
    A pure function of the two DERs; a name that does not decode raises and is not kept."""
    key = (fingerprint(child), fingerprint(issuer))
    hit = _NAMED.get(key)
    if hit is None:
        hit = child.issuer == issuer.subject
        _NAMED.put(key, hit)
    return hit


_NAMED: VerifiedCache[tuple[bytes, bytes], bool] = VerifiedCache(_FP_MEMO_SIZE)


def pinned_root(name: str, pem_or_der: bytes, sha256_hex: str, *,
                intermediates: Sequence[tuple[str, bytes, str]] = ()) -> PinnedRoot:
    """Build a PinnedRoot, refusing one whose fingerprint differs from the pin.
    ``intermediates``: (name, PEM or DER, SHA-256 hex) of certificates the root issued that
    ship as trust configuration too (:attr:`PinnedRoot.intermediates`), each checked
    against its pin the same way."""
    return PinnedRoot(name, pinned_certificate(name, pem_or_der, sha256_hex),
                      tuple(pinned_certificate(*i) for i in intermediates))


def pinned_certificate(name: str, pem_or_der: bytes, sha256_hex: str) -> x509.Certificate:
    """An embedded certificate, refused (``trust.root.pin``) unless its SHA-256 is the pin."""
    cert = load_certificate(pem_or_der, check="trust.root", field=name)
    got = fingerprint(cert)
    if got.hex() != sha256_hex.lower():
        raise TrustConfigError(
            "trust.root.pin", f"embedded {name} does not match its pin",
            field=name, got=got, want=sha256_hex.lower(),
        )
    register_trusted(cert)
    return cert


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
    """One link of a path (RFC 5280 §6.1.3 (a)(1), (a)(4)): ``child`` names ``issuer`` as its
    issuer and its signature verifies under the issuer's key. Refusals are ChainErrors
    ``check`` naming the child's role; the RFC 4514 texts are built only for the error."""
    parts, issuer_parts = signed_parts(child), signed_parts(issuer)
    same_der = (parts is not None and issuer_parts is not None
                and parts.issuer == issuer_parts.subject)
    if not same_der and child.issuer != issuer.subject:
        raise ChainError(
            check, f"{child_role} certificate is not issued by the {issuer_role}",
            field=f"{child_role}.issuer", got=child.issuer.rfc4514_string(),
            want=issuer.subject.rfc4514_string(),
        )
    try:
        verify_issued_by(child, issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise ChainError(
            check, f"{child_role} certificate signature does not verify under the "
            f"{issuer_role} ({type(err).__name__})", field=f"{child_role}.signature",
        ) from None


_PINNED_LINKS: set[tuple[bytes, bytes]] = set()
_PINNED_LINKS_LOCK = threading.Lock()


def _pinned_link_known(child_fp: bytes, issuer_fp: bytes) -> bool:
    with _PINNED_LINKS_LOCK:
        return (child_fp, issuer_fp) in _PINNED_LINKS


def _pinned_link_verified(child_fp: bytes, issuer_fp: bytes) -> None:
    """Remember a verified link between two certificates that are trust configuration (each
    pinned by its SHA-256 or shipped as package data): the DER of both is fixed, so the
    signature's outcome cannot change and is verified once per process. Only successes are
    remembered; the time checks of both certificates still run on every call. The set holds
    at most the pairs of the configured trust anchors."""
    with _PINNED_LINKS_LOCK:
        _PINNED_LINKS.add((child_fp, issuer_fp))


def _check_pinned_link(child: x509.Certificate, issuer: x509.Certificate, *, check: str,
                       child_role: str, issuer_role: str) -> None:
    """:func:`_check_link` between two pinned certificates, verified once per process (the
    root's self-signature, an embedded intermediate under its pinned root)."""
    key = (fingerprint(child), fingerprint(issuer))
    if _pinned_link_known(*key):
        return
    _check_link(child, issuer, check=check, child_role=child_role, issuer_role=issuer_role)
    _pinned_link_verified(*key)


def _check_root_self_signed(cert: x509.Certificate, *, check: str, role: str) -> None:
    """The pinned root's self-signature, verified once per process per root (its DER is fixed
    by the pin, so the outcome cannot change); a failure is never remembered."""
    _check_pinned_link(cert, cert, check=check, child_role=role, issuer_role=role)


class VerifiedPath(NamedTuple):
    """A verified chain: the full path (root included), the pinned root it ends in, and
    whether it came from the cache (for the transcript's ``source=cache``)."""

    path: list[x509.Certificate]
    root: PinnedRoot
    from_cache: bool


def verify_chain(
    chain: Sequence[x509.Certificate],
    roots: Sequence[PinnedRoot],
    *,
    at: datetime,
    check: str,
    roles: Sequence[str] | None = None,
    cache: VendorCaches | None = None,
    pinned: Collection[bytes] = frozenset(),
) -> VerifiedPath:
    """Verify ``chain`` (leaf first) up to one of ``roots`` at time ``at``.

    The chain may end with a copy of the root (it must then be byte-identical to the pinned
    one) or with the certificate the root issued. ``roles`` names the certificates for
    messages (for example ``["VCEK", "ASK", "ARK"]``). Raises ChainError naming the failed
    link. ``pinned``: SHA-256 fingerprints of certificates that are trust configuration like
    the roots (an embedded intermediate): the signature of such a certificate by a pinned
    root or by another pinned intermediate is verified once per process (the time checks
    run always).

    ``cache``: a path verified before is reused when the cache holds these exact
    certificates under these exact roots and ``at`` is inside the path's validity window.
    The key is the SHA-256 of each certificate's DER and each root's pin: the same exact
    bytes as keying on the certificates themselves, without re-hashing the DER per lookup.
    After a full verification the path and each of its
    proper suffixes (an intermediate's own chain, such as the PCK CRL issuer chain inside
    the PCK chain) are recorded with their windows.
    """
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    if cache is not None and chain and roots:
        # Keyed on SHA-256 fingerprints (memoized per certificate object), not on the
        # certificates: hashing a certificate re-hashes its DER on every call.
        fps = tuple(r.fingerprint for r in roots)
        hit = cache.chains.get((tuple(fingerprint(c) for c in chain), fps), at)
        if hit is not None:
            path, root = hit  # type: ignore[misc]
            return VerifiedPath(list(path), root, True)
    path, root = _verify_chain(chain, roots, at=at, check=check, roles=roles, pinned=pinned)
    if cache is not None:
        fps = tuple(r.fingerprint for r in roots)
        chain_fps = tuple(fingerprint(c) for c in chain)
        for i in range(len(chain)):
            sub = tuple(path[i:])
            cache.chains.put((chain_fps[i:], fps), (sub, root),
                             max(c.not_valid_before_utc for c in sub),
                             min(c.not_valid_after_utc for c in sub))
    return VerifiedPath(path, root, False)


def _verify_chain(chain: Sequence[x509.Certificate], roots: Sequence[PinnedRoot], *,
                  at: datetime, check: str, roles: Sequence[str] | None,
                  pinned: Collection[bytes] = frozenset(),
                  ) -> tuple[list[x509.Certificate], PinnedRoot]:
    if not chain:
        raise ChainError(check, "empty certificate chain", field="chain")
    if not roots:
        raise TrustConfigError(check, "no pinned roots configured", field="roots")
    extra = [r.intermediate_fingerprints for r in roots if r.intermediates]
    if extra:
        pinned = frozenset(pinned).union(*extra)
    path = list(chain)
    names = list(roles) if roles else [f"cert[{i}]" for i in range(len(path) + 1)]
    last = path[-1]
    last_fp = fingerprint(last)
    root = next((r for r in roots if r.fingerprint == last_fp), None)
    if root is None:
        # The last certificate is not a pinned root: it must be issued by one (the link's
        # signature is checked once, below, like every other link).
        candidates = [r for r in roots if r.certificate.subject == last.issuer]
        last_pinned = last_fp in pinned
        for cand in candidates:
            if not (last_pinned and _pinned_link_known(last_fp, cand.fingerprint)):
                try:
                    verify_issued_by(last, cand.certificate)
                except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
                    continue
                if last_pinned:
                    _pinned_link_verified(last_fp, cand.fingerprint)
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
        link = _check_pinned_link if _both_pinned(path, i, pinned) else _check_link
        link(path[i], path[i + 1], check=check, child_role=_role(names, i),
             issuer_role=_role(names, i + 1))
    # The root must be self-signed (it is pinned by its SHA-256, so this holds for good once
    # checked: it is verified once per process, not per call).
    _check_root_self_signed(path[-1], check=check, role=_role(names, len(path) - 1))
    return path, root


def _both_pinned(path: Sequence[x509.Certificate], i: int, pinned: Collection[bytes]) -> bool:
    """Whether the link ``path[i]`` <- ``path[i + 1]`` joins two certificates of the trust
    configuration: ``path[i]`` is an embedded intermediate (by SHA-256) and its issuer is
    the pinned root (the path's last certificate) or another embedded intermediate (such as
    NVIDIA's Provisioner ICA under the GH100 Identity). Such a link is fixed by the two pins."""
    if not pinned or fingerprint(path[i]) not in pinned:
        return False
    return i + 1 == len(path) - 1 or fingerprint(path[i + 1]) in pinned


def _role(names: Sequence[str], i: int) -> str:
    return names[i] if i < len(names) else f"cert[{i}]"
