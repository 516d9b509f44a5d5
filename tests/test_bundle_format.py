"""Evidence bundle (attest/formats/bundle.py; docs/formats.md "Evidence bundle (CBOR)")."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import cbor2
import pytest

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
from tests.support.bundle_checks import SAMPLE, SAMPLE_BYTES, encode_value, mutated, refuse
from tests.support.bundle_samples import NODE_KEY, gpu_item, snp_bundle, tdx_bundle
from transparency_log.common.errors import FormatError

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
    refuse(mutated(change), "bundle.schema", field)


def test_too_many_collateral_entries() -> None:
    names = [f"n{i}" for i in range(B.MAX_COLLATERAL_ENTRIES + 1)]

    def change(value: dict[str, Any]) -> None:
        value["collateral"].update({n: b"x" for n in names})
        value["evidence"][1]["ocsp"] = names[:8]
    refuse(mutated(change), "bundle.schema", "collateral")


def test_at_most_32_gpus() -> None:
    gpus = tuple(GpuEvidence(i, b"r", b"c") for i in range(B.MAX_GPU_ITEMS + 1))
    state = GpuState("on", 64)
    data = encode_value(to_cbor_value(snp_bundle(evidence=gpus, collateral={},
                                                  gpu_state=state)))
    refuse(data, "bundle.schema", "evidence")
    assert decode_bundle(encode_bundle(snp_bundle(evidence=gpus[:-1], collateral={},
                                                  gpu_state=state)))


def test_two_cpu_items_are_refused() -> None:
    def change(value: dict[str, Any]) -> None:
        value["evidence"].insert(1, copy.deepcopy(value["evidence"][0]))
    err = refuse(mutated(change), "bundle.schema", "evidence[1].type")
    assert "first and only CPU item" in err.message


def test_cpu_item_must_come_first() -> None:
    def change(value: dict[str, Any]) -> None:
        value["evidence"].append(value["evidence"].pop(0))
    refuse(mutated(change), "bundle.schema", "evidence[2].type")


def test_non_text_map_key() -> None:
    refuse(mutated(_set([1], b"x")), "bundle.schema", "bundle")


def test_top_level_not_a_map() -> None:
    refuse(encode_value([1, 2]), "bundle.schema", "bundle")


def test_tdx_unknown_collateral_role() -> None:
    value = to_cbor_value(tdx_bundle())
    value["evidence"][0]["collateral"]["pck_cert"] = "intel/pck_crl"
    refuse(encode_value(value), "bundle.schema", "evidence[0].collateral.pck_cert")


