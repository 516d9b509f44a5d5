"""`verifier snp` end to end on real vectors and simulated KDS; exit codes per DESIGN.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from attest.formats.snp_certtable import VCEK_GUID, CertTable, CertTableEntry, serialize_cert_table
from tests.support.log_fixtures import policy_toml
from tests.support.snp_fixtures import REAL, vec
from verifier.cli import main

AT = "2026-11-23T00:00:00Z"


def run(tmp_path: Path, *args: str):
    return CliRunner().invoke(main, ["snp", *args, "--at", AT, "--offline",
                                     "--cache-dir", str(tmp_path / "cache")])


def path(name: str) -> str:
    return str(Path(__file__).parent / "vectors" / "snp" / name)


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_reports_accepted_with_their_certs(tmp_path: Path, name: str) -> None:
    res = run(tmp_path, path(name), "--certs", path(REAL[name]), "--waive", "snp.crl",
              "--verbose")
    assert res.exit_code == 0, res.output
    assert "MEASUREMENT" in res.output  # the fields: --verbose
    assert re.search(r"snp\.report\.signature +pass ", res.output)
    assert re.search(r"snp\.crl +waived +waived by policy \(snp\.crl\): cannot run", res.output)
    # Without a policy only authenticity was judged: never reported as acceptance.
    assert "verdict: authentic-only" in res.output and "verdict: accepted" not in res.output
    assert res.stdout.splitlines()[-1] == f"OK: {path(name)} (authentic only: no policy)"


def test_policy_and_measurement_give_acceptance(tmp_path: Path) -> None:
    pol = tmp_path / "p.toml"
    pol.write_text(policy_toml(extra="[snp]\nallow_debug = false\n"))
    name = "virtee-sev/report_milan.bin"
    m = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d" \
        "3e1a0dc39b2c60bd95b9c480cd81841f"
    res = run(tmp_path, path(name), "--certs", path(REAL[name]), "--waive", "snp.crl",
              "--policy", str(pol), "--measurement", m)
    assert res.exit_code == 0, res.output
    assert "verdict: accepted" in res.output
    res = run(tmp_path, path(name), "--certs", path(REAL[name]), "--waive", "snp.crl",
              "--policy", str(pol), "--measurement", "00" * 48)
    assert res.exit_code == 5 and "snp.policy.measurement" in res.output


def test_extended_report_with_its_certificate_table(tmp_path: Path) -> None:
    name = "virtee-sev/report_milan.bin"
    table = CertTable((CertTableEntry(VCEK_GUID, vec(REAL[name])),))
    blob = tmp_path / "ext.bin"
    blob.write_bytes(vec(name) + serialize_cert_table(table))
    res = run(tmp_path, str(blob), "--waive", "snp.crl")
    assert res.exit_code == 0, res.output


def test_debug_policy_refusal_exits_5_naming_the_check(tmp_path: Path) -> None:
    pol = tmp_path / "p.toml"
    pol.write_text(policy_toml(extra="[snp]\nallow_debug = false\n"))
    name = "go-sev-guest/attestation.bin"
    m = "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b" \
        "6bdf8a9ece31a5a608eb0cf2e4872b01"
    res = run(tmp_path, path(name), "--certs", path(REAL[name]), "--waive", "snp.crl",
              "--policy", str(pol), "--measurement", m)
    assert res.exit_code == 5
    assert "snp.policy.debug: POLICY.DEBUG is True" in res.output
    # the one-liner last: FAIL, the input, the check id, the reason
    assert res.stdout.splitlines()[-1].startswith(
        f"FAIL: {path(name)}: snp.policy.debug: POLICY.DEBUG is True")
    assert run(tmp_path, path(name), "--certs", path(REAL[name]), "--waive", "snp.crl",
               "--policy", str(pol), "--measurement", m, "-q").output == ""


def test_json_transcript(tmp_path: Path) -> None:
    name = "trustee/test-report.bin"
    res = run(tmp_path, path(name), "--certs", path(REAL[name]), "--waive", "snp.crl", "--json")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert doc["verdict"] == "authentic-only" and doc["fields"]["GUEST_SVN"] == 4
    assert [s["check"] for s in doc["steps"]][:3] == [
        "snp.report.format", "snp.report.product", "snp.vcek.collateral"]


def test_exit_codes(tmp_path: Path) -> None:
    name = "trustee/test-report.bin"
    tampered = run(tmp_path, path(name), "--certs", path("trustee/test-vcek-invalid-new.der"),
                   "--waive", "snp.crl")
    assert tampered.exit_code == 2 and "snp.vcek.chain" in tampered.output
    no_crl = run(tmp_path, path(name), "--certs", path(REAL[name]))
    # snp.crl cannot run (CheckNotRun, a policy failure unless waived by name).
    assert no_crl.exit_code == 5 and "offline" in no_crl.output and "snp.crl" in no_crl.output
    bad = tmp_path / "bad.toml"
    bad.write_text(policy_toml(extra="[snp]\nallow_debugg = true\n"))
    assert run(tmp_path, path(name), "--policy", str(bad)).exit_code == 4
    short = tmp_path / "short.bin"
    short.write_bytes(vec(name)[:100])
    assert run(tmp_path, str(short)).exit_code == 2


def test_online_fetches_the_real_vcek_for_reported_tcb_then_works_offline(
        tmp_path: Path) -> None:
    """trustee/test-report.bin through a local stand-in for KDS that knows its real VCEK:
    the CLI asks for REPORTED_TCB (ucodeSPL=115, not CURRENT_TCB's 206) and caches it."""
    from attest.formats.snp_report import parse_report
    from attest.simulate.fake_service import FakeService, serve

    name = "trustee/test-report.bin"
    chip = parse_report(vec(name)).chip_id.hex()
    service = FakeService({f"/vcek/v1/Milan/{chip}": (200, {}, vec(REAL[name]))})
    cache = str(tmp_path / "cache")
    with serve(service) as base:
        res = CliRunner().invoke(main, ["snp", path(name), "--at", AT, "--product", "Milan",
                                        "--kds-url", base, "--cache-dir", cache,
                                        "--waive", "snp.crl"])
    assert res.exit_code == 0, res.output
    # The CRL was asked for too (the fake KDS has none: snp.crl cannot run, and is waived);
    # the verification then reran with the VCEK it had just cached.
    assert re.search(r"snp\.crl +waived .*cannot run", res.output), res.output
    [target] = [t for _, t in service.requests if not t.endswith("/crl")]
    assert target.endswith("?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115")
    res = CliRunner().invoke(main, ["snp", path(name), "--at", AT, "--product", "Milan",
                                    "--offline", "--cache-dir", cache, "--waive", "snp.crl"])
    assert res.exit_code == 0 and "VCEK from cache" in res.output
