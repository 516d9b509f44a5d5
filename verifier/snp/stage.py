"""The SEV-SNP stage of the bundle pipeline (verifier/pipeline.py, step 2; docs/verification.md
"Collateral"): one ``sev-snp`` evidence item in, an authentic :class:`SnpVerification` out.

The collateral is the node's first: the certificates of the item (``certs``) and its stapled
CRL, each listed once in the run's collateral (a stapled CRL past its nextUpdate is fetched
again when online, :meth:`StageContext.current`); what is missing comes from the shared
on-disk cache, then from KDS when the run may fetch (:class:`attest.collateral.kds_fetch.
KdsClient`), and each read is listed with its source through a per-call ``on_get`` hook.

The steps (``snp.*``, :mod:`verifier.snp.verify`) are recorded directly in the run's
transcript, each about ``sev-snp``. ``snp.crl`` that cannot run (no CRL stapled and none to be
had from KDS) is waived only when the policy's ``waive`` list names it, through the
transcript, and the waived step says that revocation was NOT checked.

Nothing here is shared between runs but the verified-fact caches (``caches.snp``, bounded
and locked) and the disk cache; the verifier and the KDS client are made per run.
"""

from __future__ import annotations

from attest.collateral.kds_fetch import KdsClient
from attest.formats.bundle import SnpEvidence
from verifier.snp.verify import SnpCollateral, SnpVerification, SnpVerifier
from verifier.stage_context import StageContext

__all__ = ["run_snp_stage"]


def run_snp_stage(ctx: StageContext, item: SnpEvidence) -> SnpVerification:
    """Verify the item's report with its collateral (stapled, then cache, then KDS) at
    ``ctx.at`` against ``ctx.roots.snp``; raise the first failure."""
    where = item.TYPE
    certs = {role: ctx.cert(role, der, where) for role, der in item.certs.items()}
    crl = ctx.current(item.collateral["crl"], where) if "crl" in item.collateral else None
    col = SnpCollateral(vcek=certs.get("vcek"), vlek=certs.get("vlek"), ask=certs.get("ask"),
                        asvk=certs.get("asvk"), ark=certs.get("ark"), crl=crl)
    disk = ctx.caches.disk
    kds = KdsClient(ctx.fetch, disk) if ctx.fetch is not None or disk is not None else None
    verifier = SnpVerifier(ctx.roots.snp, kds=kds, caches=ctx.caches.snp)
    with ctx.t.about(where):
        return verifier.verify(item.report, at=ctx.at, collateral=col, transcript=ctx.t,
                               on_get=ctx.obtained(where))
