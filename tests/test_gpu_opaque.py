"""Issue 16 part 4: genuine current GPU evidence verifies.

Opaque data decoded by type (OPAQUE_DATA_VERSION / FEATURE_FLAG as integers, CHIP_INFO as a
string, unknown ids raw), reported and judged by ``[gpu]``; the real H100 report of current
firmware (driver 590.12) verifies; every RIM problem is in one refusal; every bit of the new
fields is covered by the bit-flip harness.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from attest.collateral.rim_fetch import RimSource, driver_rim_id
from attest.formats import nvidia_opaque as nvo
from attest.formats.nvidia_opaque import FeatureFlag, OpaqueData, OpaqueField, OpaqueType
from attest.formats.spdm_measurements import parse_report
from attest.simulate.gpu import SimulatedGpu, make_rim_pki, sign_rim
from tests.support.bitflip_support import Refusal, flip_every_bit
from tests.support.log_fixtures import policy_toml
from tests.support.vectors import load_json_vector
from transparency_log.common.errors import (
    FetchError,
    FormatError,
    PolicyError,
    SignatureError,
    TrustConfigError,
)
from verifier.cli import main
from verifier.gpu.evidence import GpuEvidenceResult, GpuTrust, verify_gpu_evidence
from verifier.gpu.policy import GpuPolicy
from verifier.gpu.report_verify import ChainCache, load_device_chain, verify_gpu_report
from verifier.gpu.roots import device_identity_root
from verifier.policy_base import FailureCollector, StrictTable
from verifier.transcript import Transcript
from verifier.x509chain import fingerprint, pinned_root

NONCE = bytes(range(32))
AT = datetime(2026, 11, 23, tzinfo=UTC)
UNKNOWN_ID = 99  # no reference defines it

# --- the decoding table ----------------------------------------------------------------------

EVERY_FIELD = {  # one valid Data per type of NVIDIA's table, and what it shows as
    OpaqueType.CERT_ISSUER_NAME: (b"\x01\x02", "0102"),
    OpaqueType.CERT_AUTHORITY_KEY_IDENTIFIER: (b"\xaa" * 4, "aaaaaaaa"),
    OpaqueType.DRIVER_VERSION: (nvo.encode_string("590.12"), "590.12"),
    OpaqueType.GPU_INFO: (bytes.fromhex("8001000000000000"), "8001000000000000"),
    OpaqueType.SKU: (b"\x05", "05"),
    OpaqueType.VBIOS_VERSION: (nvo.encode_vbios_version("96.00.A5.00.01"), "96.00.A5.00.01"),
    OpaqueType.MANUFACTURER_ID: (b"\x57\x03", "5703"),
    OpaqueType.TAMPER_DETECTION: (b"\x00", "00"),
    OpaqueType.SMC: (b"\x01", "01"),
    OpaqueType.VPR: (b"\x02", "02"),
    OpaqueType.NVDEC0_STATUS: (b"\x55", "0x55"),
    OpaqueType.MSRSCNT: (nvo.encode_uint(1, 4) + nvo.encode_uint(131, 4), "1,131"),
    OpaqueType.CPRINFO: (bytes.fromhex("00c00100"), "00c00100"),
    OpaqueType.BOARD_ID: (bytes.fromhex("37040000"), "37040000"),
    OpaqueType.CHIP_SKU: (nvo.encode_string("885", 9), "885"),
    OpaqueType.CHIP_SKU_MOD: (nvo.encode_string("0", 5), "0"),
    OpaqueType.PROJECT: (nvo.encode_string("G520"), "G520"),
    OpaqueType.PROJECT_SKU: (nvo.encode_string("0200"), "0200"),
    OpaqueType.PROJECT_SKU_MOD: (b"\x00\x00", ""),
    OpaqueType.FWID: (b"\x11" * 48, "11" * 48),
    OpaqueType.PROTECTED_PCIE_STATUS: (b"\xaa", "0xaa"),
    OpaqueType.SWITCH_PDI: (bytes(range(16)), "0001020304050607 08090a0b0c0d0e0f"),
    OpaqueType.FLOORSWEPT_PORTS: (b"\x03", "03"),
    OpaqueType.POSITION_ID: (b"\x04", "04"),
    OpaqueType.LOCK_SWITCH_STATUS: (b"\x01", "01"),
    OpaqueType.GPU_LINK_CONN: (b"\x12", "12"),
    OpaqueType.SYS_ENABLE_STATUS: (b"\x01", "01"),
    OpaqueType.OPAQUE_DATA_VERSION: (b"\x01\x00", "1"),
    OpaqueType.CHIP_INFO: (nvo.encode_string("GB100", 8), "GB100"),
    OpaqueType.FEATURE_FLAG: (b"\x01\x00", "MPT (1)"),
    OpaqueType.INVALID: (b"\xff", "ff"),
}


def test_every_field_of_the_table_is_decoded_by_its_type() -> None:
    assert set(EVERY_FIELD) == set(OpaqueType)
    fields = [OpaqueField(t, data) for t, (data, _) in EVERY_FIELD.items()]
    fields.append(OpaqueField(UNKNOWN_ID, b"\xde\xad"))
    wire = OpaqueData(tuple(fields)).to_bytes()
    opaque = nvo.parse_opaque(wire)
    assert opaque.to_bytes() == wire
    shown = opaque.summary()
    for t, (_, want) in EVERY_FIELD.items():
        assert shown[t.name] == want, t.name
    assert shown[f"UNKNOWN_{UNKNOWN_ID}"] == "dead"  # unknown ids kept raw and shown
    assert opaque.opaque_data_version == 1 and opaque.feature_flag == FeatureFlag.MPT
    assert opaque.feature_mode == "MPT" and opaque.chip_info == "GB100"
    assert opaque.switch_pdis == (bytes(range(8)), bytes(range(8, 16)))
    assert opaque.measurement_counts == (1, 131)
    assert opaque.get(OpaqueType.OPAQUE_DATA_VERSION) == b"\x01\x00"  # raw bytes kept


@pytest.mark.parametrize("kind, data", [
    (OpaqueType.OPAQUE_DATA_VERSION, b""),
    (OpaqueType.OPAQUE_DATA_VERSION, bytes(9)),
    (OpaqueType.FEATURE_FLAG, b""),
    (OpaqueType.CHIP_INFO, b"GB\xff100\x00"),
    (OpaqueType.CHIP_INFO, b"GB100\x00x"),
    (OpaqueType.SWITCH_PDI, bytes(7)),
    (OpaqueType.MSRSCNT, bytes(3)),
    (OpaqueType.NVDEC0_STATUS, b"\x55\x55"),
    (OpaqueType.VBIOS_VERSION, bytes(7)),
])
def test_malformed_typed_field_is_refused_naming_it(kind: OpaqueType, data: bytes) -> None:
    with pytest.raises(FormatError) as err:
        nvo.parse_opaque(OpaqueField(kind, data).to_bytes())
    assert err.value.check == "gpu.report.opaque"
    assert kind.name in (err.value.field or "")


def test_a_feature_flag_no_reference_defines_is_kept_and_named() -> None:
    opaque = nvo.parse_opaque(OpaqueField(OpaqueType.FEATURE_FLAG, b"\x07\x00").to_bytes())
    assert opaque.feature_mode == "UNKNOWN(7)"
    assert opaque.summary()["FEATURE_FLAG"] == "UNKNOWN(7) (7)"


# --- the real H100 report of current firmware (NVIDIA/attestation-sdk, driver 590.12) --------

def real_current() -> tuple[bytes, bytes, bytes]:
    """(report, PEM chain, nonce) of tests/vectors/nvidia/attestation-sdk (MANIFEST.md)."""
    item = load_json_vector("nvidia", "attestation-sdk", "evidence_hopper_590_12.json")[0]
    return (base64.b64decode(item["evidence"]), base64.b64decode(item["certificate"]),
            bytes.fromhex(item["nonce"]))


def test_real_current_firmware_h100_report_verifies_and_is_decoded() -> None:
    report, chain, nonce = real_current()
    v = verify_gpu_report(report, load_device_chain(chain), nonce=nonce,
                          roots=[device_identity_root()], at=AT)
    assert v.driver_version == "590.12" and v.vbios_version == "96.00.A5.00.01"
    o = v.opaque
    assert o.opaque_data_version == 1
    assert o.feature_flag == FeatureFlag.PPCIE and o.feature_mode == "PPCIE"
    assert o.chip_info is None  # NVIDIA reads CHIP_INFO on Blackwell and later only
    assert len(o.switch_pdis or ()) == 18
    shown = o.summary()
    assert shown["OPAQUE_DATA_VERSION"] == "1" and shown["FEATURE_FLAG"] == "PPCIE (2)"
    assert shown["PROTECTED_PCIE_STATUS"] == "0xaa" and shown["DRIVER_VERSION"] == "590.12"


def run_cli(*args: str):
    return CliRunner().invoke(main, ["gpu", *args])


def _write_real_current(tmp_path: Path) -> list[str]:
    report, chain, nonce = real_current()
    (tmp_path / "report.bin").write_bytes(report)
    (tmp_path / "chain.pem").write_bytes(chain)
    return [str(tmp_path / "report.bin"), "--chain", str(tmp_path / "chain.pem"),
            "--nonce", nonce.hex(), "--at", "2026-11-23T00:00:00Z", "--offline"]


def test_cli_reports_the_real_current_report(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_toml(top={"waive": ["gpu.ocsp", "gpu.rim.fetch"]},
                                  extra='[gpu]\nrequire_cc_mode = false\n'
                                  'require_all_attached = false\nfeature_modes = ["PPCIE"]\n'))
    result = run_cli(*_write_real_current(tmp_path), "--policy", str(policy), "--verbose")
    assert result.exit_code == 0, result.output
    assert "4274 bytes, 64 measurement blocks, 0 trailing" in result.output
    assert "OPAQUE_DATA_VERSION      1" in result.output
    assert "FEATURE_FLAG             PPCIE (2)" in result.output
    assert "FEATURE_FLAG PPCIE" in result.output  # in the gpu.report.format step too
    assert "verdict: accepted" in result.output
    assert result.stdout.splitlines()[-1] == f"OK: {tmp_path / 'report.bin'}"


def test_cli_refusal_still_shows_the_report(tmp_path: Path) -> None:
    """Offline with no OCSP answers: unreachable (exit 3), and the report is still shown."""
    result = run_cli(*_write_real_current(tmp_path), "--verbose")
    assert result.exit_code == 3, result.output
    assert "gpu.ocsp.fetch" in result.output
    assert result.stdout.splitlines()[-1].startswith(
        f"FAIL: {tmp_path / 'report.bin'}: gpu.ocsp.fetch: no OCSP answer")
    assert "64 measurement blocks" in result.output and "? measurement" not in result.output
    assert "FEATURE_FLAG             PPCIE (2)" in result.output


# --- a report built at run time: the new fields, re-signed with the simulator's device key ---

SIM = SimulatedGpu(chip_info="GB100")
RIM_PKI = make_rim_pki()
TRUST = GpuTrust(
    (pinned_root("sim", SIM.device_pki.root_pem(), fingerprint(SIM.device_pki.root).hex()),),
    (pinned_root("simrim", RIM_PKI.root_pem(), fingerprint(RIM_PKI.root).hex()),))
WAIVE_OCSP = GpuPolicy(require_all_attached=False)
OCSP_WAIVED = frozenset({"gpu.ocsp"})  # the simulated GPU staples no OCSP answer


def current_report(gpu: SimulatedGpu = SIM) -> bytes:
    """OPAQUE_DATA_VERSION, CHIP_INFO, FEATURE_FLAG and an unknown id, signed by the GPU."""
    opaque = OpaqueData((*gpu.opaque().fields, OpaqueField(UNKNOWN_ID, b"\x01\x02\x03")))
    return gpu.report(NONCE, opaque=opaque)


def signed_rims(gpu: SimulatedGpu = SIM, *, bad_vbios_index: int | None = None
                ) -> tuple[bytes, bytes]:
    driver, vbios = gpu.rims()
    if bad_vbios_index is not None:
        vbios = dataclasses.replace(vbios, measurements=tuple(
            dataclasses.replace(m, alternatives=(b"\xee" * 48,))
            if m.index == bad_vbios_index else m for m in vbios.measurements))
    return sign_rim(driver, RIM_PKI), sign_rim(vbios, RIM_PKI)


def evidence(report: bytes, *, rims: tuple[bytes, ...] = (),
             source: RimSource | None = None) -> GpuEvidenceResult:
    return verify_gpu_evidence(
        report, SIM.chain_pem(), nonce=NONCE, trust=TRUST, at=AT,
        transcript=Transcript(waive=OCSP_WAIVED), rims=rims or signed_rims(),
        rim_source=source, cc_mode="on")


def test_simulator_emits_the_fields_of_current_firmware() -> None:
    opaque = SimulatedGpu().opaque()
    assert opaque.get(OpaqueType.OPAQUE_DATA_VERSION) == b"\x01\x00"
    assert opaque.get(OpaqueType.FEATURE_FLAG) == b"\x00\x00"  # SPT
    assert opaque.chip_info is None  # a Hopper, as NVIDIA's verifier assumes


def test_report_with_the_new_fields_verifies_and_is_reported() -> None:
    policy = dataclasses.replace(WAIVE_OCSP, feature_modes=("SPT",), chip_infos=("GB100",))
    collector = FailureCollector()
    result = evidence(current_report())
    policy.check([result.facts], attached=1, collector=collector)
    assert collector.failures == []
    facts = result.facts
    assert (facts.feature_mode, facts.chip_info, facts.opaque_data_version) == ("SPT", "GB100", 1)
    shown = result.report.opaque.summary()
    assert shown["CHIP_INFO"] == "GB100" and shown["FEATURE_FLAG"] == "SPT (0)"
    assert shown[f"UNKNOWN_{UNKNOWN_ID}"] == "010203"


def _only(policy: GpuPolicy, gpu: SimulatedGpu, check: str) -> PolicyError:
    result = evidence(current_report(gpu))
    with pytest.raises(PolicyError) as err:
        policy.check([result.facts], attached=1)
    assert {f.check for f in err.value.failures} == {check}
    return err.value


def test_feature_mode_policy_refuses_a_mismatching_mode() -> None:
    mpt = dataclasses.replace(SIM, feature_flag=FeatureFlag.MPT)
    err = _only(dataclasses.replace(WAIVE_OCSP, feature_modes=("SPT",)), mpt,
                "gpu.policy.feature_mode")
    assert err.failures[0].got == "MPT" and err.failures[0].field == "GPU-0.FEATURE_FLAG"


def test_feature_mode_policy_refuses_a_report_without_the_flag() -> None:
    old = dataclasses.replace(SIM, feature_flag=None, opaque_data_version=None)
    err = _only(dataclasses.replace(WAIVE_OCSP, feature_modes=("SPT", "MPT")), old,
                "gpu.policy.feature_mode")
    assert err.failures[0].got == "(absent)"


def test_chip_info_policy_refuses_another_chip() -> None:
    other = dataclasses.replace(SIM, chip_info="GB102")
    _only(dataclasses.replace(WAIVE_OCSP, chip_infos=("GB100",)), other, "gpu.policy.chip_info")


def test_a_newer_opaque_layout_is_refused_by_default() -> None:
    newer = dataclasses.replace(SIM, opaque_data_version=2)
    err = _only(WAIVE_OCSP, newer, "gpu.policy.opaque_version")
    assert err.failures[0].got == 2


def test_gpus_mixing_spt_and_mpt_are_refused() -> None:
    spt = evidence(current_report()).facts
    mpt = dataclasses.replace(spt, name="GPU-1", feature_mode="MPT")
    with pytest.raises(PolicyError) as err:
        WAIVE_OCSP.check([spt, mpt], attached=2)
    assert {f.check for f in err.value.failures} == {"gpu.policy.feature_mode"}
    WAIVE_OCSP.check([spt, dataclasses.replace(spt, name="GPU-1")], attached=2)


@pytest.mark.parametrize("table, field", [
    ({"feature_modes": ["XPT"]}, "gpu.feature_modes"),
    ({"feature_modes": []}, "gpu.feature_modes"),
    ({"chip_infos": []}, "gpu.chip_infos"),
    ({"max_opaque_data_version": 2}, "gpu.max_opaque_data_version"),
])
def test_bad_new_policy_keys_are_trust_config_errors(table: dict, field: str) -> None:
    with pytest.raises(TrustConfigError) as err:
        GpuPolicy.from_table(StrictTable(table, "gpu"))
    assert err.value.check == "policy.schema" and err.value.field == field


def test_new_policy_keys_parse() -> None:
    p = GpuPolicy.from_table(StrictTable({"feature_modes": ["spt", "PPCIE"],
                                          "chip_infos": ["GB100"],
                                          "max_opaque_data_version": 1}, "gpu"))
    assert p.feature_modes == ("SPT", "PPCIE") and p.chip_infos == ("GB100",)


# --- every RIM problem at once --------------------------------------------------------------

def test_unavailable_driver_rim_and_mismatching_vbios_rim_are_one_refusal() -> None:
    _driver, bad_vbios = signed_rims(bad_vbios_index=3)
    collector = FailureCollector()
    offline = RimSource(fetch=None)
    result = evidence(current_report(), rims=(bad_vbios,), source=offline)
    WAIVE_OCSP.check([result.facts], attached=1, collector=collector)
    with pytest.raises(PolicyError) as err:
        collector.raise_if_any()
    by_check = {f.check: f for f in err.value.failures}
    assert {"gpu.rim.fetch", "gpu.rim.measurements", "gpu.policy.rims"} <= set(by_check)
    assert by_check["gpu.rim.fetch"].field == driver_rim_id(SIM.driver_version)
    mismatch = by_check["gpu.rim.measurements"]
    assert mismatch.field == "measurement[3]"
    assert mismatch.got == SIM.measurements[3] and mismatch.want == "ee" * 48


def test_unavailable_rims_alone_are_unreachable_naming_each() -> None:
    with pytest.raises(FetchError) as err:
        verify_gpu_evidence(current_report(), SIM.chain_pem(), nonce=NONCE, trust=TRUST, at=AT,
                            transcript=Transcript(waive=OCSP_WAIVED),
                            rim_source=RimSource(fetch=None))
    assert err.value.check == "gpu.rim.fetch" and err.value.exit_code == 3
    assert driver_rim_id(SIM.driver_version) in str(err.value)
    assert "NV_GPU_VBIOS_" in str(err.value)


def test_cli_offline_names_the_unavailable_rim_and_the_mismatch(tmp_path: Path) -> None:
    (tmp_path / "report.bin").write_bytes(current_report())
    (tmp_path / "chain.pem").write_bytes(SIM.chain_pem())
    (tmp_path / "vbios.xml").write_bytes(signed_rims(bad_vbios_index=3)[1])
    (tmp_path / "device_root.pem").write_bytes(SIM.device_pki.root_pem())
    (tmp_path / "rim_root.pem").write_bytes(RIM_PKI.root_pem())
    (tmp_path / "policy.toml").write_text(policy_toml(
        top={"waive": ["gpu.ocsp"]}, extra="[gpu]\nrequire_all_attached = false\n"))
    result = run_cli(str(tmp_path / "report.bin"), "--chain", str(tmp_path / "chain.pem"),
                     "--nonce", NONCE.hex(), "--rim", str(tmp_path / "vbios.xml"), "--offline",
                     "--at", AT.isoformat(), "--policy", str(tmp_path / "policy.toml"),
                     "--cc-mode", "on", "--json",
                     "--unsafe-device-root", str(tmp_path / "device_root.pem"),
                     "--unsafe-rim-root", str(tmp_path / "rim_root.pem"))
    assert result.exit_code == 5, result.output
    out = json.loads(result.stdout)
    checks = {f["check"] for f in out["error"]["failures"]}
    assert {"gpu.rim.fetch", "gpu.rim.measurements"} <= checks
    assert [m["rim_index"] for m in out["mismatches"]] == [3]


# --- bit flips of the new fields --------------------------------------------------------------

def _new_field_span(report: bytes) -> tuple[int, int]:
    """Bytes of the OPAQUE_DATA_VERSION .. last TLV (CHIP_INFO, FEATURE_FLAG, unknown)."""
    parsed = parse_report(report)
    opaque = parsed.response.opaque_data
    start = len(parsed.signed_bytes()) - len(opaque)
    off = 0
    for f in nvo.parse_opaque(opaque).fields:
        if f.type == OpaqueType.OPAQUE_DATA_VERSION:
            return start + off, start + len(opaque)
        off += len(f.to_bytes())
    raise AssertionError("no OPAQUE_DATA_VERSION")


def _malformed_or_forged(refusal: Refusal) -> bool:
    err = refusal.error
    if isinstance(err, FormatError):
        return err.check in ("gpu.report.format", "gpu.report.opaque")
    return isinstance(err, SignatureError) and err.check == "gpu.report.signature"


@pytest.mark.parametrize("which", ["simulated", "real"])
def test_every_bit_flip_of_the_new_fields_fails(which: str) -> None:
    if which == "real":
        report, chain_pem, nonce = real_current()
        roots = [device_identity_root()]
    else:
        report, chain_pem, nonce = current_report(), SIM.chain_pem(), NONCE
        roots = list(TRUST.device_roots)
    chain, cache = load_device_chain(chain_pem), ChainCache()

    def verify(data: bytes) -> object:
        return verify_gpu_report(data, chain, nonce=nonce, roots=roots, at=AT, cache=cache)

    verify(report)
    lo, hi = _new_field_span(report)
    assert hi - lo == (12 if which == "real" else 12 + 4 + 6 + 4 + 3)
    run = flip_every_bit(report, lo, hi, verify)
    assert len(run) == (hi - lo) * 8
    assert run.unexpected(_malformed_or_forged) == []
    assert run.kinds()[("SignatureError", "gpu.report.signature")] > len(run) // 2


def test_pipeline_offline_names_the_unavailable_rim_and_the_mismatch(tmp_path: Path) -> None:
    """The pipeline's GPU step: the driver RIM not stapled (and offline), the stapled VBIOS
    RIM mismatching at one index: one PolicyError names both, the index with got and want."""
    from tests.support.pipeline_support import make_world
    from verifier.pipeline_trust import VerifierCaches

    world = make_world(tmp_path, gpus=1)
    platform = world.fx.platform
    sim = platform.sim_gpus[0]
    b = world.fx.decoded
    gpu = b.gpu_evidence[0]
    _driver, vbios = sim.rims()
    vbios = dataclasses.replace(vbios, measurements=tuple(
        dataclasses.replace(m, alternatives=(b"\xee" * 48,)) if m.index == 3 else m
        for m in vbios.measurements))
    name = gpu.rims["vbios"]
    evidence_items = tuple(dataclasses.replace(g, rims={"vbios": name}) if g is gpu else g
                           for g in b.evidence)
    collateral = {n: v for n, v in b.collateral.items() if n != gpu.rims["driver"]}
    bundle = world.rebundle(evidence=evidence_items,
                            collateral={**collateral, name: sign_rim(vbios, platform.rim_pki)})
    result = world.verify(bundle, caches=VerifierCaches())
    assert isinstance(result.error, PolicyError), result.error
    by_check = {f.check: f for f in result.error.failures}
    assert {"gpu.rim.fetch", "gpu.rim.measurements"} <= set(by_check)
    assert by_check["gpu.rim.fetch"].field.startswith("NV_GPU_DRIVER_")
    mismatch = by_check["gpu.rim.measurements"]
    assert mismatch.field == "measurement[3]" and mismatch.want == "ee" * 48
    assert mismatch.got == sim.measurements[3]
