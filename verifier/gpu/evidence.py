"""One GPU's evidence end to end: report authenticity, OCSP, RIMs (the entry point the
verifier pipeline's GPU stage, verifier/gpu/stage.py, and ``verifier gpu`` call). It takes no
policy: it returns the authentic result with every fact ``GpuPolicy.check`` judges, or raises
the first authenticity error.

Order (each step recorded in the transcript under its check id):

1. report authenticity (verifier/gpu/report_verify.py: format, chain, signature, FWID, nonce;
   the nonce step is left to the caller when it checks the nonce itself, ``nonce_checked_by``);
2. OCSP for the device chain (verifier/gpu/ocsp.py :func:`chain_ocsp`: cache, then the
   node's stapled answers, then the responder), the ``gpu.ocsp`` step;
3. driver + VBIOS RIMs: given, stapled or fetched (rim_fetch.py), verified (rim_verify.py),
   compared.

(The pipeline runs 3 before 2: ``ocsp_after_rims``.)

Authenticity failures (steps 1, 2, and a RIM's own signature/chain) raise at once. Reference
value mismatches (``gpu.rim.driver``, ``gpu.rim.vbios``, ``gpu.rim.measurements``) are recorded
as failed steps and returned as facts (``GpuFacts.rim_failures``), which ``GpuPolicy.check``
reports together with the policy failures as one PolicyError.

What cannot be had raises :class:`verifier.checks.CheckNotRun` inside ``transcript.run``, so
the transcript's ``waive`` set (the policy's ``waive`` list, docs/policy.md "Waivers") decides,
and nothing else: ``gpu.ocsp`` for a device certificate with no OCSP answer (not stapled or
cached, and offline or the responder unreachable); every answer that was had is verified
(revoked or badly signed refuses, waived or not). ``gpu.rim.fetch`` for a RIM that cannot be
had; a RIM at hand is verified and compared (a mismatch or a bad signature refuses).
Not waived, the refusal is the FetchError (exit 3: unreachable, not invalid).

A RIM that cannot be had does not hide the other one: the available RIM is still verified and
compared. Unwaived, if that comparison finds a problem too, every unavailable RIM is one more
``gpu.rim.fetch`` fact failure, so one PolicyError names them all; if nothing else is wrong,
the refusal is the FetchError naming every unavailable RIM.

Safe to share between threads: the only shared state is :class:`GpuCaches` (bounded, locked).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import TypeVar

from attest.certificates import register_parse_memo
from attest.collateral.rim_fetch import RimSource, driver_rim_id, vbios_rim_id
from attest.formats.nvidia_rim import parse_rim
from transparency_log.common.errors import AttestlogError, FetchError, PolicyFailure
from transparency_log.common.http_fetch import Fetch
from verifier.checks import CheckNotRun
from verifier.gpu.ocsp import (
    NVIDIA_OCSP_URL,
    ChainOcsp,
    OcspCache,
    OcspStatus,
    chain_ocsp,
    stapled_answers,
)
from verifier.gpu.policy import (
    OCSP_GOOD,
    RIMS_MATCH,
    RIMS_MISMATCH,
    UNAVAILABLE_WAIVED,
    GpuFacts,
)
from verifier.gpu.report_verify import (
    DEVICE_CHAIN_ROLES,
    ChainCache,
    VerifiedGpuReport,
    load_device_chain,
    parsed_report,
    verify_gpu_report,
)
from verifier.gpu.rim_verify import (
    MeasurementMismatch,
    RimCache,
    VerifiedRim,
    check_rim,
    check_rims,
)
from verifier.gpu.roots import device_identity_root, rim_root
from verifier.policy_base import FailureCollector
from verifier.transcript import Transcript
from verifier.verified_cache import CACHE_SOURCE, VerifiedCache
from verifier.x509chain import PinnedRoot

CHECK_OCSP = "gpu.ocsp"  # the step, and the waiver of certificates with no answer
CHECK_RIM_FETCH = "gpu.rim.fetch"  # a RIM that cannot be had, and its waiver
CHECK_REPORT_NONCE = "gpu.report.nonce"
T = TypeVar("T")
_VBIOS_VERSION = re.compile(r"[0-9A-Fa-f]{2}(\.[0-9A-Fa-f]{2}){4}")


@dataclass(frozen=True)
class GpuTrust:
    """Trust anchors for GPU evidence. :meth:`production` is the only place defaults live."""

    device_roots: tuple[PinnedRoot, ...]
    rim_roots: tuple[PinnedRoot, ...]

    @classmethod
    def production(cls) -> GpuTrust:
        return cls((device_identity_root(),), (rim_root(),))


@dataclass(frozen=True)
class GpuCaches:
    """Warm caches shared across reports and threads: verified chains, RIMs and OCSP
    answers, each bounded (LRU) and locked (verifier/verified_cache.py)."""

    chains: ChainCache = field(default_factory=ChainCache)
    rims: RimCache = field(default_factory=RimCache)
    ocsp: OcspCache = field(default_factory=OcspCache)


@dataclass(frozen=True)
class GpuEvidenceResult:
    report: VerifiedGpuReport
    facts: GpuFacts
    ocsp: tuple[OcspStatus, ...]
    ocsp_sources: tuple[str, ...]  # per status: "cache", "stapled" or "fetched"
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
    transcript: Transcript,
    fetch: Fetch | None = None,
    rims: Sequence[bytes] = (),
    rim_source: RimSource | None = None,
    ocsp_stapled: Mapping[str, bytes] | None = None,
    ocsp_url: str = NVIDIA_OCSP_URL,
    caches: GpuCaches | None = None,
    name: str = "GPU-0",
    cc_mode: str | None = None,
    nonce_checked_by: str | None = None,
    ocsp_after_rims: bool = False,
) -> GpuEvidenceResult:
    """Verify one GPU's evidence; see the module docstring for the order.

    ``nonce``: the nonce the report must carry (None: not checked, recorded as waived);
    ``nonce_checked_by``: the caller's own step that checks the report's nonce (the pipeline's
    ``binding.gpu_nonce``): no ``gpu.report.nonce`` step is recorded here then.
    ``ocsp_stapled``: the node's OCSP answers by name (DER); ``rims``: RIM documents at hand;
    ``rim_source``: where the others come from. ``cc_mode``: the node-reported CC mode.
    ``ocsp_after_rims``: steps 2 and 3 the other way round (the pipeline's order,
    docs/verification.md step 2; it decides which unreachable collateral refuses first).
    """
    caches = caches or GpuCaches()
    t = transcript

    def report_step() -> VerifiedGpuReport:
        expected = nonce if nonce is not None else parsed_report(report_bytes)[0].request.nonce
        return verify_gpu_report(report_bytes, load_device_chain(chain_pem), nonce=expected,
                                 roots=trust.device_roots, at=at, cache=caches.chains)

    report = _recorded(t, report_step)
    t.passed(report.steps[0], _describe(name, report), report_sha256=_sha256(report_bytes),
             chain_sha256=_sha256(chain_pem))
    for step in report.steps[1:]:
        if step == CHECK_REPORT_NONCE and nonce_checked_by is not None:
            continue
        if step == CHECK_REPORT_NONCE and nonce is None:
            t.waived(step, "no expected nonce given: freshness NOT checked",
                     nonce=report.report.request.nonce.hex())
        elif step == "gpu.chain" and report.chain_cached:
            t.passed(step, name, source="cache")
        else:
            t.passed(step, name)

    def ocsp_step() -> tuple[ChainOcsp, str]:
        chain = report.chain.certificates
        answers = _recorded(t, lambda: stapled_answers(ocsp_stapled or {}, chain))
        got = _recorded(t, lambda: chain_ocsp(chain, roles=DEVICE_CHAIN_ROLES, at=at,
                                              fetch=fetch, url=ocsp_url, cache=caches.ocsp,
                                              stapled=answers))
        # every answer reused from the cache (verified before, ``at`` inside its window)
        from_cache = (not got.missing and got.sources != ()
                      and all(s == CACHE_SOURCE for s in got.sources))
        complete = t.run(CHECK_OCSP, lambda: _all_answered(got),
                         detail=f"{len(got.statuses)} certificates good",
                         **({"source": CACHE_SOURCE} if from_cache else {}))
        return got, OCSP_GOOD if complete is not None else UNAVAILABLE_WAIVED

    def rim_step() -> _RimOutcome:
        return _rim_step(t, report, rims, rim_source, trust=trust, at=at, cache=caches.rims,
                         report_bytes=report_bytes)

    if ocsp_after_rims:
        rim = rim_step()
        got, ocsp_state = ocsp_step()
    else:
        got, ocsp_state = ocsp_step()
        rim = rim_step()
    o = report.opaque
    facts = GpuFacts(name=name, driver_version=report.driver_version,
                     vbios_version=report.vbios_version, chip_sku=o.chip_sku,
                     ocsp=ocsp_state, rims=rim.state, cc_mode=cc_mode, chip_info=o.chip_info,
                     feature_mode=o.feature_mode, opaque_data_version=o.opaque_data_version,
                     rim_failures=rim.failures)
    return GpuEvidenceResult(report, facts, got.statuses, got.sources, rim.driver, rim.vbios,
                             rim.mismatches)


@lru_cache(maxsize=256)
def _sha256(data: bytes) -> str:
    """The transcript's input digest, once per exact bytes (a bytes object keeps its hash,
    so the reports of a bundle seen before are found without hashing them again)."""
    return hashlib.sha256(data).hexdigest()


register_parse_memo(_sha256.cache_clear)  # a cold run hashes afresh


def _recorded(t: Transcript, fn: Callable[[], T]) -> T:
    """An authenticity step whose error names its own check (``gpu.report.signature``,
    ``gpu.ocsp.revoked``, ``gpu.rim.chain``, ...): a failure is recorded under that id and
    re-raised; the caller records the passes with their details."""
    try:
        return fn()
    except AttestlogError as err:
        t.failed(err.check, str(err))
        raise


def _all_answered(got: ChainOcsp) -> ChainOcsp:
    """The ``gpu.ocsp`` step: every certificate had an answer; else it cannot run."""
    if not got.missing:
        return got
    fields = ", ".join(f"{role}.ocsp" for role, _ in got.missing)
    first = got.missing[0][1]
    why = first.message if first.check == "gpu.ocsp.fetch" else \
        f"OCSP responder unreachable: {first.message}"
    raise CheckNotRun(CHECK_OCSP, f"no OCSP answer can be had for {fields} ({why}); "
                      f"revocation NOT checked for it; {len(got.statuses)} other "
                      "certificate(s) good", field=fields, unwaived=first)


def _describe(name: str, report: VerifiedGpuReport) -> str:
    """The format step's detail: the GPU, its versions and the opaque mode fields."""
    o = report.opaque
    parts = [f"driver {report.driver_version}", f"VBIOS {report.vbios_version}",
             f"OPAQUE_DATA_VERSION {o.opaque_data_version}",
             f"FEATURE_FLAG {o.feature_mode or '(absent)'}"]
    if o.chip_info is not None:
        parts.append(f"CHIP_INFO {o.chip_info}")
    return f"{name}: " + ", ".join(parts)


@dataclass(frozen=True)
class _RimOutcome:
    driver: VerifiedRim | None
    vbios: VerifiedRim | None
    mismatches: tuple[MeasurementMismatch, ...]
    state: str
    failures: tuple[PolicyFailure, ...]


def _rim_step(t: Transcript, report: VerifiedGpuReport, given: Sequence[bytes],
              source: RimSource | None, *, trust: GpuTrust, at: datetime,
              cache: RimCache, report_bytes: bytes) -> _RimOutcome:
    """Step 3: the RIMs had, verified (a bad one raises) and compared (mismatches recorded as
    failed steps and returned as facts); see the module docstring for unavailable RIMs."""
    docs, unavailable, waived = _rim_documents(t, report, given, source)
    verified: dict[str, VerifiedRim] = {}
    cached = 0
    for kind in ("driver", "vbios"):
        if kind in docs:
            verified[kind], hit = _recorded(t, lambda k=kind: check_rim(
                docs[k], kind=k, roots=trust.rim_roots, at=at, cache=cache))
            cached += hit
    if docs:  # every RIM verified before, inside its window: the step says so
        t.passed("gpu.rim.signature", f"{len(docs)} RIM(s) authentic",
                 **({"source": CACHE_SOURCE} if cached == len(docs) else {}))
    driver, vbios = verified.get("driver"), verified.get("vbios")
    mismatches, found = _recorded(t, lambda: _compared(report, report_bytes, driver, vbios,
                                                                    docs))
    for failure in found:
        t.failed(failure.check, str(failure).split(": ", 1)[1])
    failures = list(found)
    active = sum(len(r.active) for r in verified.values())
    if failures:
        state = RIMS_MISMATCH
        failures += [PolicyFailure(err.check, err.field or "RIM", "unavailable",
                                   "a signed RIM (given, stapled, cached or fetched)",
                                   err.message) for err in unavailable]
    elif unavailable:
        raise _one_fetch_error(unavailable)
    elif waived:  # what was at hand matched
        state = UNAVAILABLE_WAIVED
        if docs:
            t.passed("gpu.rim.measurements", f"{active} active indexes of the RIM(s) at hand "
                     "match")
    else:
        state = RIMS_MATCH
        t.passed("gpu.rim.measurements", f"{active} active indexes match")
    return _RimOutcome(driver, vbios, tuple(mismatches), state, tuple(failures))


def _compared(report: VerifiedGpuReport, report_bytes: bytes, driver: VerifiedRim | None,
              vbios: VerifiedRim | None, docs: Mapping[str, bytes]
              ) -> tuple[tuple[MeasurementMismatch, ...], tuple[PolicyFailure, ...]]:
    """:func:`check_rims` of the report with the verified RIMs: the mismatches and the
    failures. Remembered per exact inputs (issue 15: 41 indexes compared per GPU): the report's
    bytes (its versions, measurements and NVDEC0 status are parsed from them) and each RIM
    document's bytes (what was verified and parsed), a pure function of them. ``report`` is
    ``report_bytes`` verified."""
    key = (bytes(report_bytes), docs.get("driver"), docs.get("vbios"))
    if (hit := _COMPARED.get(key)) is not None:
        return hit
    found = FailureCollector()
    mismatches = check_rims(
        driver_version=report.driver_version, vbios_version=report.vbios_version,
        measurements=report.measurements, nvdec0_disabled=report.opaque.nvdec0_disabled,
        driver=driver, vbios=vbios, collector=found)
    out = (tuple(mismatches), tuple(found.failures))
    _COMPARED.put(key, out)
    return out


_Compared = tuple[tuple[MeasurementMismatch, ...], tuple[PolicyFailure, ...]]
_COMPARED: VerifiedCache[tuple[bytes, bytes | None, bytes | None], _Compared] = VerifiedCache(256)
register_parse_memo(_COMPARED.clear)  # a cold run compares afresh


def _rim_documents(t: Transcript, report: VerifiedGpuReport, given: Sequence[bytes],
                   source: RimSource | None) -> tuple[dict[str, bytes], list[FetchError], int]:
    """The RIM documents by kind; the FetchError of each one that cannot be had and is not
    waived (a ``gpu.rim.fetch`` step, failed or waived through ``t.run``); how many were
    waived."""
    docs: dict[str, bytes] = {}
    for xml in given:
        docs[_recorded(t, lambda x=xml: rim_kind(x))] = xml
    o = report.opaque
    unavailable: list[FetchError] = []
    waived = 0
    for kind in ("driver", "vbios"):
        if kind in docs:
            continue
        rim_id = (driver_rim_id(report.driver_version or "") if kind == "driver" else
                  vbios_rim_id(o.project or "", o.project_sku or "", o.chip_sku or "",
                               report.vbios_version or ""))
        try:
            if source is None:
                raise FetchError(CHECK_RIM_FETCH, f"no {kind} RIM given and no RIM source",
                                 field=rim_id)
            docs[kind] = source.get(rim_id)
        except FetchError as err:
            try:
                t.run(CHECK_RIM_FETCH, lambda k=kind, e=err: _not_had(k, e), rim_id=rim_id)
                waived += 1
            except FetchError as refused:  # not waived: recorded failed, refused later
                unavailable.append(refused)
        except AttestlogError as err:  # had, but malformed (the service's reply)
            t.failed(err.check, str(err), rim_id=rim_id)
            raise
    return docs, unavailable, waived


def _not_had(kind: str, err: FetchError) -> None:
    raise CheckNotRun(CHECK_RIM_FETCH, f"the {kind} RIM cannot be had, its measurements NOT "
                      f"compared: {err}", field=err.field or kind, unwaived=err)


def _one_fetch_error(errors: list[FetchError]) -> FetchError:
    """The refusal when unavailable RIMs are the only problem: all of them in one error."""
    if len(errors) == 1:
        return errors[0]
    return FetchError(CHECK_RIM_FETCH, "; ".join(dict.fromkeys(e.message for e in errors)),
                      field=", ".join(e.field or "RIM" for e in errors))
