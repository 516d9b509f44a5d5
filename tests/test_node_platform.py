"""attest.platform (detection on fake trees), attest.simulate.platform, attest.bundle_builder
and attest.simulate.node_fixture: the evidence a simulated node makes verifies with the
verifier's own modules, and every fixture case fails the check it is made for."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509

import verifier.gpu.policy  # registers [gpu]
import verifier.snp.policy  # registers [snp]
import verifier.tdx.policy  # noqa: F401  (registers [tdx])
from attest.binding import gpu_nonce
from attest.bundle_builder import build_bundle, collect_evidence
from attest.formats.bundle import decode_bundle
from attest.formats.snp_report import parse_report
from attest.formats.tdx_quote import parse_quote
from attest.platform import CPU_SEV_SNP, CPU_TDX, detect_platform, launch_identity
from attest.simulate.gpu import FakeNvml, SimulatedGpu
from attest.simulate.node_fixture import CASES, make_node_fixture
from attest.simulate.platform import SIM_NOW, SimulatedPlatform, SimulatedTrust
from tests.support.hardware_fakes import NONCE, FakeTdxKernel, FakeTsm, fake_snp_ioctl, node_key
from transparency_log.client.checkpoint_store import CheckpointStore, StoredCheckpoint
from transparency_log.client.log_client import LogClient, directory_source
from transparency_log.common.errors import (
    AttestlogError,
    FetchError,
    FormatError,
    PolicyError,
    ProofError,
    SignatureError,
    VerificationError,
)
from transparency_log.core.key_types import Verifier
from verifier.binding_check import check_binding
from verifier.gpu.ocsp import check_chain_ocsp
from verifier.gpu.report_verify import DEVICE_CHAIN_ROLES, load_device_chain, verify_gpu_report
from verifier.log_checks import LogEvidence, verify_log
from verifier.policy import parse_policy
from verifier.revocations import RevocationMirror
from verifier.snp.roots import AmdProductRoots
from verifier.snp.verify import SnpCollateral, SnpVerifier
from verifier.x509chain import PinnedRoot, fingerprint, pinned_root


def _root(pem: bytes, name: str) -> PinnedRoot:
    cert = x509.load_pem_x509_certificate(pem)
    return pinned_root(name, pem, fingerprint(cert).hex())


# --------------------------------------------------------------------------- simulated platform


@pytest.mark.parametrize("cpu", [CPU_SEV_SNP, CPU_TDX])
def test_bundle_binds_and_round_trips(cpu: str) -> None:
    key = node_key()
    platform = SimulatedPlatform(cpu=cpu, gpus=2)
    bundle = build_bundle(platform, NONCE, key, b"release", b"proof", simulated=True)
    again = decode_bundle(bundle.encode())
    assert again == bundle and again.simulated
    assert [e.TYPE for e in again.evidence] == [cpu, "nvidia-gpu", "nvidia-gpu"]
    assert again.gpu_state.cc_mode == "on" and again.gpu_state.attached == 2
    cpu_item = again.cpu_evidence
    rd = (parse_report(cpu_item.report).report_data if cpu == CPU_SEV_SNP
          else parse_quote(cpu_item.quote).body.report_data)
    from attest.formats.spdm_measurements import parse_report as parse_spdm

    nonces = {g.index: parse_spdm(g.report).request.nonce for g in again.gpu_evidence}
    result = check_binding(again, report_data=rd, gpu_nonces=nonces)
    assert result is not None
    assert nonces == {0: gpu_nonce(NONCE, key, 0), 1: gpu_nonce(NONCE, key, 1)}


def test_snp_evidence_verifies_with_the_simulated_roots_only() -> None:
    platform = SimulatedPlatform(cpu=CPU_SEV_SNP, gpus=0)
    bundle = build_bundle(platform, NONCE, node_key(), b"r", b"p", simulated=True)
    trust = SimulatedTrust.from_json(platform.trust().to_json())
    ark = x509.load_pem_x509_certificate(trust.amd_ark)
    roots = {trust.amd_product: AmdProductRoots(
        trust.amd_product, PinnedRoot("ARK (simulated)", ark),
        x509.load_pem_x509_certificate(trust.amd_ask),
        x509.load_pem_x509_certificate(trust.amd_asvk), simulated=True)}
    item = bundle.cpu_evidence
    collateral = SnpCollateral(vcek=item.certs["vcek"], ask=item.certs["ask"],
                               ark=item.certs["ark"],
                               crl=bundle.collateral[item.collateral["crl"]])
    SnpVerifier(roots).verify(item.report, at=SIM_NOW, collateral=collateral)
    with pytest.raises(AttestlogError):
        SnpVerifier.production().verify(item.report, at=SIM_NOW, collateral=collateral)


def test_forged_snp_report_fails_the_signature() -> None:
    platform = SimulatedPlatform(cpu=CPU_SEV_SNP, gpus=0, forge="cpu")
    bundle = build_bundle(platform, NONCE, node_key(), b"r", b"p", simulated=True)
    t = platform.trust()
    roots = {t.amd_product: AmdProductRoots(
        t.amd_product, PinnedRoot("ARK", x509.load_pem_x509_certificate(t.amd_ark)),
        x509.load_pem_x509_certificate(t.amd_ask), None, simulated=True)}
    item = bundle.cpu_evidence
    col = SnpCollateral(vcek=item.certs["vcek"], ask=item.certs["ask"], ark=item.certs["ark"],
                        crl=bundle.collateral[item.collateral["crl"]])
    with pytest.raises(SignatureError) as err:
        SnpVerifier(roots).verify(item.report, at=SIM_NOW, collateral=col)
    assert err.value.check == "snp.report.signature"


def test_gpu_evidence_verifies_with_stapled_ocsp() -> None:
    platform = SimulatedPlatform(cpu=CPU_TDX, gpus=2)
    key = node_key()
    bundle = build_bundle(platform, NONCE, key, b"r", b"p", simulated=True)
    trust = platform.trust()
    root = _root(trust.nvidia_device_root, "sim device root")
    for item in bundle.gpu_evidence:
        report = verify_gpu_report(item.report, load_device_chain(item.cert_chain),
                                   nonce=gpu_nonce(NONCE, key, item.index), roots=(root,),
                                   at=SIM_NOW)
        chain = report.chain.certificates
        stapled = {}
        for name in item.ocsp:
            stapled[bytes.fromhex(name.rsplit("/", 1)[1])] = bundle.collateral[name]
        statuses = check_chain_ocsp(chain, roles=DEVICE_CHAIN_ROLES, at=SIM_NOW, fetch=None,
                                    stapled=stapled)
        assert len(statuses) == len(chain) - 1
        assert set(item.rims) == {"driver", "vbios"}


def test_platform_knobs() -> None:
    key = node_key()
    snp = SimulatedPlatform(cpu=CPU_SEV_SNP, gpus=0, debug=True, tcb_below_minimum=True)
    rep = parse_report(build_bundle(snp, NONCE, key, b"r", b"p", simulated=True)
                       .cpu_evidence.report)
    assert (rep.policy >> 19) & 1 and rep.reported_tcb != snp.amd.default_tcb()
    tdx = SimulatedPlatform(cpu=CPU_TDX, gpus=0, debug=True)
    body = parse_quote(build_bundle(tdx, NONCE, key, b"r", b"p", simulated=True)
                       .cpu_evidence.quote).body
    assert body.td_attributes[0] & 1
    missing = build_bundle(SimulatedPlatform(gpus=2, missing_gpu=True), NONCE, key, b"r",
                           b"p", simulated=True)
    assert missing.gpu_state.attached == 2 and len(missing.gpu_evidence) == 1
    claimed = build_bundle(SimulatedPlatform(gpus=1, claim_cc_mode="off"), NONCE, key, b"r",
                           b"p", simulated=True)
    assert claimed.gpu_state.cc_mode == "off"
    with pytest.raises(FetchError) as err:
        collect_evidence(SimulatedPlatform(gpus=1, cc_mode="off"), NONCE, key)
    assert err.value.check == "gpu.collect.cc_mode"
    with pytest.raises(FetchError):
        collect_evidence(SimulatedPlatform(gpus=0, fail_collect=True), NONCE, key)


def test_simulated_platform_never_makes_an_unlabelled_bundle() -> None:
    with pytest.raises(ValueError, match="simulated"):
        build_bundle(SimulatedPlatform(gpus=0), NONCE, node_key(), b"r", b"p",
                     simulated=False)


def test_launch_identity_reads_the_measurements() -> None:
    for cpu in (CPU_SEV_SNP, CPU_TDX):
        p = SimulatedPlatform(cpu=cpu, gpus=0)
        got = collect_evidence(p, NONCE, node_key())
        ident = launch_identity(got.cpu)
        if cpu == CPU_SEV_SNP:
            assert ident.measurement == p.measurements["measurement"]
        else:
            assert (ident.mrtd, ident.rtmr2) == (p.measurements["mrtd"], p.measurements["rtmr2"])


def test_trust_document_is_strict() -> None:
    with pytest.raises(FormatError):
        SimulatedTrust.from_json(b'{"simulated": false}')
    with pytest.raises(FormatError):
        SimulatedTrust.from_json(b"not json")


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize(("provider", "cpu"), [("sev_guest", CPU_SEV_SNP),
                                               ("tdx_guest", CPU_TDX)])
def test_detect_configfs_tsm_provider(tmp_path: Path, provider: str, cpu: str) -> None:
    root = tmp_path / "tsm"
    root.mkdir()
    fs = FakeTsm(provider)
    p = detect_platform(tsm_root=root, sev_device=tmp_path / "no-sev",
                        tdx_device=tmp_path / "no-tdx", tsm_fs=fs, nvml=False)
    assert p.cpu == cpu and p.nvml is None and not p.simulated
    assert fs.made and not any(root.iterdir())  # the probe entry was removed


def test_detect_devices_and_gpus(tmp_path: Path) -> None:
    (tmp_path / "sev-guest").write_bytes(b"")
    (tmp_path / "tdx_guest").write_bytes(b"")
    nvml = FakeNvml(gpus=[SimulatedGpu()])
    p = detect_platform(tsm_root=tmp_path / "none", sev_device=tmp_path / "sev-guest",
                        tdx_device=tmp_path / "x", nvml=nvml)
    assert p.cpu == CPU_SEV_SNP and p.nvml is nvml
    p = detect_platform(tsm_root=tmp_path / "none", sev_device=tmp_path / "x",
                        tdx_device=tmp_path / "tdx_guest", nvml=FakeNvml())
    assert p.cpu == CPU_TDX and p.nvml is None  # NVML with no GPU: none


def test_detect_nothing(tmp_path: Path) -> None:
    with pytest.raises(FetchError) as err:
        detect_platform(tsm_root=tmp_path / "a", sev_device=tmp_path / "b",
                        tdx_device=tmp_path / "c", nvml=False)
    assert err.value.check == "platform.detect"
    root = tmp_path / "tsm"
    root.mkdir()
    with pytest.raises(FetchError, match="provider"):
        detect_platform(tsm_root=root, tsm_fs=FakeTsm("arm_cca_guest"), nvml=False)


def test_hardware_platform_collects_gpus_through_nvml(tmp_path: Path) -> None:
    (tmp_path / "sev-guest").write_bytes(b"")
    p = detect_platform(tsm_root=tmp_path / "none", sev_device=tmp_path / "sev-guest",
                        tdx_device=tmp_path / "x", nvml=FakeNvml(gpus=[SimulatedGpu()]))
    got = p.collect_gpus(lambda i: hashlib.sha256(b"n%d" % i).digest())
    assert got.state.cc_mode == "on" and len(got.items) == 1
    assert got.items[0].report[4:36] == hashlib.sha256(b"n0").digest()
    with pytest.raises(FetchError):  # the fake device file is no SNP device
        p.collect_cpu(bytes(64))


# --------------------------------------------------------------------------- node fixture


def _verify_log(f, tmp_path: Path, *, store: CheckpointStore | None = None):
    policy = parse_policy(f.policy_toml.encode())
    client = LogClient(directory_source(f.tiles_dir), Verifier(f.log_vkey))
    mirror = RevocationMirror(tmp_path / "mirror", policy.log.origin, policy.release)
    cp = client.checkpoint()
    size = cp.checkpoint.size
    mirror.sync(cp.checkpoint, lambda a, b: [e for _, e in client.entries(a, b, size)])
    return verify_log(LogEvidence.from_tlog_proof(f.release_entry, f.tlog_proof), policy,
                      f.now, revocations=mirror, store=store)


@pytest.mark.parametrize("case", CASES)
def test_node_fixture_cases(tmp_path: Path, case: str) -> None:
    f = make_node_fixture(tmp_path / case, case=case)
    assert decode_bundle(f.bundle).simulated
    paths = f.write()
    assert paths["policy"].read_text().startswith("# Client policy for a SIMULATED")
    want = {"ok": None, "unlogged": "log.inclusion", "revoked": "release.revoked",
            "no_quorum": "log.witness.quorum", "stale_checkpoint": "log.checkpoint.age",
            "forked_log": "log.consistency"}[case]
    store = None
    if case == "forked_log":
        store = CheckpointStore(tmp_path / "state")
        assert f.previous_checkpoint is not None
        store.update(f.previous_checkpoint, StoredCheckpoint.from_note(
            f.previous_checkpoint).checkpoint)
    if want is None:
        _verify_log(f, tmp_path)
        return
    with pytest.raises((PolicyError, ProofError, VerificationError)) as err:
        _verify_log(f, tmp_path, store=store)
    got = err.value
    checks = ({x.check for x in got.failures} if isinstance(got, PolicyError) else {got.check})
    assert want in checks, got


def test_node_fixture_tdx_with_platform_knobs(tmp_path: Path) -> None:
    f = make_node_fixture(tmp_path, cpu=CPU_TDX, gpus=2,
                          platform_options={"missing_gpu": True})
    b = decode_bundle(f.bundle)
    assert b.gpu_state.attached == 2 and len(b.gpu_evidence) == 1


# --------------------------------------------------------------------------- hardware path
# The real HardwarePlatform against fake devices: SNP via a fake SNP_GET_EXT_REPORT ioctl,
# TDX via a fake configfs-tsm kernel, GPUs via a fake NVML; the bundle binds and decodes.


def _check_bound(bundle) -> None:
    from attest.formats.spdm_measurements import parse_report as parse_spdm

    cpu = bundle.cpu_evidence
    rd = (parse_report(cpu.report).report_data if cpu.TYPE == CPU_SEV_SNP
          else parse_quote(cpu.quote).body.report_data)
    nonces = {g.index: parse_spdm(g.report).request.nonce for g in bundle.gpu_evidence}
    check_binding(bundle, report_data=rd, gpu_nonces=nonces)


def test_hardware_snp_platform_builds_a_bound_bundle(tmp_path: Path) -> None:
    from attest.simulate.snp import SimulatedAmd

    amd = SimulatedAmd.create("Milan")
    (tmp_path / "sev-guest").write_bytes(b"")
    platform = detect_platform(tsm_root=tmp_path / "none", sev_device=tmp_path / "sev-guest",
                               tdx_device=tmp_path / "x", snp_ioctl=fake_snp_ioctl(amd),
                               nvml=FakeNvml(gpus=[SimulatedGpu(), SimulatedGpu(seed=b"g1")]))
    bundle = build_bundle(platform, NONCE, node_key(), b"r", b"p", simulated=False)
    assert not decode_bundle(bundle.encode()).simulated
    assert sorted(bundle.cpu_evidence.certs) == ["ark", "ask", "vcek"]
    assert len(bundle.gpu_evidence) == 2 and bundle.gpu_state.attached == 2
    _check_bound(bundle)


def test_hardware_tdx_platform_builds_a_bound_bundle(tmp_path: Path) -> None:
    root = tmp_path / "tsm"
    root.mkdir()
    kernel = FakeTdxKernel()
    platform = detect_platform(tsm_root=root, sev_device=tmp_path / "x",
                               tdx_device=tmp_path / "y", tsm_fs=kernel, nvml=False)
    bundle = build_bundle(platform, NONCE, node_key(), b"r", b"p", simulated=False)
    assert bundle.cpu_evidence.TYPE == CPU_TDX and bundle.gpu_state.cc_mode == "absent"
    _check_bound(bundle)
    assert not any(root.iterdir())  # every configfs entry was removed


def test_hardware_platform_collateral_hook(tmp_path: Path) -> None:
    root = tmp_path / "tsm"
    root.mkdir()

    def staple(item):
        return replace(item, collateral={"tcb_info": "intel/tcb_info"}), {
            "intel/tcb_info": b"{}"}

    platform = detect_platform(tsm_root=root, tsm_fs=FakeTdxKernel(), nvml=False,
                               collateral=staple)
    bundle = build_bundle(platform, NONCE, node_key(), b"r", b"p", simulated=False)
    assert bundle.collateral == {"intel/tcb_info": b"{}"}
