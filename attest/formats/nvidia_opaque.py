"""NVIDIA's OpaqueData in the SPDM MEASUREMENTS response: a list of TLVs.

Each field is ``DataType u16le | DataSize u16le | Data`` (docs/formats.md "NVIDIA GPU
evidence"). The type numbers below are NVIDIA's (as used by its nvtrust verifiers); strings
are ASCII padded with NULs; the VBIOS version is 8 bytes printed as ``96.00.9F.00.01``.

Unknown types are kept (forward compatible) but every TLV must be complete, a type may
appear only once, and there are at most :data:`MAX_FIELDS` of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from attest.formats.binary import Reader
from transparency_log.errors import FormatError

CHECK = "gpu.report.opaque"
MAX_FIELDS = 64
NVDEC0_DISABLED = 0x55
PROTECTED_PCIE_ENABLED = 0x55


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
    """FEATURE_FLAG values: single-GPU, multi-GPU passthrough, protected PCIe (PPCIe)."""

    SPT = 0
    MPT = 1
    PPCIE = 2


STRING_TYPES = frozenset({OpaqueType.DRIVER_VERSION, OpaqueType.CHIP_SKU,
                          OpaqueType.CHIP_SKU_MOD, OpaqueType.PROJECT, OpaqueType.PROJECT_SKU,
                          OpaqueType.PROJECT_SKU_MOD, OpaqueType.OPAQUE_DATA_VERSION})


@dataclass(frozen=True)
class OpaqueField:
    type: int
    value: bytes

    @property
    def name(self) -> str:
        try:
            return OpaqueType(self.type).name
        except ValueError:
            return f"UNKNOWN_{self.type}"

    def to_bytes(self) -> bytes:
        return (self.type.to_bytes(2, "little") + len(self.value).to_bytes(2, "little")
                + self.value)


@dataclass(frozen=True)
class OpaqueData:
    """The parsed TLVs, in wire order, with typed accessors for the fields we judge."""

    fields: tuple[OpaqueField, ...]

    def get(self, kind: OpaqueType) -> bytes | None:
        return next((f.value for f in self.fields if f.type == kind), None)

    def text(self, kind: OpaqueType) -> str | None:
        raw = self.get(kind)
        return None if raw is None else decode_string(raw, kind.name)

    @property
    def driver_version(self) -> str | None:
        return self.text(OpaqueType.DRIVER_VERSION)

    @property
    def vbios_version(self) -> str | None:
        raw = self.get(OpaqueType.VBIOS_VERSION)
        return None if raw is None else format_vbios_version(raw)

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
    def fwid(self) -> bytes | None:
        return self.get(OpaqueType.FWID)

    @property
    def nvdec0_status(self) -> int | None:
        raw = self.get(OpaqueType.NVDEC0_STATUS)
        return None if raw is None else _byte(raw, "NVDEC0_STATUS")

    @property
    def nvdec0_disabled(self) -> bool:
        return self.nvdec0_status == NVDEC0_DISABLED

    @property
    def protected_pcie_status(self) -> int | None:
        raw = self.get(OpaqueType.PROTECTED_PCIE_STATUS)
        return None if raw is None else _byte(raw, "PROTECTED_PCIE_STATUS")

    @property
    def feature_flag(self) -> int | None:
        raw = self.get(OpaqueType.FEATURE_FLAG)
        return None if raw is None else _byte(raw, "FEATURE_FLAG")

    @property
    def measurement_counts(self) -> tuple[int, ...] | None:
        raw = self.get(OpaqueType.MSRSCNT)
        if raw is None:
            return None
        if len(raw) % 4:
            raise FormatError(CHECK, "not a list of u32", field="MSRSCNT", got=len(raw))
        return tuple(int.from_bytes(raw[i:i + 4], "little") for i in range(0, len(raw), 4))

    def to_bytes(self) -> bytes:
        return b"".join(f.to_bytes() for f in self.fields)

    def summary(self) -> dict[str, str]:
        """Every field by name: strings decoded, VBIOS formatted, the rest as hex."""
        out: dict[str, str] = {}
        for f in self.fields:
            if f.type in STRING_TYPES:
                out[f.name] = decode_string(f.value, f.name)
            elif f.type == OpaqueType.VBIOS_VERSION:
                out[f.name] = format_vbios_version(f.value)
            else:
                out[f.name] = f.value.hex()
        return out


def parse_opaque(data: bytes) -> OpaqueData:
    """Parse the OpaqueData TLV list strictly."""
    r = Reader(data, check=CHECK)
    fields: list[OpaqueField] = []
    seen: set[int] = set()
    while r.remaining:
        if len(fields) >= MAX_FIELDS:
            raise FormatError(CHECK, "too many opaque fields", field="OpaqueData",
                              want=f"<= {MAX_FIELDS}")
        kind = r.uint(2, f"OpaqueData[{len(fields)}].DataType")
        size = r.uint(2, f"OpaqueData[{len(fields)}].DataSize")
        value = r.take(size, f"OpaqueData[{len(fields)}].Data")
        if kind in seen:
            raise FormatError(CHECK, "opaque field repeated", field="OpaqueData.DataType",
                              got=kind)
        seen.add(kind)
        fields.append(OpaqueField(kind, value))
    return OpaqueData(tuple(fields))


def decode_string(raw: bytes, field: str) -> str:
    """An ASCII string padded with NULs (nothing but NULs after the first NUL)."""
    text, _, pad = raw.partition(b"\x00")
    if pad.strip(b"\x00") or any(c < 0x20 or c > 0x7E for c in text):
        raise FormatError(CHECK, "not a NUL-padded ASCII string", field=field, got=raw)
    return text.decode("ascii")


def format_vbios_version(raw: bytes) -> str:
    """8 bytes ``b0 b1 b2 b3 b4 0 0 0`` -> ``b3.b2.b1.b0.b4`` in upper-case hex."""
    if len(raw) != 8:
        raise FormatError(CHECK, "wrong size", field="VBIOS_VERSION", got=len(raw), want=8)
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


def _byte(raw: bytes, field: str) -> int:
    if len(raw) != 1:
        raise FormatError(CHECK, "wrong size", field=field, got=len(raw), want=1)
    return raw[0]
