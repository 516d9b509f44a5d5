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

from attest.formats import der
from attest.formats.der import (
    TAG_BOOLEAN,
    TAG_ENUMERATED,
    TAG_INTEGER,
    TAG_OCTET_STRING,
    TAG_OID,
    TAG_SEQUENCE,
    encode_oid,
    encode_uint,
)
from attest.formats.der import encode_tlv as tlv
from transparency_log.common.errors import FormatError

CHECK = "tdx.pck.extensions"
SGX_EXTENSIONS_OID = "1.2.840.113741.1.13.1"

MAX_DEPTH_ITEMS = 64


def read_tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """Read one DER TLV at ``pos``: returns (tag, value, next position)."""
    return der.read_tlv(data, pos, check=CHECK)


def read_all(data: bytes) -> list[tuple[int, bytes]]:
    """All TLVs of a constructed value's contents, which they must fill exactly."""
    out: list[tuple[int, bytes]] = []
    pos, size = 0, len(data)
    while pos < size:
        if len(out) >= MAX_DEPTH_ITEMS:
            raise FormatError(CHECK, "too many DER elements", field="DER",
                              want=f"<= {MAX_DEPTH_ITEMS}")
        # Nearly every element here is short (one length byte < 0x80, X.690 §8.1.3.4): read
        # it inline; anything else (and every fault) goes through the full reader.
        if pos + 2 <= size and data[pos + 1] < 0x80 and data[pos] & 0x1F != 0x1F:
            end = pos + 2 + data[pos + 1]
            if end <= size:
                out.append((data[pos], data[pos + 2:end]))
                pos = end
                continue
        tag, value, pos = read_tlv(data, pos)
        out.append((tag, value))
    return out


def decode_oid(value: bytes) -> str:
    """Dotted text of a DER OBJECT IDENTIFIER's contents. The OIDs of the profile are looked
    up in a table of their DER contents (built once from the text); any other contents are
    decoded, strictly, by attest.formats.der."""
    known = _PROFILE_OIDS.get(bytes(value))
    return known if known is not None else der.decode_oid(value, check=CHECK)


_PROFILE_OIDS = {encode_oid(oid): oid for oid in (
    [f"{SGX_EXTENSIONS_OID}.{i}" for i in range(1, 8)]
    + [f"{SGX_EXTENSIONS_OID}.2.{i}" for i in range(1, 19)]
    + [f"{SGX_EXTENSIONS_OID}.7.{i}" for i in range(1, 4)])}
"""The DER contents of the profile's OIDs (§1.5), for :func:`decode_oid`."""



def decode_uint(value: bytes, field: str) -> int:
    """A non-negative DER INTEGER in minimal form."""
    return der.decode_uint(value, check=CHECK, field=field)


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
        # Nearly always an OID and a value, each with a one-byte length (X.690 §8.1.3.4),
        # filling the pair exactly: read inline; anything else goes through read_all.
        size = len(inner)
        if size >= 4 and inner[0] == TAG_OID and inner[1] < 0x80:
            at = 2 + inner[1]
            if (at + 2 <= size and inner[at] & 0x1F != 0x1F and inner[at + 1] < 0x80
                    and at + 2 + inner[at + 1] == size):
                out.append((decode_oid(inner[2:at]), inner[at], inner[at + 2:]))
                continue
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


def parse_sgx_extensions(value: bytes) -> SgxExtensions:
    """Parse the DER value of the SGX extension. Every mandatory item exactly once, in order."""
    tag, contents, end = read_tlv(value, 0)
    _expect(tag, TAG_SEQUENCE, "SGX Extensions")
    if end != len(value):
        raise FormatError(CHECK, "trailing bytes after the SGX extensions", field="SGX Extensions",
                          got=len(value) - end, want=0)
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
        # One byte below 0x80 is a minimal non-negative INTEGER (X.690 §8.3.2).
        svns.append(v2[0] if len(v2) == 1 and v2[0] < 0x80 else decode_uint(v2, name))
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
