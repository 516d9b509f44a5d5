"""The TDX transcripts of record for issue 15: what the real vectors' verification recorded
before the verifier was made faster. A faster verifier must record the same steps (check ids,
results, details, subjects, inputs), ``source=cache`` markers aside.

Re-record (only when a step is meant to change, and say why in the commit):
``python -m tests.support.tdx_transcripts``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from attest.formats.bundle import EvidenceBundle, GpuState, TdxEvidence
from tests.support.tdx_support import (
    SPR_E4,
    SPR_E4_TIME,
    V5,
    V5_TIMES,
    read,
    real_collateral,
    utc,
)
from transparency_log.common.errors import AttestlogError
from verifier.pipeline_trust import TrustRoots, VerifierCaches
from verifier.policy import load_policy
from verifier.stage_context import StageContext
from verifier.tdx.collateral import TdxCollateral, VerificationTimes
from verifier.tdx.evidence import verify_tdx_evidence
from verifier.tdx.roots import production_roots
from verifier.tdx.stage import run_tdx_stage
from verifier.transcript import Transcript
from verifier.verified_cache import VendorCaches

RECORD = Path(__file__).resolve().parent.parent / "assets" / "tdx" / "transcripts_of_record.json"
EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
STALE_CRLS = frozenset({"tdx.pck_crl.validity", "tdx.root_crl.validity"})

# name: (quote, TCB Info response, times, waive)
EVIDENCE_CASES: dict[str, tuple[str, str, VerificationTimes, frozenset[str]]] = {
    "v5": (V5, "sample_tcbinfo_response_v5", V5_TIMES, frozenset()),
    # the CLI's instants: both CRLs stale, waived by name
    "v5_stale_crls_waived": (
        V5, "sample_tcbinfo_response_v5",
        VerificationTimes.uniform(utc("2026-02-03")).override(
            tcb_signing_chain=utc("2025-05-01"), qe_identity=utc("2023-07-01")),
        STALE_CRLS),
    "spr_e4": (SPR_E4, "sample_tcbInfo_response", VerificationTimes.uniform(SPR_E4_TIME),
               frozenset()),  # refused at tdx.tcb.level (MANIFEST)
}
STAGE_CASE = "stage_spr_e4"


def steps(t: Transcript) -> list[dict[str, Any]]:
    """The transcript's steps as JSON, without ``source=cache``: what must not change."""
    out = []
    for s in t.steps:
        d = s.to_dict()
        d["inputs"] = {k: v for k, v in d.get("inputs", {}).items() if k != "source"}
        out.append(d)
    return out


def evidence_run(case: str, cache: VendorCaches | None) -> Transcript:
    quote, tcb, times, waive = EVIDENCE_CASES[case]
    t = Transcript(waive=waive)
    try:
        verify_tdx_evidence(read(quote), real_collateral(tcb), roots=production_roots(),
                            times=times, transcript=t, cache=cache)
    except AttestlogError:
        pass  # a refusal's transcript is recorded too
    return t


def stage_run(caches: VerifierCaches) -> Transcript:
    """The SPR_E4 quote through verifier/tdx/stage.py, every collateral item stapled."""
    col = real_collateral("sample_tcbInfo_response")
    given = {k: v for k, v in vars(col).items() if v is not None}
    item = TdxEvidence(quote=read(SPR_E4), collateral={k: f"intel/{k}" for k in given})
    bundle = EvidenceBundle(nonce=bytes(64), node_key=b"k", simulated=False, evidence=(item,),
                            release=b"{}", tlog_proof=b"",
                            collateral={f"intel/{k}": v for k, v in given.items()},
                            gpu_state=GpuState("off", 0))
    policy = load_policy(EXAMPLES / "policy.example.toml")
    ctx = StageContext(bundle, policy, SPR_E4_TIME, TrustRoots.production(), caches, None,
                       Transcript(waive=policy.waive))
    try:
        run_tdx_stage(ctx, item)
    except AttestlogError:
        pass
    return ctx.t


def record() -> dict[str, list[dict[str, Any]]]:
    out = {case: steps(evidence_run(case, VendorCaches())) for case in EVIDENCE_CASES}
    out[STAGE_CASE] = steps(stage_run(VerifierCaches()))
    return out


assert TdxCollateral  # the collateral type the cases build

if __name__ == "__main__":
    RECORD.write_text(json.dumps(record(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {RECORD}")
