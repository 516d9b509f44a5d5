"""The real-shaped SNP bundle sample and the refusal helpers shared by the evidence bundle tests
(tests/test_bundle_format.py, tests/test_bundle_cbor.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import cbor2
import pytest

from attest.formats.bundle import decode_bundle, encode_bundle, to_cbor_value
from tests.support.bundle_samples import snp_bundle
from transparency_log.common.errors import FormatError

__all__ = ["SAMPLE", "SAMPLE_BYTES", "encode_value", "mutated", "refuse"]

SAMPLE = snp_bundle()
SAMPLE_BYTES = encode_bundle(SAMPLE)


def encode_value(value: Any) -> bytes:
    """Canonical CBOR of any value (a bundle's map, mutated)."""
    return cbor2.dumps(value, canonical=True)


def refuse(data: bytes, check: str, field: str) -> FormatError:
    """``decode_bundle(data)`` raises FormatError with this check id and field."""
    with pytest.raises(FormatError) as info:
        decode_bundle(data)
    assert info.value.check == check, str(info.value)
    assert info.value.field == field, str(info.value)
    return info.value


def mutated(change: Callable[[dict[str, Any]], None]) -> bytes:
    """The sample's CBOR value changed in place by ``change``, encoded canonically."""
    value = copy.deepcopy(to_cbor_value(SAMPLE))
    change(value)
    return encode_value(value)
