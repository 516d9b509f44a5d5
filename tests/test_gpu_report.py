"""Authenticity of GPU reports: the real H100 vector is the test of record; simulated GPUs make
one check fail at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise

import pytest

from attest.formats.nvidia_opaque import OpaqueField, OpaqueType
from attest.formats.spdm_measurements import REQUEST_SIZE, parse_report, parse_report_text
from attest.simulate.gpu import DEVICE_ROLES, SimulatedGpu, dice_tcbinfo, make_chain
from tests.support.bitflip_support import Refusal, flip_every_bit
from tests.support.vectors import vector_path
from transparency_log.common.errors import (
    ChainError,
    FormatError,
    SignatureError,
    VerificationError,
)
from verifier.gpu.report_verify import (
    ChainCache,
    leaf_fwid,
    load_device_chain,
    verify_gpu_report,
)
from verifier.gpu.roots import device_identity_root
from verifier.x509chain import fingerprint, pinned_root

NONCE = bytes.fromhex("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb")
FWID = bytes.fromhex("f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb"
                     "5cdfdb3055ee051762b1f75d")
AT = datetime(2026, 11, 23, tzinfo=UTC)


def real_report() -> bytes:
    return parse_report_text(vector_path("nvidia", "nvtrust", "hopperAttestationReport.txt")
                             .read_bytes())


def real_chain():
    return load_device_chain(vector_path("nvidia", "nvtrust", "hopperCertChain.txt").read_bytes())


def test_real_h100_report_verifies_at_the_known_nonce() -> None:
    v = verify_gpu_report(real_report(), real_chain(), nonce=NONCE,
                          roots=[device_identity_root()], at=AT)
    assert v.driver_version == "550.90.07"
    assert v.vbios_version == "96.00.9F.00.01"
    assert v.opaque.fwid == FWID == leaf_fwid(v.chain.certificates[0])
    assert v.chain.root.name == "NVIDIA Device Identity CA"
    assert len(v.chain.certificates) == 5
    assert v.steps[-1] == "gpu.report.nonce"
    assert len(v.measurements) == 64


def test_embedded_root_matches_the_vector() -> None:
    pem = vector_path("nvidia", "nvtrust", "verifier_device_root.pem").read_bytes()
    assert fingerprint(load_device_chain(pem)[0]) == device_identity_root().fingerprint
    assert real_chain()[-1].subject == device_identity_root().certificate.subject


def test_wrong_nonce_fails_the_binding() -> None:
    with pytest.raises(VerificationError) as err:
        verify_gpu_report(real_report(), real_chain(), nonce=bytes(32),
                          roots=[device_identity_root()], at=AT)
    assert err.value.check == "gpu.report.nonce"
    assert err.value.got == NONCE


# --- every single-bit flip of the real report, through verify_gpu_report --------------------

RESPONSE_HEADER_SIZE = 8  # SPDMVersion .. MeasurementRecordLength (DSP0274 1.1 table 45)
FORMAT_CHECKS = ("gpu.report.format", "gpu.report.opaque")


def _real_report_regions() -> dict[str, tuple[int, int]]:
    """Byte ranges of the real report: the signed part (request || response up to the
    signature) cut along its structure into test-sized pieces, then the signature itself."""
    report = parse_report(real_report())
    record = REQUEST_SIZE + RESPONSE_HEADER_SIZE
    half = record + sum(len(b.to_bytes()) for b in report.response.blocks[:32])
    nonce = record + sum(len(b.to_bytes()) for b in report.response.blocks)
    signed = len(report.signed_bytes())
    assert signed == nonce + 32 + 2 + len(report.response.opaque_data)
    return {
        "request and response header": (0, record),
        "measurement blocks 1-32": (record, half),
        "measurement blocks 33-64": (half, nonce),
        "responder nonce and opaque data": (nonce, signed),
        "signature": (signed, signed + 96),
    }


REGIONS = _real_report_regions()


def test_flip_regions_cover_the_whole_real_report() -> None:
    data = real_report()
    bounds = sorted(REGIONS.values())
    assert bounds[0][0] == 0 and bounds[-1][1] == len(data) == 4117
    assert all(a[1] == b[0] for a, b in pairwise(bounds))
    assert REGIONS["signature"][0] == len(parse_report(data).signed_bytes()) == 4021


def _malformed_or_forged(refusal: Refusal) -> bool:
    """Refused as malformed by the format step, or, having parsed, by the signature check
    (never by the chain, FWID or nonce steps, which run after the signature)."""
    err = refusal.error
    if isinstance(err, FormatError):
        return err.check in FORMAT_CHECKS
    return isinstance(err, SignatureError) and err.check == "gpu.report.signature"


@pytest.mark.parametrize("region", REGIONS)
def test_every_single_bit_flip_of_the_real_report_fails(region: str) -> None:
    """Exhaustive, one region per test: 32168 bits signed (request || response without the
    signature) + 768 bits of the signature, each flipped alone, each through the entry point
    (verify_gpu_report with a warm chain cache: the chain is walked once, the report is
    parsed and its signature verified on every call)."""
    data, chain, cache, roots = real_report(), real_chain(), ChainCache(), [device_identity_root()]

    def verify(report: bytes) -> object:
        return verify_gpu_report(report, chain, nonce=NONCE, roots=roots, at=AT, cache=cache)

    verify(data)  # the unflipped report verifies (and warms the chain cache)
    lo, hi = REGIONS[region]
    run = flip_every_bit(data, lo, hi, verify)
    assert len(run) == (hi - lo) * 8
    assert run.unexpected(_malformed_or_forged) == []
    assert run.kinds()[("SignatureError", "gpu.report.signature")] > len(run) // 2


def test_trailing_bytes_do_not_break_verification() -> None:
    v = verify_gpu_report(real_report() + b"\xaa" * 5, real_chain(), nonce=NONCE,
                          roots=[device_identity_root()], at=AT)
    assert v.report.trailing == b"\xaa" * 5


# --- one check at a time, with a simulated GPU -----------------------------------------------

GPU = SimulatedGpu()
SIM_ROOT = pinned_root("sim device root", GPU.device_pki.root_pem(),
                       fingerprint(GPU.device_pki.root).hex())


def sim_verify(report: bytes, chain_pem: bytes | None = None, nonce: bytes = NONCE, roots=None):
    return verify_gpu_report(report, load_device_chain(chain_pem or GPU.chain_pem()),
                             nonce=nonce, roots=roots or [SIM_ROOT], at=AT)


def test_simulated_report_verifies_and_round_trips() -> None:
    report = GPU.report(NONCE)
    v = sim_verify(report)
    assert v.report.to_bytes() == report
    assert v.driver_version == GPU.driver_version and v.opaque.fwid == GPU.fwid


def test_simulator_root_is_not_trusted_by_default() -> None:
    with pytest.raises(ChainError) as err:
        sim_verify(GPU.report(NONCE), roots=[device_identity_root()])
    assert err.value.check == "gpu.chain"


def test_look_alike_chain_ending_in_a_self_made_root_fails() -> None:
    # Same names as NVIDIA's chain, same FWID, a self-made root: only the chain check fails.
    fake = make_chain(b"attacker", DEVICE_ROLES,
                      leaf_extensions=[(dice_tcbinfo(GPU.fwid), False)])
    report = GPU.report(NONCE, key=fake.leaf_key)
    with pytest.raises(ChainError) as err:
        sim_verify(report, chain_pem=fake.pem())
    assert err.value.check == "gpu.chain"
    assert "self-signed" in err.value.message


def test_short_chain_fails() -> None:
    with pytest.raises(ChainError, match="number of certificates"):
        verify_gpu_report(real_report(), real_chain()[:4], nonce=NONCE,
                          roots=[device_identity_root()], at=AT)


def test_report_signed_by_another_key_fails_only_the_signature() -> None:
    other = make_chain(b"other", DEVICE_ROLES).leaf_key
    with pytest.raises(SignatureError) as err:
        sim_verify(GPU.report(NONCE, key=other))
    assert err.value.check == "gpu.report.signature"


def test_fwid_mismatch_fails_only_the_fwid_check() -> None:
    fields = tuple(OpaqueField(f.type, bytes(48)) if f.type == OpaqueType.FWID else f
                   for f in GPU.opaque().fields)
    report = GPU.report(NONCE, opaque=type(GPU.opaque())(fields))
    with pytest.raises(VerificationError) as err:
        sim_verify(report)
    assert err.value.check == "gpu.report.fwid"
    assert err.value.want == GPU.fwid


def test_missing_fwid_fails_the_fwid_check() -> None:
    fields = tuple(f for f in GPU.opaque().fields if f.type != OpaqueType.FWID)
    with pytest.raises(VerificationError) as err:
        sim_verify(GPU.report(NONCE, opaque=type(GPU.opaque())(fields)))
    assert err.value.check == "gpu.report.fwid"


def test_leaf_without_dice_extension_fails_the_fwid_check() -> None:
    bare = SimulatedGpu(seed=b"bare", pki=make_chain(b"bare", DEVICE_ROLES))
    root = pinned_root("bare", bare.device_pki.root_pem(), fingerprint(bare.device_pki.root).hex())
    with pytest.raises(VerificationError) as err:
        verify_gpu_report(bare.report(NONCE), load_device_chain(bare.chain_pem()), nonce=NONCE,
                          roots=[root], at=AT)
    assert err.value.check == "gpu.report.fwid"


def test_wrong_nonce_fails_only_the_binding_on_a_simulated_gpu() -> None:
    with pytest.raises(VerificationError) as err:
        sim_verify(GPU.report(bytes(32)))
    assert err.value.check == "gpu.report.nonce"


def test_expired_chain_fails_at_a_later_time() -> None:
    with pytest.raises(ChainError, match="expired"):
        verify_gpu_report(GPU.report(NONCE), load_device_chain(GPU.chain_pem()), nonce=NONCE,
                          roots=[SIM_ROOT], at=datetime(2100, 6, 1, tzinfo=UTC))


def test_chain_cache_is_used_and_respects_time() -> None:
    cache = ChainCache()
    chain = load_device_chain(GPU.chain_pem())
    first = verify_gpu_report(GPU.report(NONCE), chain, nonce=NONCE, roots=[SIM_ROOT], at=AT,
                              cache=cache)
    second = verify_gpu_report(GPU.report(NONCE), chain, nonce=NONCE, roots=[SIM_ROOT], at=AT,
                               cache=cache)
    assert first.chain is second.chain
    with pytest.raises(ChainError):
        verify_gpu_report(GPU.report(NONCE), chain, nonce=NONCE, roots=[SIM_ROOT],
                          at=datetime(2100, 6, 1, tzinfo=UTC), cache=cache)


def test_real_chain_with_a_look_alike_root_fails() -> None:
    """NVIDIA's chain, but its root swapped for a self-made one with the same name and key
    type: only the chain check fails."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    chain = real_chain()
    real_root = chain[-1]
    key = ec.generate_private_key(ec.SECP384R1())
    fake_root = (x509.CertificateBuilder().subject_name(real_root.subject)
                 .issuer_name(real_root.subject).public_key(key.public_key())
                 .serial_number(real_root.serial_number)
                 .not_valid_before(real_root.not_valid_before_utc)
                 .not_valid_after(real_root.not_valid_after_utc)
                 .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                 .sign(key, hashes.SHA384()))
    with pytest.raises(ChainError) as err:
        verify_gpu_report(real_report(), [*chain[:4], fake_root], nonce=NONCE,
                          roots=[device_identity_root()], at=AT)
    assert err.value.check == "gpu.chain"
