"""[gpu] policy and `verifier gpu`: the real vector, and a simulated GPU end to end."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from attest.collateral.rim_fetch import RimSource, driver_rim_id, vbios_rim_id
from attest.simulate.fake_service import serve
from attest.simulate.gpu import (
    SimulatedGpu,
    fake_nvidia_service,
    make_chain,
    make_rim_pki,
    sign_rim,
)
from attest.simulate.gpu_nras import dump_json, good_gpu_claims, jwks_for, nras_tokens
from tests.support.log_fixtures import policy_toml
from tests.support.vectors import vector_path
from transparency_log.common.errors import PolicyError, TrustConfigError
from transparency_log.common.http_fetch import HttpFetcher
from verifier.cli import main
from verifier.gpu.evidence import GpuCaches, GpuTrust, verify_gpu_evidence
from verifier.gpu.policy import UNAVAILABLE_WAIVED, GpuFacts, GpuPolicy
from verifier.policy_base import StrictTable
from verifier.transcript import Transcript
from verifier.x509chain import fingerprint, pinned_root

NONCE_HEX = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb"
NONCE = bytes.fromhex(NONCE_HEX)
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
V = "tests/vectors/nvidia/nvtrust"

# --- policy ------------------------------------------------------------------------------

GOOD = GpuFacts("GPU-0", "550.90.07", "96.00.9F.00.01", "882", ocsp="good", rims="match",
                cc_mode="on")
STRICT = {"count": 1, "driver_versions": ["550.90.07"], "vbios_versions": ["96.00.9F.00.01"],
          "chip_skus": ["882"]}


def policy(**table) -> GpuPolicy:
    return GpuPolicy.from_table(StrictTable(table, "gpu"))


def test_good_facts_pass_a_strict_policy() -> None:
    policy(**STRICT).check([GOOD], attached=1)


@pytest.mark.parametrize("facts, attached, check", [
    ([GOOD, GOOD], 2, "gpu.policy.count"),
    ([GOOD], 2, "gpu.policy.attached"),
    ([GOOD], None, "gpu.policy.attached"),
    ([GpuFacts(**{**GOOD.__dict__, "cc_mode": "off"})], 1, "gpu.policy.cc_mode"),
    ([GpuFacts(**{**GOOD.__dict__, "cc_mode": None})], 1, "gpu.policy.cc_mode"),
    ([GpuFacts(**{**GOOD.__dict__, "driver_version": "535.00"})], 1, "gpu.policy.driver"),
    ([GpuFacts(**{**GOOD.__dict__, "vbios_version": "96.00.5E.00.01"})], 1, "gpu.policy.vbios"),
    ([GpuFacts(**{**GOOD.__dict__, "chip_sku": "883"})], 1, "gpu.policy.chip_sku"),
    ([GpuFacts(**{**GOOD.__dict__, "ocsp": "not-checked"})], 1, "gpu.policy.ocsp"),
    ([GpuFacts(**{**GOOD.__dict__, "rims": "not-checked"})], 1, "gpu.policy.rims"),
])
def test_each_policy_check_fails_alone(facts, attached, check) -> None:
    with pytest.raises(PolicyError) as err:
        policy(**STRICT).check(facts, attached=attached)
    assert {f.check for f in err.value.failures} == {check}


def test_devtools_fails_both_cc_mode_and_devtools_unless_unsafely_allowed() -> None:
    dev = GpuFacts(**{**GOOD.__dict__, "cc_mode": "devtools"})
    with pytest.raises(PolicyError) as err:
        policy().check([dev], attached=1)
    assert {f.check for f in err.value.failures} == {"gpu.policy.cc_mode", "gpu.policy.devtools"}
    policy(unsafe_allow_devtools=True).check([dev], attached=1)


def test_waivers_and_failures_are_all_collected() -> None:
    bad = GpuFacts("GPU-0", "1", "2", "3")
    with pytest.raises(PolicyError) as err:
        policy(**STRICT).check([bad], attached=1)
    assert len(err.value.failures) == 6
    # A waiver covers only what could not be had, never "not checked" or a mismatch.
    lenient = policy(require_cc_mode=False)
    with pytest.raises(PolicyError) as err:
        lenient.check([bad], attached=1)
    assert {f.check for f in err.value.failures} == {"gpu.policy.ocsp", "gpu.policy.rims"}
    # "unavailable (waived)" is a fact only verify_gpu_evidence states, and only when the
    # transcript waived the check (test_unwaived_unavailable_collateral_is_never_a_fact).
    unavailable = GpuFacts("GPU-0", "1", "2", "3", ocsp=UNAVAILABLE_WAIVED,
                           rims=UNAVAILABLE_WAIVED)
    lenient.check([unavailable], attached=1)
    with pytest.raises(PolicyError):
        lenient.check([GpuFacts(**{**unavailable.__dict__, "rims": "mismatch"})], attached=1)


@pytest.mark.parametrize(("key", "check"), [("unsafe_waive_ocsp", "gpu.ocsp"),
                                            ("unsafe_waive_rim_checks", "gpu.rim.fetch")])
def test_the_old_gpu_waiver_keys_name_their_replacement(key: str, check: str) -> None:
    with pytest.raises(TrustConfigError) as err:
        policy(**{key: True})
    assert err.value.field == f"gpu.{key}" and f'waive = ["{check}"]' in err.value.message


@pytest.mark.parametrize("table", [{"colour": "red"}, {"count": "8"}, {"count": -1},
                                   {"driver_versions": []}, {"driver_versions": [550]}])
def test_policy_table_is_fail_closed(table) -> None:
    with pytest.raises(TrustConfigError):
        policy(**table)


# --- verifier gpu on the real vector ----------------------------------------------------------

def run(*args: str):
    return CliRunner().invoke(main, ["gpu", *args])


def write_policy(tmp_path: Path, text: str) -> str:
    """``text``'s waive list and [gpu] table in a whole policy file (the one loader's)."""
    waive, _, table = text.rpartition("[gpu]")
    top = {"waive": tomllib.loads(waive)["waive"]} if waive.strip() else None
    path = tmp_path / "policy.toml"
    path.write_text(policy_toml(top=top, extra="[gpu]" + table))
    return str(path)


WAIVE = 'waive = ["gpu.ocsp"]\n[gpu]\nrequire_cc_mode = false\nrequire_all_attached = false\n'


def test_cli_real_report_with_bundled_rims_names_mismatching_indexes(tmp_path) -> None:
    result = run(f"{V}/hopperAttestationReport.txt", "--chain", f"{V}/hopperCertChain.txt",
                 "--nonce", NONCE_HEX, "--rim", f"{V}/Driver_RIM_test_no_gpu.swidtag",
                 "--rim", f"{V}/1010_0200_882_96005E0001_test_no_gpu.swidtag",
                 "--at", "2025-01-01T00:00:00Z", "--offline",
                 "--policy", write_policy(tmp_path, WAIVE), "--verbose")
    assert result.exit_code == 5, result.output
    assert "DRIVER_VERSION           550.90.07" in result.output
    assert "VBIOS_VERSION            96.00.9F.00.01" in result.output
    assert re.search(r"gpu\.report\.signature +pass ", result.output)
    assert re.search(r"gpu\.ocsp +waived +waived by policy \(gpu\.ocsp\)", result.output)
    assert "mismatching RIM indexes: 1, 2, 3, 7, 9, 11, 21, 22" in result.output
    assert re.search(r"gpu\.rim\.driver +FAIL ", result.output)


def test_cli_json_output(tmp_path) -> None:
    result = run(f"{V}/hopperAttestationReport.txt", "--chain", f"{V}/hopperCertChain.txt",
                 "--nonce", NONCE_HEX, "--rim", f"{V}/Driver_RIM_test_no_gpu.swidtag",
                 "--rim", f"{V}/1010_0200_882_96005E0001_PROD.swidtag",
                 "--at", "2025-01-01", "--offline", "--json",
                 "--policy", write_policy(tmp_path, WAIVE))
    assert result.exit_code == 5
    out = json.loads(result.stdout)
    assert out["verdict"] == "refused"
    assert out["opaque"]["FWID"].startswith("f5c384ae")
    assert len(out["mismatches"]) == 19 and out["mismatches"][0]["spdm_index"] == 2


def test_cli_binary_report_and_wrong_nonce(tmp_path) -> None:
    binary = tmp_path / "report.bin"
    binary.write_bytes(bytes.fromhex(vector_path("nvidia", "nvtrust",
                                                 "hopperAttestationReport.txt").read_text()))
    result = run(str(binary), "--chain", f"{V}/hopperCertChain.txt", "--nonce", "00" * 32,
                 "--offline")
    assert result.exit_code == 2
    assert "gpu.report.nonce" in result.output


def test_cli_offline_without_ocsp_answers_is_unreachable_not_invalid() -> None:
    result = run(f"{V}/hopperAttestationReport.txt", "--chain", f"{V}/hopperCertChain.txt",
                 "--nonce", NONCE_HEX, "--offline")
    assert result.exit_code == 3
    assert "gpu.ocsp.fetch" in result.output


def test_cli_bad_policy_is_exit_4(tmp_path) -> None:
    result = run(f"{V}/hopperAttestationReport.txt", "--chain", f"{V}/hopperCertChain.txt",
                 "--policy", write_policy(tmp_path, "[gpu]\nfoo = 1\n"))
    assert result.exit_code == 4


def test_cli_malformed_report_is_exit_2(tmp_path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("11e001ff")
    result = run(str(bad), "--chain", f"{V}/hopperCertChain.txt", "--offline")
    assert result.exit_code == 2


# --- a simulated node end to end: RIM service + OCSP responder on 127.0.0.1 -------------------

@pytest.fixture
def sim(tmp_path):
    gpu = SimulatedGpu()
    rim_pki = make_rim_pki()
    (tmp_path / "device_root.pem").write_bytes(gpu.device_pki.root_pem())
    (tmp_path / "rim_root.pem").write_bytes(rim_pki.root_pem())
    (tmp_path / "report.bin").write_bytes(gpu.report(NONCE))
    (tmp_path / "chain.pem").write_bytes(gpu.chain_pem())
    with serve(fake_nvidia_service([gpu], rim_pki, NOW - timedelta(hours=1))) as base:
        yield gpu, rim_pki, base, tmp_path


def test_simulated_evidence_end_to_end_over_fake_services(sim) -> None:
    gpu, rim_pki, base, _tmp = sim
    trust = GpuTrust(
        (pinned_root("sim", gpu.device_pki.root_pem(), fingerprint(gpu.device_pki.root).hex()),),
        (pinned_root("simrim", rim_pki.root_pem(), fingerprint(rim_pki.root).hex()),))
    fetch = HttpFetcher(retries=0)
    caches = GpuCaches()
    transcript = Transcript()
    result = verify_gpu_evidence(
        gpu.report(NONCE), gpu.chain_pem(), nonce=NONCE, trust=trust, at=NOW,
        transcript=transcript, fetch=fetch,
        rim_source=RimSource(fetch=fetch, base_url=base + "/v1/rim/"), ocsp_url=base,
        caches=caches, cc_mode="on")
    assert result.facts.rim_failures == ()
    assert result.facts.ocsp == "good" and result.facts.rims == "match"
    GpuPolicy(count=1).check([result.facts], attached=1)
    assert transcript.verdict == "accepted"
    assert [s.check for s in transcript.steps][-1] == "gpu.rim.measurements"


def test_cli_on_a_simulated_gpu_with_nras(sim) -> None:
    gpu, rim_pki, _base, tmp_path = sim
    nras_pki = make_chain(b"nras", ("Fake NRAS signer", "Fake NRAS CA"))
    answer = nras_tokens(nras_pki, "k", nonce=NONCE, now=datetime.now(UTC),
                         gpu_claims={"GPU-0": good_gpu_claims(NONCE)})
    (tmp_path / "nras.json").write_bytes(dump_json(answer))
    (tmp_path / "jwks.json").write_bytes(dump_json(jwks_for(nras_pki, "k")))
    (tmp_path / "nras_root.pem").write_bytes(nras_pki.root_pem())
    # The CLI fetches from NVIDIA's URLs; point it at the fake service through --rim-dir and
    # stapled-free OCSP is not possible, so waive OCSP here (the OCSP path is tested above).
    rim_dir = tmp_path / "rims"
    rim_dir.mkdir()
    driver, vbios = gpu.rims()
    (rim_dir / f"{driver_rim_id(gpu.driver_version)}.swidtag").write_bytes(
        sign_rim(driver, rim_pki))
    o = gpu.opaque()
    (rim_dir / f"{vbios_rim_id(o.project, o.project_sku, o.chip_sku, gpu.vbios_version)}"
              ".swidtag").write_bytes(sign_rim(vbios, rim_pki))
    pol = write_policy(tmp_path, 'waive = ["gpu.ocsp"]\n[gpu]\ncount = 1\n'
                       'driver_versions = ["550.90.07"]\n')
    args = [str(tmp_path / "report.bin"), "--chain", str(tmp_path / "chain.pem"),
            "--nonce", NONCE_HEX, "--rim-dir", str(rim_dir), "--offline", "--policy", pol,
            "--unsafe-device-root", str(tmp_path / "device_root.pem"),
            "--unsafe-rim-root", str(tmp_path / "rim_root.pem"),
            "--nras-token", str(tmp_path / "nras.json"), "--jwks", str(tmp_path / "jwks.json"),
            "--nras-root", str(tmp_path / "nras_root.pem"), "--cc-mode", "on", "--attached", "1"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert re.search(r"gpu\.nras +pass ", result.output) and "verdict: accepted" in result.output
    # The same evidence without the unsafe roots: NVIDIA's pinned root refuses it.
    i = args.index("--unsafe-device-root")
    no_roots = args[:i] + args[i + 4:]
    result = run(*no_roots)
    assert result.exit_code == 2 and "gpu.chain" in result.output
    # CC mode off: policy refuses with exit 5.
    off = [*args[:-4], "--cc-mode", "off", "--attached", "1"]
    result = run(*off)
    assert result.exit_code == 5 and "gpu.policy.cc_mode" in result.output


def test_cli_online_against_the_fake_nvidia_services(sim) -> None:
    _gpu, _rim_pki, base, tmp_path = sim
    pol = write_policy(tmp_path, '[gpu]\ncount = 1\nvbios_versions = ["96.00.9F.00.01"]\n')
    result = run(str(tmp_path / "report.bin"), "--chain", str(tmp_path / "chain.pem"),
                 "--nonce", NONCE_HEX, "--policy", pol, "--at", NOW.isoformat(),
                 "--rim-service", base + "/v1/rim/", "--ocsp-url", base,
                 "--unsafe-device-root", str(tmp_path / "device_root.pem"),
                 "--unsafe-rim-root", str(tmp_path / "rim_root.pem"),
                 "--cc-mode", "on", "--attached", "1", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["verdict"] == "accepted"
    checks = [s["check"] for s in out["steps"]]
    assert checks == ["gpu.report.format", "gpu.chain", "gpu.report.signature",
                      "gpu.report.fwid", "gpu.report.nonce", "gpu.ocsp", "gpu.rim.signature",
                      "gpu.rim.measurements"]
    assert out["steps"][0]["inputs"]["report_sha256"]
