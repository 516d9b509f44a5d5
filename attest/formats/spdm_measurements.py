"""SPDM 1.1 GET_MEASUREMENTS request + MEASUREMENTS response, as NVIDIA GPUs report them.

An NVIDIA "attestation report" (Hopper) is the 37-byte GET_MEASUREMENTS request the driver sent
followed by the device's MEASUREMENTS response (DMTF DSP0274 1.1.0, §10.11 "GET_MEASUREMENTS
request and MEASUREMENTS response messages"; docs/formats.md "NVIDIA GPU evidence").

Request (DSP0274 1.1 table 43), 37 bytes::

    0x00 SPDMVersion        u8   0x11
    0x01 RequestResponseCode u8  0xE0 (GET_MEASUREMENTS)
    0x02 Param1             u8   bit 0: signature requested
    0x03 Param2             u8   measurement operation (0xFF: all blocks)
    0x04 Nonce              32 B requester nonce (the verifier's binding)
    0x24 SlotIDParam        u8   bits 3:0 slot id, bits 7:4 reserved (zero)

Response (table 45)::

    0x00 SPDMVersion        u8   0x11
    0x01 RequestResponseCode u8  0x60 (MEASUREMENTS)
    0x02 Param1             u8
    0x03 Param2             u8
    0x04 NumberOfBlocks     u8
    0x05 MeasurementRecordLength u24le
    0x08 MeasurementRecord  blocks (table 46): Index u8, MeasurementSpecification u8 (bit 0
                            DMTF), MeasurementSize u16le, Measurement = DMTF (table 47):
                            DMTFSpecMeasurementValueType u8, DMTFSpecMeasurementValueSize
                            u16le, DMTFSpecMeasurementValue
    ...  Nonce              32 B responder nonce
    ...  OpaqueLength       u16le, then OpaqueData (NVIDIA TLVs, see nvidia_opaque.py)
    ...  Signature          raw r||s, 96 bytes for ECDSA P-384

Real reports may carry bytes after the signature: they are kept in ``trailing`` and are not
signed. The signed message is request || response up to (not including) the signature.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NamedTuple, NoReturn

from attest.formats.binary import Reader
from transparency_log.common.errors import FormatError

CHECK = "gpu.report.format"

SPDM_VERSION_11 = 0x11
GET_MEASUREMENTS = 0xE0
MEASUREMENTS = 0x60
REQUEST_SIZE = 37
NONCE_SIZE = 32
P384_SIGNATURE_SIZE = 96
DMTF_SPEC = 0x01
DMTF_HEADER_SIZE = 3
MAX_RECORD_LENGTH = 1 << 16  # hard cap on MeasurementRecordLength (the u24 allows 16 MiB)


@dataclass(frozen=True)
class GetMeasurementsRequest:
    """The requester's GET_MEASUREMENTS message (DSP0274 1.1 table 43)."""

    param1: int
    param2: int
    nonce: bytes
    slot_id: int
    version: int = SPDM_VERSION_11

    @property
    def signature_requested(self) -> bool:
        return bool(self.param1 & 0x01)

    def to_bytes(self) -> bytes:
        return (bytes([self.version, GET_MEASUREMENTS, self.param1, self.param2])
                + self.nonce + bytes([self.slot_id]))


class MeasurementBlock(NamedTuple):
    """One DMTF measurement block; ``index`` is 1-based as on the wire (table 46/47).
    Immutable; a tuple, so the parser makes the 64 blocks of a report cheaply."""

    index: int  # type: ignore[assignment]  # the field, not tuple.index
    value_type: int
    value: bytes
    spec: int = DMTF_SPEC

    def to_bytes(self) -> bytes:
        size = DMTF_HEADER_SIZE + len(self.value)
        return (bytes([self.index, self.spec]) + size.to_bytes(2, "little")
                + bytes([self.value_type]) + len(self.value).to_bytes(2, "little") + self.value)


@dataclass(frozen=True)
class MeasurementsResponse:
    """The responder's MEASUREMENTS message (DSP0274 1.1 table 45)."""

    param1: int
    param2: int
    blocks: tuple[MeasurementBlock, ...]
    nonce: bytes
    opaque_data: bytes
    signature: bytes
    version: int = SPDM_VERSION_11

    def unsigned_bytes(self) -> bytes:
        """The response up to (not including) the signature."""
        record = b"".join(b.to_bytes() for b in self.blocks)
        return (bytes([self.version, MEASUREMENTS, self.param1, self.param2, len(self.blocks)])
                + len(record).to_bytes(3, "little") + record + self.nonce
                + len(self.opaque_data).to_bytes(2, "little") + self.opaque_data)

    def to_bytes(self) -> bytes:
        return self.unsigned_bytes() + self.signature

    def block(self, index: int) -> MeasurementBlock | None:
        """The block with 1-based SPDM ``index``, or None."""
        return next((b for b in self.blocks if b.index == index), None)


@dataclass(frozen=True)
class SpdmReport:
    """An NVIDIA attestation report: request, response, and unsigned trailing bytes."""

    request: GetMeasurementsRequest
    response: MeasurementsResponse
    trailing: bytes = b""
    # The signed bytes as parsed (strict parsing makes them equal to the re-serialization);
    # kept so verification does not re-serialize on the hot path.
    wire_signed: bytes = field(default=b"", compare=False, repr=False)

    def signed_bytes(self) -> bytes:
        """The message the attestation key signs: request || response-without-signature."""
        return self.wire_signed or (self.request.to_bytes() + self.response.unsigned_bytes())

    def to_bytes(self) -> bytes:
        return self.request.to_bytes() + self.response.to_bytes() + self.trailing


def parse_request(data: bytes) -> GetMeasurementsRequest:
    """Parse the 37-byte GET_MEASUREMENTS request (DSP0274 1.1 table 43)."""
    if len(data) != REQUEST_SIZE:
        raise FormatError(CHECK, "wrong size", field="GET_MEASUREMENTS", got=len(data),
                          want=REQUEST_SIZE)
    _expect(data[0], SPDM_VERSION_11, "request.SPDMVersion")
    _expect(data[1], GET_MEASUREMENTS, "request.RequestResponseCode")
    slot = data[36]
    if slot & 0xF0:
        raise FormatError(CHECK, "reserved bits set", field="request.SlotIDParam", got=slot,
                          want="bits 7:4 zero")
    return GetMeasurementsRequest(param1=data[2], param2=data[3], nonce=data[4:36],
                                  slot_id=slot)


def parse_report(data: bytes, *, signature_size: int = P384_SIGNATURE_SIZE) -> SpdmReport:
    """Parse request || response || trailing bytes. Strict: every length must add up."""
    if len(data) < REQUEST_SIZE:
        raise FormatError(CHECK, "too short for a GET_MEASUREMENTS request", field="report",
                          got=len(data), want=f">= {REQUEST_SIZE}")
    request = parse_request(data[:REQUEST_SIZE])
    r = Reader(data[REQUEST_SIZE:], check=CHECK)
    _expect(r.uint(1, "response.SPDMVersion"), SPDM_VERSION_11, "response.SPDMVersion")
    _expect(r.uint(1, "response.RequestResponseCode"), MEASUREMENTS,
            "response.RequestResponseCode")
    param1 = r.uint(1, "response.Param1")
    param2 = r.uint(1, "response.Param2")
    count = r.uint(1, "NumberOfBlocks")
    length = r.uint(3, "MeasurementRecordLength")
    if length > MAX_RECORD_LENGTH:
        raise FormatError(CHECK, "measurement record over the cap",
                          field="MeasurementRecordLength", got=length,
                          want=f"<= {MAX_RECORD_LENGTH}")
    blocks = _parse_record(r.take(length, "MeasurementRecord"), count)
    nonce = r.take(NONCE_SIZE, "response.Nonce")
    opaque_len = r.uint(2, "OpaqueLength")
    opaque = r.take(opaque_len, "OpaqueData")
    signature = r.take(signature_size, "Signature")
    signed_end = REQUEST_SIZE + r.pos - signature_size
    response = MeasurementsResponse(param1=param1, param2=param2, blocks=blocks, nonce=nonce,
                                    opaque_data=opaque, signature=signature)
    return SpdmReport(request, response, r.rest(), wire_signed=bytes(data[:signed_end]))


_BLOCK_HEAD = struct.Struct("<BBHBH")  # Index, Spec, MeasurementSize, ValueType, ValueSize


def _parse_record(record: bytes, count: int) -> tuple[MeasurementBlock, ...]:
    """The measurement blocks (tables 46/47), every field read and checked. The hot path
    reads a block's five header fields in one unpack and tests them in one condition; a block
    that fails it is refused by :func:`_refuse_block`, which names the first field at fault."""
    blocks: list[MeasurementBlock] = []
    seen: set[int] = {0}  # index 0 is refused like a repeated one
    off, end = 0, len(record)
    head = _BLOCK_HEAD.unpack_from
    new_block = tuple.__new__
    for i in range(count):
        if off + 4 + DMTF_HEADER_SIZE > end:  # shorter than the smallest block
            _refuse_block(record, off, i, seen)
        index, spec, size, value_type, value_size = head(record, off)
        body_end = off + 4 + size
        # value_size == size - 3 (>= 0) also says MeasurementSize covers the DMTF header
        if (body_end > end or spec != DMTF_SPEC or index in seen
                or value_size != size - DMTF_HEADER_SIZE):
            _refuse_block(record, off, i, seen)
        seen.add(index)
        blocks.append(new_block(MeasurementBlock,
                                (index, value_type, record[off + 7:body_end], spec)))
        off = body_end
    if off != end:
        raise FormatError(CHECK, "measurement record longer than its blocks",
                          field="MeasurementRecordLength", got=end, want=off)
    return tuple(blocks)


def _refuse_block(record: bytes, off: int, i: int, seen: set[int]) -> NoReturn:
    """Raise the FormatError for the block at ``off`` (the ``i``-th), checking its fields in
    wire order: Index present, Measurement within the record, MeasurementSpecification DMTF,
    Index non-zero and unique, MeasurementSize covers the DMTF header, the DMTF value size."""
    where, end = f"MeasurementRecord[{i}]", len(record)
    if off + 4 > end:
        raise FormatError(CHECK, f"truncated at record offset 0x{off:x}",
                          field=f"{where}.Index", got=end - off, want=4)
    index, spec = record[off], record[off + 1]
    size = record[off + 2] | (record[off + 3] << 8)
    if off + 4 + size > end:
        raise FormatError(CHECK, f"truncated at record offset 0x{off + 4:x}",
                          field=f"{where}.Measurement", got=end - off - 4, want=size)
    if spec != DMTF_SPEC:
        raise FormatError(CHECK, "only DMTF measurement blocks are defined",
                          field=f"{where}.MeasurementSpecification", got=spec, want=DMTF_SPEC)
    if index in seen:  # holds 0
        raise FormatError(CHECK, "block index zero or repeated", field=f"{where}.Index",
                          got=index, want="1..254, unique")
    if size < DMTF_HEADER_SIZE:
        raise FormatError(CHECK, "DMTF measurement shorter than its header",
                          field=f"{where}.MeasurementSize", got=size,
                          want=f">= {DMTF_HEADER_SIZE}")
    value_size = record[off + 5] | (record[off + 6] << 8)
    raise FormatError(CHECK, "DMTF value size disagrees with the block size",
                      field=f"{where}.DMTFSpecMeasurementValueSize", got=value_size,
                      want=size - DMTF_HEADER_SIZE)


def _expect(got: int, want: int, field: str) -> None:
    if got != want:
        raise FormatError(CHECK, "unexpected value", field=field, got=f"0x{got:02x}",
                          want=f"0x{want:02x}")


def parse_report_text(data: bytes) -> bytes:
    """Accept the report as binary or as hex text (NVIDIA's samples are hex); return binary."""
    stripped = data.strip()
    if stripped and all(c in b"0123456789abcdefABCDEF" for c in stripped):
        if len(stripped) % 2:
            raise FormatError(CHECK, "odd number of hex digits", field="report",
                              got=len(stripped))
        return bytes.fromhex(stripped.decode("ascii"))
    return bytes(data)
