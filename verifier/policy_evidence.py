"""``[evidence]`` of the policy file (docs/policy.md, "[evidence]"): which evidence a node
must present (a CPU TEE of the listed kinds, GPUs, every GPU in CC mode)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from verifier.policy_base import CHECK_SCHEMA, FailureCollector, StrictTable, config_error

__all__ = ["CPU_EVIDENCE", "EvidencePolicy"]

#: CPU evidence kinds, as named in evidence bundles.
CPU_EVIDENCE = ("sev-snp", "tdx")
_error = config_error


@dataclass(frozen=True)
class EvidencePolicy:
    """``[evidence]``: which evidence a node must present.

    ``cpu``: the node must present at least one of these CPU TEE kinds; ``gpu_required``: at
    least one GPU; ``all_gpus_cc``: every GPU it presents is in confidential-computing mode.
    """

    cpu: tuple[str, ...] = CPU_EVIDENCE
    gpu_required: bool = True
    all_gpus_cc: bool = True

    @classmethod
    def from_table(cls, t: StrictTable) -> EvidencePolicy:
        cpu = t.get_list("cpu", str, list(CPU_EVIDENCE))
        if not cpu:
            raise _error(CHECK_SCHEMA, "cpu must name at least one CPU TEE", "evidence.cpu",
                         want=" | ".join(CPU_EVIDENCE))
        for i, kind in enumerate(cpu):
            if kind not in CPU_EVIDENCE:
                raise _error(CHECK_SCHEMA, "unknown CPU evidence kind", f"evidence.cpu[{i}]",
                             got=kind, want=" | ".join(CPU_EVIDENCE))
        if len(set(cpu)) != len(cpu):
            raise _error(CHECK_SCHEMA, "duplicate CPU evidence kind", "evidence.cpu")
        policy = cls(tuple(cpu), t.get("gpu_required", bool, True),
                     t.get("all_gpus_cc", bool, True))
        t.finish()
        return policy

    def check(self, cpu_kinds: Collection[str], gpu_cc_modes: Sequence[bool],
              failures: FailureCollector) -> None:
        """Add a failure for each unmet requirement (checks ``policy.evidence.*``).

        ``cpu_kinds``: the authentic CPU evidence kinds the node presented;
        ``gpu_cc_modes``: one bool per authentic GPU report, True when CC mode is on.
        """
        present = sorted(set(cpu_kinds) & set(self.cpu))
        failures.require(bool(present), "policy.evidence.cpu", "evidence kinds",
                         ", ".join(sorted(cpu_kinds)) or "none", "one of " + ", ".join(self.cpu))
        if self.gpu_required:
            failures.require(len(gpu_cc_modes) > 0, "policy.evidence.gpu", "GPU evidence items",
                             len(gpu_cc_modes), ">= 1")
        if self.all_gpus_cc:
            off = [str(i) for i, on in enumerate(gpu_cc_modes) if not on]
            failures.require(not off, "policy.evidence.gpu_cc", "GPU CC mode",
                             "off for GPU " + ", ".join(off), "on for every GPU")
