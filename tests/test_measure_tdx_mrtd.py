"""TDX MRTD from TDVF metadata.

No real TDVF image with a known MRTD is among the project's vectors (tests/vectors/tdx has
quotes only), so these tests build a TDVF image (tests/support/tdvf_image.py) and derive its
MRTD independently: the whole TDH.MEM.PAGE.ADD / TDH.MR.EXTEND byte stream is written out
literally (TDX Module spec "TD Measurement" record layout) and hashed in one call.
"""

from __future__ import annotations

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
from tests.support.tdvf_image import IMAGE_SIZE, SECTIONS, build_image, expected_mrtd
from transparency_log.common.errors import FormatError


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
