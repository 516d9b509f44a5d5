"""TDX MRTD from TDVF metadata.

No real TDVF image with a known MRTD is among the project's vectors (tests/vectors/tdx has
quotes only), so these tests build a TDVF image here and derive its MRTD independently: the
whole TDH.MEM.PAGE.ADD / TDH.MR.EXTEND byte stream is written out literally (TDX Module spec
"TD Measurement" record layout) and hashed in one call.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from attest.cli import main
from attest.measure.tdx_mrtd import (
    PageOrder,
    TdvfImage,
    TdvfSectionType,
    tdx_mrtd,
)
from transparency_log.common.errors import FormatError

FOOTER_GUID = uuid.UUID("96b582de-1fb2-45f7-baea-a366c55a082d").bytes_le
METADATA_GUID = uuid.UUID("e47a6535-984a-4798-865e-4685a7bf8ec2").bytes_le
IMAGE_SIZE = 0x3000
META_AT = 0x2800
BFV_GPA = 0x1_0000_0000 - IMAGE_SIZE

# (DataOffset, RawDataSize, MemoryAddress, MemoryDataSize, Type, Attributes)
SECTIONS = [
    (0, IMAGE_SIZE, BFV_GPA, IMAGE_SIZE, 0, 1),  # BFV, MR.EXTEND
    (0x1000, 0x1000, 0xFF00_0000, 0x1000, 1, 0),  # CFV, added only
    (0, 0, 0x80_9000, 0x2000, 2, 0),  # TD_HOB
    (0, 0, 0x80_B000, 0x1000, 3, 0),  # TEMP_MEM
    (0, 0, 0x1_0000_0000, 0x4000, 4, 2),  # PERM_MEM, PAGE.AUG: not measured
    (0x800, 0x800, 0x90_0000, 0x2000, 5, 1),  # PAYLOAD: extended, zero-filled past raw
]


def build_image(sections=SECTIONS, *, signature: bytes = b"TDVF", version: int = 1) -> bytes:
    image = bytearray((i * 7 + 3) & 0xFF for i in range(IMAGE_SIZE))
    desc = struct.pack("<4sIII", signature, 16 + 32 * len(sections), version, len(sections))
    desc += b"".join(struct.pack("<IIQQII", *s) for s in sections)
    image[META_AT:META_AT + len(desc)] = desc
    entry = struct.pack("<I", IMAGE_SIZE - META_AT) + struct.pack("<H", 22) + METADATA_GUID
    footer = struct.pack("<H", 22 + 18) + FOOTER_GUID
    table = entry + footer
    image[IMAGE_SIZE - 32 - len(table):IMAGE_SIZE - 32] = table
    return bytes(image)


def expected_mrtd(image: bytes, two_pass: bool) -> bytes:
    """The byte stream written out literally, hashed in one go."""
    stream = b""

    def add(gpa: int) -> bytes:
        return b"MEM.PAGE.ADD\0\0\0\0" + gpa.to_bytes(8, "little") + b"\0" * 104

    def extend(gpa: int, chunk: bytes) -> bytes:
        assert len(chunk) == 256
        return b"MR.EXTEND" + b"\0" * 7 + gpa.to_bytes(8, "little") + b"\0" * 104 + chunk

    for off, raw, gpa, mem, _kind, attrs in SECTIONS:
        memory = image[off:off + raw] + b"\0" * (mem - raw)
        adds = [add(gpa + p) for p in range(0, mem, 4096)] if not attrs & 2 else []
        exts = [b"".join(extend(gpa + p + c, memory[p + c:p + c + 256])
                         for c in range(0, 4096, 256))
                for p in range(0, mem, 4096)] if attrs & 1 else []
        if two_pass:
            stream += b"".join(adds) + b"".join(exts)
        else:
            for i in range(mem // 4096):
                stream += (adds[i] if adds else b"") + (exts[i] if exts else b"")
    return hashlib.sha384(stream).digest()


def test_parse_sections() -> None:
    image = TdvfImage.parse(build_image())
    assert [s.type for s in image.sections] == [
        TdvfSectionType.BFV, TdvfSectionType.CFV, TdvfSectionType.TD_HOB,
        TdvfSectionType.TEMP_MEM, TdvfSectionType.PERM_MEM, TdvfSectionType.PAYLOAD]
    assert image.sections[0].extend and image.sections[0].added
    assert not image.sections[4].added


@pytest.mark.parametrize("order", list(PageOrder))
def test_mrtd_matches_independent_derivation(order: PageOrder) -> None:
    data = build_image()
    got = tdx_mrtd(TdvfImage.parse(data), order=order)
    assert got == expected_mrtd(data, two_pass=order is PageOrder.TWO)


def test_orders_differ_and_content_matters() -> None:
    data = build_image()
    image = TdvfImage.parse(data)
    assert tdx_mrtd(image, order=PageOrder.SINGLE) != tdx_mrtd(image, order=PageOrder.TWO)
    flipped = bytearray(data)
    flipped[0x10] ^= 1  # inside the extended BFV
    assert tdx_mrtd(TdvfImage.parse(bytes(flipped))) != tdx_mrtd(image)
    with pytest.raises(ValueError):
        tdx_mrtd(image, order="other")


def _with_section(i: int, **changes: int) -> bytes:
    names = ["off", "raw", "gpa", "mem", "kind", "attrs"]
    sections = [list(s) for s in SECTIONS]
    for name, value in changes.items():
        sections[i][names.index(name)] = value
    return build_image([tuple(s) for s in sections])


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (build_image(signature=b"TDVX"), "TDVF.Signature"),
        (build_image(version=2), "TDVF.Version"),
        (_with_section(2, kind=9), "TDVF.Sections[2].Type"),
        (_with_section(1, attrs=4), "TDVF.Sections[1].Attributes"),
        (_with_section(3, gpa=0x80B800), "TDVF.Sections[3].MemoryAddress"),
        (_with_section(3, mem=0), "TDVF.Sections[3].MemoryAddress"),
        (_with_section(5, raw=0x3000), "TDVF.Sections[5].RawDataSize"),
        (_with_section(1, off=0x2800), "TDVF.Sections[1].RawDataSize"),
        (bytes(IMAGE_SIZE), "TDX_METADATA_OFFSET"),
    ],
)
def test_parse_refuses(data: bytes, field: str) -> None:
    with pytest.raises(FormatError) as err:
        TdvfImage.parse(data)
    assert err.value.check == "measure.tdx"
    assert err.value.field == field


def test_cli(tmp_path: Path) -> None:
    path = tmp_path / "tdvf.fd"
    path.write_bytes(build_image())
    result = CliRunner().invoke(main, ["measure", "tdx", "--tdvf", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == expected_mrtd(build_image(), two_pass=False).hex()
    result = CliRunner().invoke(main, ["measure", "tdx", "--tdvf", str(path), "--order",
                                       "two-pass"])
    assert result.output.strip() == expected_mrtd(build_image(), two_pass=True).hex()
