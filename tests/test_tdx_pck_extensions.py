"""The strict DER reader for PCK certificate SGX extensions (attest/formats/sgx_pck_extensions)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from attest.formats.sgx_pck_extensions import (
    SgxExtensions,
    decode_oid,
    encode_oid,
    parse_sgx_extensions,
    read_tlv,
    tlv,
)
from attest.formats.tdx_quote import parse_quote
from tests.support.tdx_support import GCP, REAL_QUOTES, SPR_E4, V5, read
from transparency_log.common.errors import FormatError
from verifier.tdx.quote_verify import load_pck_chain, sgx_extensions

EXPECTED = {
    SPR_E4: ("50806f000000", 11, (3, 3, 2, 2, 2, 1, 0, 2) + (0,) * 8),
    V5: ("90c06f000000", 13, (4, 4, 2, 2, 4, 1, 0, 5) + (0,) * 8),
    GCP: ("00806f050000", 11, (7, 7, 2, 2, 3, 1, 0, 3) + (0,) * 8),
}


def _ext_der(name: str) -> bytes:
    from cryptography import x509

    leaf = load_pck_chain(parse_quote(read(name)))[0]
    oid = x509.ObjectIdentifier("1.2.840.113741.1.13.1")
    return leaf.extensions.get_extension_for_oid(oid).value.value  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", REAL_QUOTES)
def test_real_pck_extensions(name: str) -> None:
    der = _ext_der(name)
    ext = parse_sgx_extensions(der)
    fmspc, pcesvn, comps = EXPECTED[name]
    assert (ext.fmspc.hex(), ext.pcesvn, ext.tcb_comp_svns) == (fmspc, pcesvn, comps)
    assert ext.pceid == b"\x00\x00" and ext.sgx_type == 1 and len(ext.cpusvn) == 16
    assert ext.to_der() == der
    assert sgx_extensions(load_pck_chain(parse_quote(read(name)))[0]) == ext


def test_spr_e4_cpusvn() -> None:
    assert parse_sgx_extensions(_ext_der(SPR_E4)).cpusvn.hex().startswith("0303020202010002")


def test_oid_codec() -> None:
    for oid in ("1.2.840.113741.1.13.1", "2.5.29.19", "1.2.840.113741.1.13.1.2.18"):
        assert decode_oid(encode_oid(oid)) == oid
    with pytest.raises(FormatError):
        decode_oid(b"\x2a\x80\x01")  # non-minimal arc
    with pytest.raises(FormatError):
        decode_oid(b"\x2a\x86")  # truncated


def test_der_strictness() -> None:
    with pytest.raises(FormatError, match="non-minimal DER length"):
        read_tlv(b"\x04\x81\x05hello", 0)
    with pytest.raises(FormatError, match="indefinite"):
        read_tlv(b"\x30\x80\x00\x00", 0)
    with pytest.raises(FormatError, match="runs past"):
        read_tlv(b"\x04\x05abc", 0)
    der = _ext_der(V5)
    with pytest.raises(FormatError, match="trailing"):
        parse_sgx_extensions(der + b"\x00")


def test_missing_or_misordered_items_are_refused() -> None:
    ext = parse_sgx_extensions(_ext_der(SPR_E4))
    good = ext.to_der()
    # Drop the FMSPC item by building an extension with a bogus arc order.
    bad = replace(ext, fmspc=b"\x00" * 5)
    with pytest.raises(FormatError, match="wrong size"):
        parse_sgx_extensions(bad.to_der())
    with pytest.raises(FormatError):
        parse_sgx_extensions(tlv(0x30, good[2:40]))


def test_non_minimal_integer_is_refused() -> None:
    ext = SgxExtensions(bytes(16), (1,) * 16, 5, bytes(16), b"\x00\x00", bytes(6), 0)
    der = ext.to_der()
    needle = b"\x02\x01\x05"  # PCESVN = 5
    assert der.count(needle) == 1
    patched = der.replace(needle, b"\x02\x02\x00\x05")
    # Outer lengths now disagree by one byte: the strict reader refuses either way.
    with pytest.raises(FormatError):
        parse_sgx_extensions(patched)
