"""The pipeline's GPU stage: one ``nvidia-gpu`` evidence item of a bundle through
:func:`verifier.gpu.evidence.verify_gpu_evidence` (verifier/pipeline.py step 2;
docs/verification.md "Collateral").

Collateral comes from the bundle first (the RIMs and OCSP answers the node stapled), then the
caches, then ``fetch`` unless offline (``attest.collateral`` fetchers: the RIM service, the
OCSP responder); whatever the source, the same checks run. Each blob is listed once in
``ctx.uses`` with its source (``stapled``, ``cache`` or ``fetched``). The steps go straight
into the run's transcript, about the item (``nvidia-gpu[i]``). The report's SPDM nonce is the
binding step's (``binding.gpu_nonce``, verifier/binding_check.py), so no
``gpu.report.nonce`` step is recorded here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from attest.certificates import register_parse_memo
from attest.collateral.rim_fetch import RimSource
from attest.formats.bundle import GpuEvidence
from verifier.binding_check import CHECK_GPU_NONCE
from verifier.collateral_window import CollateralUse
from verifier.gpu.evidence import GpuEvidenceResult, verify_gpu_evidence
from verifier.stage_context import StageContext

__all__ = ["run_gpu_stage"]


def run_gpu_stage(ctx: StageContext, item: GpuEvidence) -> GpuEvidenceResult:
    """Verify one GPU item; its facts join ``ctx.gpu_facts`` (judged by ``[gpu]`` in step 6)."""
    where = f"nvidia-gpu[{item.index}]"
    rims = [ctx.collateral(name, where) for _, name in sorted(item.rims.items())]
    # A stale stapled answer, online, is left out: the responder is asked instead.
    answers = {name: der for name in item.ocsp
               if (der := ctx.current(name, where)) is not None}
    source = (RimSource(fetch=ctx.fetch, cache=ctx.caches.disk, on_get=ctx.obtained(where))
              if ctx.fetch is not None or ctx.caches.disk is not None else None)
    with ctx.t.about(where):
        res = verify_gpu_evidence(
            item.report, item.cert_chain, nonce=None, nonce_checked_by=CHECK_GPU_NONCE,
            trust=ctx.roots.gpu, at=ctx.at, transcript=ctx.t, fetch=ctx.fetch, rims=rims,
            rim_source=source, ocsp_stapled=answers, caches=ctx.caches.gpu,
            name=f"GPU-{item.index}", cc_mode=ctx.bundle.gpu_state.cc_mode,
            ocsp_after_rims=True)
    for status, src in zip(res.ocsp, res.ocsp_sources, strict=True):
        ctx.uses.append(_use(f"{where}.ocsp.{status.role}", "ocsp-status", status.this_update,
                             status.next_update, where, src))
    for rim in (res.driver_rim, res.vbios_rim):
        if rim is not None:
            ctx.uses.append(_use(
                f"{where}.rim.{rim.kind}", "nvidia-rim-signer", rim.not_before, rim.not_after,
                where,
                # not stapled: the RIM id's own entry says whether from cache or the service
                "stapled" if rim.kind in item.rims else "fetched"))
    ctx.gpu_facts.append(res.facts)
    return res


@lru_cache(maxsize=4096)
def _use(name: str, kind: str, not_before: datetime, not_after: datetime, used_by: str,
         source: str) -> CollateralUse:
    """A listed window (no blob of its own: no digest), made once per exact values (issue 15:
    a warm run lists the same six windows per GPU; a CollateralUse is immutable)."""
    return CollateralUse(name, "", kind, _iso(not_before), _iso(not_after), used_by, source)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


register_parse_memo(_use.cache_clear)  # a cold run lists afresh
