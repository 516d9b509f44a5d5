"""The exhaustive bit-flip harness (tests/support/bitflip_support.py) itself: it must catch a
verifier
that accepts a flip or lets a foreign exception escape, and name the bit."""

from __future__ import annotations

import hashlib

import pytest

from tests.support.bitflip_support import flip_every_bit
from transparency_log.common.errors import FormatError, SignatureError

DATA = bytes(range(16))
DIGEST = hashlib.sha256(DATA).digest()


def _strict(blob: bytes) -> None:
    if blob[0] != 0:
        raise FormatError("t.format", "first byte must be zero", field="b0")
    if hashlib.sha256(blob).digest() != DIGEST:
        raise SignatureError("t.signature", "digest differs")


def test_a_strict_verifier_refuses_every_flip_and_each_refusal_is_recorded() -> None:
    run = flip_every_bit(DATA, 0, len(DATA), _strict)
    assert len(run) == 128
    assert run.kinds() == {("FormatError", "t.format"): 8,
                           ("SignatureError", "t.signature"): 120}
    odd = run.unexpected(lambda r: r.kind == ("SignatureError", "t.signature"))
    assert len(odd) == 8
    assert odd[0].startswith("byte 0x0 bit 0: ('FormatError', 't.format')")


def test_an_accepted_flip_fails_the_test_with_its_bit() -> None:
    def lenient(blob: bytes) -> None:  # ignores bit 3 of byte 5
        _strict(blob[:5] + bytes([blob[5] & ~0x08 | DATA[5] & 0x08]) + blob[6:])

    with pytest.raises(AssertionError, match=r"1 flip\(s\) accepted, first bits: \[43\]"):
        flip_every_bit(DATA, 0, len(DATA), lenient)


def test_a_foreign_exception_fails_the_test() -> None:
    def crashing(blob: bytes) -> None:
        if blob[9] != DATA[9]:
            raise ValueError("library error")
        _strict(blob)

    with pytest.raises(AssertionError, match=r"8 flip\(s\) escaped our errors.*byte 0x9 bit 0"):
        flip_every_bit(DATA, 0, len(DATA), crashing)
