"""Reference values for a GPU report: signed driver and VBIOS RIMs (docs/formats.md).

Authenticity of a RIM (first failure stops):

1. ``gpu.rim.format``     the SWID structure parses and the KeyInfo carries a certificate chain;
2. ``gpu.rim.chain``      the embedded chain (signer first) ends in the pinned NVIDIA RIM root,
   every link checked at ``at`` (we do this ourselves: signxml's own path check rejects
   NVIDIA's RIM root);
3. ``gpu.rim.signature``  XML-DSig (enveloped, ecdsa-sha384, sha384 digest, c14n 1.1) verifies
   with signxml under the *verified* signer certificate; the structure judged afterwards is
   read from what signxml says was signed, never from the raw input (no wrapping attacks).

Comparison with a verified report (all failures collected into one PolicyError):

- ``gpu.rim.driver`` / ``gpu.rim.vbios``: the RIM's colloquialVersion equals the report's
  DRIVER_VERSION / VBIOS_VERSION (case-insensitive);
- ``gpu.rim.conflict``: driver and VBIOS RIMs may not both claim an active index;
- ``gpu.rim.measurements``: every active RIM index i equals SPDM block i + 1 (any of the
  alternatives may match); index 35 is skipped when NVDEC0 is disabled (status 0x55).
  Each mismatching index is reported with got and want.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml import (
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureMethod,
    XMLVerifier,
)
from signxml.exceptions import InvalidInput, InvalidSignature

from attest.certificates import LOADER_ERRORS, load_certificate
from attest.formats.nvidia_rim import Rim, RimMeasurement, parse_rim
from transparency_log.common.errors import FormatError, SignatureError, VerificationError
from verifier.policy_base import FailureCollector
from verifier.verified_cache import DEFAULT_MAXSIZE, VerifiedCache
from verifier.x509chain import PinnedRoot, verify_chain

RIM_CHAIN_ROLES = ("RIM signer", "RIM L3", "RIM CA", "RIM root")
NVDEC0_INDEX = 35  # RIM index of the NVDEC0 measurement (SPDM block 36)
MAX_CHAIN = 6
_X509_CERT = re.compile(
    rb"<(?:[A-Za-z0-9_]+:)?X509Certificate>([A-Za-z0-9+/=\s]+)</(?:[A-Za-z0-9_]+:)?"
    rb"X509Certificate>")
_CONFIG_FIELDS = dict(
    signature_methods=frozenset({SignatureMethod.ECDSA_SHA384}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA384}),
    expect_references=1,
)


@dataclass(frozen=True)
class VerifiedRim:
    """A RIM whose signature and chain verified; ``rim`` is read from the signed bytes."""

    rim: Rim
    kind: str  # "driver" or "vbios"
    signer: x509.Certificate
    not_before: datetime
    not_after: datetime

    @cached_property
    def active(self) -> dict[int, RimMeasurement]:
        """The RIM's active indexes, computed once per verified RIM (a cached one is reused
        by every report compared with it). Read-only by convention: callers copy."""
        return self.rim.active()


@dataclass(frozen=True)
class MeasurementMismatch:
    rim_index: int
    got: bytes | None
    want: tuple[bytes, ...]
    source: str  # which RIM claimed it

    @property
    def spdm_index(self) -> int:
        return self.rim_index + 1


class RimCache:
    """Verified RIMs by the exact bytes of the document (+ the roots' fingerprints), reused
    inside their time window; bounded (LRU) and safe to share between threads
    (verifier/verified_cache.py). The document itself is the key: Python remembers a bytes
    object's hash, so the RIMs of a decoded bundle seen before are found without hashing
    17 kB again, and other bytes (one bit apart) compare unequal and miss."""

    def __init__(self, maxsize: int = DEFAULT_MAXSIZE) -> None:
        self._rims: VerifiedCache[object, VerifiedRim] = VerifiedCache(maxsize)

    def get(self, key: object, at: datetime) -> VerifiedRim | None:
        return self._rims.get(key, at)

    def put(self, key: object, rim: VerifiedRim) -> None:
        self._rims.put(key, rim, rim.not_before, rim.not_after)


def embedded_chain(xml: bytes) -> list[x509.Certificate]:
    """The X509Certificate elements of the signature's KeyInfo, in document order."""
    found = _X509_CERT.findall(xml)
    if not found:
        raise FormatError("gpu.rim.format", "RIM signature carries no certificate",
                          field="KeyInfo.X509Data")
    if len(found) > MAX_CHAIN:
        raise FormatError("gpu.rim.format", "too many certificates", field="KeyInfo.X509Data",
                          got=len(found), want=f"<= {MAX_CHAIN}")
    certs = []
    for i, b64 in enumerate(found):
        try:
            der = base64.b64decode(b"".join(b64.split()), validate=True)
        except ValueError:
            raise FormatError("gpu.rim.format", "certificate is not base64",
                              field=f"X509Certificate[{i}]") from None
        certs.append(load_certificate(der, check="gpu.rim.format",
                                      field=f"X509Certificate[{i}]"))
    return certs


def verify_rim(xml: bytes, *, kind: str, roots: Sequence[PinnedRoot], at: datetime,
               cache: RimCache | None = None) -> VerifiedRim:
    """Steps 1-3 for one RIM; ``kind`` is "driver" or "vbios" (named in errors)."""
    return check_rim(xml, kind=kind, roots=roots, at=at, cache=cache)[0]


def check_rim(xml: bytes, *, kind: str, roots: Sequence[PinnedRoot], at: datetime,
              cache: RimCache | None = None) -> tuple[VerifiedRim, bool]:
    """:func:`verify_rim`, and whether the RIM came from ``cache`` (verified before, and
    ``at`` inside its signer chain's window): the transcript then says ``source=cache``."""
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    key = (bytes(xml), tuple(r.fingerprint for r in roots))
    if cache is not None and (hit := cache.get(key, at)) is not None and hit.kind == kind:
        return hit, True
    parse_rim(xml)  # structure first: malformed is not forged (refuses DTDs too)
    chain = embedded_chain(xml)
    try:  # cryptography parses names and extensions lazily: malformed ones raise here
        path, _root, _ = verify_chain(chain, roots, at=at, check="gpu.rim.chain",
                                   roles=RIM_CHAIN_ROLES)
    except LOADER_ERRORS as err:
        raise FormatError("gpu.rim.format", f"a {kind} RIM certificate field does not parse: "
                          f"{err}", field="KeyInfo.X509Data") from None
    signer = path[0]
    config = SignatureConfiguration(verification_time=at, **_CONFIG_FIELDS)
    try:
        result = XMLVerifier().verify(
            xml, x509_cert=signer.public_bytes(Encoding.PEM).decode("ascii"),
            expect_config=config)
    except InvalidSignature as err:
        raise SignatureError("gpu.rim.signature", f"{kind} RIM XML-DSig does not verify: {err}",
                             field="SignatureValue") from None
    except (InvalidInput, ValueError, etree.LxmlError) as err:  # signxml, lxml on bad input
        raise FormatError("gpu.rim.format", f"{kind} RIM signature is malformed: {err}",
                          field="Signature") from None
    signed = etree.tostring(result.signed_xml)  # type: ignore[union-attr]
    rim = parse_rim(signed)
    verified = VerifiedRim(rim=rim, kind=kind, signer=signer,
                           not_before=max(c.not_valid_before_utc for c in path),
                           not_after=min(c.not_valid_after_utc for c in path))
    if cache is not None:
        cache.put(key, verified)
    return verified, False


def golden_measurements(driver: VerifiedRim | None,
                        vbios: VerifiedRim | None) -> dict[int, tuple[RimMeasurement, str]]:
    """Active indexes of both RIMs; an index claimed by both is a ``gpu.rim.conflict``."""
    out: dict[int, tuple[RimMeasurement, str]] = {}
    for verified in (driver, vbios):
        if verified is None:
            continue
        for index, measurement in verified.active.items():
            if index in out:
                raise VerificationError(
                    "gpu.rim.conflict", "driver and VBIOS RIMs both claim an index",
                    field=f"Resource[{index}]", got=verified.kind, want=out[index][1])
            out[index] = (measurement, verified.kind)
    return out


def compare_measurements(
    measurements: dict[int, bytes], golden: dict[int, tuple[RimMeasurement, str]], *,
    nvdec0_disabled: bool,
) -> list[MeasurementMismatch]:
    """Every active golden index against SPDM block index + 1; any alternative may match."""
    mismatches = []
    for index in sorted(golden):
        if index == NVDEC0_INDEX and nvdec0_disabled:
            continue
        measurement, source = golden[index]
        want = measurement.alternatives
        got = measurements.get(index + 1)
        if got is None or got not in want:
            mismatches.append(MeasurementMismatch(index, got, want, source))
    return mismatches


def check_rims(
    *, driver_version: str | None, vbios_version: str | None,
    measurements: dict[int, bytes], nvdec0_disabled: bool,
    driver: VerifiedRim | None, vbios: VerifiedRim | None,
    collector: FailureCollector,
) -> list[MeasurementMismatch]:
    """Versions and measurements; adds every failure to ``collector`` and returns the
    mismatching indexes. Missing RIMs are the caller's policy decision (``rims_required``)."""
    for verified, got, check in ((driver, driver_version, "gpu.rim.driver"),
                                 (vbios, vbios_version, "gpu.rim.vbios")):
        if verified is None:
            continue
        want = verified.rim.version
        collector.require((got or "").lower() == want.lower(), check,
                          f"{verified.kind.upper()}_VERSION", got or "(absent)", want,
                          f"{verified.kind} RIM {verified.rim.tag_id[:16]} is for another "
                          "version")
    golden = golden_measurements(driver, vbios)
    mismatches = compare_measurements(measurements, golden, nvdec0_disabled=nvdec0_disabled)
    for m in mismatches:
        collector.fail("gpu.rim.measurements", f"measurement[{m.rim_index}]",
                       m.got if m.got is not None else "(absent)",
                       " | ".join(h.hex() for h in m.want),
                       f"SPDM block {m.spdm_index}, {m.source} RIM")
    return mismatches
