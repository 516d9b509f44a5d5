"""RFC 8785 (JCS) encoder and strict decoder."""

from __future__ import annotations

import pytest
import rfc8785  # a dependency of sigstore
from hypothesis import given
from hypothesis import strategies as st

from attest.release.canonical_json import MAX_SAFE_INTEGER, decode, encode
from transparency_log.errors import FormatError


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
