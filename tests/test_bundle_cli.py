"""`verifier bundle-inspect` (verifier/cli_bundle.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cbor2
from click.testing import CliRunner

from attest.binding import bundle_gpu_nonce, bundle_report_data
from attest.formats.bundle import to_cbor_value
from tests.support.bundle_samples import snp_bundle, tdx_bundle
from verifier.cli import main
from verifier.cli_bundle import SIMULATED_BANNER


def _write(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "bundle.cbor"
    path.write_bytes(data)
    return str(path)


def test_inspect_text(tmp_path: Path) -> None:
    bundle = snp_bundle()
    data = bundle.encode()
    result = CliRunner().invoke(main, ["bundle-inspect", _write(tmp_path, data)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"sha256:{hashlib.sha256(data).hexdigest()}" in out
    assert "simulated   no" in out
    assert "gpu_state   cc_mode on, 2 GPU(s) attached (node-reported)" in out
    assert SIMULATED_BANNER not in out
    assert "[0] sev-snp" in out and "certs ark, ask, vcek" in out
    assert "[2] nvidia-gpu  index 1" in out
    assert "rims driver=nvidia/rim/driver, vbios=nvidia/rim/vbios" in out
    assert 'first line "c2sp.org/tlog-proof@v1"' in out
    assert f"REPORT_DATA      {bundle_report_data(bundle).hex()}" in out
    for g in bundle.gpu_evidence:
        assert f"gpu_nonce[{g.index}]     {bundle_gpu_nonce(bundle, g.index).hex()}" in out


def test_inspect_json(tmp_path: Path) -> None:
    bundle = tdx_bundle()
    result = CliRunner().invoke(main, ["bundle-inspect", "--json",
                                       _write(tmp_path, bundle.encode())])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["simulated"] is True
    assert summary["gpu_state"] == {"cc_mode": "on", "attached": 4}
    assert summary["nonce"] == "00" * 64
    assert [e["type"] for e in summary["evidence"]] == ["tdx", "nvidia-gpu"]
    assert summary["evidence"][1]["index"] == 3
    assert summary["evidence"][0]["collateral"]["tcb_info"] == "intel/tcb_info"
    assert summary["collateral"]["intel/root_crl"]["size"] == len(
        bundle.collateral["intel/root_crl"])
    assert summary["binding"]["REPORTDATA"] == bundle_report_data(bundle).hex()


def test_simulated_bundle_is_loud(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["bundle-inspect", _write(tmp_path, tdx_bundle().encode())])
    assert result.exit_code == 0
    assert result.stdout.startswith(SIMULATED_BANNER)
    assert result.stdout.rstrip().endswith(SIMULATED_BANNER)
    assert SIMULATED_BANNER in result.stderr
    assert "simulated   YES" in result.stdout


def test_inspect_reads_stdin() -> None:
    result = CliRunner().invoke(main, ["bundle-inspect", "-"], input=snp_bundle().encode())
    assert result.exit_code == 0, result.output


def test_malformed_bundle_names_the_field(tmp_path: Path) -> None:
    value = to_cbor_value(snp_bundle())
    value["evidence"][2]["report"] = b""
    result = CliRunner().invoke(main, ["bundle-inspect",
                                       _write(tmp_path, cbor2.dumps(value, canonical=True))])
    assert result.exit_code == 2
    assert "bundle.schema" in result.stderr
    assert "evidence[2].report" in result.stderr


def test_non_canonical_bundle_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["bundle-inspect",
                                       _write(tmp_path, snp_bundle().encode() + b"\x00")])
    assert result.exit_code == 2
    assert "bundle.canonical" in result.stderr
