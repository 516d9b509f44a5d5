"""A TDVF firmware image built from its metadata (TDVF design guide: the TDX metadata
descriptor, found through the GUIDed table footer), and its MRTD derived independently of
attest/measure/tdx_mrtd.py: the whole TDH.MEM.PAGE.ADD / TDH.MR.EXTEND byte stream written out
literally (TDX Module spec "TD Measurement" record layout) and hashed in one call."""

from __future__ import annotations

import hashlib
import struct
import uuid

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
