"""Binding (attest/binding.py, verifier/binding_check.py; docs/formats.md "Binding")."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from attest.binding import (
    bundle_gpu_nonce,
    bundle_report_data,
    gpu_digest,
    gpu_encoding,
    gpu_nonce,
    gpu_nonces,
    node_key_digest,
    report_data,
)
from attest.formats.bundle import EvidenceBundle, GpuEvidence, GpuState
from tests.support.bundle_samples import (
    NODE_KEY,
    OTHER_NODE_KEY,
    gpu_item,
    gpu_report,
    snp_bundle,
    tdx_bundle,
)
from transparency_log.common.errors import FormatError, VerificationError
from verifier.binding_check import BindingResult, check_binding

OTHER_NONCE = bytes(reversed(range(32)))


def honest(bundle: EvidenceBundle) -> tuple[bytes, dict[int, bytes]]:
    """What an honest node's reports carry: the values derived from its own bundle."""
    return (bundle_report_data(bundle),
            {g.index: bundle_gpu_nonce(bundle, g.index) for g in bundle.gpu_evidence})


def _refused(bundle: EvidenceBundle, rd: bytes | None, nonces: dict[int, bytes],
             check: str) -> VerificationError:
    with pytest.raises(VerificationError) as info:
        check_binding(bundle, report_data=rd, gpu_nonces=nonces)
    assert info.value.check == check, str(info.value)
    return info.value


# --------------------------------------------------------------------------- derivation


ON_2 = GpuState("on", 2)


def test_report_data_known_answer() -> None:
    items = [GpuEvidence(1, b"r", b"c")]
    # CBOR ["on", 2, [[1, h'72', h'63']]]: array(3) text(2) "on", uint 2,
    # array(1) array(3) uint 1, bytes(1) 'r', bytes(1) 'c'
    encoding = bytes.fromhex("83626f6e02" "8183014172" "4163")
    assert gpu_encoding(ON_2, items) == encoding
    no_keys = hashlib.sha256(b"").digest()
    want = hashlib.sha512(b"attestlog/v2" + bytes(32) + hashlib.sha256(b"\x30\x00").digest()
                          + no_keys + hashlib.sha256(encoding).digest()).digest()
    assert report_data(bytes(32), b"\x30\x00", ON_2, items) == want
    assert len(want) == 64
    keys = b"\x00\x01k"  # opaque here: the bundle decoder judges the key list
    with_keys = hashlib.sha512(b"attestlog/v2" + bytes(32) + hashlib.sha256(b"\x30\x00").digest()
                               + hashlib.sha256(keys).digest()
                               + hashlib.sha256(encoding).digest()).digest()
    assert report_data(bytes(32), b"\x30\x00", ON_2, items, ohttp_keys=keys) == with_keys


def test_no_gpu_digest() -> None:
    # ["absent", 0, []]
    assert gpu_encoding(GpuState(), []) == b"\x83\x66absent\x00\x80"
    assert gpu_digest(GpuState(), []) == hashlib.sha256(b"\x83\x66absent\x00\x80").digest()


def test_gpu_nonce_known_answer() -> None:
    # docs/formats.md "Binding": the index is the last input, 4 bytes big-endian.
    for keys in (None, b"\x00\x01k"):
        for index in (0, 1, 255):
            want = hashlib.sha256(b"attestlog/gpu/v3" + bytes(range(32))
                                  + hashlib.sha256(NODE_KEY).digest()
                                  + hashlib.sha256(keys or b"").digest()
                                  + index.to_bytes(4, "big")).digest()
            assert gpu_nonce(bytes(range(32)), NODE_KEY, index, ohttp_keys=keys) == want
            assert gpu_nonces(bytes(range(32)), NODE_KEY, ohttp_keys=keys)(index) == want
    assert node_key_digest(NODE_KEY) == hashlib.sha256(NODE_KEY).digest()


def test_every_gpu_index_has_its_own_nonce() -> None:
    nonces = {gpu_nonce(bytes(32), NODE_KEY, i) for i in range(256)}
    assert len(nonces) == 256


@pytest.mark.parametrize("index", [-1, 256])
def test_gpu_index_range_is_checked(index: int) -> None:
    with pytest.raises(FormatError) as info:
        gpu_nonce(bytes(32), NODE_KEY, index)
    assert info.value.check == "binding.gpu_nonce"


def test_gpu_items_are_taken_in_index_order() -> None:
    a, b = GpuEvidence(0, b"a", b"c"), GpuEvidence(1, b"b", b"c")
    assert gpu_encoding(ON_2, [b, a]) == gpu_encoding(ON_2, [a, b])


def test_duplicate_gpu_index_is_refused() -> None:
    with pytest.raises(FormatError) as info:
        gpu_digest(ON_2, [GpuEvidence(0, b"a", b"c"), GpuEvidence(0, b"b", b"c")])
    assert info.value.check == "binding.gpu_items"


@pytest.mark.parametrize("size", [0, 31, 65])
def test_nonce_size_is_checked(size: int) -> None:
    with pytest.raises(FormatError):
        report_data(bytes(size), NODE_KEY, GpuState(), [])
    with pytest.raises(FormatError):
        gpu_nonce(bytes(size), NODE_KEY, 0)
    with pytest.raises(FormatError):
        gpu_nonces(bytes(size), NODE_KEY)


def test_every_input_changes_report_data() -> None:
    bundle = snp_bundle()
    base = bundle_report_data(bundle)
    variants = [
        dataclasses.replace(bundle, nonce=OTHER_NONCE),
        dataclasses.replace(bundle, node_key=OTHER_NODE_KEY),
        dataclasses.replace(bundle, evidence=bundle.evidence[:2]),
        dataclasses.replace(bundle, evidence=(*bundle.evidence[:2], gpu_item(2)),
                            gpu_state=GpuState("on", 3)),
        dataclasses.replace(bundle, evidence=(
            *bundle.evidence[:2], dataclasses.replace(bundle.evidence[2], cert_chain=b"x"))),
        dataclasses.replace(bundle, gpu_state=GpuState("devtools", 2)),
        dataclasses.replace(bundle, gpu_state=GpuState("on", 3)),
        dataclasses.replace(bundle, ohttp_keys=b"\x00\x01k"),
        dataclasses.replace(bundle, ohttp_keys=b"\x00\x01K"),
    ]
    assert len({bundle_report_data(v) for v in variants} | {base}) == len(variants) + 1
    gpu_nonces_of = {bundle_gpu_nonce(v, 0) for v in variants[-2:]}
    assert len(gpu_nonces_of | {bundle_gpu_nonce(bundle, 0)}) == 3


def test_collateral_references_are_not_bound() -> None:
    bundle = snp_bundle()
    refreshed = dataclasses.replace(bundle, evidence=(
        bundle.evidence[0], *(dataclasses.replace(g, ocsp=("nvidia/rim/driver",))
                              for g in bundle.gpu_evidence)))
    assert bundle_report_data(refreshed) == bundle_report_data(bundle)


# --------------------------------------------------------------------------- check_binding


def test_honest_bundle_is_bound() -> None:
    bundle = snp_bundle()
    rd, nonces = honest(bundle)
    result = check_binding(bundle, report_data=rd, gpu_nonces=nonces)
    assert isinstance(result, BindingResult)
    assert result.report_data == rd
    assert result.gpu_indices == (0, 1)
    assert result.gpu_digest == gpu_digest(bundle.gpu_state, bundle.gpu_evidence)
    assert result.checks == ("binding.report_data", "binding.gpu_nonce")


def test_honest_bundle_without_gpus_is_bound() -> None:
    bundle = snp_bundle(gpus=0)
    result = check_binding(bundle, report_data=bundle_report_data(bundle), gpu_nonces={})
    assert result.gpu_indices == ()


def test_swapped_gpu_report_breaks_report_data() -> None:
    # The node's CPU report bound its own GPU 1; GPU 1's report is replaced by another GPU's
    # (signed for the same nonce, e.g. by a GPU in another machine the attacker controls).
    bundle = snp_bundle()
    rd, nonces = honest(bundle)
    other = gpu_item(1, report=gpu_report()[:-1] + b"\x00")
    swapped = dataclasses.replace(bundle, evidence=(*bundle.evidence[:2], other))
    err = _refused(swapped, rd, nonces, "binding.report_data")
    assert err.field == "REPORT_DATA"
    assert err.got == rd
    assert err.want == bundle_report_data(swapped)
    assert rd.hex() in str(err)


def test_gpu_reports_exchanged_between_indices_break_report_data() -> None:
    a, b = gpu_item(0, report=b"report-a"), gpu_item(1, report=b"report-b")
    bundle = snp_bundle(evidence=(snp_bundle().evidence[0], a, b))
    rd, nonces = honest(bundle)
    exchanged = dataclasses.replace(bundle, evidence=(
        bundle.evidence[0], dataclasses.replace(a, report=b.report),
        dataclasses.replace(b, report=a.report)))
    _refused(exchanged, rd, nonces, "binding.report_data")


def test_cc_mode_claim_is_bound() -> None:
    # A CPU report made while the node claimed DEVTOOLS cannot be shown with "on".
    bundle = snp_bundle(gpu_state=GpuState("devtools", 2))
    rd, nonces = honest(bundle)
    _refused(dataclasses.replace(bundle, gpu_state=ON_2), rd, nonces, "binding.report_data")


def test_relayed_cpu_report_breaks_report_data() -> None:
    # A report made for another client's nonce, replayed in a bundle with this nonce.
    bundle = snp_bundle()
    relayed_rd = bundle_report_data(dataclasses.replace(bundle, nonce=OTHER_NONCE))
    _refused(bundle, relayed_rd, honest(bundle)[1], "binding.report_data")


def test_relayed_gpu_reports_break_gpu_nonce() -> None:
    # The node honestly binds the GPU items it shows, but the GPU reports were made for
    # another nonce (relayed from an earlier session).
    bundle = snp_bundle()
    rd, _ = honest(bundle)
    stale = {g.index: gpu_nonce(OTHER_NONCE, NODE_KEY, g.index) for g in bundle.gpu_evidence}
    err = _refused(bundle, rd, stale, "binding.gpu_nonce")
    assert err.field == "evidence[1].report nonce"
    assert err.want == bundle_gpu_nonce(bundle, 0)


def test_one_relayed_gpu_report_is_named() -> None:
    bundle = snp_bundle()
    rd, nonces = honest(bundle)
    nonces[1] = gpu_nonce(OTHER_NONCE, NODE_KEY, 1)
    err = _refused(bundle, rd, nonces, "binding.gpu_nonce")
    assert err.field == "evidence[2].report nonce"


def test_another_tls_key_breaks_the_binding() -> None:
    # Evidence bound to NODE_KEY presented with another key (a man in the middle's).
    bundle = snp_bundle()
    rd, nonces = honest(bundle)
    mitm = dataclasses.replace(bundle, node_key=OTHER_NODE_KEY)
    _refused(mitm, rd, nonces, "binding.report_data")
    # Even if the CPU report were re-bound, the GPUs signed a nonce for the old key.
    _refused(mitm, bundle_report_data(mitm), nonces, "binding.gpu_nonce")


def test_tdx_names_reportdata() -> None:
    bundle = tdx_bundle()
    rd, nonces = honest(bundle)
    err = _refused(bundle, bytes(64), nonces, "binding.report_data")
    assert err.field == "REPORTDATA"
    assert check_binding(bundle, report_data=rd, gpu_nonces=nonces).gpu_indices == (3,)


def test_bundle_without_cpu_evidence_is_not_bound() -> None:
    bundle = snp_bundle(evidence=(gpu_item(0),), gpu_state=GpuState("on", 1))
    _, nonces = honest(bundle)
    err = _refused(bundle, None, nonces, "binding.report_data")
    assert err.field == "evidence"


def test_missing_report_data_fails() -> None:
    bundle = snp_bundle()
    _refused(bundle, None, honest(bundle)[1], "binding.report_data")


@pytest.mark.parametrize("nonces", [{0: b""}, {0: b"", 1: b"", 2: b""}, {}])
def test_gpu_nonces_must_cover_exactly_the_gpus(nonces: dict[int, bytes]) -> None:
    bundle = snp_bundle()
    err = _refused(bundle, bundle_report_data(bundle), nonces, "binding.gpu_nonce")
    assert err.field == "evidence.index"


# --------------------------------------------------------------------------- GPU positions
# Issue 16: the GPU nonce names the GPU's index, so a report signed for one position cannot
# be shown at another, even when REPORT_DATA is made over the rearranged items.


def _rearranged(bundle: EvidenceBundle, order: list[int]) -> EvidenceBundle:
    """The bundle's GPU reports and chains moved to the indexes in ``order`` (item k takes
    GPU order[k]'s report and chain); the CPU report re-bound to the result."""
    gpus = bundle.gpu_evidence
    moved = tuple(dataclasses.replace(g, report=gpus[j].report, cert_chain=gpus[j].cert_chain)
                  for g, j in zip(gpus, order, strict=True))
    return dataclasses.replace(bundle, evidence=(bundle.evidence[0], *moved))


def test_two_gpus_swapped_in_order_break_gpu_nonce() -> None:
    bundle = snp_bundle()
    _, signed = honest(bundle)  # GPU 0 signed nonce(0), GPU 1 signed nonce(1)
    swapped = _rearranged(bundle, [1, 0])
    # What each report carries travels with it: the report now at index 0 signed nonce(1).
    carried = {0: signed[1], 1: signed[0]}
    err = _refused(swapped, bundle_report_data(swapped), carried, "binding.gpu_nonce")
    assert err.field == "evidence[1].report nonce"
    assert err.got == bundle_gpu_nonce(bundle, 1) and err.want == bundle_gpu_nonce(bundle, 0)


def test_one_report_shown_at_two_indexes_breaks_gpu_nonce() -> None:
    bundle = snp_bundle()
    _, signed = honest(bundle)
    doubled = _rearranged(bundle, [0, 0])
    err = _refused(doubled, bundle_report_data(doubled), {0: signed[0], 1: signed[0]},
                   "binding.gpu_nonce")
    assert err.field == "evidence[2].report nonce"


def test_binding_result_lists_each_gpus_nonce() -> None:
    bundle = snp_bundle()
    rd, nonces = honest(bundle)
    result = check_binding(bundle, report_data=rd, gpu_nonces=nonces)
    assert result.gpu_nonces == (nonces[0], nonces[1]) and nonces[0] != nonces[1]
