"""SPDM measurement report, NVIDIA opaque TLVs and RIM structure: strict parse + round trip."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attest.formats.nvidia_opaque import (
    Kind,
    OpaqueData,
    OpaqueField,
    OpaqueType,
    encode_string,
    encode_vbios_version,
    format_vbios_version,
    kind_of,
    parse_opaque,
)
from attest.formats.nvidia_rim import parse_rim, rim_to_xml
from attest.formats.spdm_measurements import (
    REQUEST_SIZE,
    GetMeasurementsRequest,
    MeasurementBlock,
    MeasurementsResponse,
    SpdmReport,
    parse_report,
    parse_report_text,
    parse_request,
)
from tests.support.vectors import vector_path
from transparency_log.common.errors import FormatError

NONCE = bytes.fromhex("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb")
FWID = bytes.fromhex("f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb"
                     "5cdfdb3055ee051762b1f75d")


def real_report() -> bytes:
    return parse_report_text(vector_path("nvidia", "nvtrust", "hopperAttestationReport.txt")
                             .read_bytes())


def test_real_report_parses_as_manifest() -> None:
    data = real_report()
    assert len(data) == 4117
    report = parse_report(data)
    assert report.request.nonce == NONCE
    assert report.request.param2 == 0xFF and report.request.signature_requested
    assert len(report.response.blocks) == 64
    assert all(len(b.value) == 48 for b in report.response.blocks)
    assert [b.index for b in report.response.blocks] == list(range(1, 65))
    assert report.trailing == b""
    opaque = parse_opaque(report.response.opaque_data)
    assert opaque.driver_version == "550.90.07"
    assert opaque.vbios_version == "96.00.9F.00.01"
    assert opaque.project == "1010" and opaque.project_sku == "0200"
    assert opaque.chip_sku == "882"
    assert opaque.get(OpaqueType.BOARD_ID) == bytes.fromhex("b1030000")
    assert opaque.nvdec0_disabled and opaque.protected_pcie_status == 0x55
    assert opaque.fwid == FWID
    assert len(opaque.measurement_counts or ()) == 64


def test_round_trip_is_byte_exact() -> None:
    data = real_report()
    report = parse_report(data)
    assert report.to_bytes() == data
    assert report.signed_bytes() == data[:-96]
    opaque = parse_opaque(report.response.opaque_data)
    assert opaque.to_bytes() == report.response.opaque_data


def test_trailing_bytes_are_kept_and_counted() -> None:
    data = real_report() + b"\x00" * 7
    report = parse_report(data)
    assert report.trailing == b"\x00" * 7
    assert report.to_bytes() == data


def test_hex_and_binary_inputs() -> None:
    data = real_report()
    assert parse_report_text(data) == data
    assert parse_report_text(data.hex().upper().encode() + b"\n") == data
    with pytest.raises(FormatError):
        parse_report_text(b"abc")


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d[:36], "report"),
    (lambda d: b"\x10" + d[1:], "request.SPDMVersion"),
    (lambda d: d[:1] + b"\xe1" + d[2:], "request.RequestResponseCode"),
    (lambda d: d[:36] + b"\x10" + d[37:], "request.SlotIDParam"),
    (lambda d: d[:38] + b"\x61" + d[39:], "response.RequestResponseCode"),
    (lambda d: d[:41] + b"\x41" + d[42:], "MeasurementRecord[64].Index"),
    (lambda d: d[:41] + b"\x3f" + d[42:], "MeasurementRecordLength"),
    (lambda d: d[:46] + b"\x02" + d[47:], "MeasurementRecord[0].MeasurementSpecification"),
    (lambda d: d[:-1], "Signature"),
])
def test_malformed_reports_are_format_errors(mutate, field) -> None:
    with pytest.raises(FormatError) as err:
        parse_report(mutate(real_report()))
    assert err.value.field == field
    assert err.value.check == "gpu.report.format"


def test_repeated_block_index_is_refused() -> None:
    data = bytearray(real_report())
    data[REQUEST_SIZE + 8 + 51 + 4] = 1  # block 2 claims index 1
    with pytest.raises(FormatError, match="repeated"):
        parse_report(bytes(data))


def test_request_parse_round_trip() -> None:
    req = parse_request(real_report()[:REQUEST_SIZE])
    assert req.to_bytes() == real_report()[:REQUEST_SIZE]
    with pytest.raises(FormatError):
        parse_request(b"\x11\xe0")


def test_opaque_strictness() -> None:
    good = OpaqueField(3, encode_string("550.90.07")).to_bytes()
    assert parse_opaque(good).driver_version == "550.90.07"
    with pytest.raises(FormatError, match="repeated"):
        parse_opaque(good + good)
    with pytest.raises(FormatError):
        parse_opaque(good[:-1])
    with pytest.raises(FormatError):
        parse_opaque(OpaqueField(3, b"55\x00x").to_bytes()).driver_version
    unknown = OpaqueField(999, b"\x01\x02").to_bytes()
    parsed = parse_opaque(unknown)
    assert parsed.fields[0].name == "UNKNOWN_999" and parsed.to_bytes() == unknown


def test_vbios_version_encoding_round_trip() -> None:
    raw = encode_vbios_version("96.00.9F.00.01")
    assert raw == bytes.fromhex("009f009601000000")
    assert format_vbios_version(raw) == "96.00.9F.00.01"
    with pytest.raises(ValueError):
        encode_vbios_version("96.00")


@pytest.mark.parametrize("name, version, active", [
    ("Driver_RIM_test_no_gpu.swidtag", "545.00", 21),
    ("1010_0200_882_96005E0001_test_no_gpu.swidtag", "96.00.5E.00.01", 12),
    ("1010_0200_882_96005E0001_PROD.swidtag", "96.00.5E.00.01", 12),
])
def test_real_rims_parse_and_round_trip(name, version, active) -> None:
    rim = parse_rim(vector_path("nvidia", "nvtrust", name).read_bytes())
    assert rim.version == version and rim.product == "GH100" and rim.manufacturer_id == "5703"
    assert len(rim.active()) == active
    assert parse_rim(rim_to_xml(rim)) == rim


def test_rim_alternatives_are_all_kept() -> None:
    rim = parse_rim(vector_path("nvidia", "nvtrust", "Driver_RIM_test_no_gpu.swidtag")
                    .read_bytes())
    assert len(rim.active()[35].alternatives) == 2


@pytest.mark.parametrize("doc, match", [
    (b'<!DOCTYPE x [<!ENTITY a "b">]><x/>', "DTD"),
    (b"<x", "well-formed"),
    (b"<x/>", "SWID"),
])
def test_rim_refusals(doc, match) -> None:
    with pytest.raises(FormatError, match=match):
        parse_rim(doc)


def test_rim_hash_count_must_match_alternatives() -> None:
    data = vector_path("nvidia", "nvtrust", "Driver_RIM_test_no_gpu.swidtag").read_bytes()
    bad = data.replace(b'index="7" active="True" alternatives="1"',
                       b'index="7" active="True" alternatives="2"', 1)
    with pytest.raises(FormatError, match="Hash1"):
        parse_rim(bad)
    bad = data.replace(b'index="7" active="True"', b'index="07" active="True"', 1)
    with pytest.raises(FormatError, match="canonical"):
        parse_rim(bad)


# --- property: whatever we serialize parses back to the same value --------------------------

blocks = st.lists(st.tuples(st.integers(0, 255), st.binary(min_size=0, max_size=64)),
                  max_size=12).map(lambda items: tuple(
                      MeasurementBlock(index=i + 1, value_type=t, value=v)
                      for i, (t, v) in enumerate(items)))
# Raw-kind types only: typed fields (strings, integers, lists) are decoded strictly and have
# their own tests (tests/test_gpu_opaque.py).
raw_types = st.integers(0, 0xFFFF).filter(lambda k: kind_of(k) is Kind.BYTES)
opaque = st.dictionaries(raw_types, st.binary(max_size=40), max_size=8).map(
    lambda d: OpaqueData(tuple(OpaqueField(k, v) for k, v in d.items())))


@settings(max_examples=60, deadline=None)
@given(blocks=blocks, opaque=opaque, nonce=st.binary(min_size=32, max_size=32),
       rnonce=st.binary(min_size=32, max_size=32), sig=st.binary(min_size=96, max_size=96),
       trailing=st.binary(max_size=8), p1=st.integers(0, 255), slot=st.integers(0, 15))
def test_report_round_trip_property(blocks, opaque, nonce, rnonce, sig, trailing, p1,
                                    slot) -> None:
    report = SpdmReport(
        GetMeasurementsRequest(param1=p1, param2=0xFF, nonce=nonce, slot_id=slot),
        MeasurementsResponse(param1=0, param2=0, blocks=blocks, nonce=rnonce,
                             opaque_data=opaque.to_bytes(), signature=sig),
        trailing)
    data = report.to_bytes()
    parsed = parse_report(data)
    assert parsed == report and parsed.to_bytes() == data
    assert parsed.signed_bytes() == report.signed_bytes()
    assert parse_opaque(parsed.response.opaque_data) == opaque
