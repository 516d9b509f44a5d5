"""RFC 8785 (JCS) encoder and strict decoder."""

from __future__ import annotations

import pytest
import rfc8785  # a dependency of sigstore
from hypothesis import given
from hypothesis import strategies as st

from attest.release.canonical_json import MAX_SAFE_INTEGER, decode, encode
from transparency_log.common.errors import FormatError


def test_rfc8785_sorting_example() -> None:
    """RFC 8785 §3.2.3: names sorted by UTF-16 code units (the emoji's surrogate pair, 0xD83D,
    sorts before U+FB33 although its code point is larger)."""
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    names = ["\\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    out = encode(value).decode("utf-8")
    positions = [out.index(f'"{n}"') for n in names]
    assert positions == sorted(positions)


def test_rfc8785_string_example() -> None:
    """RFC 8785 §3.2.2.2 string serialization example."""
    value = {"string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/"}
    assert encode(value) == '{"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'.encode()


def test_literals_and_nesting() -> None:
    assert encode({"literals": [None, True, False]}) == b'{"literals":[null,true,false]}'
    assert encode({"b": [1, {"z": 0, "a": -5}], "a": {}}) == b'{"a":{},"b":[1,{"a":-5,"z":0}]}'


def test_control_escapes() -> None:
    assert encode("\b\t\n\f\r\x00\x1f\x7f") == b'"\\b\\t\\n\\f\\r\\u0000\\u001f\x7f"'


@pytest.mark.parametrize("bad", [1.5, 0.0, float("nan"), float("inf"), MAX_SAFE_INTEGER + 1,
                                 -MAX_SAFE_INTEGER - 1])
def test_numbers_restricted(bad: object) -> None:
    with pytest.raises(FormatError) as err:
        encode({"n": bad})
    assert err.value.check == "release.json.number"


def test_refuses_other_types() -> None:
    with pytest.raises(FormatError):
        encode({"b": b"bytes"})
    with pytest.raises(FormatError):
        encode({1: "x"})
    with pytest.raises(FormatError):
        encode("\ud800")


def test_decode_roundtrip() -> None:
    data = b'{"a":[1,"\xe2\x82\xac",null],"b":{"c":true}}'
    assert encode(decode(data)) == data


@pytest.mark.parametrize(
    ("data", "check"),
    [
        (b'{"a":1,"a":2}', "release.json.duplicate"),
        (b'{"b":1,"a":2}', "release.json.canonical"),
        (b'{"a": 1}', "release.json.canonical"),
        (b'{"a":1.0}', "release.json.number"),
        (b'{"a":1e3}', "release.json.number"),
        (b'{"a":NaN}', "release.json.number"),
        (b'{"a":-0}', "release.json.canonical"),
        (b'{"a":01}', "release.json.syntax"),
        (b'"\\u20ac"', "release.json.canonical"),
        (b'"\\/"', "release.json.canonical"),
        (b'"\\ud800"', "release.json.string"),
        (b'"\xff"', "release.json.utf8"),
        (b'{"a":1}\n', "release.json.canonical"),
        (b'{"a":', "release.json.syntax"),
        (b"[" * 40 + b"]" * 40, "release.json.depth"),
        (b"9007199254740992", "release.json.number"),
    ],
)
def test_decode_refuses(data: bytes, check: str) -> None:
    with pytest.raises(FormatError) as err:
        decode(data)
    assert err.value.check == check


def test_decode_size_cap() -> None:
    with pytest.raises(FormatError) as err:
        decode(b'"' + b"a" * 100 + b'"', max_size=50)
    assert err.value.check == "release.json.size"


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.text(st.characters(exclude_categories=("Cs",))),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(st.characters(exclude_categories=("Cs",)), max_size=4), inner,
                      max_size=4),
    max_leaves=12,
)


@given(_json)
def test_property_roundtrip(value: object) -> None:
    data = encode(value)
    assert decode(data) == value
    assert encode(decode(data)) == data


@given(_json)
def test_property_matches_independent_rfc8785(value: object) -> None:
    """Cross-check against trailofbits' rfc8785 (a dependency of sigstore, so always installed)."""
    assert encode(value) == rfc8785.dumps(value)


# --- the linear-time encoder against the per-character reference it replaced (issue 15) ------

_SHORT_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r",
                  0x22: '\\"', 0x5C: "\\\\"}


def _reference_string(value: str) -> str:
    """The old encoder's string rule, one character at a time (RFC 8785 §3.2.2.2)."""
    out = ['"']
    for ch in value:
        cp = ord(ch)
        if 0xD800 <= cp <= 0xDFFF:
            raise FormatError("release.json.string", "lone surrogate in string",
                              got=f"U+{cp:04X}")
        if cp in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[cp])
        elif cp < 0x20:
            out.append(f"\\u{cp:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _reference_encode(value: object) -> bytes:
    """The old recursive encoder, with names sorted by UTF-16 code units (§3.2.3)."""
    if isinstance(value, str):
        return _reference_string(value).encode("utf-8")
    if isinstance(value, list):
        return b"[" + b",".join(_reference_encode(v) for v in value) + b"]"
    if isinstance(value, dict):
        names = sorted(value, key=lambda n: n.encode("utf-16-be", "surrogatepass"))
        return b"{" + b",".join(_reference_encode(n) + b":" + _reference_encode(value[n])
                                for n in names) + b"}"
    return encode(value)  # literals and integers: no string inside


def _outcome(fn: object, value: object) -> tuple[str, object]:
    try:
        return "ok", fn(value)  # type: ignore[operator]
    except FormatError as err:
        return "refused", (err.check, err.got)


# every control character, the escapes, surrogates (lone and as a spelled-out pair), the
# edges of the BMP and the private use area, non-BMP characters
_EDGE_CHARS = [chr(c) for c in range(0x21)] + ['"', "\\", "/", "\x7f", "\u2028", "\u2029",
               "\ud7ff", "\ud800", "\udbff", "\udc00", "\udfff", "\ue000", "\uffff",
               "\U00010000", "\U0001f600", "\U0010ffff"]
_any_text = st.text(st.sampled_from(_EDGE_CHARS) | st.characters(), max_size=24)


@given(_any_text)
def test_fast_string_encoder_matches_reference(text: str) -> None:
    """Same bytes, or the same refusal (check id and the surrogate it names)."""
    assert _outcome(encode, text) == _outcome(_reference_encode, text)


@given(st.dictionaries(_any_text, _any_text, max_size=6))
def test_fast_member_order_matches_reference(value: dict[str, str]) -> None:
    """Objects with names on both sides of U+E000 and non-BMP: same order, same refusal."""
    assert _outcome(encode, value) == _outcome(_reference_encode, value)


def test_every_control_character_escaped_as_reference() -> None:
    for cp in range(0x80):
        assert encode(chr(cp)) == _reference_encode(chr(cp)), hex(cp)


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\ud83d\ude00"])
def test_surrogates_refused_naming_the_first(text: str) -> None:
    with pytest.raises(FormatError) as err:
        encode({"k": text})
    assert err.value.check == "release.json.string"
    assert err.value.got == f"U+{ord(text.lstrip('a')[0]):04X}"
    with pytest.raises(FormatError) as err:
        decode(b'{"k":"\\' + f"u{ord(text.lstrip('a')[0]):04x}".encode() + b'"}')
    assert err.value.check == "release.json.string"
