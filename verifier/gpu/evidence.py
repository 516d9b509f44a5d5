"""One GPU's evidence end to end: report authenticity, OCSP, RIMs (the entry point the
verifier pipeline and ``verifier gpu`` call).

Order (each step recorded in the transcript under its check id):

1. report authenticity (verifier/gpu/report_verify.py: format, chain, signature, FWID, nonce);
2. OCSP for the device chain (verifier/gpu/ocsp.py, :func:`check_device_ocsp`);
3. driver + VBIOS RIMs: given, stapled or fetched (rim_fetch.py), verified (rim_verify.py),
   compared.

Authenticity failures (steps 1, 2, and a RIM's own signature/chain) raise at once. Reference
value mismatches go to the caller's FailureCollector, so they are reported together with the
policy failures (``GpuPolicy.check``) as one PolicyError.

Waivers (docs/policy.md "Waivers") cover only what cannot be had, never a check of what is at
hand: ``gpu.ocsp`` waives a device certificate with no OCSP answer (not stapled or cached, and
offline or the responder unreachable), while every answer that was had is verified (revoked or
badly signed still refuses); ``gpu.rim.fetch`` waives a RIM that cannot be had, while a RIM at
hand is verified and compared (a mismatch still refuses).

A RIM that cannot be had (not given, not stapled, not cached, offline or the service failing:
``gpu.rim.fetch``) does not hide the other one: the available RIM is still verified and
compared. Unwaived, if that comparison finds a problem too, every unavailable RIM joins the
collector as a ``gpu.rim.fetch`` failure, so one PolicyError names them all; if nothing else
is wrong, the refusal is the FetchError (exit 3: unreachable, not invalid), naming every
unavailable RIM.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography import x509

from attest.collateral.rim_fetch import RimSource, driver_rim_id, vbios_rim_id
from attest.formats.nvidia_rim import parse_rim
from attest.formats.spdm_measurements import parse_report
from transparency_log.common.errors import AttestlogError, FetchError
from transparency_log.common.http_fetch import Fetch
from verifier.gpu.ocsp import NVIDIA_OCSP_URL, OcspCache, OcspStatus, check_chain_ocsp
from verifier.gpu.policy import (
    NOT_CHECKED,
    OCSP_GOOD,
    RIMS_MATCH,
    RIMS_MISMATCH,
    UNAVAILABLE_WAIVED,
    GpuFacts,
    GpuPolicy,
)
from verifier.gpu.report_verify import (
    DEVICE_CHAIN_ROLES,
    ChainCache,
    VerifiedGpuReport,
    load_device_chain,
    verify_gpu_report,
)
from verifier.gpu.rim_verify import (
    MeasurementMismatch,
    RimCache,
    VerifiedRim,
    check_rims,
    verify_rim,
)
from verifier.gpu.roots import device_identity_root, rim_root
from verifier.policy_base import FailureCollector
from verifier.transcript import Transcript
from verifier.x509chain import PinnedRoot

CHECK_OCSP = "gpu.ocsp"  # the step, and the waiver of certificates with no answer
CHECK_RIM_FETCH = "gpu.rim.fetch"  # a RIM that cannot be had, and its waiver
_VBIOS_VERSION = re.compile(r"[0-9A-Fa-f]{2}(\.[0-9A-Fa-f]{2}){4}")


@dataclass(frozen=True)
class GpuTrust:
    """Trust anchors for GPU evidence. :meth:`production` is the only place defaults live."""

    device_roots: tuple[PinnedRoot, ...]
    rim_roots: tuple[PinnedRoot, ...]

    @classmethod
    def production(cls) -> GpuTrust:
        return cls((device_identity_root(),), (rim_root(),))


@dataclass
class GpuCaches:
    """Warm caches shared across reports: verified chains, RIMs and OCSP answers."""

    chains: ChainCache = field(default_factory=ChainCache)
    rims: RimCache = field(default_factory=RimCache)
    ocsp: OcspCache = field(default_factory=OcspCache)


@dataclass(frozen=True)
class GpuEvidenceResult:
    report: VerifiedGpuReport
    facts: GpuFacts
    ocsp: tuple[OcspStatus, ...]
    driver_rim: VerifiedRim | None
    vbios_rim: VerifiedRim | None
    mismatches: tuple[MeasurementMismatch, ...]


@lru_cache(maxsize=64)
def rim_kind(xml: bytes) -> str:
    """"vbios" when the RIM's version looks like ``96.00.9F.00.01``, else "driver"."""
    return "vbios" if _VBIOS_VERSION.fullmatch(parse_rim(xml).version) else "driver"


def verify_gpu_evidence(
    report_bytes: bytes,
    chain_pem: bytes,
    *,
    nonce: bytes | None,
    trust: GpuTrust,
    at: datetime,
    policy: GpuPolicy,
    collector: FailureCollector,
    transcript: Transcript,
    fetch: Fetch | None = None,
    rims: Sequence[bytes] = (),
    rim_source: RimSource | None = None,
    ocsp_url: str = NVIDIA_OCSP_URL,
    caches: GpuCaches | None = None,
    name: str = "GPU-0",
    cc_mode: str | None = None,
    check_ocsp: bool = True,
) -> GpuEvidenceResult:
    """Verify one GPU's evidence; see the module docstring for the order. ``check_ocsp``
    False: the caller runs :func:`check_device_ocsp` itself (the pipeline, with the node's
    stapled answers); the facts then say ``not-checked`` until it does."""
    caches = caches or GpuCaches()
    try:
        expected = nonce
        if expected is None:
            expected = parse_report(report_bytes).request.nonce
        report = verify_gpu_report(report_bytes, load_device_chain(chain_pem), nonce=expected,
                                   roots=trust.device_roots, at=at, cache=caches.chains)
    except AttestlogError as err:
        transcript.failed(err.check, str(err))
        raise
    transcript.passed(report.steps[0], _describe(name, report),
                      report_sha256=hashlib.sha256(report_bytes).hexdigest(),
                      chain_sha256=hashlib.sha256(chain_pem).hexdigest())
    for step in report.steps[1:]:
        if step == "gpu.report.nonce" and nonce is None:
            transcript.waived(step, "no expected nonce given: freshness NOT checked",
                              nonce=expected.hex())
        elif step == "gpu.chain" and report.chain_cached:
            transcript.passed(step, name, source="cache")
        else:
            transcript.passed(step, name)

    ocsp: tuple[OcspStatus, ...] = ()
    ocsp_state = NOT_CHECKED
    if check_ocsp:
        statuses, ocsp_state = check_device_ocsp(
            transcript, report.chain.certificates,
            waive_unavailable=policy.waive_ocsp_unavailable, at=at, fetch=fetch, url=ocsp_url,
            cache=caches.ocsp)
        ocsp = tuple(statuses)

    driver = vbios = None
    mismatches: list[MeasurementMismatch] = []
    rim_state = NOT_CHECKED
    docs, unavailable = _rim_documents(report, rims, rim_source, transcript,
                                       waive=policy.waive_rim_unavailable)
    try:
        if "driver" in docs:
            driver = verify_rim(docs["driver"], kind="driver", roots=trust.rim_roots, at=at,
                                cache=caches.rims)
        if "vbios" in docs:
            vbios = verify_rim(docs["vbios"], kind="vbios", roots=trust.rim_roots, at=at,
                               cache=caches.rims)
    except AttestlogError as err:
        transcript.failed(err.check, str(err))
        raise
    if docs:
        transcript.passed("gpu.rim.signature", f"{len(docs)} RIM(s) authentic")
    before = len(collector.failures)
    mismatches = check_rims(driver_version=report.driver_version,
                            vbios_version=report.vbios_version,
                            measurements=report.measurements,
                            nvdec0_disabled=report.opaque.nvdec0_disabled,
                            driver=driver, vbios=vbios, collector=collector)
    new = collector.failures[before:]
    for failure in new:
        transcript.failed(failure.check, str(failure).split(": ", 1)[1])
    active = sum(len(r.rim.active()) for r in (driver, vbios) if r is not None)
    if new:
        rim_state = RIMS_MISMATCH
        if not policy.waive_rim_unavailable:
            for err in unavailable:
                collector.fail(err.check, err.field or "RIM", "unavailable",
                               "a signed RIM (given, stapled, cached or fetched)", err.message)
    elif unavailable and not policy.waive_rim_unavailable:
        raise _one_fetch_error(unavailable)
    elif unavailable:  # waived: what was at hand matched
        rim_state = UNAVAILABLE_WAIVED
        if docs:
            transcript.passed("gpu.rim.measurements", f"{active} active indexes of the "
                              f"RIM(s) at hand match")
    elif driver is not None and vbios is not None:
        rim_state = RIMS_MATCH
        transcript.passed("gpu.rim.measurements", f"{active} active indexes match")
    o = report.opaque
    facts = GpuFacts(name=name, driver_version=report.driver_version,
                     vbios_version=report.vbios_version, chip_sku=o.chip_sku,
                     ocsp=ocsp_state, rims=rim_state, cc_mode=cc_mode, chip_info=o.chip_info,
                     feature_mode=o.feature_mode, opaque_data_version=o.opaque_data_version)
    return GpuEvidenceResult(report, facts, ocsp, driver, vbios, tuple(mismatches))


def check_device_ocsp(transcript: Transcript, chain: Sequence[x509.Certificate], *,
                      waive_unavailable: bool, where: str = "",
                      **kwargs: Any) -> tuple[list[OcspStatus], str]:
    """OCSP for a verified device chain (:func:`verifier.gpu.ocsp.check_chain_ocsp` with
    ``kwargs``), recorded as the ``gpu.ocsp`` step; returns the statuses and the fact the
    policy judges (``good``, or ``unavailable (waived)``). Under ``waive_unavailable`` only
    certificates for which no answer can be had are waived; any answer had is verified."""
    prefix = f"{where}: " if where else ""
    missing: list[FetchError] | None = [] if waive_unavailable else None
    try:
        statuses = check_chain_ocsp(chain, roles=DEVICE_CHAIN_ROLES, unavailable=missing,
                                    **kwargs)
    except AttestlogError as err:
        transcript.failed(err.check, f"{prefix}{err}")
        raise
    if missing:
        transcript.waived(CHECK_OCSP, f"{prefix}waived by policy ({CHECK_OCSP}): no OCSP answer "
                          f"can be had for {', '.join(e.field or '?' for e in missing)} "
                          f"({missing[0].message}); revocation NOT checked for it; "
                          f"{len(statuses)} other certificate(s) good")
        return statuses, UNAVAILABLE_WAIVED
    transcript.passed(CHECK_OCSP, f"{prefix}{len(statuses)} certificates good")
    return statuses, OCSP_GOOD


def _describe(name: str, report: VerifiedGpuReport) -> str:
    """The format step's detail: the GPU, its versions and the opaque mode fields."""
    o = report.opaque
    parts = [f"driver {report.driver_version}", f"VBIOS {report.vbios_version}",
             f"OPAQUE_DATA_VERSION {o.opaque_data_version}",
             f"FEATURE_FLAG {o.feature_mode or '(absent)'}"]
    if o.chip_info is not None:
        parts.append(f"CHIP_INFO {o.chip_info}")
    return f"{name}: " + ", ".join(parts)


def _rim_documents(report: VerifiedGpuReport, given: Sequence[bytes], source: RimSource | None,
                   transcript: Transcript, *, waive: bool = False,
                   ) -> tuple[dict[str, bytes], list[FetchError]]:
    """The RIM documents by kind, and a FetchError for each one that cannot be had (each also
    recorded as a ``gpu.rim.fetch`` step: failed, or waived under ``waive``); the caller
    decides how to refuse."""
    docs: dict[str, bytes] = {}
    unavailable: list[FetchError] = []
    for xml in given:
        docs[rim_kind(xml)] = xml
    o = report.opaque
    wanted = {"driver": driver_rim_id(report.driver_version or ""),
              "vbios": vbios_rim_id(o.project or "", o.project_sku or "", o.chip_sku or "",
                                    report.vbios_version or "")}
    for kind, rim_id in wanted.items():
        if kind in docs:
            continue
        try:
            if source is None:
                raise FetchError("gpu.rim.fetch", f"no {kind} RIM given and no RIM source",
                                 field=rim_id)
            docs[kind] = source.get(rim_id)
        except FetchError as err:
            if waive:
                transcript.waived(CHECK_RIM_FETCH, f"waived by policy ({CHECK_RIM_FETCH}): "
                                  f"the {kind} RIM cannot be had, its measurements NOT "
                                  f"compared: {err}", rim_id=rim_id)
            else:
                transcript.failed(err.check, str(err), rim_id=rim_id)
            unavailable.append(err)
    return docs, unavailable


def _one_fetch_error(errors: list[FetchError]) -> FetchError:
    """The refusal when unavailable RIMs are the only problem: all of them in one error."""
    if len(errors) == 1:
        return errors[0]
    return FetchError("gpu.rim.fetch", "; ".join(dict.fromkeys(e.message for e in errors)),
                      field=", ".join(e.field or "RIM" for e in errors))
