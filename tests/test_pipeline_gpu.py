"""verifier.pipeline and the GPU items of a bundle: one device presented twice, reordered,
distinct devices; unstapled GPU collateral offline and online; malformed certificate fields;
an exception escaping a stage is a bug, not a verdict. (Split from test_pipeline.py.)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from attest.binding import report_data
from attest.formats.bundle import EvidenceBundle, GpuEvidence, decode_bundle
from tests.support.pipeline_support import (
    World,
    assert_refused,
    failed_checks,
    make_world,
)
from transparency_log.common.errors import (
    FormatError,
    VerificationError,
)
from verifier.result import ACCEPTED, REFUSED
from verifier.transcript import PASS

OTHER_KEY = bytes.fromhex("302a300506032b6570032100") + bytes(range(0x40, 0x60))


@pytest.fixture(scope="module")
def snp_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("snp"))


def rebound(world: World, gpu_items: tuple[GpuEvidence, ...]) -> EvidenceBundle:
    """The world's bundle with ``gpu_items`` in place of its GPUs and a genuine CPU report
    made over the REPORT_DATA of the result (the strongest attacker: every check before the
    one under test sees genuine, bound evidence); collateral no item names is dropped."""
    fx = world.fx
    bundle = decode_bundle(fx.bundle)
    rd = report_data(fx.nonce, fx.node_key, bundle.gpu_state, gpu_items,
                     ohttp_keys=bundle.ohttp_keys)
    evidence = (fx.platform.collect_cpu(rd).item, *gpu_items)
    used = {name for item in evidence for _, name in item.references()}
    return dataclasses.replace(bundle, evidence=evidence, collateral={
        name: blob for name, blob in bundle.collateral.items() if name in used})


def test_one_gpu_item_presented_as_gpu_0_and_gpu_1(snp_world: World) -> None:
    """GPU 0's genuine report and chain, copied as GPU 1: two GPUs counted, one device."""
    gpu0 = decode_bundle(snp_world.fx.bundle).gpu_evidence[0]
    result = snp_world.verify(rebound(snp_world, (gpu0, dataclasses.replace(gpu0, index=1))))
    assert_refused(result, "gpu.device.distinct", VerificationError)
    assert failed_checks(result) == {"gpu.device.distinct"}
    assert result.error is not None and result.error.exit_code == 2
    assert result.error.field == "GPU-1 GSP BROM subjectPublicKeyInfo (DeviceID key)"
    assert "same device as GPU 0" in str(result.error)


def test_one_device_asked_once_per_index(tmp_path: Path) -> None:
    """A host shows one GPU at both NVML indexes: the agent asks it twice, each time for the
    right index's nonce, so both reports are genuine and bound; only the device check can
    tell."""
    world = make_world(tmp_path, gpus=2, platform_options={"duplicate_gpu": True})
    result = world.verify()
    assert_refused(result, "gpu.device.distinct", VerificationError)
    assert failed_checks(result) == {"gpu.device.distinct"}
    steps = {s.check for s in result.transcript.steps}
    assert "binding.report_data" not in steps  # authenticity stops before the binding


def test_two_gpus_swapped_in_order_are_refused_by_the_binding(snp_world: World) -> None:
    """GPU 0's and GPU 1's evidence exchanged between the indexes (and REPORT_DATA made over
    the exchanged items): each report signed the nonce of its own index."""
    gpu0, gpu1 = decode_bundle(snp_world.fx.bundle).gpu_evidence
    swapped = (dataclasses.replace(gpu1, index=0), dataclasses.replace(gpu0, index=1))
    result = snp_world.verify(rebound(snp_world, swapped))
    assert_refused(result, "binding.gpu_nonce", VerificationError)
    assert failed_checks(result) == {"binding.gpu_nonce"}
    steps = {s.check: s.result for s in result.transcript.steps}
    assert steps["gpu.device.distinct"] == PASS and steps["binding.report_data"] == PASS
    assert result.error is not None and result.error.field == "evidence[1].report nonce"


def test_distinct_gpus_pass_the_device_check(snp_world: World) -> None:
    result = snp_world.verify()
    step = next(s for s in result.transcript.steps if s.check == "gpu.device.distinct")
    assert step.result == PASS and "2 distinct device(s)" in step.detail


# --------------------------------------------------------------------------------------------
# Refused: step 3, binding


def test_unstapled_gpu_collateral_offline_and_online(snp_world: World) -> None:
    from attest.collateral.rim_fetch import NVIDIA_RIM_SERVICE
    from attest.simulate.fake_service import serve
    from transparency_log.common.errors import FetchError
    from transparency_log.common.http_fetch import FetchResponse, HttpFetcher
    from verifier.gpu.ocsp import NVIDIA_OCSP_URL
    from verifier.pipeline_trust import VerifierCaches

    b = snp_world.fx.decoded
    cpu = b.evidence[0]
    bare = snp_world.rebundle(
        evidence=(cpu, *(dataclasses.replace(g, rims={}, ocsp=()) for g in b.gpu_evidence)),
        collateral={n: b.collateral[n] for _, n in cpu.references()})
    offline = snp_world.verify(bare, caches=VerifierCaches())
    # Both RIMs unavailable and nothing else wrong: unreachable (exit 3), naming both RIMs.
    assert_refused(offline, "gpu.rim.fetch", FetchError)
    assert offline.error is not None and offline.error.exit_code == 3
    assert "NV_GPU_DRIVER_" in str(offline.error) and "NV_GPU_VBIOS_" in str(offline.error)

    with serve(snp_world.fx.platform.fake_nvidia_service()) as base:
        http = HttpFetcher(retries=0)
        urls: list[str] = []

        def fetch(url: str) -> FetchResponse:  # the vendor services, on 127.0.0.1
            urls.append(url)
            return http(url.replace(NVIDIA_RIM_SERVICE, base + "/v1/rim/")
                        .replace(NVIDIA_OCSP_URL, base))

        online = snp_world.verify(bare, caches=VerifierCaches(), fetch=fetch)
    assert online.verdict == ACCEPTED, online.error
    assert any(u.startswith(NVIDIA_RIM_SERVICE) for u in urls)
    assert any(u.startswith(NVIDIA_OCSP_URL) for u in urls)


def test_malformed_certificate_field_is_refused_not_a_crash(snp_world: World) -> None:
    """cryptography parses some certificate fields lazily and raises ValueError on access:
    the GPU stage reads them where it loads the chain and refuses a malformed one with its
    own check id (never a crash, never a generic catch-all)."""
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    gpu = snp_world.fx.decoded.gpu_evidence[0]
    chain = x509.load_pem_x509_certificates(gpu.cert_chain)
    der = chain[0].public_bytes(Encoding.DER)
    for i in range(len(der)):
        bad = bytearray(der)
        bad[i] ^= 0x02
        try:
            cert = x509.load_der_x509_certificate(bytes(bad))
        except ValueError:
            continue
        try:
            _ = cert.subject
        except ValueError:
            break
    else:  # the seeded fixture always has one under the pinned cryptography range
        pytest.fail("no lazily-failing certificate mutation found: cryptography now parses "
                    "eagerly; the generic path is still covered by the next test")
    pem = (b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(bytes(bad))
           + b"-----END CERTIFICATE-----\n")
    rest = b"".join(c.public_bytes(Encoding.PEM) for c in chain[1:])
    items = tuple(dataclasses.replace(g, cert_chain=pem + rest) if g is gpu else g
                  for g in snp_world.fx.decoded.evidence)
    result = snp_world.verify(snp_world.rebundle(evidence=items))
    assert result.verdict == REFUSED
    assert isinstance(result.error, FormatError | VerificationError)
    assert result.error.check in {"gpu.chain", "gpu.chain.format", "gpu.report.format"}


def test_an_exception_escaping_a_stage_is_a_bug_not_a_verdict(
        snp_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Library exceptions are caught where the vendor packages call the libraries; anything
    else that escapes a stage is a bug of ours: it propagates (the CLI exits 1, `verifier
    serve` answers 500; tests/test_bugs_are_not_verdicts.py), never a verdict."""
    import verifier.gpu.stage as gpu_stage

    def boom(*args: object, **kwargs: object) -> None:
        raise ValueError("a bug: an unexpected exception in our own code")

    monkeypatch.setattr(gpu_stage, "verify_gpu_evidence", boom)
    with pytest.raises(ValueError, match="a bug"):
        snp_world.verify()
