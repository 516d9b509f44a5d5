"""The head-only CBOR pass (attest/formats/cbor_scan.py; RFC 8949 §3, §4.2.1)."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attest.formats.cbor_scan import scan
from transparency_log.common.errors import FormatError


def _scan(data: bytes, *, max_items: int = 100, max_depth: int = 4) -> None:
    scan(data, check_cbor="t.cbor", check_canonical="t.canonical", field="x",
         max_items=max_items, max_depth=max_depth)


def _refused(data: bytes, check: str, words: str, **kw: int) -> None:
    with pytest.raises(FormatError) as info:
        _scan(data, **kw)
    assert info.value.check == check
    assert info.value.field == "x"
    assert words in info.value.message


@pytest.mark.parametrize("data", [
    b"\x00", b"\x17", b"\x18\x18", b"\x19\x01\x00", b"\x1a\x00\x01\x00\x00",
    b"\x1b\x00\x00\x00\x01\x00\x00\x00\x00", b"\x20", b"\x40", b"\x43abc", b"\x62hi",
    b"\x80", b"\xa1\x61a\x82\xf5\xf4", b"\xf6", b"\xf9\x3c\x00", b"\xfb" + bytes(8),
    b"\xf8\x20",
])
def test_accepts_deterministic_items(data: bytes) -> None:
    _scan(data)


@pytest.mark.parametrize(("data", "words"), [
    (b"\x18\x17", "shortest"), (b"\x19\x00\xff", "shortest"),
    (b"\x1a\x00\x00\xff\xff", "shortest"), (b"\x1b\x00\x00\x00\x00\xff\xff\xff\xff", "shortest"),
    (b"\x58\x01a", "shortest"), (b"\x98\x00", "shortest"), (b"\xb8\x00", "shortest"),
    (b"\x5f\x41a\xff", "indefinite"), (b"\x9f\xff", "indefinite"), (b"\xbf\xff", "indefinite"),
    (b"\x00\x00", "bytes after"),
])
def test_refuses_non_deterministic(data: bytes, words: str) -> None:
    _refused(data, "t.canonical", words)


@pytest.mark.parametrize(("data", "words"), [
    (b"", "missing"), (b"\x82\x81\x00", "missing"), (b"\x82\x00", "more items"),
    (b"\x19\x01", "truncated argument"),
    (b"\x1c", "reserved"), (b"\xff", "invalid"), (b"\x1f", "invalid"),
    (b"\x44ab", "past the end"), (b"\x9a\x00\x01\x00\x00", "more items than bytes"),
    (b"\xc1\x00", "tag 1"), (b"\xf8\x10", "simple value"),
])
def test_refuses_malformed(data: bytes, words: str) -> None:
    _refused(data, "t.cbor", words)


def test_item_and_depth_caps() -> None:
    _scan(b"\x83\x00\x00\x00", max_items=4)
    _refused(b"\x84\x00\x00\x00\x00", "t.cbor", "more than 4", max_items=4)
    _scan(b"\x81\x81\x80", max_depth=3)
    _refused(b"\x81\x81\x81\x80", "t.cbor", "deeper than 3", max_depth=3)


_plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.binary(max_size=300)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=5),
    max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(_plain)
def test_cbor2_canonical_output_always_passes(value: object) -> None:
    _scan(cbor2.dumps(value, canonical=True), max_items=10_000, max_depth=64)
