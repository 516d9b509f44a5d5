"""The GPU report's hot parse (issue 15): every SPDM measurement block field and every opaque
TLV part is still read and checked, and a refusal names the field at fault (DSP0274 1.1
tables 45-47; docs/formats.md "NVIDIA GPU evidence"). Each case is built at run time from
blocks and TLVs, then broken in exactly one field."""

from __future__ import annotations

import pytest

from attest.formats.nvidia_opaque import (
    OpaqueField,
    OpaqueType,
    encode_string,
    encode_uint,
    parse_opaque,
)
from attest.formats.spdm_measurements import (
    MEASUREMENTS,
    SPDM_VERSION_11,
    GetMeasurementsRequest,
    MeasurementBlock,
    parse_report,
)
from transparency_log.common.errors import FormatError

REQUEST = GetMeasurementsRequest(param1=1, param2=0xFF, nonce=bytes(range(32)), slot_id=0)


def _report(record: bytes, count: int) -> bytes:
    """request || MEASUREMENTS with ``record`` as its MeasurementRecord (and an empty opaque
    list, a zero nonce and a zero signature)."""
    return (REQUEST.to_bytes()
            + bytes([SPDM_VERSION_11, MEASUREMENTS, 0, 0, count])
            + len(record).to_bytes(3, "little") + record
            + bytes(32) + (0).to_bytes(2, "little") + bytes(96))


def _blocks(n: int = 3) -> list[bytes]:
    return [MeasurementBlock(i + 1, 0x01, bytes([i]) * 48).to_bytes() for i in range(n)]


def test_blocks_decode_by_field() -> None:
    blocks = _blocks()
    parsed = parse_report(_report(b"".join(blocks), 3)).response.blocks
    assert parsed == tuple(MeasurementBlock(i + 1, 0x01, bytes([i]) * 48) for i in range(3))
    assert [(b.index, b.value_type, b.spec) for b in parsed] == [(1, 1, 1), (2, 1, 1), (3, 1, 1)]


def _with_block(i: int, block: bytes) -> bytes:
    blocks = _blocks()
    blocks[i] = block
    record = b"".join(blocks)
    return _report(record, 3)


@pytest.mark.parametrize("block, field, message", [
    (bytes([0, 1]) + (51).to_bytes(2, "little") + b"\x01" + (48).to_bytes(2, "little")
     + bytes(48), "MeasurementRecord[1].Index", "zero or repeated"),
    (bytes([1, 1]) + (51).to_bytes(2, "little") + b"\x01" + (48).to_bytes(2, "little")
     + bytes(48), "MeasurementRecord[1].Index", "zero or repeated"),
    (bytes([2, 0]) + (51).to_bytes(2, "little") + b"\x01" + (48).to_bytes(2, "little")
     + bytes(48), "MeasurementRecord[1].MeasurementSpecification", "DMTF"),
    (bytes([2, 1]) + (2).to_bytes(2, "little") + b"\x01\x00",
     "MeasurementRecord[1].MeasurementSize", "shorter than its header"),
    (bytes([2, 1]) + (51).to_bytes(2, "little") + b"\x01" + (47).to_bytes(2, "little")
     + bytes(48), "MeasurementRecord[1].DMTFSpecMeasurementValueSize", "disagrees"),
])
def test_each_block_field_is_checked(block: bytes, field: str, message: str) -> None:
    with pytest.raises(FormatError, match=message) as err:
        parse_report(_with_block(1, block))
    assert err.value.check == "gpu.report.format" and err.value.field == field


def test_truncated_blocks_are_refused_by_part() -> None:
    record = b"".join(_blocks())
    for cut, field in ((len(record) - 10, "MeasurementRecord[2].Measurement"),
                       (2 * 55 + 2, "MeasurementRecord[2].Index")):
        with pytest.raises(FormatError) as err:
            parse_report(_report(record[:cut], 3))
        assert err.value.field == field
    with pytest.raises(FormatError) as err:  # a block that ends 1 byte into its DMTF header
        parse_report(_report(record[:2 * 55] + bytes([3, 1, 1, 0, 1]), 3))
    assert err.value.field == "MeasurementRecord[2].MeasurementSize"


GOOD_TLVS = [OpaqueField(OpaqueType.DRIVER_VERSION, encode_string("550.90.07")),
             OpaqueField(OpaqueType.MSRSCNT, encode_uint(1, 4) + encode_uint(131, 4)),
             OpaqueField(OpaqueType.FEATURE_FLAG, encode_uint(2))]


def test_opaque_fields_decode_by_type_when_parsed() -> None:
    opaque = parse_opaque(b"".join(f.to_bytes() for f in GOOD_TLVS))
    assert opaque.fields == tuple(GOOD_TLVS)
    assert opaque.driver_version == "550.90.07"
    assert opaque.measurement_counts == (1, 131)
    assert opaque.feature_mode == "PPCIE"
    assert [f.name for f in opaque.fields] == ["DRIVER_VERSION", "MSRSCNT", "FEATURE_FLAG"]


@pytest.mark.parametrize("tail, field", [
    (b"\x03", "OpaqueData[3].DataType"),
    (b"\x03\x00\x05", "OpaqueData[3].DataSize"),
    (b"\x03\x00\x05\x00abc", "OpaqueData[3].Data"),
])
def test_truncated_opaque_tlv_is_refused_by_part(tail: bytes, field: str) -> None:
    with pytest.raises(FormatError) as err:
        parse_opaque(b"".join(f.to_bytes() for f in GOOD_TLVS) + tail)
    assert err.value.check == "gpu.report.opaque" and err.value.field == field


@pytest.mark.parametrize("field, message", [
    (OpaqueField(OpaqueType.DRIVER_VERSION, b"55\x0190\x00"), "NUL-padded ASCII"),
    (OpaqueField(OpaqueType.DRIVER_VERSION, b"550\x00\x7f"), "NUL-padded ASCII"),
    (OpaqueField(OpaqueType.PROJECT, b"G5\x7f0\x00"), "NUL-padded ASCII"),
    (OpaqueField(OpaqueType.MSRSCNT, b"\x01\x00\x00"), "not a list of u32"),
])
def test_each_opaque_field_is_decoded_at_parse(field: OpaqueField, message: str) -> None:
    with pytest.raises(FormatError, match=message) as err:
        parse_opaque(GOOD_TLVS[2].to_bytes() + field.to_bytes())
    assert err.value.check == "gpu.report.opaque"
