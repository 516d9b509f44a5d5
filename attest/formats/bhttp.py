"""Binary HTTP messages (RFC 9292), known-length form only, decoded strictly.

A private request travels as a known-length Binary HTTP message inside OHTTP (RFC 9458);
docs/formats.md ("Private requests") lays the bytes out. What this module holds to:

- Integers are QUIC variable-length integers (RFC 9000 §16). Any valid encoding is decoded
  (RFC 9292 does not require the shortest one); the encoder writes the shortest.
- Framing indicator 0 (request) or 1 (response) only (§3.3); 2 and 3 (indeterminate length)
  are refused, as are all other values.
- Truncation (§3.1): a message may end right before the length of the header section, of the
  content or of the trailer section (those parts are then empty). Ending anywhere else, a
  length that runs past the end, or a field line cut short, is refused.
- Padding (§3.8): after the trailer section only zero bytes may follow. A non-zero byte there
  (trailing data) is refused.
- Every length is checked against a hard cap before anything of that length is read, so a
  claimed 2^62-byte section fails at once (caps below).
- Field names follow RFC 9110 §5.1 tokens in lower case, without pseudo-fields (RFC 9113
  §8.2.1); values carry no NUL, CR or LF and no leading or trailing space or tab.

Requests are padded to size buckets (:func:`pad_to_bucket`) so that their length does not
identify them (issue 13).

Every refusal is a FormatError with check id ``bhttp.format`` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from attest.formats.binary import Reader
from transparency_log.common.errors import FormatError

CHECK = "bhttp.format"

FRAMING_KNOWN_LENGTH_REQUEST = 0  # RFC 9292 §3.3
FRAMING_KNOWN_LENGTH_RESPONSE = 1

VARINT_MAX = (1 << 62) - 1  # RFC 9000 §16

# Hard caps (ours, not the RFC's): a private inference request or answer fits well within them.
MAX_METHOD = 64
MAX_SCHEME = 64
MAX_AUTHORITY = 1024
MAX_PATH = 16 * 1024
MAX_FIELD_SECTION = 64 * 1024  # bytes of one header or trailer section
MAX_FIELD_LINES = 256  # field lines in one section
MAX_CONTENT = 16 * 1024 * 1024
MAX_INFORMATIONAL = 16  # informational (1xx) responses before the final one

# Size buckets for padding (bytes of the whole Binary HTTP message).
DEFAULT_BUCKETS: tuple[int, ...] = tuple(1 << n for n in range(8, 25))  # 256 B .. 16 MiB

Fields = tuple[tuple[bytes, bytes], ...]

_TCHAR_LOWER = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")


# ---------------------------------------------------------------- QUIC variable-length integers


def encode_varint(value: int) -> bytes:
    """The shortest QUIC encoding of ``value`` (RFC 9000 §16): 1, 2, 4 or 8 bytes."""
    if value < 0 or value > VARINT_MAX:
        raise FormatError(CHECK, "integer out of the varint range", got=value, want="0..2^62-1")
    if value < 1 << 6:
        return value.to_bytes(1, "big")
    if value < 1 << 14:
        return (value | 0x4000).to_bytes(2, "big")
    if value < 1 << 30:
        return (value | 0x8000_0000).to_bytes(4, "big")
    return (value | 0xC000_0000_0000_0000).to_bytes(8, "big")


def read_varint(r: Reader, field: str) -> int:
    """Read one QUIC varint; the two top bits of the first byte give its length."""
    first = r.take(1, field)[0]
    size = 1 << (first >> 6)
    value = first & 0x3F
    if size > 1:
        value = (value << (8 * (size - 1))) | int.from_bytes(r.take(size - 1, field), "big")
    return value


def _read_length(r: Reader, field: str, cap: int) -> int:
    n = read_varint(r, field)
    if n > cap:
        raise FormatError(CHECK, "length over the cap", field=field, got=n, want=f"<= {cap}")
    if n > r.remaining:
        raise FormatError(CHECK, "length runs past the end", field=field, got=n,
                          want=f"<= {r.remaining}")
    return n


def _read_bytes(r: Reader, field: str, cap: int) -> bytes:
    return r.take(_read_length(r, field, cap), field)


def _put_bytes(out: bytearray, value: bytes, field: str, cap: int) -> None:
    if len(value) > cap:
        raise FormatError(CHECK, "length over the cap", field=field, got=len(value),
                          want=f"<= {cap}")
    out += encode_varint(len(value))
    out += value


# ---------------------------------------------------------------- fields


def check_field_line(name: bytes, value: bytes, field: str) -> None:
    """RFC 9113 §8.2.1 as RFC 9292 §3.6 requires: lower-case token name, clean value."""
    if not name or any(c not in _TCHAR_LOWER for c in name):
        raise FormatError(CHECK, "field name is not a lower-case token", field=field, got=name)
    if any(c in (0, 0x0A, 0x0D) for c in value):
        raise FormatError(CHECK, "field value holds NUL, CR or LF", field=field, got=value)
    if value[:1] in (b" ", b"\t") or value[-1:] in (b" ", b"\t"):
        raise FormatError(CHECK, "field value starts or ends with white space", field=field,
                          got=value)


def _read_field_section(r: Reader, section: str) -> Fields:
    body = Reader(_read_bytes(r, f"{section} Length", MAX_FIELD_SECTION), check=CHECK)
    lines: list[tuple[bytes, bytes]] = []
    while body.remaining:
        if len(lines) == MAX_FIELD_LINES:
            raise FormatError(CHECK, "too many field lines", field=section,
                              want=f"<= {MAX_FIELD_LINES}")
        name = _read_bytes(body, f"{section} Name", MAX_FIELD_SECTION)
        value = _read_bytes(body, f"{section} Value", MAX_FIELD_SECTION)
        check_field_line(name, value, section)
        lines.append((name, value))
    return tuple(lines)


def _put_field_section(out: bytearray, fields: Fields, section: str) -> None:
    if len(fields) > MAX_FIELD_LINES:
        raise FormatError(CHECK, "too many field lines", field=section, got=len(fields),
                          want=f"<= {MAX_FIELD_LINES}")
    body = bytearray()
    for name, value in fields:
        check_field_line(name, value, section)
        body += encode_varint(len(name)) + name + encode_varint(len(value)) + value
    _put_bytes(out, bytes(body), f"{section} Length", MAX_FIELD_SECTION)


# ---------------------------------------------------------------- messages


@dataclass(frozen=True)
class BinaryRequest:
    """A request (RFC 9292 §3.4 control data, then header section, content, trailer section)."""

    method: bytes
    scheme: bytes
    authority: bytes
    path: bytes
    headers: Fields = ()
    content: bytes = b""
    trailers: Fields = ()


@dataclass(frozen=True)
class BinaryResponse:
    """A response (RFC 9292 §3.5): informational responses, final status, sections."""

    status: int
    headers: Fields = ()
    content: bytes = b""
    trailers: Fields = ()
    informational: tuple[tuple[int, Fields], ...] = ()


def _put_tail(out: bytearray, headers: Fields, content: bytes, trailers: Fields,
              truncate: bool) -> None:
    """Header section, content, trailer section; with ``truncate``, empty tails are left out
    (RFC 9292 §3.1: the message may end before any of these length prefixes)."""
    parts = 3
    if truncate:
        parts = 0 if not (headers or content or trailers) else (
            1 if not (content or trailers) else (2 if not trailers else 3))
    if parts >= 1:
        _put_field_section(out, headers, "Header Section")
    if parts >= 2:
        _put_bytes(out, content, "Content Length", MAX_CONTENT)
    if parts >= 3:
        _put_field_section(out, trailers, "Trailer Section")


def _read_tail(r: Reader) -> tuple[Fields, bytes, Fields]:
    """The three length-prefixed parts, each possibly truncated away, then only zero padding."""
    headers: Fields = ()
    content = b""
    trailers: Fields = ()
    if r.remaining:
        headers = _read_field_section(r, "Header Section")
    if r.remaining:
        content = _read_bytes(r, "Content Length", MAX_CONTENT)
    if r.remaining:
        trailers = _read_field_section(r, "Trailer Section")
    pad = r.rest()
    if any(pad):
        raise FormatError(CHECK, "non-zero byte after the message (padding must be zero)",
                          field="Padding", got=pad[:16])
    return headers, content, trailers


def encode_request(req: BinaryRequest, *, truncate: bool = False) -> bytes:
    """Known-length request (framing indicator 0)."""
    out = bytearray(encode_varint(FRAMING_KNOWN_LENGTH_REQUEST))
    _put_bytes(out, req.method, "Method", MAX_METHOD)
    _put_bytes(out, req.scheme, "Scheme", MAX_SCHEME)
    _put_bytes(out, req.authority, "Authority", MAX_AUTHORITY)
    _put_bytes(out, req.path, "Path", MAX_PATH)
    _put_tail(out, req.headers, req.content, req.trailers, truncate)
    return bytes(out)


def _known_length(data: bytes, framing_indicator: int, what: str) -> Reader:
    """A reader past the Framing Indicator, which must be ``framing_indicator`` (§3.3)."""
    r = Reader(data, check=CHECK)
    framing = read_varint(r, "Framing Indicator")
    if framing != framing_indicator:
        raise FormatError(CHECK, f"not a known-length {what}", field="Framing Indicator",
                          got=framing, want=framing_indicator)
    return r


def decode_request(data: bytes) -> BinaryRequest:
    """Parse a known-length request strictly (module docstring)."""
    r = _known_length(data, FRAMING_KNOWN_LENGTH_REQUEST, "request")
    method = _read_bytes(r, "Method", MAX_METHOD)
    if not method:
        raise FormatError(CHECK, "empty method", field="Method")
    scheme = _read_bytes(r, "Scheme", MAX_SCHEME)
    authority = _read_bytes(r, "Authority", MAX_AUTHORITY)
    path = _read_bytes(r, "Path", MAX_PATH)
    headers, content, trailers = _read_tail(r)
    return BinaryRequest(method, scheme, authority, path, headers, content, trailers)


def _read_status(r: Reader) -> int:
    status = read_varint(r, "Status Code")
    if not 100 <= status <= 599:
        raise FormatError(CHECK, "status code out of range", field="Status Code", got=status,
                          want="100..599")
    return status


def encode_response(resp: BinaryResponse, *, truncate: bool = False) -> bytes:
    """Known-length response (framing indicator 1)."""
    if not 200 <= resp.status <= 599:
        raise FormatError(CHECK, "final status out of range", field="Status Code",
                          got=resp.status, want="200..599")
    if len(resp.informational) > MAX_INFORMATIONAL:
        raise FormatError(CHECK, "too many informational responses", field="Status Code",
                          got=len(resp.informational), want=f"<= {MAX_INFORMATIONAL}")
    out = bytearray(encode_varint(FRAMING_KNOWN_LENGTH_RESPONSE))
    for status, fields in resp.informational:
        if not 100 <= status <= 199:
            raise FormatError(CHECK, "informational status out of range", field="Status Code",
                              got=status, want="100..199")
        out += encode_varint(status)
        _put_field_section(out, fields, "Informational Header Section")
    out += encode_varint(resp.status)
    _put_tail(out, resp.headers, resp.content, resp.trailers, truncate)
    return bytes(out)


def decode_response(data: bytes) -> BinaryResponse:
    """Parse a known-length response strictly (module docstring)."""
    r = _known_length(data, FRAMING_KNOWN_LENGTH_RESPONSE, "response")
    informational: list[tuple[int, Fields]] = []
    status = _read_status(r)
    while status < 200:
        if len(informational) == MAX_INFORMATIONAL:
            raise FormatError(CHECK, "too many informational responses", field="Status Code",
                              want=f"<= {MAX_INFORMATIONAL}")
        informational.append((status, _read_field_section(r, "Informational Header Section")))
        status = _read_status(r)
    headers, content, trailers = _read_tail(r)
    return BinaryResponse(status, headers, content, trailers, tuple(informational))


def pad_to_bucket(message: bytes, buckets: tuple[int, ...] = DEFAULT_BUCKETS) -> bytes:
    """Append zero bytes (RFC 9292 §3.8) up to the smallest bucket that holds ``message``, so
    that its length tells only the bucket. A message over the largest bucket is refused."""
    for size in buckets:
        if len(message) <= size:
            return message + bytes(size - len(message))
    raise FormatError(CHECK, "message larger than the largest padding bucket",
                      field="Padding", got=len(message), want=f"<= {buckets[-1]}")
