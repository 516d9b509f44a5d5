"""`verifier bundle` on bundles assembled from the real vectors (tests/vectors, see their
MANIFESTs), with a local log holding a release whose measurements are the real ones.

What these test, and what they cannot: the real reports' REPORT_DATA was fixed when they were
captured, so no bundle of ours can bind to them; ``binding.report_data`` is **expected to
fail** and it is asserted that it fails exactly there (exit 2), after every authenticity step
ran on real evidence. The log, measurement-match and policy steps that the pipeline does not
reach are then run as the pipeline's own step functions (``verify_log``,
``check_measurements``, ``check_policy``) on the authentic results the refused Result keeps,
so real evidence exercises authenticity + log + measurement + policy. Expected verdicts:

- SEV-SNP (virtee-sev report_milan.bin + VCEK, Milan ASK/ARK) at 2025-01-01: report and chain
  VALID; no AMD CRL is in the vectors, so the policy waives ``snp.crl`` (offline, it cannot
  run) and the transcript says ``waived``. Measurement matches the logged release; debug off.
- H100 (nvtrust hopperAttestationReport + chain): signature, chain and FWID VALID; the
  bundled RIMs (545.00, 96.00.5E.00.01) are for an older report: **measurement FAIL**
  (``gpu.rim.driver``, ``gpu.rim.vbios``, ``gpu.rim.measurements``), as the MANIFEST states.
  No OCSP answers are in the vectors: the policy waives ``gpu.ocsp``.
- go-sev-guest attestation.bin: VALID, but DEBUG=1, so a policy that forbids debug rejects it.
- TDX (go-tdx-guest tdx_prod_quote_SPR_E4 + PCS collateral) at 2023-06-20, the one instant at
  which all its collateral is current: every signature, chain, CRL and collateral window
  passes, and it is refused with ``tdx.tcb.level`` "no matching TCB level" (MANIFEST).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from attest.formats.bundle import EvidenceBundle, GpuState, SnpEvidence
from attest.formats.snp_report import parse_report
from attest.formats.tdx_quote import parse_quote
from attest.release.dsse import sign_statement
from attest.release.measurements import GpuAllowList, Measurements, SnpMeasurement, TdxMeasurement
from tests.support.bundle_samples import (
    NODE_KEY,
    NONCE,
    gpu_collateral,
    gpu_item,
    pem_blocks,
    snp_item,
    tdx_collateral,
    tdx_item,
)
from tests.support.log_fixtures import RELEASE_KEY, FakeLog, policy_toml
from tests.support.release_samples import sample_release
from tests.support.vectors import vector_path
from transparency_log.common.errors import VerificationError
from verifier.cli import main
from verifier.log_checks import LogEvidence, verify_log
from verifier.measurement_match import check_measurements
from verifier.pipeline import run_pipeline
from verifier.policy import Policy, parse_policy
from verifier.policy_base import FailureCollector
from verifier.policy_step import check_policy
from verifier.result import Result
from verifier.transcript import FAIL, PASS, WAIVED, Transcript

SNP_AT = datetime(2025, 1, 1, tzinfo=UTC)
TDX_AT = datetime(2023, 6, 20, tzinfo=UTC)
GPU_EXTRA = "\n[gpu]\n"


def logged(measurements: Measurements, at: datetime) -> tuple[bytes, bytes]:
    """A release entry with these measurements in a local log, and its tlog-proof (cosigned
    a minute before ``at``)."""
    entry = sign_statement(dataclasses.replace(sample_release(), measurements=measurements),
                           [RELEASE_KEY]).encode()
    ts = int(at.timestamp()) - 60
    return entry, FakeLog([entry]).proof(0, times={0: ts, 1: ts}).to_text()


def snp_gpu_bundle(item: SnpEvidence | None = None) -> tuple[bytes, str]:
    item = item or snp_item()
    entry, proof = logged(Measurements(
        snp=(SnpMeasurement(4, "EPYC-v4", "qemu", parse_report(item.report).measurement),),
        gpu=GpuAllowList(("550.90.07",), ("96.00.9F.00.01",))), SNP_AT)
    bundle = EvidenceBundle(NONCE, NODE_KEY, False, (item, gpu_item(0)), entry, proof,
                            gpu_collateral(), GpuState("on", 1))
    policy = policy_toml(top={"waive": ["snp.crl", "log.consistency", "gpu.ocsp"]},
                         log={"revocations": "stapled"}, extra=GPU_EXTRA)
    return bundle.encode(), policy


def tdx_bundle() -> tuple[bytes, str]:
    chains = {"tcb_info_issuer_chain": "intel/tcb_info_issuer_chain",
              "qe_identity_issuer_chain": "intel/qe_identity_issuer_chain"}
    item = tdx_item()
    item = dataclasses.replace(item, collateral={**item.collateral, **chains})
    body = parse_quote(item.quote).body
    entry, proof = logged(Measurements(tdx=TdxMeasurement(body.mrtd, body.rtmr0, body.rtmr1,
                                                          body.rtmr2)), TDX_AT)
    collateral = {**tdx_collateral(), **{
        name: vector_path("tdx", "go-tdx-guest", f"{role}.pem").read_bytes()
        for role, name in chains.items()}}
    bundle = EvidenceBundle(NONCE, NODE_KEY, False, (item,), entry, proof, collateral,
                            GpuState())
    policy = policy_toml(top={"waive": ["log.consistency"]}, log={"revocations": "stapled"},
                         evidence={"gpu_required": False})
    return bundle.encode(), policy


def cli(tmp: Path, data: bytes, policy: str, at: datetime):
    (tmp / "bundle.cbor").write_bytes(data)
    (tmp / "policy.toml").write_text(policy)
    return CliRunner().invoke(main, [
        "bundle", str(tmp / "bundle.cbor"), "--nonce", NONCE.hex(), "--policy",
        str(tmp / "policy.toml"), "--at", at.strftime("%Y-%m-%dT%H:%M:%SZ"), "--offline",
        "--json"])


def steps(doc: dict) -> dict[str, str]:  # type: ignore[type-arg]
    out: dict[str, str] = {}
    for s in doc["steps"]:  # a check that ran for several items: any failure wins
        out[s["check"]] = FAIL if FAIL in (out.get(s["check"]), s["result"]) else s["result"]
    return out


def later_steps(result: Result, policy: Policy, at: datetime) -> FailureCollector:
    """Steps 4-6 as the pipeline runs them, on the authentic results of a refused Result."""
    bundle = result.bundle
    assert bundle is not None
    failures = FailureCollector()
    t = Transcript()
    log = verify_log(LogEvidence.from_tlog_proof(bundle.release, bundle.tlog_proof), policy,
                     at, transcript=t)
    assert {s.result for s in t.steps} == {PASS, WAIVED}  # consistency waived (no store)
    release = log.release.statement
    matched = check_measurements(release, snp=result.snp, tdx=result.tdx,  # type: ignore[arg-type]
                                 gpus=result.gpus, collector=failures)
    assert matched and not failures.failures  # the real measurements are the logged ones
    check_policy(policy, bundle, snp=result.snp, tdx=result.tdx, gpu_facts=result.gpu_facts,
                 release=release, collector=failures, transcript=t)  # type: ignore[arg-type]
    return failures


def test_snp_and_h100_real_vectors(tmp_path: Path) -> None:
    data, policy_text = snp_gpu_bundle()
    out = cli(tmp_path, data, policy_text, SNP_AT)
    assert out.exit_code == 2, out.output
    doc = json.loads(out.stdout)
    got = steps(doc)
    for check in ("snp.report.format", "snp.vcek.chain", "snp.report.signature",
                  "snp.vcek.extensions", "gpu.chain", "gpu.report.signature", "gpu.report.fwid",
                  "gpu.rim.signature", "gpu.device.distinct"):
        assert got[check] == PASS, check
    assert got["snp.crl"] == WAIVED and got["gpu.ocsp"] == WAIVED
    for check in ("gpu.rim.driver", "gpu.rim.vbios", "gpu.rim.measurements"):
        assert got[check] == FAIL, check  # MANIFEST: measurement FAIL (RIMs of another report)
    assert doc["error"]["check"] == "binding.report_data"  # the real REPORT_DATA is fixed
    assert doc["error"]["got"] == parse_report(snp_item().report).report_data.hex()
    assert "log.inclusion" not in got  # the pipeline stopped at the binding

    policy = parse_policy(policy_text.encode())
    result = run_pipeline(data, policy, at=SNP_AT, expected_nonce=NONCE)
    assert isinstance(result.error, VerificationError)
    assert result.error.check == "binding.report_data"
    failures = later_steps(result, policy, SNP_AT)
    checks = {f.check for f in failures.failures}
    assert "gpu.policy.rims" in checks  # the RIM mismatch refuses the GPU
    assert not {c for c in checks if c.startswith("snp.")}  # the SNP report is acceptable


def test_snp_debug_guest_real_vector() -> None:
    ask, ark = pem_blocks("snp", "amd-roots", "ask_ark_milan.pem")
    item = SnpEvidence(vector_path("snp", "go-sev-guest", "attestation.bin").read_bytes(),
                       {"vcek": vector_path("snp", "go-sev-guest", "vcek.testcer").read_bytes(),
                        "ask": ask, "ark": ark})
    data, policy_text = snp_gpu_bundle(item)
    policy = parse_policy(policy_text.encode())
    result = run_pipeline(data, policy, at=SNP_AT, expected_nonce=NONCE)
    got = {s.check: s.result for s in result.transcript.steps}
    assert got["snp.report.signature"] == PASS and got["snp.vcek.chain"] == PASS
    assert result.error is not None and result.error.check == "binding.report_data"
    checks = {f.check for f in later_steps(result, policy, SNP_AT).failures}
    assert "snp.policy.debug" in checks  # MANIFEST: debug=1, a no-debug policy rejects it


def test_tdx_real_vector(tmp_path: Path) -> None:
    data, policy_text = tdx_bundle()
    out = cli(tmp_path, data, policy_text, TDX_AT)
    assert out.exit_code == 2, out.output
    doc = json.loads(out.stdout)
    got = steps(doc)
    for check in ("tdx.quote.signature", "tdx.pck.chain", "tdx.root_crl.validity",
                  "tdx.pck_crl.revocation", "tdx.tcb_info.signature", "tdx.qe.identity"):
        assert got[check] == PASS, check
    assert doc["error"]["check"] == "tdx.tcb.level"
    assert "no matching TCB level" in doc["error"]["message"]  # MANIFEST, as go-tdx-guest
    kinds = {c["kind"] for c in doc["collateral"]}
    assert {"intel-tcb-info", "intel-qe-identity", "x509-crl", "x509-chain"} <= kinds


def test_real_vectors_are_refused_at_the_wrong_time(tmp_path: Path) -> None:
    """At 2026-11-23 the TDX collateral has long expired: refused, naming the stale item."""
    data, policy_text = tdx_bundle()
    doc = json.loads(cli(tmp_path, data, policy_text, datetime(2026, 11, 23, tzinfo=UTC)).stdout)
    assert doc["error"]["check"].startswith("tdx.") and "validity" in doc["error"]["check"]
