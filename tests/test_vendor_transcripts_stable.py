"""Issue 15: making the SNP and GPU verifiers cheaper changed no step. The transcripts of the
real vectors (SEV-SNP trustee report with its Milan VCEK; NVIDIA's H100 report, chain and RIMs)
run cold (fresh caches, parse memos cleared) and warm (the same caches again) must equal the
transcripts recorded before the change (tests/assets/transcripts/vendor_real.json), step by
step: check id, result, detail and inputs, except the ``source=cache`` marker of a warm step.

Regenerate the asset only on purpose (a deliberate change of a step):
``.venv/bin/python -m tests.test_vendor_transcripts_stable --write``.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from attest.formats.spdm_measurements import parse_report_text
from bench.vendor_ratio import clear_parse_memos
from tests.support.vectors import ASSETS, vector_path
from verifier.gpu.evidence import GpuCaches, GpuTrust, verify_gpu_evidence
from verifier.snp.roots import amd_roots
from verifier.snp.verify import SnpCaches, SnpCollateral, SnpVerifier
from verifier.transcript import Transcript

GOLDEN = ASSETS / "transcripts" / "vendor_real.json"
SNP_AT = datetime(2026, 11, 23, tzinfo=UTC)
GPU_AT = datetime(2025, 1, 1, tzinfo=UTC)  # the vectors' RIMs are current then
GPU_NONCE = bytes.fromhex("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb")
NV = ("nvidia", "nvtrust")


def _steps(t: Transcript) -> list[dict[str, Any]]:
    return [s.to_dict() for s in t.steps]


def _snp_runs() -> dict[str, list[dict[str, Any]]]:
    report = vector_path("snp", "trustee", "test-report.bin").read_bytes()
    vcek = vector_path("snp", "trustee", "test-vcek.der").read_bytes()
    milan = amd_roots()["Milan"]
    given = SnpCollateral(vcek=vcek, ask=milan.ask.public_bytes(Encoding.DER),
                          ark=milan.ark.certificate.public_bytes(Encoding.DER))
    out: dict[str, list[dict[str, Any]]] = {}
    for name, col in (("snp chain given", given), ("snp vcek only", SnpCollateral(vcek=vcek))):
        caches = SnpCaches()
        for run in ("cold", "warm"):
            if run == "cold":
                clear_parse_memos()
            t = Transcript(waive=frozenset({"snp.crl"}))  # no AMD CRL among the vectors
            SnpVerifier.production(caches=caches).verify(report, at=SNP_AT, collateral=col,
                                                         transcript=t)
            out[f"{name}, {run}"] = _steps(t)
    return out


def _gpu_runs() -> dict[str, list[dict[str, Any]]]:
    report = parse_report_text(vector_path(*NV, "hopperAttestationReport.txt").read_bytes())
    chain = vector_path(*NV, "hopperCertChain.txt").read_bytes()
    rims = [vector_path(*NV, "Driver_RIM_test_no_gpu.swidtag").read_bytes(),
            vector_path(*NV, "1010_0200_882_96005E0001_test_no_gpu.swidtag").read_bytes()]
    out: dict[str, list[dict[str, Any]]] = {}
    caches = GpuCaches()
    for run in ("cold", "warm"):
        if run == "cold":
            clear_parse_memos()
        t = Transcript(waive=frozenset({"gpu.ocsp"}))  # no OCSP answer among the vectors
        verify_gpu_evidence(report, chain, nonce=GPU_NONCE, trust=GpuTrust.production(),
                            at=GPU_AT, transcript=t, rims=rims, caches=caches)
        out[f"h100, {run}"] = _steps(t)
    return out


def transcripts() -> dict[str, list[dict[str, Any]]]:
    return {**_snp_runs(), **_gpu_runs()}


def _without_cache_marker(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for s in steps:
        s = dict(s)
        inputs = {k: v for k, v in s.pop("inputs", {}).items()
                  if (k, v) != ("source", "cache")}
        if inputs:
            s["inputs"] = inputs
        out.append(s)
    return out


def test_cold_and_warm_transcripts_equal_the_recorded_ones() -> None:
    golden = json.loads(GOLDEN.read_text())
    got = transcripts()
    assert sorted(got) == sorted(golden)
    for name, steps in got.items():
        assert _without_cache_marker(steps) == _without_cache_marker(golden[name]), name


def test_a_warm_run_says_what_came_from_a_cache() -> None:
    got = transcripts()
    for name in ("snp chain given", "snp vcek only"):
        cold = {s["check"]: s.get("inputs", {}) for s in got[f"{name}, cold"]}
        warm = {s["check"]: s.get("inputs", {}) for s in got[f"{name}, warm"]}
        assert "source" not in cold["snp.vcek.chain"]
        assert warm["snp.vcek.chain"]["source"] == "cache"
    gpu_warm = {s["check"]: s.get("inputs", {}) for s in got["h100, warm"]}
    assert gpu_warm["gpu.chain"]["source"] == "cache"


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    GOLDEN.write_text(json.dumps(transcripts(), indent=1, sort_keys=True) + "\n")
