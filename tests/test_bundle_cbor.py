"""Evidence bundle at the CBOR level (attest/formats/bundle.py; docs/formats.md "Evidence bundle
(CBOR)"): size caps before decoding, well-formedness, canonical (deterministic) encoding,
tags and value sharing, and fuzzing (mutated, random and generated bundles never crash the
decoder: they decode or raise FormatError)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.formats import bundle as B
from attest.formats.bundle import (
    EvidenceBundle,
    GpuEvidence,
    GpuState,
    SnpEvidence,
    TdxEvidence,
    decode_bundle,
    encode_bundle,
    to_cbor_value,
)
from tests.support.bundle_checks import SAMPLE, SAMPLE_BYTES, refuse
from tests.support.bundle_samples import snp_item
from transparency_log.common.errors import FormatError

# --------------------------------------------------------------------------- CBOR level


def test_oversize_bundle_is_refused_before_decoding() -> None:
    refuse(b"\xa0" + bytes(B.MAX_BUNDLE_SIZE), "bundle.size", "bundle")


@pytest.mark.parametrize("data", [b"", b"\xff", SAMPLE_BYTES[:-1],
                                  b"\x5b\x00\x00\x00\x01" + bytes(4),
                                  b"\x81" * 1000 + b"\x00", bytes.fromhex("62c328")],
                         ids=["empty", "break", "truncated", "huge-length", "deep", "bad-utf8"])
def test_not_well_formed_cbor(data: bytes) -> None:
    refuse(data, "bundle.cbor", "bundle")


NON_CANONICAL: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("trailing byte", lambda d: d + b"\x00"),
    ("second item", lambda d: d + d),
    # version 1 as a two-byte head (0x18 0x01) instead of 0x01
    ("non-shortest int", lambda d: d.replace(b"gversion\x01", b"gversion\x18\x01")),
    ("indefinite map", lambda d: b"\xbf" + d[1:] + b"\xff"),
]


@pytest.mark.parametrize("change", [c[1] for c in NON_CANONICAL], ids=[c[0] for c in NON_CANONICAL])
def test_non_canonical_encoding_is_refused(change: Callable[[bytes], bytes]) -> None:
    data = change(SAMPLE_BYTES)
    assert data != SAMPLE_BYTES
    assert decode_bundle(SAMPLE_BYTES) == SAMPLE  # the canonical form still decodes
    refuse(data, "bundle.canonical", "bundle")


def test_unsorted_keys_are_refused() -> None:
    value = to_cbor_value(SAMPLE)
    data = cbor2.dumps(dict(sorted(value.items())))  # alphabetical, not length-first
    refuse(data, "bundle.canonical", "bundle")


def test_duplicate_key_is_refused() -> None:
    # {"nonce": n1, "nonce": n2, ...}: cbor2 keeps the last one; the re-encoding is shorter.
    assert SAMPLE_BYTES[:1] == b"\xa9"  # map(9)
    nonce_pair = b"\x65nonce\x58\x20" + bytes(range(32))
    data = b"\xaa" + nonce_pair + SAMPLE_BYTES[1:]
    refuse(data, "bundle.canonical", "bundle")


def test_self_describe_tag_is_refused() -> None:
    err = refuse(b"\xd9\xd9\xf7" + SAMPLE_BYTES, "bundle.cbor", "bundle")
    assert "tag 55799" in err.message


def test_tagged_value_in_a_field_is_refused() -> None:
    # tag 2 (bignum) would decode to int 1: the right type and value, but tags are not used.
    data = SAMPLE_BYTES.replace(b"gversion\x01", b"gversion\xc2\x41\x01")
    refuse(data, "bundle.cbor", "bundle")


def test_value_sharing_cycle_is_refused() -> None:
    # tag 28 / 29 (value sharing) can build a cyclic structure; it is never a valid field.
    data = bytes.fromhex("d81ca1") + b"\x65nonce" + bytes.fromhex("d81d00")
    with pytest.raises(FormatError):
        decode_bundle(data)


# --------------------------------------------------------------------------- fuzzing


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_bytes_never_crash(data: st.DataObject) -> None:
    """Random edits of an encoded bundle give a FormatError or a different valid bundle."""
    blob = bytearray(SMALL_BYTES)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(0, max(len(blob) - 1, 0)))
        if op == "flip" and blob:
            blob[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set" and blob:
            blob[pos] = data.draw(st.integers(0, 255))
        elif op == "insert":
            blob[pos:pos] = data.draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and blob:
            del blob[pos : pos + data.draw(st.integers(1, 4))]
        elif op == "truncate":
            del blob[pos:]
    try:
        decoded = decode_bundle(bytes(blob))
    except FormatError:
        return
    assert encode_bundle(decoded) == bytes(blob)


SMALL = EvidenceBundle(
    nonce=bytes(32), node_key=b"\x30\x03\x02\x01\x01", simulated=True,
    evidence=(SnpEvidence(bytes(B.SNP_REPORT_SIZE), certs={"vcek": b"\x30\x00"},
                          collateral={"crl": "c"}),
              GpuEvidence(0, b"r", b"c", rims={"driver": "d"}, ocsp=("o",))),
    release=b"{}", tlog_proof=b"p", collateral={"c": b"1", "d": b"2", "o": b"3"},
    gpu_state=GpuState("devtools", 1))
SMALL_BYTES = encode_bundle(SMALL)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(blob: bytes) -> None:
    try:
        decoded = decode_bundle(blob)
    except FormatError:
        return
    assert encode_bundle(decoded) == blob


def test_snp_item_defaults() -> None:
    item = snp_item()
    assert dict(item.collateral) == {}
    assert set(item.certs) == {"vcek", "ask", "ark"}


def test_many_small_items_are_refused_before_decoding() -> None:
    # 65536 empty maps would cost cbor2 65536 dict objects; the scan stops at 8192 items.
    data = b"\x9a\x00\x01\x00\x00" + b"\xa0" * 65536
    err = refuse(data, "bundle.cbor", "bundle")
    assert f"more than {B.MAX_DATA_ITEMS}" in err.message


_names = st.from_regex(r"[a-z0-9][a-z0-9._:/+-]{0,20}", fullmatch=True)
_der = st.binary(max_size=100).map(lambda b: b"\x30" + bytes([len(b)]) + b)


@st.composite
def valid_bundles(draw: st.DrawFn) -> EvidenceBundle:
    names = draw(st.lists(_names, max_size=6, unique=True))
    refs = st.sampled_from(names) if names else st.nothing()

    def ref_map(roles: tuple[str, ...]) -> dict[str, str]:
        if not names:
            return {}
        return draw(st.dictionaries(st.sampled_from(roles), refs, max_size=len(roles)))

    items: list[Any] = []
    cpu = draw(st.sampled_from(["snp", "tdx", None]))
    if cpu == "snp":
        certs = draw(st.dictionaries(st.sampled_from(("ark", "ask", "vcek")), _der))
        items.append(SnpEvidence(draw(st.binary(min_size=1184, max_size=1184)), certs,
                                 ref_map(B.SNP_COLLATERAL_ROLES)))
    elif cpu == "tdx":
        items.append(TdxEvidence(draw(st.binary(min_size=1, max_size=64)),
                                 ref_map(B.TDX_COLLATERAL_ROLES)))
    indices = sorted(draw(st.sets(st.integers(0, 255), min_size=0 if items else 1, max_size=4)))
    for i in indices:
        ocsp = tuple(draw(st.lists(refs, max_size=3, unique=True))) if names else ()
        items.append(GpuEvidence(i, draw(st.binary(min_size=1, max_size=40)),
                                 draw(st.binary(min_size=1, max_size=40)),
                                 ref_map(B.GPU_RIM_ROLES), ocsp))
    used = {name for item in items for _, name in item.references()}
    if indices:
        state = GpuState(draw(st.sampled_from(B.CC_MODES[1:])),
                         draw(st.integers(len(indices), B.MAX_GPU_ATTACHED)))
    else:
        state = draw(st.sampled_from([GpuState(), GpuState("off", 0), GpuState("on", 3)]))
    return EvidenceBundle(
        nonce=draw(st.binary(min_size=32, max_size=64)), node_key=draw(_der.filter(len)),
        simulated=draw(st.booleans()), evidence=tuple(items),
        release=draw(st.binary(min_size=1, max_size=50)),
        tlog_proof=draw(st.binary(min_size=1, max_size=50)),
        collateral={n: draw(st.binary(min_size=1, max_size=30)) for n in used},
        gpu_state=state,
        sigstore_bundle=draw(st.none() | st.binary(min_size=1, max_size=40)))


@settings(max_examples=150, deadline=None)
@given(valid_bundles())
def test_random_valid_bundles_round_trip(bundle: EvidenceBundle) -> None:
    data = encode_bundle(bundle)
    assert decode_bundle(data) == bundle
    assert cbor2.dumps(cbor2.loads(data), canonical=True) == data


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(SAMPLE_BYTES) - 1), st.integers(1, 255))
def test_byte_changes_in_the_real_sample_never_crash(pos: int, xor: int) -> None:
    blob = bytearray(SAMPLE_BYTES)
    blob[pos] ^= xor
    try:
        decoded = decode_bundle(bytes(blob))
    except FormatError:
        return
    assert decoded != SAMPLE
    assert encode_bundle(decoded) == bytes(blob)
