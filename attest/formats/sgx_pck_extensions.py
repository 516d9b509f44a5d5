"""SGX extensions of an Intel PCK certificate (OID 1.2.840.113741.1.13.1): a strict DER reader.

Spec: Intel SGX PCK Certificate and Certificate Revocation List Profile Specification
(rev. 1.5), section 1.5 "Intel SGX PCK Certificate" - "SGX Extensions". The extension value
is a SEQUENCE of (OID, value) pairs:

    .1   PPID          OCTET STRING (16)
    .2   TCB           SEQUENCE of (OID, value): .2.1 .. .2.16 SGX TCB Comp01..16 SVN
                       (INTEGER), .2.17 PCESVN (INTEGER), .2.18 CPUSVN (OCTET STRING 16)
    .3   PCE-ID        OCTET STRING (2)
    .4   FMSPC         OCTET STRING (6)
    .5   SGX Type      ENUMERATED (0 Standard, 1 Scalable, 2 Scalable with Integrity)
    .6   PlatformInstanceID  OCTET STRING (16)   (Platform CA certificates only)
    .7   Configuration SEQUENCE of BOOLEANs     (Platform CA certificates only)

Only DER is accepted: definite minimal lengths, minimal INTEGERs, no trailing bytes. The
reader here is a small TLV walker (no ASN.1 library: pure parsers import only the stdlib).
"""

from __future__ import annotations

from dataclasses import dataclass

from transparency_log.errors import FormatError

CHECK = "tdx.pck.extensions"
SGX_EXTENSIONS_OID = "1.2.840.113741.1.13.1"

TAG_BOOLEAN = 0x01
TAG_INTEGER = 0x02
TAG_OCTET_STRING = 0x04
TAG_OID = 0x06
TAG_ENUMERATED = 0x0A
TAG_SEQUENCE = 0x30
MAX_DEPTH_ITEMS = 64


def read_tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """Read one DER TLV at ``pos``: returns (tag, value, next position). Single-byte tags only."""
    if pos + 2 > len(data):
        raise FormatError(CHECK, "truncated DER element", field="DER", got=len(data) - pos,
                          want=">= 2")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise FormatError(CHECK, "multi-byte DER tags are not used here", field="DER", got=tag)
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4:
            raise FormatError(CHECK, "indefinite or oversized DER length", field="DER", got=first)
        raw = data[pos:pos + n]
        if len(raw) != n:
            raise FormatError(CHECK, "truncated DER length", field="DER")
        length = int.from_bytes(raw, "big")
        if raw[0] == 0 or length < 0x80:
            raise FormatError(CHECK, "non-minimal DER length", field="DER", got=raw)
        pos += n
    end = pos + length
    if end > len(data):
        raise FormatError(CHECK, "DER element runs past its container", field="DER",
                          got=len(data) - pos, want=length)
    return tag, data[pos:end], end


def read_all(data: bytes) -> list[tuple[int, bytes]]:
    """All TLVs of a constructed value's contents, which they must fill exactly."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        if len(out) >= MAX_DEPTH_ITEMS:
            raise FormatError(CHECK, "too many DER elements", field="DER",
                              want=f"<= {MAX_DEPTH_ITEMS}")
        tag, value, pos = read_tlv(data, pos)
        out.append((tag, value))
    return out


def decode_oid(value: bytes) -> str:
    """Dotted text of a DER OBJECT IDENTIFIER's contents (minimal base-128 arcs)."""
    if not value:
        raise FormatError(CHECK, "empty OID", field="OID")
    arcs: list[int] = []
    acc = 0
    fresh = True
    for byte in value:
        if fresh and byte == 0x80:
            raise FormatError(CHECK, "non-minimal OID arc", field="OID", got=value)
        acc = acc << 7 | byte & 0x7F
        fresh = not byte & 0x80
        if fresh:
            arcs.append(acc)
            acc = 0
    if not fresh:
        raise FormatError(CHECK, "truncated OID", field="OID", got=value)
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def encode_oid(dotted: str) -> bytes:
    """DER contents of an OBJECT IDENTIFIER (for the serializer)."""
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


def decode_uint(value: bytes, field: str) -> int:
    """A non-negative DER INTEGER in minimal form."""
    if not value:
        raise FormatError(CHECK, "empty INTEGER", field=field)
    if value[0] & 0x80:
        raise FormatError(CHECK, "negative INTEGER", field=field, got=value)
    if len(value) > 1 and value[0] == 0 and not value[1] & 0x80:
        raise FormatError(CHECK, "non-minimal INTEGER", field=field, got=value)
    return int.from_bytes(value, "big")


def encode_uint(n: int) -> bytes:
    raw = n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")
    return b"\x00" + raw if raw[0] & 0x80 else raw


def tlv(tag: int, value: bytes) -> bytes:
    """DER encode one element."""
    n = len(value)
    if n < 0x80:
        return bytes([tag, n]) + value
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + value


@dataclass(frozen=True)
class SgxExtensions:
    """The decoded SGX extension of a PCK certificate."""

    ppid: bytes
    tcb_comp_svns: tuple[int, ...]  # SGX TCB Comp01..16 SVN
    pcesvn: int
    cpusvn: bytes
    pceid: bytes
    fmspc: bytes
    sgx_type: int
    platform_instance_id: bytes | None = None
    configuration: tuple[tuple[str, bool], ...] | None = None

    def to_der(self) -> bytes:
        """The extension value (DER), as a PCK certificate carries it."""
        base = SGX_EXTENSIONS_OID
        tcb = b"".join(
            tlv(TAG_SEQUENCE, tlv(TAG_OID, encode_oid(f"{base}.2.{i + 1}"))
                + tlv(TAG_INTEGER, encode_uint(svn)))
            for i, svn in enumerate(self.tcb_comp_svns))
        tcb += tlv(TAG_SEQUENCE, tlv(TAG_OID, encode_oid(f"{base}.2.17"))
                   + tlv(TAG_INTEGER, encode_uint(self.pcesvn)))
        tcb += tlv(TAG_SEQUENCE, tlv(TAG_OID, encode_oid(f"{base}.2.18"))
                   + tlv(TAG_OCTET_STRING, self.cpusvn))
        items = [
            (".1", tlv(TAG_OCTET_STRING, self.ppid)),
            (".2", tlv(TAG_SEQUENCE, tcb)),
            (".3", tlv(TAG_OCTET_STRING, self.pceid)),
            (".4", tlv(TAG_OCTET_STRING, self.fmspc)),
            (".5", tlv(TAG_ENUMERATED, encode_uint(self.sgx_type))),
        ]
        if self.platform_instance_id is not None:
            items.append((".6", tlv(TAG_OCTET_STRING, self.platform_instance_id)))
        if self.configuration is not None:
            conf = b"".join(
                tlv(TAG_SEQUENCE, tlv(TAG_OID, encode_oid(f"{base}.7.{oid}"))
                    + tlv(TAG_BOOLEAN, b"\xff" if v else b"\x00"))
                for oid, v in self.configuration)
            items.append((".7", tlv(TAG_SEQUENCE, conf)))
        return tlv(TAG_SEQUENCE, b"".join(
            tlv(TAG_SEQUENCE, tlv(TAG_OID, encode_oid(base + arc)) + value)
            for arc, value in items))


def _pairs(contents: bytes, field: str) -> list[tuple[str, int, bytes]]:
    """A SEQUENCE OF SEQUENCE { OID, value } -> [(oid, value tag, value)]."""
    out = []
    for tag, inner in read_all(contents):
        if tag != TAG_SEQUENCE:
            raise FormatError(CHECK, "expected SEQUENCE", field=field, got=tag, want=TAG_SEQUENCE)
        parts = read_all(inner)
        if len(parts) != 2 or parts[0][0] != TAG_OID:
            raise FormatError(CHECK, "expected SEQUENCE { OID, value }", field=field)
        out.append((decode_oid(parts[0][1]), parts[1][0], parts[1][1]))
    return out


def _expect(tag: int, want: int, field: str) -> None:
    if tag != want:
        raise FormatError(CHECK, "wrong DER type", field=field, got=tag, want=want)


def _octets(tag: int, value: bytes, size: int, field: str) -> bytes:
    _expect(tag, TAG_OCTET_STRING, field)
    if len(value) != size:
        raise FormatError(CHECK, "wrong size", field=field, got=len(value), want=size)
    return value


def parse_sgx_extensions(der: bytes) -> SgxExtensions:
    """Parse the DER value of the SGX extension. Every mandatory item exactly once, in order."""
    tag, contents, end = read_tlv(der, 0)
    _expect(tag, TAG_SEQUENCE, "SGX Extensions")
    if end != len(der):
        raise FormatError(CHECK, "trailing bytes after the SGX extensions", field="SGX Extensions",
                          got=len(der) - end, want=0)
    base = SGX_EXTENSIONS_OID + "."
    items = _pairs(contents, "SGX Extensions")
    seen = [oid for oid, _, _ in items]
    want = [base + str(i) for i in range(1, 6)]
    if seen[:5] != want or not set(seen[5:]) <= {base + "6", base + "7"} or len(set(seen)) != len(
            seen):
        raise FormatError(CHECK, "unexpected SGX extension items", field="SGX Extensions",
                          got=",".join(seen), want=",".join(want) + "[,.6][,.7]")
    by_oid = {oid: (t, v) for oid, t, v in items}
    ppid = _octets(*by_oid[base + "1"], 16, "PPID")
    t, v = by_oid[base + "2"]
    _expect(t, TAG_SEQUENCE, "TCB")
    tcb = _pairs(v, "TCB")
    tcb_want = [f"{base}2.{i}" for i in range(1, 19)]
    if [oid for oid, _, _ in tcb] != tcb_want:
        raise FormatError(CHECK, "unexpected TCB items", field="TCB",
                          got=",".join(oid for oid, _, _ in tcb), want=f"{base}2.1..18")
    svns = []
    for i, (_, t2, v2) in enumerate(tcb[:17]):
        name = "PCESVN" if i == 16 else f"SGX TCB Comp{i + 1:02d} SVN"
        _expect(t2, TAG_INTEGER, name)
        svns.append(decode_uint(v2, name))
        limit = 0xFFFF if i == 16 else 0xFF
        if svns[-1] > limit:
            raise FormatError(CHECK, "SVN out of range", field=name, got=svns[-1],
                              want=f"<= {limit}")
    cpusvn = _octets(tcb[17][1], tcb[17][2], 16, "CPUSVN")
    pceid = _octets(*by_oid[base + "3"], 2, "PCE-ID")
    fmspc = _octets(*by_oid[base + "4"], 6, "FMSPC")
    t, v = by_oid[base + "5"]
    _expect(t, TAG_ENUMERATED, "SGX Type")
    sgx_type = decode_uint(v, "SGX Type")
    instance = None
    if base + "6" in by_oid:
        instance = _octets(*by_oid[base + "6"], 16, "PlatformInstanceID")
    configuration = None
    if base + "7" in by_oid:
        t, v = by_oid[base + "7"]
        _expect(t, TAG_SEQUENCE, "Configuration")
        conf = []
        for oid, t2, v2 in _pairs(v, "Configuration"):
            _expect(t2, TAG_BOOLEAN, oid)
            if v2 not in (b"\x00", b"\xff"):
                raise FormatError(CHECK, "non-DER BOOLEAN", field=oid, got=v2)
            conf.append((oid.rsplit(".", 1)[1], v2 == b"\xff"))
        configuration = tuple(conf)
    return SgxExtensions(ppid, tuple(svns[:16]), svns[16], cpusvn, pceid, fmspc, sgx_type,
                         instance, configuration)
