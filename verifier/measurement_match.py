"""Step 5 of the pipeline, ``release.measurement``: the node's measurements are among the
logged release's (docs/verification.md, step 5)."""

from __future__ import annotations

from attest.release.statement import Release
from verifier.gpu.evidence import GpuEvidenceResult
from verifier.policy_base import FailureCollector
from verifier.result import MatchedMeasurement
from verifier.snp.verify import SnpVerification
from verifier.tdx.evidence import TdxResult

__all__ = ["CHECK_MEASUREMENT", "check_measurements"]

CHECK_MEASUREMENT = "release.measurement"


def check_measurements(release: Release, *, snp: SnpVerification | None = None,
                       tdx: TdxResult | None = None,
                       gpus: list[GpuEvidenceResult] | tuple[()] = (),
                       collector: FailureCollector) -> list[MatchedMeasurement]:
    """Step 5, ``release.measurement``: every node measurement is among the release's.

    Adds one failure per mismatch to ``collector``; returns what matched.
    """
    m = release.measurements
    matched: list[MatchedMeasurement] = []
    check = CHECK_MEASUREMENT
    if snp is not None:
        got = snp.report.measurement
        hit = m.snp_match(got)
        if hit is None:
            collector.fail(check, "MEASUREMENT", got,
                           " | ".join(s.measurement.hex() for s in m.snp) or "(release lists "
                           "no SNP measurement)", "the node's launch measurement is not logged")
        else:
            matched.append(MatchedMeasurement("sev-snp", "MEASUREMENT", got.hex(),
                                              f"vcpus={hit.vcpus} {hit.vcpu_type} "
                                              f"{hit.vmm_type}"))
    if tdx is not None:
        body = tdx.quote.body
        if m.tdx is None:
            collector.fail(check, "MRTD", body.mrtd, "(release lists no TDX measurement)")
        else:
            for name in ("mrtd", "rtmr0", "rtmr1", "rtmr2"):
                got, want = getattr(body, name), getattr(m.tdx, name)
                if got == want:
                    matched.append(MatchedMeasurement("tdx", name.upper(), got.hex()))
                else:
                    collector.fail(check, name.upper(), got, want, "not the logged value")
    for g in gpus:
        name = g.facts.name
        for label, got, allowed in (
                ("DRIVER_VERSION", g.report.driver_version, m.gpu.drivers if m.gpu else ()),
                ("VBIOS_VERSION", g.report.vbios_version, m.gpu.vbios if m.gpu else ())):
            if got is not None and got.lower() in {a.lower() for a in allowed}:
                matched.append(MatchedMeasurement("nvidia-gpu", f"{name}.{label}", got))
            else:
                collector.fail(check, f"{name}.{label}", got or "(absent)",
                               " | ".join(allowed) or "(release lists no GPU versions)",
                               "not among the release's allowed versions")
    return matched
