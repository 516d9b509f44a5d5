"""RFC 8785 JSON Canonicalization Scheme (JCS), restricted to the values release entries use.

Encoding (RFC 8785 §3.2):
- objects: members sorted by their names compared as arrays of UTF-16 code units (§3.2.3),
  no whitespace anywhere, ``:`` and ``,`` as separators;
- strings (§3.2.2.2): ``"`` and ``\\`` escaped as ``\\"`` and ``\\\\``; U+0008, U+0009, U+000A,
  U+000C, U+000D as ``\\b \\t \\n \\f \\r``; the other controls below U+0020 as ``\\u00xx``
  (lowercase hex); every other code point as itself in UTF-8. Lone surrogates are refused;
- literals ``true``, ``false``, ``null``;
- numbers (§3.2.2.3) use ECMAScript's Number-to-String. **Restriction:** attestlog accepts
  only integers in the IEEE 754 exact range ``-(2**53-1) .. 2**53-1``, which ECMAScript prints
  as plain decimal digits. Floats, NaN, infinities, ``-0`` and larger integers are refused
  (FormatError ``release.json.number``), so our output is always valid JCS and no value can
  change meaning between a JavaScript and a Python reader.

Decoding (:func:`decode`) is strict: the input must be UTF-8, every object's names must be
unique, no floats or non-finite constants, nesting at most :data:`MAX_DEPTH`, and the bytes
must be exactly the canonical encoding of the value they decode to (re-encode equality).
"""

from __future__ import annotations

import re
from json import JSONDecodeError, loads
from json.encoder import encode_basestring
from typing import Any

from transparency_log.common.errors import FormatError

__all__ = ["MAX_DEPTH", "MAX_SAFE_INTEGER", "decode", "encode", "utf16_key"]

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 32

def utf16_key(name: str) -> bytes:
    """Sort key for object member names: the UTF-16BE code units (RFC 8785 §3.2.3).

    Big-endian bytes compare the same as the sequence of 16-bit code units.
    """
    return name.encode("utf-16-be", "surrogatepass")


_SURROGATE = re.compile("[\ud800-\udfff]")
# The stdlib's JSON string encoder with ensure_ascii off (C when available): it escapes
# exactly what RFC 8785 §3.2.2.2 escapes, the same way: ``\"``, ``\\``, ``\b \t \n \f \r``,
# the other controls below U+0020 as ``\u00xx`` in lowercase hex, everything else as itself
# (tests/test_release_canonical_json.py compares it with a per-character reference encoder).
_escape = encode_basestring


def _string(value: str) -> str:
    """The RFC 8785 string literal of ``value`` in linear time (no Python loop per character);
    a surrogate code point (lone or a UTF-16 pair spelled as two) is refused."""
    bad = _SURROGATE.search(value)
    if bad is not None:
        raise FormatError("release.json.string", "lone surrogate in string",
                          got=f"U+{ord(bad.group()):04X}")
    return _escape(value)


# Where code point order and UTF-16 code unit order (RFC 8785 §3.2.3) can disagree: a name
# with a character at or above U+E000 (U+10000 and up are surrogate pairs in UTF-16, which
# sort below U+E000..U+FFFF). Below that, Python's own str order is the RFC's.
_UTF16_ORDER_DIFFERS = re.compile("[\ue000-\U0010ffff]")


def _member_names(obj: dict[Any, Any]) -> list[str]:
    """The object's member names in RFC 8785 order; FormatError for a name that is no str."""
    names = list(obj)
    for key in names:
        if not isinstance(key, str):
            raise FormatError("release.json.object", "object member name is not a string",
                              got=repr(key))
    names.sort()
    if _UTF16_ORDER_DIFFERS.search("".join(names)) is not None:
        names.sort(key=utf16_key)
    return names


def _encode(value: Any, out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise FormatError("release.json.depth", "nesting too deep", got=depth, want=MAX_DEPTH)
    kind = type(value)
    if kind is str:
        out.append(_string(value))
    elif kind is dict:
        sep = "{"
        for key in _member_names(value):
            out.append(sep)
            out.append(_string(key))
            out.append(":")
            _encode(value[key], out, depth + 1)
            sep = ","
        out.append("}" if sep == "," else "{}")
    elif kind is list or kind is tuple:
        sep = "["
        for item in value:
            out.append(sep)
            _encode(item, out, depth + 1)
            sep = ","
        out.append("]" if sep == "," else "[]")
    else:
        _encode_other(value, out, depth)


def _encode_other(value: Any, out: list[str], depth: int) -> None:
    """The rarer values: literals, integers, subclasses of str/list/dict, refusals."""
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise FormatError("release.json.number", "integer outside the exact double range",
                              got=value, want=f"|n| <= {MAX_SAFE_INTEGER}")
        out.append(str(int(value)))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, list | tuple):
        _encode(list(value), out, depth)
    elif isinstance(value, dict):
        _encode(dict(value), out, depth)
    elif isinstance(value, float):
        raise FormatError("release.json.number", "floating-point numbers are not allowed",
                          got=repr(value), want="an integer")
    else:
        raise FormatError("release.json.type", "value has no JSON form",
                          got=type(value).__name__)


def encode(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value`` (dict/list/str/int/bool/None)."""
    out: list[str] = []
    _encode(value, out, 0)
    return "".join(out).encode("utf-8")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, val in pairs:
        if key in obj:
            raise FormatError("release.json.duplicate", "duplicate object member name",
                              field=key)
        obj[key] = val
    return obj


def _no_float(text: str) -> Any:
    raise FormatError("release.json.number", "floating-point numbers are not allowed",
                      got=text, want="an integer")


def _no_constant(text: str) -> Any:
    raise FormatError("release.json.number", "non-finite number", got=text)


def decode(data: bytes, *, max_size: int | None = None) -> Any:
    """Parse canonical JSON bytes strictly; FormatError unless ``encode(result) == data``."""
    if max_size is not None and len(data) > max_size:
        raise FormatError("release.json.size", "document too large", got=len(data),
                          want=f"<= {max_size}")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as err:
        raise FormatError("release.json.utf8", f"not UTF-8: {err.reason}",
                          got=f"byte offset {err.start}") from None
    try:
        value = loads(text, object_pairs_hook=_no_duplicates, parse_float=_no_float,
                           parse_constant=_no_constant)
    except JSONDecodeError as err:
        raise FormatError("release.json.syntax", f"not JSON: {err.msg}",
                          got=f"char offset {err.pos}") from None
    except RecursionError:
        raise FormatError("release.json.depth", "nesting too deep", want=MAX_DEPTH) from None
    canonical = encode(value)
    if canonical != bytes(data):
        at = _first_difference(canonical, bytes(data))
        raise FormatError("release.json.canonical", "not in RFC 8785 canonical form",
                          got=f"first difference at byte {at}",
                          want=canonical[at:at + 16].decode("utf-8", "replace"))
    return value


def _first_difference(a: bytes, b: bytes) -> int:
    """The first offset where ``a`` and ``b`` differ (the shorter length when one is a prefix
    of the other), by bisection over prefix comparisons done in C: no loop per byte, so a
    refused megabyte costs a few milliseconds, not a second."""
    lo, hi = 0, min(len(a), len(b))  # a[:lo] == b[:lo]; the answer is in [lo, hi]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo
