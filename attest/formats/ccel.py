"""The TDX guest event log: the CCEL ACPI table and the TCG2 crypto-agile event log.

Specs:
- ACPI 6.5, section 5.2.35 "Confidential Computing Event Log Table (CCEL)": the standard
  36-byte ACPI header, then CC Type (u8, 2 = TDX), CC Subtype (u8), Reserved (u16),
  Log Area Minimum Length (LAML, u64) and Log Area Start Address (LASA, u64): 56 bytes.
- TCG PC Client Platform Firmware Profile, rev. 1.05, section 10.2 "Event Log Format":
  the first record is a SHA-1 format TCG_PCR_EVENT carrying TCG_EfiSpecIdEvent
  ("Spec ID Event03"), which lists the digest algorithms and their sizes; every later
  record is a TCG_PCR_EVENT2 (index u32, type u32, digest count u32, (algId u16, digest)*,
  event size u32, event). In the CCEL the "PCR index" is a TDX measurement register index:
  0 = MRTD, 1..4 = RTMR0..3 (Intel TDX Virtual Firmware Design Guide, section 10).

The log area is larger than the log: the rest is padding of 0xFF (or 0x00) bytes. The
parser returns the events and the padding size; the replay is in verifier/tdx/rtmr.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from attest.formats.binary import Reader, require_size, u32le, u64le
from transparency_log.common.errors import FormatError

CHECK = "tdx.ccel.format"

ACPI_HEADER_SIZE = 36
CCEL_TABLE_SIZE = 56
CCEL_SIGNATURE = b"CCEL"
CC_TYPE_TDX = 2

SPEC_ID_SIGNATURE = b"Spec ID Event03\x00"
ALG_SHA1 = 0x0004
ALG_SHA256 = 0x000B
ALG_SHA384 = 0x000C
ALG_SHA512 = 0x000D
EV_NO_ACTION = 0x00000003

MAX_EVENTS = 4096
MAX_EVENT_SIZE = 1 << 20
MAX_ALGORITHMS = 8

EVENT_TYPE_NAMES = {
    0x00000001: "EV_POST_CODE",
    0x00000003: "EV_NO_ACTION",
    0x00000004: "EV_SEPARATOR",
    0x00000005: "EV_ACTION",
    0x00000006: "EV_EVENT_TAG",
    0x0000000D: "EV_IPL",
    0x80000001: "EV_EFI_VARIABLE_DRIVER_CONFIG",
    0x80000002: "EV_EFI_VARIABLE_BOOT",
    0x80000003: "EV_EFI_BOOT_SERVICES_APPLICATION",
    0x80000004: "EV_EFI_BOOT_SERVICES_DRIVER",
    0x80000007: "EV_EFI_ACTION",
    0x80000008: "EV_EFI_PLATFORM_FIRMWARE_BLOB",
    0x80000009: "EV_EFI_HANDOFF_TABLES",
    0x8000000A: "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
    0x8000000B: "EV_EFI_HANDOFF_TABLES2",
    0x800000E0: "EV_EFI_VARIABLE_AUTHORITY",
}


@dataclass(frozen=True)
class CcelTable:
    """The CCEL ACPI table (ACPI 6.5 section 5.2.35)."""

    revision: int
    oem_id: bytes
    oem_table_id: bytes
    oem_revision: int
    creator_id: bytes
    creator_revision: int
    cc_type: int
    cc_subtype: int
    log_area_minimum_length: int  # LAML
    log_area_start_address: int  # LASA

    def to_bytes(self) -> bytes:
        body = (self.cc_type.to_bytes(1, "little") + self.cc_subtype.to_bytes(1, "little")
                + bytes(2) + self.log_area_minimum_length.to_bytes(8, "little")
                + self.log_area_start_address.to_bytes(8, "little"))
        head = (CCEL_SIGNATURE + CCEL_TABLE_SIZE.to_bytes(4, "little")
                + self.revision.to_bytes(1, "little") + b"\x00" + self.oem_id
                + self.oem_table_id + self.oem_revision.to_bytes(4, "little")
                + self.creator_id + self.creator_revision.to_bytes(4, "little"))
        raw = bytearray(head + body)
        raw[9] = (-sum(raw)) & 0xFF
        return bytes(raw)


def parse_ccel_table(data: bytes) -> CcelTable:
    """Parse a CCEL table; signature, length, checksum and reserved bytes are checked."""
    require_size(data, CCEL_TABLE_SIZE, check=CHECK, field="CCEL")
    if data[0:4] != CCEL_SIGNATURE:
        raise FormatError(CHECK, "not a CCEL table", field="Signature", got=data[0:4],
                          want=CCEL_SIGNATURE)
    if u32le(data, 4) != CCEL_TABLE_SIZE:
        raise FormatError(CHECK, "wrong table length", field="Length", got=u32le(data, 4),
                          want=CCEL_TABLE_SIZE)
    if sum(data) & 0xFF:
        raise FormatError(CHECK, "ACPI checksum does not sum to zero", field="Checksum",
                          got=data[9])
    if data[38:40] != b"\x00\x00":
        raise FormatError(CHECK, "reserved bytes not zero", field="Reserved", got=data[38:40])
    return CcelTable(data[8], data[10:16], data[16:24], u32le(data, 24), data[28:32],
                     u32le(data, 32), data[36], data[37], u64le(data, 40), u64le(data, 48))


@dataclass(frozen=True)
class SpecIdEvent:
    """TCG_EfiSpecIdEvent: the algorithms (id -> digest size) every later event carries."""

    platform_class: int
    spec_version: tuple[int, int, int]  # minor, major, errata
    uintn_size: int
    algorithms: tuple[tuple[int, int], ...]
    vendor_info: bytes
    header_mr_index: int  # the header record's index field (0 or 1 in practice)


@dataclass(frozen=True)
class Event:
    """One TCG_PCR_EVENT2 record. ``mr_index`` 0 = MRTD, 1..4 = RTMR0..3."""

    mr_index: int
    event_type: int
    digests: tuple[tuple[int, bytes], ...]
    data: bytes

    @property
    def type_name(self) -> str:
        return EVENT_TYPE_NAMES.get(self.event_type, f"0x{self.event_type:08x}")

    def digest(self, alg: int) -> bytes | None:
        return next((d for a, d in self.digests if a == alg), None)

    def to_bytes(self) -> bytes:
        out = (self.mr_index.to_bytes(4, "little") + self.event_type.to_bytes(4, "little")
               + len(self.digests).to_bytes(4, "little"))
        for alg, dig in self.digests:
            out += alg.to_bytes(2, "little") + dig
        return out + len(self.data).to_bytes(4, "little") + self.data


@dataclass(frozen=True)
class EventLog:
    """A parsed crypto-agile event log; ``padding`` is the unused log area (all one byte)."""

    spec_id: SpecIdEvent
    events: tuple[Event, ...]
    padding: bytes = b""

    def to_bytes(self) -> bytes:
        s = self.spec_id
        body = (SPEC_ID_SIGNATURE + s.platform_class.to_bytes(4, "little")
                + bytes([s.spec_version[0], s.spec_version[1], s.spec_version[2], s.uintn_size])
                + len(s.algorithms).to_bytes(4, "little")
                + b"".join(a.to_bytes(2, "little") + n.to_bytes(2, "little")
                           for a, n in s.algorithms)
                + len(s.vendor_info).to_bytes(1, "little") + s.vendor_info)
        head = (s.header_mr_index.to_bytes(4, "little") + EV_NO_ACTION.to_bytes(4, "little")
                + bytes(20) + len(body).to_bytes(4, "little") + body)
        return head + b"".join(e.to_bytes() for e in self.events) + self.padding


def _parse_spec_id(r: Reader) -> SpecIdEvent:
    index = r.uint(4, "TCG_PCR_EVENT.PCRIndex")
    etype = r.uint(4, "TCG_PCR_EVENT.EventType")
    digest = r.take(20, "TCG_PCR_EVENT.Digest")
    if etype != EV_NO_ACTION or any(digest):
        raise FormatError(CHECK, "first record is not a Spec ID EV_NO_ACTION event",
                          field="TCG_PCR_EVENT.EventType", got=etype, want=EV_NO_ACTION)
    size = r.uint(4, "TCG_PCR_EVENT.EventSize")
    e = Reader(r.take(size, "TCG_EfiSpecIdEvent"), check=CHECK)
    sig = e.take(16, "TCG_EfiSpecIdEvent.signature")
    if sig != SPEC_ID_SIGNATURE:
        raise FormatError(CHECK, "not a crypto-agile log", field="TCG_EfiSpecIdEvent.signature",
                          got=sig, want=SPEC_ID_SIGNATURE)
    platform_class = e.uint(4, "platformClass")
    minor, major, errata, uintn = e.take(4, "specVersion")
    count = e.uint(4, "numberOfAlgorithms")
    if not 1 <= count <= MAX_ALGORITHMS:
        raise FormatError(CHECK, "bad algorithm count", field="numberOfAlgorithms", got=count,
                          want=f"1..{MAX_ALGORITHMS}")
    algs = tuple((e.uint(2, "algorithmId"), e.uint(2, "digestSize")) for _ in range(count))
    vendor = e.take(e.uint(1, "vendorInfoSize"), "vendorInfo")
    if e.remaining:
        raise FormatError(CHECK, "trailing bytes in the Spec ID event", field="TCG_EfiSpecIdEvent",
                          got=e.remaining, want=0)
    return SpecIdEvent(platform_class, (minor, major, errata), uintn, algs, vendor, index)


def parse_event_log(data: bytes) -> EventLog:
    """Parse a CCEL log area. Ends at the first event boundary followed only by 0xFF/0x00."""
    r = Reader(data, check=CHECK)
    spec = _parse_spec_id(r)
    sizes = dict(spec.algorithms)
    events: list[Event] = []
    while r.remaining:
        rest = r.data[r.pos:]
        if rest.count(rest[0]) == len(rest) and rest[0] in (0x00, 0xFF):
            break
        if len(events) >= MAX_EVENTS:
            raise FormatError(CHECK, "too many events", field="events", want=f"<= {MAX_EVENTS}")
        where = f"event[{len(events)}]"
        index = r.uint(4, f"{where}.PCRIndex")
        etype = r.uint(4, f"{where}.EventType")
        count = r.uint(4, f"{where}.Digests.count")
        if count != len(sizes):
            raise FormatError(CHECK, "digest count differs from the Spec ID event",
                              field=f"{where}.Digests.count", got=count, want=len(sizes))
        digests = []
        for _ in range(count):
            alg = r.uint(2, f"{where}.AlgorithmId")
            if alg not in sizes:
                raise FormatError(CHECK, "digest algorithm not in the Spec ID event",
                                  field=f"{where}.AlgorithmId", got=f"0x{alg:04x}")
            digests.append((alg, r.take(sizes[alg], f"{where}.Digest")))
        size = r.uint(4, f"{where}.EventSize")
        if size > MAX_EVENT_SIZE:
            raise FormatError(CHECK, "event too large", field=f"{where}.EventSize", got=size,
                              want=f"<= {MAX_EVENT_SIZE}")
        events.append(Event(index, etype, tuple(digests), r.take(size, f"{where}.Event")))
    return EventLog(spec, tuple(events), r.rest())
