"""A strict little DER reader and writer (ITU-T X.690 §8, §10: DER restrictions).

Shared by the pure parsers of certificate extension values (AMD KDS extensions of a VCEK,
Intel SGX extensions of a PCK certificate). Only what those need: single-byte tags, definite
minimal lengths, minimal non-negative INTEGERs, OBJECT IDENTIFIERs. Every failure is a
FormatError carrying the caller's check id. Pure: stdlib only (house rule 1).
"""

from __future__ import annotations

from transparency_log.common.errors import FormatError

TAG_BOOLEAN = 0x01
TAG_INTEGER = 0x02
TAG_OCTET_STRING = 0x04
TAG_OID = 0x06
TAG_ENUMERATED = 0x0A
TAG_UTF8_STRING = 0x0C
TAG_IA5_STRING = 0x16
TAG_SEQUENCE = 0x30


def read_tlv(data: bytes, pos: int, *, check: str, field: str = "DER"
             ) -> tuple[int, bytes, int]:
    """Read one TLV at ``pos``: (tag, contents, next position). X.690 §8.1.3, §10.1."""
    if pos + 2 > len(data):
        raise FormatError(check, "truncated DER element", field=field, got=len(data) - pos,
                          want=">= 2")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise FormatError(check, "multi-byte DER tags are not used here", field=field, got=tag)
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4:
            raise FormatError(check, "indefinite or oversized DER length", field=field,
                              got=first)
        raw = data[pos:pos + n]
        if len(raw) != n:
            raise FormatError(check, "truncated DER length", field=field)
        length = int.from_bytes(raw, "big")
        if raw[0] == 0 or length < 0x80:
            raise FormatError(check, "non-minimal DER length", field=field, got=raw)
        pos += n
    end = pos + length
    if end > len(data):
        raise FormatError(check, "DER element runs past its container", field=field,
                          got=len(data) - pos, want=length)
    return tag, data[pos:end], end


def read_single(data: bytes, *, check: str, field: str) -> tuple[int, bytes]:
    """One TLV that must span ``data`` exactly: (tag, contents)."""
    tag, contents, end = read_tlv(data, 0, check=check, field=field)
    if end != len(data):
        raise FormatError(check, "DER length does not match the value", field=field,
                          got=len(data), want=end)
    return tag, contents


def encode_tlv(tag: int, contents: bytes) -> bytes:
    """DER-encode one element (minimal definite length)."""
    n = len(contents)
    if n < 0x80:
        return bytes([tag, n]) + contents
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + contents


def decode_uint(contents: bytes, *, check: str, field: str) -> int:
    """The contents of a non-negative, minimally encoded INTEGER (X.690 §8.3.2)."""
    if not contents:
        raise FormatError(check, "empty INTEGER", field=field)
    if contents[0] & 0x80:
        raise FormatError(check, "negative INTEGER", field=field, got=contents)
    if len(contents) > 1 and contents[0] == 0 and not contents[1] & 0x80:
        raise FormatError(check, "non-minimal INTEGER", field=field, got=contents)
    return int.from_bytes(contents, "big")


def encode_uint(n: int) -> bytes:
    """The contents of a non-negative INTEGER, minimal, with a sign byte where needed."""
    raw = n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")
    return b"\x00" + raw if raw[0] & 0x80 else raw


def decode_oid(contents: bytes, *, check: str, field: str = "OID") -> str:
    """Dotted text of an OBJECT IDENTIFIER's contents (minimal base-128 arcs, X.690 §8.19)."""
    if not contents:
        raise FormatError(check, "empty OID", field=field)
    arcs: list[int] = []
    acc = 0
    fresh = True
    for byte in contents:
        if fresh and byte == 0x80:
            raise FormatError(check, "non-minimal OID arc", field=field, got=contents)
        acc = acc << 7 | byte & 0x7F
        fresh = not byte & 0x80
        if fresh:
            arcs.append(acc)
            acc = 0
    if not fresh:
        raise FormatError(check, "truncated OID", field=field, got=contents)
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def encode_oid(dotted: str) -> bytes:
    """The contents of an OBJECT IDENTIFIER (for serializers)."""
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(arc & 0x7F | 0x80)
            arc >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)
