"""Evidence bundle (attest/formats/bundle.py; docs/formats.md "Evidence bundle (CBOR)")."""

from __future__ import annotations

import copy
import dataclasses
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
from tests.support.bundle_samples import NODE_KEY, gpu_item, snp_bundle, snp_item, tdx_bundle
from transparency_log.common.errors import FormatError

SAMPLE = snp_bundle()
SAMPLE_BYTES = encode_bundle(SAMPLE)


def _encode_value(value: Any) -> bytes:
    return cbor2.dumps(value, canonical=True)


def _refuse(data: bytes, check: str, field: str) -> FormatError:
    with pytest.raises(FormatError) as info:
        decode_bundle(data)
    assert info.value.check == check, str(info.value)
    assert info.value.field == field, str(info.value)
    return info.value


def _mutated(change: Callable[[dict[str, Any]], None]) -> bytes:
    value = copy.deepcopy(to_cbor_value(SAMPLE))
    change(value)
    return _encode_value(value)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("bundle", [snp_bundle(), snp_bundle(gpus=0), snp_bundle(gpus=8),
                                    tdx_bundle()], ids=["snp+2gpu", "snp", "snp+8gpu", "tdx"])
def test_round_trip(bundle: EvidenceBundle) -> None:
    data = encode_bundle(bundle)
    again = decode_bundle(data)
    assert again == bundle
    assert encode_bundle(again) == data
    assert bundle.encode() == data


def test_sigstore_bundle_round_trips_and_is_absent_when_none() -> None:
    """The optional ``sigstore_bundle`` key: written only when set, read back byte for byte,
    accepted at its cap; a bundle without it encodes exactly as before the field existed."""
    assert "sigstore_bundle" not in cbor2.loads(SAMPLE_BYTES)
    assert decode_bundle(SAMPLE_BYTES).sigstore_bundle is None
    for blob in (b'{"mediaType": "x"}', bytes(B.MAX_SIGSTORE_BUNDLE)):
        with_sig = dataclasses.replace(SAMPLE, sigstore_bundle=blob)
        data = encode_bundle(with_sig)
        assert cbor2.loads(data)["sigstore_bundle"] == blob
        assert decode_bundle(data) == with_sig and encode_bundle(decode_bundle(data)) == data
    with pytest.raises(FormatError) as err:
        encode_bundle(dataclasses.replace(SAMPLE, sigstore_bundle=b""))
    assert err.value.field == "sigstore_bundle"


def test_default_gpu_state_is_absent() -> None:
    assert snp_bundle(gpus=0).gpu_state == GpuState("absent", 0)
    with pytest.raises(FormatError) as info:
        encode_bundle(snp_bundle(gpu_state=GpuState()))
    assert info.value.field == "gpu_state.attached"


def test_gpu_only_bundle_round_trips() -> None:
    bundle = snp_bundle(evidence=(gpu_item(0), gpu_item(5)), gpu_state=GpuState("on", 8))
    assert decode_bundle(encode_bundle(bundle)).cpu_evidence is None
    assert [g.index for g in bundle.gpu_evidence] == [0, 5]


def test_accessors() -> None:
    assert isinstance(SAMPLE.cpu_evidence, SnpEvidence)
    assert isinstance(tdx_bundle().cpu_evidence, TdxEvidence)
    assert [g.index for g in SAMPLE.gpu_evidence] == [0, 1]
    assert SAMPLE.evidence[0].certs["vcek"][:1] == b"\x30"


def test_dataclasses_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SAMPLE.nonce = b""  # type: ignore[misc]
    with pytest.raises(TypeError):
        SAMPLE.collateral["x"] = b"y"  # type: ignore[index]
    assert isinstance(SAMPLE.evidence, tuple)


def test_encoding_is_deterministic_and_key_order_is_bytewise() -> None:
    # RFC 8949 §4.2.1: keys sorted by encoded bytes; for text keys that is length first.
    value = cbor2.loads(SAMPLE_BYTES)
    assert list(value) == ["nonce", "release", "version", "evidence", "node_key",
                           "gpu_state", "simulated", "collateral", "tlog_proof"]
    assert list(value) == sorted(value, key=lambda k: cbor2.dumps(k))
    assert encode_bundle(snp_bundle()) == SAMPLE_BYTES


def test_encode_refuses_what_decode_refuses() -> None:
    bad = dataclasses.replace(SAMPLE, nonce=b"short")
    with pytest.raises(FormatError) as info:
        encode_bundle(bad)
    assert info.value.field == "nonce"


def test_encode_refuses_a_non_evidence_item() -> None:
    with pytest.raises(TypeError):
        encode_bundle(dataclasses.replace(SAMPLE, evidence=("x",)))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- schema errors


def _set(path: list[Any], new: Any) -> Callable[[dict[str, Any]], None]:
    def change(value: dict[str, Any]) -> None:
        target: Any = value
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = new
    return change


def _delete(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def change(value: dict[str, Any]) -> None:
        target: Any = value
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]
    return change


SCHEMA_CASES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("missing nonce", _delete(["nonce"]), "nonce"),
    ("missing release", _delete(["release"]), "release"),
    ("missing item report", _delete(["evidence", 1, "report"]), "evidence[1].report"),
    ("missing certs", _delete(["evidence", 0, "certs"]), "evidence[0].certs"),
    ("unknown top key", _set(["extra"], 1), "extra"),
    ("unknown item key", _set(["evidence", 2, "note"], "x"), "evidence[2].note"),
    ("unknown cert role", _set(["evidence", 0, "certs", "pek"], b"\x30\x00"),
     "evidence[0].certs.pek"),
    ("unknown rim role", _set(["evidence", 1, "rims", "fw"], "nvidia/rim/driver"),
     "evidence[1].rims.fw"),
    ("version 2", _set(["version"], 2), "version"),
    ("version text", _set(["version"], "1"), "version"),
    ("nonce short", _set(["nonce"], bytes(31)), "nonce"),
    ("nonce long", _set(["nonce"], bytes(65)), "nonce"),
    ("nonce text", _set(["nonce"], "00" * 32), "nonce"),
    ("simulated int", _set(["simulated"], 0), "simulated"),
    ("node key empty", _set(["node_key"], b""), "node_key"),
    ("node key too big", _set(["node_key"], b"\x30\x82\x08\x01" + bytes(0x801)), "node_key"),
    ("node key not DER", _set(["node_key"], b"\x04" + bytes(64)), "node_key"),
    ("node key DER length short", _set(["node_key"], NODE_KEY + b"\x00"), "node_key"),
    ("node key DER non-minimal", _set(["node_key"], b"\x30\x81\x02\x05\x00"), "node_key"),
    ("evidence empty", _set(["evidence"], []), "evidence"),
    ("evidence not a list", _set(["evidence"], {}), "evidence"),
    ("evidence too many", _set(["evidence"], [{}] * 34), "evidence"),
    ("item not a map", _set(["evidence", 1], [1]), "evidence[1]"),
    ("unknown type", _set(["evidence", 0, "type"], "sev"), "evidence[0].type"),
    ("type not text", _set(["evidence", 0, "type"], 7), "evidence[0].type"),
    ("snp report short", _set(["evidence", 0, "report"], bytes(1183)), "evidence[0].report"),
    ("snp report long", _set(["evidence", 0, "report"], bytes(1185)), "evidence[0].report"),
    ("gpu report empty", _set(["evidence", 2, "report"], b""), "evidence[2].report"),
    ("gpu report too big", _set(["evidence", 2, "report"], bytes(B.MAX_GPU_REPORT + 1)),
     "evidence[2].report"),
    ("gpu chain text", _set(["evidence", 1, "cert_chain"], "pem"), "evidence[1].cert_chain"),
    ("gpu index negative", _set(["evidence", 1, "index"], -1), "evidence[1].index"),
    ("gpu index too big", _set(["evidence", 1, "index"], 256), "evidence[1].index"),
    ("gpu index bool", _set(["evidence", 1, "index"], True), "evidence[1].index"),
    ("gpu order", _set(["evidence", 2, "index"], 0), "evidence[2].index"),
    ("ocsp not a list", _set(["evidence", 1, "ocsp"], "x"), "evidence[1].ocsp"),
    ("ocsp bad name", _set(["evidence", 1, "ocsp"], ["Bad Name"]), "evidence[1].ocsp[0]"),
    ("ocsp too many", _set(["evidence", 1, "ocsp"], ["nvidia/rim/driver"] * 9),
     "evidence[1].ocsp"),
    ("ocsp duplicate", _set(["evidence", 1, "ocsp"], ["nvidia/rim/driver"] * 2),
     "evidence[1].ocsp"),
    ("cert not DER", _set(["evidence", 0, "certs", "ark"], b"-----BEGIN"),
     "evidence[0].certs.ark"),
    ("cert too big", _set(["evidence", 0, "certs", "ark"], bytes(B.MAX_CERT + 1)),
     "evidence[0].certs.ark"),
    ("vcek and vlek", _set(["evidence", 0, "certs", "vlek"], b"\x30\x00"),
     "evidence[0].certs"),
    ("dangling rim", _set(["evidence", 1, "rims", "driver"], "nvidia/rim/other"),
     "evidence[1].rims.driver"),
    ("dangling snp crl", _set(["evidence", 0, "collateral"], {"crl": "amd/crl"}),
     "evidence[0].collateral.crl"),
    ("unused collateral", _set(["collateral", "amd/crl"], b"crl"), "collateral[amd/crl]"),
    ("collateral bad name", _set(["collateral", "AMD"], b"x"), "collateral[AMD]"),
    ("collateral empty blob", _set(["collateral", "nvidia/rim/vbios"], b""),
     "collateral[nvidia/rim/vbios]"),
    ("collateral blob too big", _set(["collateral", "nvidia/rim/vbios"], bytes(B.MAX_BLOB + 1)),
     "collateral[nvidia/rim/vbios]"),
    ("collateral not a map", _set(["collateral"], []), "collateral"),
    ("release too big", _set(["release"], bytes(B.MAX_RELEASE + 1)), "release"),
    ("tlog proof empty", _set(["tlog_proof"], b""), "tlog_proof"),
    ("tlog proof text", _set(["tlog_proof"], "c2sp.org/tlog-proof@v1"), "tlog_proof"),
    ("missing gpu state", _delete(["gpu_state"]), "gpu_state"),
    ("gpu state not a map", _set(["gpu_state"], "on"), "gpu_state"),
    ("unknown cc mode", _set(["gpu_state", "cc_mode"], "ON"), "gpu_state.cc_mode"),
    ("cc mode not text", _set(["gpu_state", "cc_mode"], 1), "gpu_state.cc_mode"),
    ("missing attached", _delete(["gpu_state", "attached"]), "gpu_state.attached"),
    ("attached too big", _set(["gpu_state", "attached"], 257), "gpu_state.attached"),
    ("fewer attached than items", _set(["gpu_state", "attached"], 1), "gpu_state.attached"),
    ("absent with GPU items", _set(["gpu_state", "cc_mode"], "absent"), "gpu_state.attached"),
    ("unknown gpu state key", _set(["gpu_state", "uuid"], "x"), "gpu_state.uuid"),
    ("sigstore bundle empty", _set(["sigstore_bundle"], b""), "sigstore_bundle"),
    ("sigstore bundle text", _set(["sigstore_bundle"], "{}"), "sigstore_bundle"),
    ("sigstore bundle null", _set(["sigstore_bundle"], None), "sigstore_bundle"),
    ("sigstore bundle too big", _set(["sigstore_bundle"], bytes(B.MAX_SIGSTORE_BUNDLE + 1)),
     "sigstore_bundle"),
]


@pytest.mark.parametrize(("change", "field"), [c[1:] for c in SCHEMA_CASES],
                         ids=[c[0] for c in SCHEMA_CASES])
def test_schema_error_names_the_field(change: Callable[[dict[str, Any]], None],
                                      field: str) -> None:
    _refuse(_mutated(change), "bundle.schema", field)


def test_too_many_collateral_entries() -> None:
    names = [f"n{i}" for i in range(B.MAX_COLLATERAL_ENTRIES + 1)]

    def change(value: dict[str, Any]) -> None:
        value["collateral"].update({n: b"x" for n in names})
        value["evidence"][1]["ocsp"] = names[:8]
    _refuse(_mutated(change), "bundle.schema", "collateral")


def test_at_most_32_gpus() -> None:
    gpus = tuple(GpuEvidence(i, b"r", b"c") for i in range(B.MAX_GPU_ITEMS + 1))
    state = GpuState("on", 64)
    data = _encode_value(to_cbor_value(snp_bundle(evidence=gpus, collateral={},
                                                  gpu_state=state)))
    _refuse(data, "bundle.schema", "evidence")
    assert decode_bundle(encode_bundle(snp_bundle(evidence=gpus[:-1], collateral={},
                                                  gpu_state=state)))


def test_two_cpu_items_are_refused() -> None:
    def change(value: dict[str, Any]) -> None:
        value["evidence"].insert(1, copy.deepcopy(value["evidence"][0]))
    err = _refuse(_mutated(change), "bundle.schema", "evidence[1].type")
    assert "first and only CPU item" in err.message


def test_cpu_item_must_come_first() -> None:
    def change(value: dict[str, Any]) -> None:
        value["evidence"].append(value["evidence"].pop(0))
    _refuse(_mutated(change), "bundle.schema", "evidence[2].type")


def test_non_text_map_key() -> None:
    _refuse(_mutated(_set([1], b"x")), "bundle.schema", "bundle")


def test_top_level_not_a_map() -> None:
    _refuse(_encode_value([1, 2]), "bundle.schema", "bundle")


def test_tdx_unknown_collateral_role() -> None:
    value = to_cbor_value(tdx_bundle())
    value["evidence"][0]["collateral"]["pck_cert"] = "intel/pck_crl"
    _refuse(_encode_value(value), "bundle.schema", "evidence[0].collateral.pck_cert")


# --------------------------------------------------------------------------- CBOR level


def test_oversize_bundle_is_refused_before_decoding() -> None:
    _refuse(b"\xa0" + bytes(B.MAX_BUNDLE_SIZE), "bundle.size", "bundle")


@pytest.mark.parametrize("data", [b"", b"\xff", SAMPLE_BYTES[:-1],
                                  b"\x5b\x00\x00\x00\x01" + bytes(4),
                                  b"\x81" * 1000 + b"\x00", bytes.fromhex("62c328")],
                         ids=["empty", "break", "truncated", "huge-length", "deep", "bad-utf8"])
def test_not_well_formed_cbor(data: bytes) -> None:
    _refuse(data, "bundle.cbor", "bundle")


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
    _refuse(data, "bundle.canonical", "bundle")


def test_unsorted_keys_are_refused() -> None:
    value = to_cbor_value(SAMPLE)
    data = cbor2.dumps(dict(sorted(value.items())))  # alphabetical, not length-first
    _refuse(data, "bundle.canonical", "bundle")


def test_duplicate_key_is_refused() -> None:
    # {"nonce": n1, "nonce": n2, ...}: cbor2 keeps the last one; the re-encoding is shorter.
    assert SAMPLE_BYTES[:1] == b"\xa9"  # map(9)
    nonce_pair = b"\x65nonce\x58\x20" + bytes(range(32))
    data = b"\xaa" + nonce_pair + SAMPLE_BYTES[1:]
    _refuse(data, "bundle.canonical", "bundle")


def test_self_describe_tag_is_refused() -> None:
    err = _refuse(b"\xd9\xd9\xf7" + SAMPLE_BYTES, "bundle.cbor", "bundle")
    assert "tag 55799" in err.message


def test_tagged_value_in_a_field_is_refused() -> None:
    # tag 2 (bignum) would decode to int 1: the right type and value, but tags are not used.
    data = SAMPLE_BYTES.replace(b"gversion\x01", b"gversion\xc2\x41\x01")
    _refuse(data, "bundle.cbor", "bundle")


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
    err = _refuse(data, "bundle.cbor", "bundle")
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
