"""RIMs: XML-DSig + chain to the pinned RIM root, version and measurement comparison."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from attest.formats.nvidia_rim import RimMeasurement
from attest.formats.spdm_measurements import parse_report_text
from attest.simulate.gpu import RIM_ROLES, SimulatedGpu, make_chain, make_rim_pki, sign_rim
from tests.support.vectors import vector_path
from transparency_log.common.errors import (
    ChainError,
    FormatError,
    PolicyError,
    SignatureError,
    VerificationError,
)
from verifier.gpu.report_verify import load_device_chain, verify_gpu_report
from verifier.gpu.rim_verify import (
    RimCache,
    check_rims,
    compare_measurements,
    golden_measurements,
    verify_rim,
)
from verifier.gpu.roots import device_identity_root, rim_root
from verifier.policy_base import FailureCollector
from verifier.x509chain import fingerprint, pinned_root

NONCE = bytes.fromhex("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb")
INSIDE = datetime(2025, 1, 1, tzinfo=UTC)  # inside every bundled RIM signer's validity
NOW = datetime(2026, 11, 23, tzinfo=UTC)


def rim_bytes(name: str) -> bytes:
    return vector_path("nvidia", "nvtrust", name).read_bytes()


def real_verified_report():
    data = parse_report_text(vector_path("nvidia", "nvtrust", "hopperAttestationReport.txt")
                             .read_bytes())
    chain = load_device_chain(vector_path("nvidia", "nvtrust", "hopperCertChain.txt").read_bytes())
    return verify_gpu_report(data, chain, nonce=NONCE, roots=[device_identity_root()], at=INSIDE)


@pytest.mark.parametrize("name, kind, version", [
    ("Driver_RIM_test_no_gpu.swidtag", "driver", "545.00"),
    ("1010_0200_882_96005E0001_test_no_gpu.swidtag", "vbios", "96.00.5E.00.01"),
    ("1010_0200_882_96005E0001_PROD.swidtag", "vbios", "96.00.5E.00.01"),
])
def test_bundled_rims_verify_inside_their_validity(name, kind, version) -> None:
    verified = verify_rim(rim_bytes(name), kind=kind, roots=[rim_root()], at=INSIDE)
    assert verified.rim.version == version
    assert verified.signer.subject.rfc4514_string().startswith("CN=HCC RIM L4 Signer")


def test_bundled_rims_fail_the_chain_today() -> None:
    with pytest.raises(ChainError) as err:
        verify_rim(rim_bytes("Driver_RIM_test_no_gpu.swidtag"), kind="driver",
                   roots=[rim_root()], at=NOW)
    assert err.value.check == "gpu.rim.chain" and "expired" in err.value.message


def test_real_report_against_bundled_rims_names_each_mismatching_index() -> None:
    report = real_verified_report()
    driver = verify_rim(rim_bytes("Driver_RIM_test_no_gpu.swidtag"), kind="driver",
                        roots=[rim_root()], at=INSIDE)
    vbios = verify_rim(rim_bytes("1010_0200_882_96005E0001_test_no_gpu.swidtag"),
                       kind="vbios", roots=[rim_root()], at=INSIDE)
    collector = FailureCollector()
    mismatches = check_rims(driver_version=report.driver_version,
                            vbios_version=report.vbios_version,
                            measurements=report.measurements,
                            nvdec0_disabled=report.opaque.nvdec0_disabled,
                            driver=driver, vbios=vbios, collector=collector)
    # MANIFEST: versions differ and 20 active indexes mismatch (35 matches an alternative).
    assert [m.rim_index for m in mismatches] == [1, 2, 3, 7, 9, 11, 21, 22, 25, 26, 27, 29, 30,
                                                 31, 32, 34, 36, 37, 39, 40]
    checks = [f.check for f in collector.failures]
    assert checks.count("gpu.rim.driver") == 1 and checks.count("gpu.rim.vbios") == 1
    assert checks.count("gpu.rim.measurements") == 20
    first = next(f for f in collector.failures if f.check == "gpu.rim.measurements")
    assert first.field == "measurement[1]"
    assert first.got == report.measurements[2]
    with pytest.raises(PolicyError) as err:
        collector.raise_if_any()
    assert len(err.value.failures) == 22


def test_flipped_hash_in_a_real_rim_breaks_the_signature() -> None:
    data = rim_bytes("Driver_RIM_test_no_gpu.swidtag")
    bad = data.replace(b'Hash0="0e0ee161', b'Hash0="1e0ee161', 1)
    assert bad != data
    with pytest.raises(SignatureError) as err:
        verify_rim(bad, kind="driver", roots=[rim_root()], at=INSIDE)
    assert err.value.check == "gpu.rim.signature"


# --- simulated RIMs: one check at a time -------------------------------------------------

GPU = SimulatedGpu()
RIM_PKI = make_rim_pki()
SIM_RIM_ROOT = pinned_root("sim rim root", RIM_PKI.root_pem(), fingerprint(RIM_PKI.root).hex())
DRIVER, VBIOS = GPU.rims()


def sim_report():
    root = pinned_root("sim", GPU.device_pki.root_pem(), fingerprint(GPU.device_pki.root).hex())
    return verify_gpu_report(GPU.report(NONCE), load_device_chain(GPU.chain_pem()), nonce=NONCE,
                             roots=[root], at=NOW)


def run_check(driver_rim=DRIVER, vbios_rim=VBIOS, report=None):
    report = report or sim_report()
    driver = verify_rim(sign_rim(driver_rim, RIM_PKI), kind="driver", roots=[SIM_RIM_ROOT],
                        at=NOW)
    vbios = verify_rim(sign_rim(vbios_rim, RIM_PKI), kind="vbios", roots=[SIM_RIM_ROOT], at=NOW)
    collector = FailureCollector()
    mism = check_rims(driver_version=report.driver_version, vbios_version=report.vbios_version,
                      measurements=report.measurements,
                      nvdec0_disabled=report.opaque.nvdec0_disabled,
                      driver=driver, vbios=vbios, collector=collector)
    return mism, collector.failures


def test_matching_simulated_rims_pass() -> None:
    assert run_check() == ([], [])


def test_real_rim_root_does_not_accept_simulated_rims() -> None:
    with pytest.raises(ChainError):
        verify_rim(sign_rim(DRIVER, RIM_PKI), kind="driver", roots=[rim_root()], at=NOW)


def test_look_alike_rim_chain_fails_only_the_chain() -> None:
    fake = make_chain(b"attacker-rim", RIM_ROLES)
    with pytest.raises(ChainError) as err:
        verify_rim(sign_rim(DRIVER, fake), kind="driver", roots=[SIM_RIM_ROOT], at=NOW)
    assert err.value.check == "gpu.rim.chain"


def test_tampered_signed_rim_fails_only_the_signature() -> None:
    signed = sign_rim(DRIVER, RIM_PKI)
    value = DRIVER.measurements[20].alternatives[0].hex().encode()
    bad = signed.replace(value, b"00" + value[2:], 1)
    assert bad != signed
    with pytest.raises(SignatureError) as err:
        verify_rim(bad, kind="driver", roots=[SIM_RIM_ROOT], at=NOW)
    assert err.value.check == "gpu.rim.signature"


def test_unsigned_rim_is_refused() -> None:
    from attest.formats.nvidia_rim import rim_to_xml
    with pytest.raises(FormatError):
        verify_rim(rim_to_xml(DRIVER), kind="driver", roots=[SIM_RIM_ROOT], at=NOW)


def test_version_mismatch_fails_only_the_version_check() -> None:
    mism, failures = run_check(driver_rim=dataclasses.replace(DRIVER, version="535.00"))
    assert mism == [] and [f.check for f in failures] == ["gpu.rim.driver"]
    mism, failures = run_check(vbios_rim=dataclasses.replace(VBIOS, version="96.00.00.00.01"))
    assert [f.check for f in failures] == ["gpu.rim.vbios"]


def _with(rim, index, **changes):
    ms = tuple(dataclasses.replace(m, **changes) if m.index == index else m
               for m in rim.measurements)
    return dataclasses.replace(rim, measurements=ms)


def test_measurement_mismatch_names_the_index_with_got_and_want() -> None:
    mism, failures = run_check(driver_rim=_with(DRIVER, 20, alternatives=(bytes(48),)))
    assert [m.rim_index for m in mism] == [20]
    assert [(f.check, f.field) for f in failures] == [("gpu.rim.measurements", "measurement[20]")]
    assert failures[0].got == GPU.measurements[20] and failures[0].want == "00" * 48


def test_any_alternative_may_match() -> None:
    alt = (bytes(48), GPU.measurements[20])
    assert run_check(driver_rim=_with(DRIVER, 20, alternatives=alt)) == ([], [])


def test_nvdec0_disabled_skips_index_35_only_when_disabled() -> None:
    bad = _with(DRIVER, 35, alternatives=(bytes(48),))
    assert run_check(driver_rim=bad) == ([], [])  # the simulated GPU reports NVDEC0 0x55
    enabled = SimulatedGpu(nvdec0_status=0)
    root = pinned_root("sim", enabled.device_pki.root_pem(),
                       fingerprint(enabled.device_pki.root).hex())
    report = verify_gpu_report(enabled.report(NONCE), load_device_chain(enabled.chain_pem()),
                               nonce=NONCE, roots=[root], at=NOW)
    mism, _ = run_check(driver_rim=bad, report=report)
    assert [m.rim_index for m in mism] == [35]


def test_inactive_indexes_are_not_compared() -> None:
    assert run_check(driver_rim=_with(DRIVER, 50, alternatives=(bytes(48),))) == ([], [])


def test_index_claimed_by_both_rims_is_a_conflict() -> None:
    with pytest.raises(VerificationError) as err:
        run_check(vbios_rim=_with(VBIOS, 20, active=True))
    assert err.value.check == "gpu.rim.conflict"


def test_missing_block_is_a_mismatch() -> None:
    golden = golden_measurements(None, None)
    assert golden == {}
    rim = dataclasses.replace(DRIVER, measurements=(
        RimMeasurement(index=99, active=True, alternatives=(bytes(48),), name="x"),))

    class V:  # a stand-in for VerifiedRim in the pure comparison
        kind = "driver"

    V.rim = rim
    V.active = rim.active()  # VerifiedRim computes it once per verified RIM
    mism = compare_measurements({}, golden_measurements(V, None), nvdec0_disabled=False)
    assert mism[0].got is None and mism[0].spdm_index == 100


def test_rim_cache_reuses_verified_rims() -> None:
    cache = RimCache()
    signed = sign_rim(DRIVER, RIM_PKI)
    a = verify_rim(signed, kind="driver", roots=[SIM_RIM_ROOT], at=NOW, cache=cache)
    b = verify_rim(signed, kind="driver", roots=[SIM_RIM_ROOT], at=NOW, cache=cache)
    assert a is b
