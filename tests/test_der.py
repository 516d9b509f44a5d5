"""The shared strict DER reader/writer (attest/formats/der.py): X.690 DER restrictions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attest.formats import der
from transparency_log.common.errors import FormatError

CHECK = "test.der"


@given(st.integers(min_value=0, max_value=2**80), st.integers(min_value=0, max_value=0x1E))
def test_uint_and_tlv_round_trip(n: int, tag: int) -> None:
    enc = der.encode_tlv(der.TAG_INTEGER, der.encode_uint(n))
    t, contents = der.read_single(enc, check=CHECK, field="x")
    assert t == der.TAG_INTEGER and der.decode_uint(contents, check=CHECK, field="x") == n
    blob = bytes(range(256)) * 3
    assert der.read_single(der.encode_tlv(tag, blob), check=CHECK, field="x") == (tag, blob)


@pytest.mark.parametrize(("data", "why"), [
    (b"\x02", "truncated"),
    (b"\x1f\x01\x00", "multi-byte"),
    (b"\x04\x80\x00\x00", "indefinite"),
    (b"\x04\x81\x05hello", "non-minimal"),
    (b"\x04\x82\x00\x05hello", "non-minimal"),
    (b"\x04\x05abc", "runs past"),
    (b"\x04\x01ab", "does not match"),
])
def test_non_der_lengths_are_refused_with_the_callers_check(data: bytes, why: str) -> None:
    with pytest.raises(FormatError) as info:
        der.read_single(data, check=CHECK, field="x")
    assert info.value.check == CHECK and why in info.value.message


@pytest.mark.parametrize(("contents", "why"), [
    (b"", "empty"), (b"\x80", "negative"), (b"\x00\x7f", "non-minimal"),
])
def test_integers_must_be_minimal_and_non_negative(contents: bytes, why: str) -> None:
    with pytest.raises(FormatError, match=why):
        der.decode_uint(contents, check=CHECK, field="x")


def test_oids() -> None:
    for oid in ("1.2.840.113741.1.13.1", "1.3.6.1.4.1.3704.1.3.8", "2.999.1"):
        assert der.decode_oid(der.encode_oid(oid), check=CHECK) == oid
    for bad in (b"", b"\x2a\x80\x01", b"\x2a\x86"):
        with pytest.raises(FormatError):
            der.decode_oid(bad, check=CHECK)
