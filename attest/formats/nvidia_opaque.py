"""NVIDIA's OpaqueData in the SPDM MEASUREMENTS response: a list of TLVs, each decoded by type.

Each field is ``DataType u16le | DataSize u16le | Data`` (docs/formats.md "Opaque data").
Every field is decoded by the kind its type has in NVIDIA's reference verifiers; a malformed
field is a FormatError (``gpu.report.opaque``) naming it. Unknown types are kept raw (forward
compatible) and shown as hex; every TLV must be complete, a type may appear only once, and
there are at most :data:`MAX_FIELDS` of them.

Sources of the table (facts only; read 2026, no code carried over):

- NVIDIA/nvtrust ``guest_tools/gpu_verifiers/local_gpu_verifier/src/verifier/attestation/
  spdm_msrt_resp_msg.py`` (commit 028173093d43), class ``OpaqueData``: the ids 1-25, 32-36 and
  255 (``OPAQUE_DATA_TYPES``); MSRSCNT is a list of u32le (4-byte elements), SWITCH_PDI a list
  of 8-byte PDIs; OPAQUE_DATA_VERSION and FEATURE_FLAG are little-endian integers of the
  field's size; FEATURE_FLAG maps 0 -> SPT, 1 -> MPT, 2 -> PPCIE (``parse_feature_flag``);
  CHIP_INFO is a NUL-terminated string (``parse_chip_info``). Its ``cc_admin.py`` /
  ``cc_admin_utils.py`` read DRIVER_VERSION, PROJECT, PROJECT_SKU and CHIP_SKU as
  NUL-terminated ASCII, VBIOS_VERSION as 8 bytes (``utils.format_vbios_version``), compare
  NVDEC0_STATUS with 0x55 (disabled; 0xAA enabled, ``config.NVDEC_STATUS``), read the feature
  flag only when OPAQUE_DATA_VERSION >= 1 (``config.MIN_OPAQUE_DATA_VERSION_TO_SUPPORT_*``)
  and refuse a node whose GPUs mix SPT and MPT.
- NVIDIA/attestation-sdk ``nv-attestation-sdk-cpp`` (commit 73c032ebff68),
  ``gpu_opaque_data_parser.hpp/.cpp``: the same ids and kinds (everything else is a byte
  vector); OPAQUE_DATA_VERSION at most 8 bytes, highest known version 1; FEATURE_FLAG read as
  a little-endian integer of at most 8 bytes. Its ``evidence.h`` enumerates the feature flag
  as MPT = 0, SPT = 1, PPCIE = 2, which disagrees with nvtrust for 0 and 1 (both agree on
  PPCIE = 2); we follow nvtrust and show the raw number next to the name.
- Real H100 reports: nvtrust ``samples/hopperAttestationReport.txt`` (driver 550.90.07, no
  version field) and attestation-sdk ``unit-tests/testdata/evidence_hopper_590_12.json``
  (driver 590.12: OPAQUE_DATA_VERSION = ``01 00``, FEATURE_FLAG = ``02 00`` PPCIE, SWITCH_PDI
  of 18 PDIs, no CHIP_INFO, which NVIDIA reads on Blackwell and later only).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum, IntEnum
from functools import cached_property
from typing import NoReturn

from attest.formats.binary import Reader
from transparency_log.common.errors import FormatError

CHECK = "gpu.report.opaque"
MAX_FIELDS = 64
NVDEC0_DISABLED = 0x55
NVDEC0_ENABLED = 0xAA
PROTECTED_PCIE_ENABLED = 0x55
MAX_INT_SIZE = 8  # OPAQUE_DATA_VERSION / FEATURE_FLAG (attest-sdk MAX_*_SIZE)
MSRSCNT_ELEMENT_SIZE = 4
PDI_SIZE = 8
VBIOS_VERSION_SIZE = 8
LATEST_OPAQUE_DATA_VERSION = 1  # the highest version whose fields we know (both references)


class OpaqueType(IntEnum):
    """OpaqueData field types (NVIDIA)."""

    CERT_ISSUER_NAME = 1
    CERT_AUTHORITY_KEY_IDENTIFIER = 2
    DRIVER_VERSION = 3
    GPU_INFO = 4
    SKU = 5
    VBIOS_VERSION = 6
    MANUFACTURER_ID = 7
    TAMPER_DETECTION = 8
    SMC = 9
    VPR = 10
    NVDEC0_STATUS = 11
    MSRSCNT = 12
    CPRINFO = 13
    BOARD_ID = 14
    CHIP_SKU = 15
    CHIP_SKU_MOD = 16
    PROJECT = 17
    PROJECT_SKU = 18
    PROJECT_SKU_MOD = 19
    FWID = 20
    PROTECTED_PCIE_STATUS = 21
    SWITCH_PDI = 22
    FLOORSWEPT_PORTS = 23
    POSITION_ID = 24
    LOCK_SWITCH_STATUS = 25
    GPU_LINK_CONN = 32
    SYS_ENABLE_STATUS = 33
    OPAQUE_DATA_VERSION = 34
    CHIP_INFO = 35
    FEATURE_FLAG = 36
    INVALID = 255


class FeatureFlag(IntEnum):
    """FEATURE_FLAG values (nvtrust): single-GPU passthrough, multi-GPU passthrough, protected
    PCIe."""

    SPT = 0
    MPT = 1
    PPCIE = 2


class Kind(Enum):
    """How a field's Data is decoded."""

    BYTES = "bytes"          # kept raw, shown as hex
    STRING = "string"        # printable ASCII, then NULs only
    VBIOS = "vbios"          # 8 bytes b0 b1 b2 b3 b4 00 00 00 -> b3.b2.b1.b0.b4
    STATUS = "status"        # one byte (0x55 / 0xAA)
    UINT = "uint"            # little-endian unsigned, 1..8 bytes
    U32_LIST = "u32-list"    # u32le elements
    PDI_LIST = "pdi-list"    # 8-byte elements


FIELD_KINDS: dict[int, Kind] = {
    OpaqueType.DRIVER_VERSION: Kind.STRING,
    OpaqueType.VBIOS_VERSION: Kind.VBIOS,
    OpaqueType.NVDEC0_STATUS: Kind.STATUS,
    OpaqueType.MSRSCNT: Kind.U32_LIST,
    OpaqueType.CHIP_SKU: Kind.STRING,
    OpaqueType.CHIP_SKU_MOD: Kind.STRING,
    OpaqueType.PROJECT: Kind.STRING,
    OpaqueType.PROJECT_SKU: Kind.STRING,
    OpaqueType.PROJECT_SKU_MOD: Kind.STRING,
    OpaqueType.PROTECTED_PCIE_STATUS: Kind.STATUS,
    OpaqueType.SWITCH_PDI: Kind.PDI_LIST,
    OpaqueType.OPAQUE_DATA_VERSION: Kind.UINT,
    OpaqueType.CHIP_INFO: Kind.STRING,
    OpaqueType.FEATURE_FLAG: Kind.UINT,
}
"""Every type not listed (1, 2, 4, 5, 7-10, 13, 14, 20, 23-25, 32, 33, 255, and unknown
ones) is :attr:`Kind.BYTES`, as in both references."""

Decoded = str | int | tuple[int, ...] | tuple[bytes, ...] | bytes


def kind_of(field_type: int) -> Kind:
    return FIELD_KINDS.get(field_type, Kind.BYTES)


_TYPE_NAMES: dict[int, str] = {t.value: t.name for t in OpaqueType}


def type_name(field_type: int) -> str:
    name = _TYPE_NAMES.get(field_type)
    return name if name is not None else f"UNKNOWN_{field_type}"


def feature_mode_name(value: int) -> str:
    """``SPT`` / ``MPT`` / ``PPCIE``, or ``UNKNOWN(n)`` for a value no reference defines."""
    try:
        return FeatureFlag(value).name
    except ValueError:
        return f"UNKNOWN({value})"


@dataclass(frozen=True)
class OpaqueField:
    type: int
    value: bytes

    @property
    def name(self) -> str:
        return type_name(self.type)

    @property
    def kind(self) -> Kind:
        return kind_of(self.type)

    @cached_property
    def _decoded(self) -> Decoded:
        # Parsed once per field (issue 15): a field is immutable bytes, so its decoding is
        # too; a FormatError is not cached and is raised again on the next call.
        return decode_value(self.kind, self.value, self.name)

    def decode(self) -> Decoded:
        """The Data decoded by the field's kind (FormatError ``gpu.report.opaque`` if not)."""
        return self._decoded

    @classmethod
    def _parsed(cls, field_type: int, value: bytes, decoded: Decoded) -> OpaqueField:
        """A field :func:`parse_opaque` has decoded: born with its decoding, as the cached
        property holds it after a first :meth:`decode` (the instance is frozen otherwise)."""
        f = object.__new__(cls)
        f.__dict__.update(type=field_type, value=value, _decoded=decoded)
        return f

    def show(self) -> str:
        """The decoded value as one line of text (for transcripts and the CLI)."""
        value = self.decode()
        if self.type == OpaqueType.FEATURE_FLAG:
            assert isinstance(value, int)
            return f"{feature_mode_name(value)} ({value})"
        if self.kind is Kind.STATUS:
            assert isinstance(value, int)
            return f"0x{value:02x}"
        if self.kind is Kind.U32_LIST:
            assert isinstance(value, tuple)
            return ",".join(str(v) for v in value)
        if self.kind is Kind.PDI_LIST:
            assert isinstance(value, tuple)
            return " ".join(bytes(v).hex() for v in value)
        return value.hex() if isinstance(value, bytes) else str(value)

    def to_bytes(self) -> bytes:
        return (self.type.to_bytes(2, "little") + len(self.value).to_bytes(2, "little")
                + self.value)


@dataclass(frozen=True)
class OpaqueData:
    """The parsed TLVs, in wire order, with typed accessors for the fields we judge."""

    fields: tuple[OpaqueField, ...]

    @cached_property
    def _by_type(self) -> dict[int, OpaqueField]:
        out: dict[int, OpaqueField] = {}
        for f in self.fields:
            out.setdefault(f.type, f)  # the first of a type, as a scan in wire order finds
        return out

    def field(self, kind: OpaqueType) -> OpaqueField | None:
        return self._by_type.get(kind)

    def get(self, kind: OpaqueType) -> bytes | None:
        """The raw Data of a field, or None when absent."""
        f = self.field(kind)
        return None if f is None else f.value

    def decoded(self, kind: OpaqueType) -> Decoded | None:
        f = self.field(kind)
        return None if f is None else f.decode()

    def text(self, kind: OpaqueType) -> str | None:
        value = self.decoded(kind)
        assert value is None or isinstance(value, str), kind
        return value

    def number(self, kind: OpaqueType) -> int | None:
        value = self.decoded(kind)
        assert value is None or isinstance(value, int), kind
        return value

    @property
    def driver_version(self) -> str | None:
        return self.text(OpaqueType.DRIVER_VERSION)

    @property
    def vbios_version(self) -> str | None:
        return self.text(OpaqueType.VBIOS_VERSION)

    @property
    def project(self) -> str | None:
        return self.text(OpaqueType.PROJECT)

    @property
    def project_sku(self) -> str | None:
        return self.text(OpaqueType.PROJECT_SKU)

    @property
    def chip_sku(self) -> str | None:
        return self.text(OpaqueType.CHIP_SKU)

    @property
    def chip_info(self) -> str | None:
        return self.text(OpaqueType.CHIP_INFO)

    @property
    def fwid(self) -> bytes | None:
        return self.get(OpaqueType.FWID)

    @property
    def nvdec0_status(self) -> int | None:
        return self.number(OpaqueType.NVDEC0_STATUS)

    @property
    def nvdec0_disabled(self) -> bool:
        return self.nvdec0_status == NVDEC0_DISABLED

    @property
    def protected_pcie_status(self) -> int | None:
        return self.number(OpaqueType.PROTECTED_PCIE_STATUS)

    @property
    def opaque_data_version(self) -> int:
        """OPAQUE_DATA_VERSION; 0 when absent (older firmware, as both references read it)."""
        return self.number(OpaqueType.OPAQUE_DATA_VERSION) or 0

    @property
    def feature_flag(self) -> int | None:
        return self.number(OpaqueType.FEATURE_FLAG)

    @property
    def feature_mode(self) -> str | None:
        """``SPT`` / ``MPT`` / ``PPCIE`` / ``UNKNOWN(n)``, or None when the field is absent."""
        flag = self.feature_flag
        return None if flag is None else feature_mode_name(flag)

    @property
    def measurement_counts(self) -> tuple[int, ...] | None:
        value = self.decoded(OpaqueType.MSRSCNT)
        assert value is None or isinstance(value, tuple)
        return value  # type: ignore[return-value]

    @property
    def switch_pdis(self) -> tuple[bytes, ...] | None:
        value = self.decoded(OpaqueType.SWITCH_PDI)
        assert value is None or isinstance(value, tuple)
        return value  # type: ignore[return-value]

    def to_bytes(self) -> bytes:
        return b"".join(f.to_bytes() for f in self.fields)

    def summary(self) -> dict[str, str]:
        """Every field by name, decoded by its type (unknown types as hex)."""
        return {f.name: f.show() for f in self.fields}


def parse_opaque(data: bytes) -> OpaqueData:
    """Parse the OpaqueData TLV list strictly and decode every field by its type (plain
    offsets; a truncated TLV is refused by :func:`_refuse_truncated`, naming its part)."""
    data = bytes(data)
    fields: list[OpaqueField] = []
    seen: set[int] = set()
    off, end = 0, len(data)
    kinds, parsed = FIELD_KINDS.get, OpaqueField._parsed
    while off < end:
        if len(fields) >= MAX_FIELDS:
            raise FormatError(CHECK, "too many opaque fields", field="OpaqueData",
                              want=f"<= {MAX_FIELDS}")
        value_end = off + 4 + (data[off + 2] | data[off + 3] << 8) if off + 4 <= end else -1
        if not 0 <= value_end <= end:
            _refuse_truncated(data, off, len(fields))
        kind = data[off] | data[off + 1] << 8
        if kind in seen:
            raise FormatError(CHECK, "opaque field repeated", field="OpaqueData.DataType",
                              got=kind)
        seen.add(kind)
        value = data[off + 4:value_end]
        fields.append(parsed(kind, value,
                             decode_value(kinds(kind, Kind.BYTES), value, type_name(kind))))
        off = value_end
    return OpaqueData(tuple(fields))


def _refuse_truncated(data: bytes, off: int, i: int) -> NoReturn:
    """Raise the FormatError for the TLV at ``off`` that runs past the end: its DataType,
    DataSize or Data, whichever is cut."""
    r = Reader(data, check=CHECK)
    r.pos = off
    r.uint(2, f"OpaqueData[{i}].DataType")
    size = r.uint(2, f"OpaqueData[{i}].DataSize")
    r.take(size, f"OpaqueData[{i}].Data")
    raise AssertionError("not truncated")  # pragma: no cover - callers pass a cut TLV


def decode_value(kind: Kind, raw: bytes, field: str) -> Decoded:
    """Decode one field's Data by ``kind``; ``field`` names it in errors."""
    if kind is Kind.STRING:
        return decode_string(raw, field)
    if kind is Kind.VBIOS:
        return format_vbios_version(raw)
    if kind is Kind.STATUS:
        if len(raw) != 1:
            raise FormatError(CHECK, "wrong size", field=field, got=len(raw), want=1)
        return raw[0]
    if kind is Kind.UINT:
        if not 1 <= len(raw) <= MAX_INT_SIZE:
            raise FormatError(CHECK, "not a little-endian integer of 1..8 bytes", field=field,
                              got=len(raw), want=f"1..{MAX_INT_SIZE}")
        return int.from_bytes(raw, "little")
    if kind is Kind.U32_LIST:
        if len(raw) % MSRSCNT_ELEMENT_SIZE:
            raise FormatError(CHECK, "not a list of u32", field=field, got=len(raw))
        return struct.unpack(f"<{len(raw) // MSRSCNT_ELEMENT_SIZE}I", raw)
    if kind is Kind.PDI_LIST:
        if len(raw) % PDI_SIZE:
            raise FormatError(CHECK, "not a list of 8-byte PDIs", field=field, got=len(raw))
        return tuple(raw[i:i + PDI_SIZE] for i in range(0, len(raw), PDI_SIZE))
    return raw


_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


def decode_string(raw: bytes, field: str) -> str:
    """An ASCII string padded with NULs (nothing but NULs after the first NUL)."""
    text, _, pad = raw.partition(b"\x00")
    if pad.strip(b"\x00") or text.translate(None, _PRINTABLE_ASCII):  # a byte not 0x20-0x7e
        raise FormatError(CHECK, "not a NUL-padded ASCII string", field=field, got=raw)
    return text.decode("ascii")


def format_vbios_version(raw: bytes) -> str:
    """8 bytes ``b0 b1 b2 b3 b4 0 0 0`` -> ``b3.b2.b1.b0.b4`` in upper-case hex."""
    if len(raw) != VBIOS_VERSION_SIZE:
        raise FormatError(CHECK, "wrong size", field="VBIOS_VERSION", got=len(raw),
                          want=VBIOS_VERSION_SIZE)
    return f"{raw[3]:02X}.{raw[2]:02X}.{raw[1]:02X}.{raw[0]:02X}.{raw[4]:02X}"


def encode_vbios_version(text: str) -> bytes:
    """Inverse of :func:`format_vbios_version` (for the simulator)."""
    parts = [int(p, 16) for p in text.split(".")]
    if len(parts) != 5 or any(not 0 <= p <= 0xFF for p in parts):
        raise ValueError(f"not a VBIOS version: {text!r}")
    return bytes([parts[3], parts[2], parts[1], parts[0], parts[4], 0, 0, 0])


def encode_string(text: str, size: int | None = None) -> bytes:
    """ASCII + NUL, padded with NULs to ``size`` when given."""
    raw = text.encode("ascii") + b"\x00"
    return raw.ljust(size, b"\x00") if size else raw


def encode_uint(value: int, size: int = 2) -> bytes:
    """A little-endian integer field (OPAQUE_DATA_VERSION, FEATURE_FLAG; 2 bytes on H100)."""
    return value.to_bytes(size, "little")
