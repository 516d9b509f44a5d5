"""NVML collection with a fake NVML module (CI has no GPU)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

import attest.collect.cli_gpu as cli_gpu
from attest.cli import main
from attest.collect.nvml_gpu import collect_gpu_evidence, gpu_spdm_nonce, load_nvml
from attest.simulate.gpu import FakeNvml, SimulatedGpu
from transparency_log.common.errors import FetchError
from verifier.gpu.report_verify import load_device_chain, verify_gpu_report
from verifier.x509chain import fingerprint, pinned_root

NONCE = bytes(range(32))
GPUS = [SimulatedGpu(seed=b"gpu0"), SimulatedGpu(seed=b"gpu1")]


def test_collects_every_gpu_and_the_evidence_verifies() -> None:
    ev = collect_gpu_evidence(NONCE, nvml=FakeNvml(GPUS))
    assert ev.cc.mode == "on" and ev.driver_version == "550.90.07"
    assert [g.index for g in ev.gpus] == [0, 1]
    for g, sim in zip(ev.gpus, GPUS, strict=True):
        root = pinned_root("sim", sim.device_pki.root_pem(),
                           fingerprint(sim.device_pki.root).hex())
        v = verify_gpu_report(g.report, load_device_chain(g.chain_pem), nonce=NONCE,
                              roots=[root], at=datetime(2026, 11, 23, tzinfo=UTC))
        assert v.report.request.nonce == NONCE


@pytest.mark.parametrize("nvml, check", [
    (FakeNvml(GPUS, fail={"nvmlInit": 9}), "gpu.collect.driver"),
    (FakeNvml([]), "gpu.collect.no_gpu"),
    (FakeNvml(GPUS, cc_feature=0), "gpu.collect.cc_mode"),
    (FakeNvml(GPUS, fail={"nvmlDeviceGetConfComputeGpuAttestationReport": 3}),
     "gpu.collect.report"),
    (FakeNvml(GPUS, fail={"nvmlSystemGetConfComputeState": 3}), "gpu.collect.driver"),
])
def test_clear_errors(nvml, check) -> None:
    with pytest.raises(FetchError) as err:
        collect_gpu_evidence(NONCE, nvml=nvml)
    assert err.value.check == check
    assert not nvml.initialised  # shut down even on failure


def test_cc_off_message_is_explicit() -> None:
    with pytest.raises(FetchError, match="confidential computing is off"):
        collect_gpu_evidence(NONCE, nvml=FakeNvml(GPUS, cc_feature=0))


def test_devtools_mode_is_reported() -> None:
    assert collect_gpu_evidence(NONCE, nvml=FakeNvml(GPUS, devtools=1)).cc.mode == "devtools"


def test_not_supported_names_the_gpu() -> None:
    with pytest.raises(FetchError, match="GPU 0: NVML failed: NVML_ERROR_NOT_SUPPORTED"):
        collect_gpu_evidence(NONCE, nvml=FakeNvml(
            GPUS, fail={"nvmlDeviceGetConfComputeGpuCertificate": 3}))


def test_missing_bindings_say_how_to_install(monkeypatch) -> None:
    import builtins
    real = builtins.__import__

    def fake_import(name, *a, **k):
        if name == "pynvml":
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(FetchError, match=r"attestlog\[gpu\]"):
        load_nvml()


def test_nonce_size_is_enforced() -> None:
    with pytest.raises(ValueError):
        collect_gpu_evidence(b"short", nvml=FakeNvml(GPUS))


def test_binding_nonce_depends_on_nonce_key_and_index() -> None:
    a = gpu_spdm_nonce(NONCE, b"key-a", 0)
    assert len(a) == 32 and a != gpu_spdm_nonce(NONCE, b"key-b", 0)
    assert a != gpu_spdm_nonce(bytes(32), b"key-a", 0)
    assert a != gpu_spdm_nonce(NONCE, b"key-a", 1)


def test_each_gpu_signs_the_nonce_for_its_index() -> None:
    ev = collect_gpu_evidence(lambda i: gpu_spdm_nonce(NONCE, b"key", i), nvml=FakeNvml(GPUS))
    assert ev.nonce is None
    for g in ev.gpus:
        assert g.nonce == gpu_spdm_nonce(NONCE, b"key", g.index) == g.report[4:36]
    with pytest.raises(ValueError):
        collect_gpu_evidence(lambda i: b"short", nvml=FakeNvml(GPUS))


def test_cli_writes_evidence_files(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(cli_gpu, "collect_gpu_evidence",
                        lambda nonce: collect_gpu_evidence(nonce, nvml=FakeNvml(GPUS)))
    result = CliRunner().invoke(main, ["gpu-evidence", "--nonce", NONCE.hex(), "-o",
                                       str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "evidence.json").read_text())
    assert summary["attached"] == 2 and summary["cc_mode"] == "on"
    assert (tmp_path / "gpu-1.report.bin").read_bytes()[4:36] == NONCE
    result = CliRunner().invoke(main, ["gpu-evidence", "--nonce", NONCE.hex()])
    assert json.loads(result.output)["gpus"][0]["report_hex"].startswith("11e001ff")


def test_cli_cc_off_exits_3(monkeypatch) -> None:
    monkeypatch.setattr(cli_gpu, "collect_gpu_evidence",
                        lambda nonce: collect_gpu_evidence(nonce, nvml=FakeNvml(GPUS,
                                                                                cc_feature=0)))
    result = CliRunner().invoke(main, ["gpu-evidence", "--nonce", NONCE.hex()])
    assert result.exit_code == 3
    assert "gpu.collect.cc_mode" in result.output


def test_the_ctypes_report_struct_carries_the_nonce() -> None:
    import ctypes

    class Report(ctypes.Structure):  # nvml.h nvmlConfComputeGpuAttestationReport_t
        _fields_ = [("isCecAttestationReportPresent", ctypes.c_uint),
                    ("attestationReportSize", ctypes.c_uint),
                    ("cecAttestationReportSize", ctypes.c_uint),
                    ("nonce", ctypes.c_ubyte * 32),
                    ("attestationReport", ctypes.c_ubyte * 0x2000),
                    ("cecAttestationReport", ctypes.c_ubyte * 0x1000)]

    class StructNvml(FakeNvml):
        c_nvmlConfComputeGpuAttestationReport_t = Report

    ev = collect_gpu_evidence(NONCE, nvml=StructNvml(GPUS[:1]))
    assert ev.gpus[0].report[4:36] == NONCE
