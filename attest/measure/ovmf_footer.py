"""The OVMF/TDVF footer GUID table (OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm).

The table ends 32 bytes before the end of the firmware image with a footer entry
(GUID 96b582de-1fb2-45f7-baea-a366c55a082d) whose u16 size covers the whole table. Entries
are read backwards from there, each laid out as ``data || u16 size || GUID (16 bytes, mixed
endian as in EFI_GUID)`` where ``size`` counts the data plus the 18-byte trailer.
"""

from __future__ import annotations

import struct
import uuid

from transparency_log.common.errors import FormatError

__all__ = ["OVMF_TABLE_FOOTER_GUID", "footer_table", "metadata_header"]

OVMF_TABLE_FOOTER_GUID = uuid.UUID("96b582de-1fb2-45f7-baea-a366c55a082d")
_ENTRY_HEADER = 18  # u16 size + 16-byte GUID
_FOOTER_END_GAP = 32  # the table ends 32 bytes before the end of the image


def footer_table(data: bytes, *, check: str) -> dict[uuid.UUID, bytes]:
    """The GUID -> data map of the footer table; empty when the image has no footer GUID.

    FormatError (with ``check``) on sizes that do not fit, duplicates or trailing bytes.
    """
    if len(data) < _FOOTER_END_GAP + _ENTRY_HEADER:
        return {}
    end = len(data) - _FOOTER_END_GAP
    footer_at = end - _ENTRY_HEADER
    size = int.from_bytes(data[footer_at:footer_at + 2], "little")
    if uuid.UUID(bytes_le=data[footer_at + 2:end]) != OVMF_TABLE_FOOTER_GUID:
        return {}
    if not _ENTRY_HEADER <= size <= footer_at + _ENTRY_HEADER:
        raise FormatError(check, "bad footer table size", field="OVMF_TABLE_FOOTER", got=size)
    table: dict[uuid.UUID, bytes] = {}
    lo, hi = footer_at - (size - _ENTRY_HEADER), footer_at
    while hi - lo >= _ENTRY_HEADER:
        entry_size = int.from_bytes(data[hi - _ENTRY_HEADER:hi - 16], "little")
        guid = uuid.UUID(bytes_le=data[hi - 16:hi])
        if not _ENTRY_HEADER <= entry_size <= hi - lo:
            raise FormatError(check, "bad footer table entry size", field=str(guid),
                              got=entry_size)
        if guid in table:
            raise FormatError(check, "duplicate footer table entry", field=str(guid))
        table[guid] = data[hi - entry_size:hi - _ENTRY_HEADER]
        hi -= entry_size
    if hi != lo:
        raise FormatError(check, "trailing bytes in footer table", field="OVMF_TABLE_FOOTER",
                          got=hi - lo)
    return table


def metadata_header(data: bytes, offset_from_end: int, *, signature: bytes, item_size: int,
                    max_items: int, check: str, field: str) -> tuple[int, int]:
    """Check a firmware metadata header ``signature || u32 length || u32 version (= 1) ||
    u32 count`` found ``offset_from_end`` bytes before the end of ``data``, followed by
    ``count`` items of ``item_size`` bytes (the SEV "ASEV" and TDX "TDVF" descriptors).

    Returns ``(offset of the first item, count)``.
    """
    start = len(data) - offset_from_end
    if not 0 <= start <= len(data) - 16:
        raise FormatError(check, "metadata offset out of range", field=field,
                          got=offset_from_end)
    sig, length, version, count = struct.unpack_from("<4sIII", data, start)
    if sig != signature:
        raise FormatError(check, "bad metadata signature", field=f"{field}.Signature",
                          got=sig, want=signature)
    if version != 1:
        raise FormatError(check, "unknown metadata version", field=f"{field}.Version",
                          got=version, want=1)
    if not 0 < count <= max_items or length != 16 + item_size * count \
            or start + length > len(data):
        raise FormatError(check, "bad metadata length", field=f"{field}.Length", got=length,
                          want=16 + item_size * count)
    return start + 16, count
