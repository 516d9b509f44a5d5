"""The pipeline's TDX stage: one ``tdx`` evidence item of a bundle in, an authentic
:class:`~verifier.tdx.evidence.TdxResult` out (verifier/pipeline.py, step 2).

1. Collateral: each role the node stapled (a stale stapled item, when online, counts as
   missing: :meth:`StageContext.current`), listed once in the run's collateral.
2. What is missing is obtained through :class:`attest.collateral.pcs_fetch.PcsClient`: the
   disk cache, then Intel PCS unless offline. Each item obtained is listed with its source
   (``cache`` / ``fetched``) by a per-call ``on_get`` hook; nothing is set on a shared object.
   With neither a fetcher nor a cache, a missing item is refused by its own check in step 3.
3. :func:`verifier.tdx.evidence.verify_tdx_evidence` at the run's time, with the run's
   shared, locked :class:`~verifier.verified_cache.VendorCaches`; its steps are recorded in
   the run's transcript about ``tdx``. A stale CRL passes only when the policy's ``waive``
   list (the transcript's) names ``tdx.pck_crl.validity`` / ``tdx.root_crl.validity``.

The ``[tdx]`` policy is not applied here: the pipeline judges the result with
:meth:`verifier.tdx.policy.TdxPolicy.check` in its policy step.
"""

from __future__ import annotations

from collections.abc import Callable

from attest.certificates import LOADER_ERRORS
from attest.collateral.pcs_fetch import PcsClient, TdxCollateral, pck_ca_kind
from attest.formats.bundle import TDX_COLLATERAL_ROLES, TdxEvidence
from attest.formats.tdx_quote import parse_quote
from transparency_log.common.errors import AttestlogError, FormatError
from verifier.stage_context import StageContext
from verifier.tdx.collateral import VerificationTimes
from verifier.tdx.evidence import TdxResult, verify_tdx_evidence
from verifier.tdx.quote_verify import load_pck_chain, sgx_extensions

__all__ = ["ITEM", "obtain_tdx_collateral", "run_tdx_stage"]

ITEM = "tdx"  # the evidence item's name in the transcript (Step.subject)


def run_tdx_stage(ctx: StageContext, item: TdxEvidence) -> TdxResult:
    """Steps 1-3 (module docstring) for ``item``; raises the first AttestlogError."""
    given = {role: data for role, name in item.collateral.items()
             if (data := ctx.current(name, ITEM)) is not None}
    missing = [r for r in TDX_COLLATERAL_ROLES if r not in given]
    with ctx.t.about(ITEM):
        if missing and (ctx.fetch is not None or ctx.caches.disk is not None):
            try:
                given.update(obtain_tdx_collateral(ctx, item.quote, missing))
            except AttestlogError as err:
                ctx.t.failed(err.check, str(err))
                raise
        return verify_tdx_evidence(item.quote, TdxCollateral(**given), roots=ctx.roots.tdx,
                                   times=VerificationTimes.uniform(ctx.at), transcript=ctx.t,
                                   cache=ctx.caches.vendor)


def obtain_tdx_collateral(ctx: StageContext, quote: bytes,
                          missing: list[str]) -> dict[str, bytes]:
    """The collateral roles in ``missing``, from the cache or Intel PCS (offline: the cache
    only). A fetched item replaces its issuer chain too. Verified afterwards exactly like
    stapled collateral."""
    chain = load_pck_chain(parse_quote(quote))
    try:  # cryptography decodes the name lazily
        ca = pck_ca_kind(chain[0].issuer.rfc4514_string())
    except LOADER_ERRORS as err:
        raise FormatError("tdx.pck.chain", f"undecodable PCK issuer name ({err})",
                          field="PCK.issuer") from None
    pcs = PcsClient(ctx.fetch, cache=ctx.caches.disk)
    on_get = ctx.obtained(ITEM)
    getters: dict[str, Callable[[], tuple[bytes, bytes | None]]] = {
        "tcb_info": lambda: pcs.tcb_info(sgx_extensions(chain[0]).fmspc, on_get=on_get),
        "qe_identity": lambda: pcs.qe_identity(on_get=on_get),
        "pck_crl": lambda: pcs.pck_crl(ca, on_get=on_get),
        "root_crl": lambda: (pcs.root_crl(on_get=on_get), None),
    }
    out: dict[str, bytes] = {}
    for role, get in getters.items():
        if {role, f"{role}_issuer_chain"} & set(missing):
            out[role], issuers = get()
            if issuers is not None:
                out[f"{role}_issuer_chain"] = issuers
    return out
