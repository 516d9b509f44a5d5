"""The Intel TDX MRTD of a TDVF (OVMF IntelTdx) image, computed ahead of time.

MRTD is one SHA-384 over the stream of TD build operations the host VMM performs before
TDH.MR.FINALIZE (Intel TDX Module Base Architecture spec, "TD Measurement": TDH.MEM.PAGE.ADD
and TDH.MR.EXTEND). Each operation appends 128 bytes, and MR.EXTEND 256 more:

| operation        | 128-byte record                                             | then       |
|------------------|-------------------------------------------------------------|------------|
| TDH.MEM.PAGE.ADD | ``"MEM.PAGE.ADD"`` at 0x00, page GPA (u64 LE) at 0x10, zeros | nothing    |
| TDH.MR.EXTEND    | ``"MR.EXTEND"`` at 0x00, chunk GPA (u64 LE) at 0x10, zeros   | the chunk  |

(MR.EXTEND chunks are 256 bytes.)

Which pages are added and extended comes from the TDVF metadata (TDVF Design Guide §11,
"TDVF metadata"): the footer GUID table entry e47a6535-984a-4798-865e-4685a7bf8ec2 holds a
u32 offset from the end of the image to the descriptor ``"TDVF" || u32 length || u32
version (= 1) || u32 count`` followed by ``count`` 32-byte sections::

    u32 DataOffset, u32 RawDataSize, u64 MemoryAddress, u64 MemoryDataSize, u32 Type,
    u32 Attributes (bit 0 MR.EXTEND, bit 1 PAGE.AUG)

Sections in metadata order; every page of a section without PAGE.AUG is PAGE.ADDed; sections
with MR.EXTEND are extended in 256-byte chunks of their content (the image's
``DataOffset..+RawDataSize``, zero-filled to MemoryDataSize). The **order** of the two
depends on the host kernel: upstream Linux KVM (``KVM_TDX_INIT_MEM_REGION``) adds and then
extends one page at a time (:attr:`PageOrder.SINGLE`, the default); older TDX host stacks added a
whole section, then extended it (:attr:`PageOrder.TWO`).

No real TDVF image with a known MRTD is among the project's vectors, so the tests check this
module against a constructed image and an MRTD derived independently in the test.
"""

from __future__ import annotations

import enum
import hashlib
import struct
import uuid
from dataclasses import dataclass

from attest.measure.ovmf_footer import footer_table, metadata_header
from transparency_log.common.errors import FormatError

__all__ = [
    "TDX_METADATA_OFFSET_GUID",
    "PageOrder",
    "TdvfImage",
    "TdvfSection",
    "TdvfSectionType",
    "tdx_mrtd",
]

CHECK = "measure.tdx"
PAGE_SIZE = 0x1000
EXTEND_CHUNK = 0x100
TDX_METADATA_OFFSET_GUID = uuid.UUID("e47a6535-984a-4798-865e-4685a7bf8ec2")
ATTR_MR_EXTEND = 0x1
ATTR_PAGE_AUG = 0x2
MAX_SECTIONS = 64
MAX_SECTION_SIZE = 1 << 30  # 1 GiB: a TDVF section larger than that is malformed


class PageOrder(enum.StrEnum):
    """The order of PAGE.ADD and MR.EXTEND within a section."""

    SINGLE = "single-pass"  # add, then extend, page by page (upstream Linux KVM)
    TWO = "two-pass"  # add every page of the section, then extend them


class TdvfSectionType(enum.IntEnum):
    """TDVF / TD-Shim metadata section types."""

    BFV = 0
    CFV = 1
    TD_HOB = 2
    TEMP_MEM = 3
    PERM_MEM = 4
    PAYLOAD = 5
    PAYLOAD_PARAM = 6
    TD_INFO = 7


@dataclass(frozen=True)
class TdvfSection:
    data_offset: int
    raw_size: int
    gpa: int
    memory_size: int
    type: TdvfSectionType
    attributes: int

    @property
    def extend(self) -> bool:
        return bool(self.attributes & ATTR_MR_EXTEND)

    @property
    def added(self) -> bool:
        return not self.attributes & ATTR_PAGE_AUG


@dataclass(frozen=True)
class TdvfImage:
    data: bytes
    sections: tuple[TdvfSection, ...]

    @classmethod
    def parse(cls, data: bytes) -> TdvfImage:
        """Find and check the TDVF metadata; FormatError naming the field if malformed."""
        data = bytes(data)
        entry = footer_table(data, check=CHECK).get(TDX_METADATA_OFFSET_GUID)
        if entry is None or len(entry) < 4:
            raise FormatError(CHECK, "no TDX metadata offset in the footer table",
                              field="TDX_METADATA_OFFSET", want=str(TDX_METADATA_OFFSET_GUID))
        first, count = metadata_header(
            data, int.from_bytes(entry[-4:], "little"), signature=b"TDVF", item_size=32,
            max_items=MAX_SECTIONS, check=CHECK, field="TDVF")
        sections = tuple(_section(data, first + 32 * i, i) for i in range(count))
        return cls(data, sections)


def _section(data: bytes, off: int, i: int) -> TdvfSection:
    field = f"TDVF.Sections[{i}]"
    data_offset, raw, gpa, mem, kind, attrs = struct.unpack_from("<IIQQII", data, off)
    try:
        section_type = TdvfSectionType(kind)
    except ValueError:
        raise FormatError(CHECK, "unknown section type", field=f"{field}.Type",
                          got=kind) from None
    if attrs & ~(ATTR_MR_EXTEND | ATTR_PAGE_AUG):
        raise FormatError(CHECK, "reserved attribute bits set", field=f"{field}.Attributes",
                          got=hex(attrs))
    if gpa % PAGE_SIZE or mem % PAGE_SIZE or not 0 < mem <= MAX_SECTION_SIZE:
        raise FormatError(CHECK, "section not page aligned",
                          field=f"{field}.MemoryAddress", got=f"{gpa:#x}+{mem:#x}")
    if raw > mem or data_offset + raw > len(data):
        raise FormatError(CHECK, "raw data out of range", field=f"{field}.RawDataSize",
                          got=f"{data_offset:#x}+{raw:#x}", want=f"<= {mem:#x} within image")
    return TdvfSection(data_offset, raw, gpa, mem, section_type, attrs)


def _record(name: bytes, gpa: int) -> bytes:
    return name.ljust(16, b"\0") + struct.pack("<Q", gpa) + bytes(104)


def _page_add(h: hashlib._Hash, gpa: int) -> None:
    h.update(_record(b"MEM.PAGE.ADD", gpa))


def _extend_page(h: hashlib._Hash, gpa: int, page: bytes) -> None:
    for off in range(0, PAGE_SIZE, EXTEND_CHUNK):
        h.update(_record(b"MR.EXTEND", gpa + off))
        h.update(page[off:off + EXTEND_CHUNK])


def _content(image: TdvfImage, s: TdvfSection, off: int) -> bytes:
    """The page at ``off`` in the section: image bytes up to RawDataSize, then zeros."""
    end = min(off + PAGE_SIZE, s.raw_size)
    chunk = image.data[s.data_offset + off:s.data_offset + end] if off < end else b""
    return chunk.ljust(PAGE_SIZE, b"\0")


def tdx_mrtd(image: TdvfImage, *, order: PageOrder = PageOrder.SINGLE) -> bytes:
    """The 48-byte MRTD of a TD booted from ``image``."""
    order = PageOrder(order)
    h = hashlib.sha384()
    for s in image.sections:
        pages = range(0, s.memory_size, PAGE_SIZE)
        if order is PageOrder.TWO:
            for off in pages if s.added else ():
                _page_add(h, s.gpa + off)
            for off in pages if s.extend else ():
                _extend_page(h, s.gpa + off, _content(image, s, off))
            continue
        for off in pages:
            if s.added:
                _page_add(h, s.gpa + off)
            if s.extend:
                _extend_page(h, s.gpa + off, _content(image, s, off))
    return h.digest()
