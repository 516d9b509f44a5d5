"""Step 6 of the pipeline: the policy's ``[evidence]``, ``[snp]``, ``[tdx]`` and ``[gpu]``
tables judge the authentic results; every failure is collected (docs/verification.md, step 6;
docs/policy.md)."""

from __future__ import annotations

from collections.abc import Callable

from attest.formats.bundle import EvidenceBundle
from attest.release.statement import Release
from transparency_log.common.errors import PolicyError
from verifier.gpu.policy import GpuFacts
from verifier.policy import Policy
from verifier.policy_base import FailureCollector
from verifier.snp.verify import SnpVerification
from verifier.tdx.evidence import TdxResult
from verifier.transcript import Transcript

__all__ = ["CHECK_POLICY_EVIDENCE", "check_policy"]

CHECK_POLICY_EVIDENCE = "policy.evidence"


def check_policy(policy: Policy, bundle: EvidenceBundle, *, snp: SnpVerification | None,
                 tdx: TdxResult | None, gpu_facts: list[GpuFacts], release: Release | None,
                 collector: FailureCollector, transcript: Transcript) -> None:
    """Step 6: ``[evidence]``, ``[snp]``, ``[tdx]``, ``[gpu]``; every failure to ``collector``
    and one transcript step per table."""

    def section(check: str, fn: Callable[[FailureCollector], None], ok: str) -> None:
        local = FailureCollector()
        try:
            fn(local)
        except PolicyError as err:
            local.failures.extend(err.failures)
        collector.failures.extend(local.failures)
        if local.failures:
            transcript.failed(check, "; ".join(str(f) for f in local.failures))
        else:
            transcript.passed(check, ok)

    cpu = bundle.cpu_evidence
    n_gpus = len(bundle.gpu_evidence)
    section(CHECK_POLICY_EVIDENCE, lambda c: policy.evidence.check(
        [cpu.TYPE] if cpu is not None else [], [bundle.gpu_state.cc_mode == "on"] * n_gpus, c),
        f"cpu {cpu.TYPE if cpu else 'none'}, {n_gpus} GPU(s), CC mode "
        f"{bundle.gpu_state.cc_mode}")
    if snp is not None:
        logged = [m.measurement for m in release.measurements.snp] if release else []
        section("snp.policy", lambda c: policy.snp.check(snp, c, measurements=logged),
                "[snp]" if "snp" in policy.tables else "[snp] defaults")
    if tdx is not None:
        section("tdx.policy", lambda c: policy.tdx.check(tdx, c), f"TCB status {tdx.tcb.status}")
    if gpu_facts or bundle.gpu_state.attached:
        gp = policy.gpu
        section("gpu.policy", lambda c: gp.check(gpu_facts, attached=bundle.gpu_state.attached,
                                                 collector=c),
                f"{len(gpu_facts)} of {bundle.gpu_state.attached} attached GPU(s)")
