"""SEV-SNP extended-report certificate table (GHCB spec 56421, "SNP Extended Guest Request",
certificate table; also what configfs-tsm returns as ``auxblob`` for provider sev_guest).

Layout: a sequence of 24-byte entries ``GUID (16 bytes, RFC 4122 byte order) ‖ offset (u32 LE)
‖ length (u32 LE)``, terminated by an all-zero entry; offsets are from the start of the table
and point after the terminator. The data area may be padded (it is page-sized), so bytes no
entry covers are allowed. Parsing is strict otherwise: ranges in bounds and past the header,
no duplicate GUIDs, at most :data:`MAX_ENTRIES` entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from attest.formats.binary import u32le
from transparency_log.common.errors import FormatError

CHECK = "snp.certtable.format"
ENTRY_SIZE = 24
MAX_ENTRIES = 64


def _guid(text: str) -> bytes:
    return bytes.fromhex(text.replace("-", ""))


VCEK_GUID = _guid("63da758d-e664-4564-adc5-f4b93be8accd")
VLEK_GUID = _guid("a8074bc2-a25a-483e-aae6-39c045a0b8a1")
ASK_GUID = _guid("4ab7b379-bbac-4fe4-a02f-05aef327c782")  # also carries the ASVK
ARK_GUID = _guid("c0b406a4-a803-4952-9743-3fb6014cd0ae")
GUID_NAMES = {VCEK_GUID: "VCEK", VLEK_GUID: "VLEK", ASK_GUID: "ASK", ARK_GUID: "ARK"}
NAME_GUIDS = {v: k for k, v in GUID_NAMES.items()}


def guid_text(guid: bytes) -> str:
    h = guid.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class CertTableEntry:
    guid: bytes
    data: bytes

    @property
    def name(self) -> str:
        """VCEK, VLEK, ASK, ARK, or the GUID's text for any other entry."""
        return GUID_NAMES.get(self.guid, guid_text(self.guid))


@dataclass(frozen=True)
class CertTable:
    entries: tuple[CertTableEntry, ...] = ()

    def get(self, name: str) -> bytes | None:
        """The certificate for VCEK/VLEK/ASK/ARK (or a GUID's text), or None."""
        guid = NAME_GUIDS.get(name) or _guid(name)
        return next((e.data for e in self.entries if e.guid == guid), None)


def parse_cert_table(data: bytes) -> CertTable:
    """Parse a certificate table; empty input is an empty table."""
    data = bytes(data)
    if not data:
        return CertTable()
    headers: list[tuple[bytes, int, int]] = []
    pos = 0
    while True:
        if pos + ENTRY_SIZE > len(data):
            raise FormatError(CHECK, "table not terminated by an all-zero entry",
                              field="entry", got=len(headers), want="terminator")
        guid = data[pos:pos + 16]
        offset, length = u32le(data, pos + 16), u32le(data, pos + 20)
        pos += ENTRY_SIZE
        if not any(guid) and offset == 0 and length == 0:
            break
        if len(headers) >= MAX_ENTRIES:
            raise FormatError(CHECK, "too many entries", field="entry",
                              got=len(headers) + 1, want=f"<= {MAX_ENTRIES}")
        if any(g == guid for g, _, _ in headers):
            raise FormatError(CHECK, "duplicate GUID", field=f"entry[{len(headers)}].guid",
                              got=guid_text(guid))
        headers.append((guid, offset, length))
    entries = []
    for i, (guid, offset, length) in enumerate(headers):
        if offset < pos or offset + length > len(data) or length == 0:
            raise FormatError(CHECK, "entry range outside the data area",
                              field=f"entry[{i}].offset", got=f"{offset}+{length}",
                              want=f"within [{pos}, {len(data)}], non-empty")
        entries.append(CertTableEntry(guid, data[offset:offset + length]))
    return CertTable(tuple(entries))


def serialize_cert_table(table: CertTable) -> bytes:
    """The table in ABI form (no padding); the inverse of :func:`parse_cert_table`."""
    if not table.entries:
        return b""
    header_size = (len(table.entries) + 1) * ENTRY_SIZE
    head = bytearray()
    body = bytearray()
    for e in table.entries:
        if len(e.guid) != 16:
            raise FormatError(CHECK, "GUID must be 16 bytes", field="guid", got=len(e.guid),
                              want=16)
        head += e.guid + (header_size + len(body)).to_bytes(4, "little")
        head += len(e.data).to_bytes(4, "little")
        body += e.data
    head += bytes(ENTRY_SIZE)
    out = bytes(head + body)
    parse_cert_table(out)
    return out
