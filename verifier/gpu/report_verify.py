"""Authenticity of one GPU attestation report (docs/formats.md "NVIDIA GPU evidence").

Steps, in order; the first failure stops (house rule 5):

1. ``gpu.report.format``  parse request || response (attest/formats/spdm_measurements.py)
   and the opaque TLVs;
2. ``gpu.chain``          the device chain (leaf first, as NVML returns it) has 5 certificates
   and ends in the pinned NVIDIA Device Identity CA, every certificate's time checked at
   ``at``; the links of the embedded GH100 intermediates (verifier/gpu/roots) are verified
   once per process, every other link on each call;
3. ``gpu.report.signature`` ECDSA P-384/SHA-384 by the leaf (attestation) key over
   request || response-without-signature (DSP0274 1.1 §10.11, raw r||s signature);
4. ``gpu.report.fwid``    the FWID in the leaf's TCG DICE TcbInfo extension (2.23.133.5.4.1)
   equals the opaque FWID field (the key belongs to the firmware that signed);
5. ``gpu.report.nonce``   the request nonce equals the nonce the verifier expects (binding).

Verified chains are cached by the SHA-256 of their certificates and reused for any ``at`` inside
the chain's common validity window, so N reports from one GPU cost one chain walk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attest.certificates import PARSE_MEMO_SIZE, load_pem_bundle
from attest.formats.nvidia_opaque import OpaqueData, parse_opaque
from attest.formats.spdm_measurements import SpdmReport, parse_report
from transparency_log.common.errors import (
    ChainError,
    FormatError,
    SignatureError,
    VerificationError,
)
from verifier.verified_cache import VerifiedCache
from verifier.x509chain import PinnedRoot, fingerprint, verify_chain

DEVICE_CHAIN_ROLES = ("GSP FMC leaf", "GSP BROM", "Provisioner ICA", "GH100 Identity",
                      "Device Identity CA")
DEVICE_CHAIN_LENGTH = 5
TCG_DICE_TCBINFO = x509.ObjectIdentifier("2.23.133.5.4.1")
# FWID ::= SEQUENCE { hashAlg OID sha384, digest OCTET STRING (48) } as DER, before the digest.
_FWID_SHA384_PREFIX = bytes.fromhex("303d0609608648016503040202" "0430")
FWID_SIZE = 48


@dataclass(frozen=True)
class VerifiedChain:
    certificates: tuple[x509.Certificate, ...]  # leaf first, root last
    root: PinnedRoot
    leaf_key: ec.EllipticCurvePublicKey
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class VerifiedGpuReport:
    """An authentic report: parsed, signed by a genuine GPU, bound to the expected nonce."""

    report: SpdmReport
    opaque: OpaqueData
    chain: VerifiedChain
    steps: tuple[str, ...] = field(default=())
    chain_cached: bool = False  # the device chain was reused from a ChainCache

    @property
    def driver_version(self) -> str | None:
        return self.opaque.driver_version

    @property
    def vbios_version(self) -> str | None:
        return self.opaque.vbios_version

    @property
    def measurements(self) -> dict[int, bytes]:
        """1-based SPDM index -> measurement value."""
        return {b.index: b.value for b in self.report.response.blocks}


class ChainCache:
    """Verified device chains by their exact certificates (+ roots), valid inside their time
    window; bounded (LRU) and safe to share between threads (verifier/verified_cache.py)."""

    def __init__(self) -> None:
        self._chains: VerifiedCache[object, VerifiedChain] = VerifiedCache()

    def get(self, key: object, at: datetime) -> VerifiedChain | None:
        return self._chains.get(key, at)

    def put(self, key: object, chain: VerifiedChain) -> None:
        self._chains.put(key, chain, chain.not_before, chain.not_after)


def load_device_chain(pem: bytes) -> list[x509.Certificate]:
    """The device chain as NVML returns it: a PEM bundle, leaf first."""
    certs = load_pem_bundle(pem, check="gpu.chain.format", field="device chain")
    if not certs:
        raise FormatError("gpu.chain.format", "no certificate in the bundle",
                          field="device chain")
    return certs


def verify_device_chain(
    chain: Sequence[x509.Certificate], roots: Sequence[PinnedRoot], *, at: datetime,
    cache: ChainCache | None = None, expected_length: int = DEVICE_CHAIN_LENGTH,
) -> VerifiedChain:
    """Step 2: the device chain to a pinned root (``gpu.chain``)."""
    return _device_chain(chain, roots, at=at, cache=cache, expected_length=expected_length)[0]


def _device_chain(
    chain: Sequence[x509.Certificate], roots: Sequence[PinnedRoot], *, at: datetime,
    cache: ChainCache | None, expected_length: int = DEVICE_CHAIN_LENGTH,
) -> tuple[VerifiedChain, bool]:
    """:func:`verify_device_chain` and whether the chain came from ``cache`` (one lookup)."""
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    key = _chain_key(chain, roots)
    if cache is not None and (hit := cache.get(key, at)) is not None:
        return hit, True
    if len(chain) != expected_length:
        raise ChainError("gpu.chain", "device chain has the wrong number of certificates",
                         field="chain length", got=len(chain), want=expected_length)
    # every field of these certificates was read where they were loaded (attest.certificates)
    path, root, _ = verify_chain(_pinned_copy(chain, roots), roots, at=at, check="gpu.chain",
                                 roles=DEVICE_CHAIN_ROLES)
    leaf_key = path[0].public_key()
    if not isinstance(leaf_key, ec.EllipticCurvePublicKey) or leaf_key.curve.name != "secp384r1":
        raise ChainError("gpu.chain", "attestation key is not ECDSA P-384",
                         field="GSP FMC leaf.subjectPublicKeyInfo", got=type(leaf_key).__name__,
                         want="secp384r1")
    verified = VerifiedChain(
        certificates=tuple(path), root=root, leaf_key=leaf_key,
        not_before=max(c.not_valid_before_utc for c in path),
        not_after=min(c.not_valid_after_utc for c in path))
    if cache is not None:
        cache.put(key, verified)
    return verified, False


def _pinned_copy(chain: Sequence[x509.Certificate], roots: Sequence[PinnedRoot],
                 ) -> Sequence[x509.Certificate]:
    """``chain`` with its last certificate replaced by the pinned root's own object when the
    two have the same SHA-256 (the same DER, as the chain walk compares them): the root's key
    and parts are then the ones read once per process, not decoded again for each call."""
    if not chain:
        return chain
    last = chain[-1]
    for r in roots:
        if r.certificate is not last and fingerprint(last) == r.fingerprint:
            return [*chain[:-1], r.certificate]
    return chain


def _chain_key(chain: Sequence[x509.Certificate], roots: Sequence[PinnedRoot]) -> object:
    """The SHA-256 of each certificate's DER and each root's pin: the same exact key as the
    certificates themselves (which hash by re-encoding their DER on every lookup)."""
    return (tuple(fingerprint(c) for c in chain), tuple(r.fingerprint for r in roots))


def parsed_report(report_bytes: bytes) -> tuple[SpdmReport, OpaqueData]:
    """Step 1's parse: the SPDM request || response and its opaque TLVs, strictly. Parsed
    once per exact bytes (a bounded memo; the parsed objects are immutable; a parse that
    fails is not remembered and fails again)."""
    return _parsed_report(bytes(report_bytes))


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _parsed_report(report_bytes: bytes) -> tuple[SpdmReport, OpaqueData]:
    report = parse_report(report_bytes)
    return report, parse_opaque(report.response.opaque_data)


def verify_report_signature(report: SpdmReport, key: ec.EllipticCurvePublicKey) -> None:
    """Step 3: ECDSA P-384/SHA-384 over request || response-without-signature."""
    sig = report.response.signature
    if len(sig) != 96:
        raise SignatureError("gpu.report.signature", "not a raw P-384 signature",
                             field="Signature", got=len(sig), want=96)
    r = int.from_bytes(sig[:48], "big")
    s = int.from_bytes(sig[48:], "big")
    try:
        key.verify(encode_dss_signature(r, s), report.signed_bytes(), ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise SignatureError("gpu.report.signature",
                             "report signature does not verify under the attestation key",
                             field="Signature") from None


def leaf_fwid(leaf: x509.Certificate) -> bytes:
    """The 48-byte SHA-384 FWID from the leaf's TCG DICE TcbInfo extension."""
    try:
        ext = leaf.extensions.get_extension_for_oid(TCG_DICE_TCBINFO)
    except x509.ExtensionNotFound:
        raise VerificationError("gpu.report.fwid", "leaf has no TCG DICE TcbInfo extension",
                                field="2.23.133.5.4.1") from None
    raw = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
    tail = raw[-(len(_FWID_SHA384_PREFIX) + FWID_SIZE):]
    if not tail.startswith(_FWID_SHA384_PREFIX):
        raise VerificationError("gpu.report.fwid", "TcbInfo does not end in a SHA-384 FWID",
                                field="2.23.133.5.4.1.fwids", got=raw[-64:])
    return tail[len(_FWID_SHA384_PREFIX):]


def check_fwid(opaque: OpaqueData, leaf: x509.Certificate) -> None:
    """Step 4: leaf FWID == opaque FWID."""
    want = leaf_fwid(leaf)
    got = opaque.fwid
    if got != want:
        raise VerificationError("gpu.report.fwid", "report FWID differs from the leaf's FWID",
                                field="FWID", got=got if got is not None else "(absent)",
                                want=want)


def check_nonce(report: SpdmReport, expected: bytes) -> None:
    """Step 5: the request nonce is the one the verifier asked for."""
    if report.request.nonce != expected:
        raise VerificationError("gpu.report.nonce", "report is not bound to the expected nonce",
                                field="GET_MEASUREMENTS.Nonce", got=report.request.nonce,
                                want=expected)


def verify_gpu_report(
    report_bytes: bytes,
    chain: Sequence[x509.Certificate],
    *,
    nonce: bytes,
    roots: Sequence[PinnedRoot],
    at: datetime,
    cache: ChainCache | None = None,
) -> VerifiedGpuReport:
    """Run steps 1-5; return the verified report or raise the first failure."""
    report, opaque = parsed_report(report_bytes)
    if not report.request.signature_requested:
        raise FormatError("gpu.report.format", "the request did not ask for a signature",
                          field="GET_MEASUREMENTS.Param1", got=report.request.param1,
                          want="bit 0 set")
    verified_chain, cached = _device_chain(chain, roots, at=at, cache=cache)
    verify_report_signature(report, verified_chain.leaf_key)
    check_fwid(opaque, verified_chain.certificates[0])
    check_nonce(report, nonce)
    return VerifiedGpuReport(report, opaque, verified_chain,
                             steps=("gpu.report.format", "gpu.chain", "gpu.report.signature",
                                    "gpu.report.fwid", "gpu.report.nonce"),
                             chain_cached=cached)
