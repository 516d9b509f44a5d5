"""TDX quote v4/v5 parser and serializer (attest/formats/tdx_quote.py) on real and simulated
quotes; strict refusals of malformed ones."""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest

from attest.formats.tdx_quote import (
    BODY_TYPE_TDX15,
    INTEL_QE_VENDOR_ID,
    TD_BODY_10_SIZE,
    TdReportBody,
    parse_quote,
)
from tests.support.tdx_support import GCP, REAL_QUOTES, SPR_E4, V5, read, sim
from transparency_log.common.errors import FormatError


@pytest.mark.parametrize("name", REAL_QUOTES)
def test_real_quotes_round_trip(name: str) -> None:
    raw = read(name)
    quote = parse_quote(raw)
    assert quote.to_bytes() == raw
    assert quote.header.qe_vendor_id == INTEL_QE_VENDOR_ID
    assert quote.signature_data.certification.pck_cert_chain.count(b"BEGIN CERTIFICATE") == 3


def test_spr_e4_fields_match_the_manifest() -> None:
    q = parse_quote(read(SPR_E4))
    assert q.version == 4 and q.body_type == 2 and not q.body.is_tdx15
    assert q.trailing == b"\nextra bytes(only for testing purpose)\n" and len(q.trailing) == 39
    assert q.body.mrtd.hex() == (
        "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f"
        "22fc00b8dcd404bc10d5e119d7215cbb")
    assert q.body.mrseam.hex().startswith("2fd279c1") and q.body.mrseam.hex().endswith("3c656")
    assert q.body.tee_tcb_svn.hex().startswith("03000400")
    assert q.body.td_attributes.hex() == "0000004000000000"
    assert q.body.td_attribute_flags == ("PKS",)
    assert not q.body.td_attribute("DEBUG")
    assert q.body.report_data.hex().startswith("6c62dec1")
    assert q.body.rtmr3 == bytes(48)
    assert q.signature_data.certification.qe_report_body.isv_svn == 4


def test_v5_quote_has_a_tdx15_body() -> None:
    q = parse_quote(read(V5))
    assert q.version == 5 and q.body_type == BODY_TYPE_TDX15 and q.body.is_tdx15
    assert q.body.tee_tcb_svn.hex().startswith("0b0104")
    assert q.body.tee_tcb_svn2 is not None and q.body.tee_tcb_svn2.hex().startswith("0d0104")
    assert q.body.mrservicetd == bytes(48)
    assert q.body.mrtd.hex().startswith("7348651a34b2d2d3")
    assert q.trailing == b""
    # The PEM chain ends in a NUL byte, kept verbatim.
    assert q.signature_data.certification.pck_cert_chain.endswith(b"\x00")


def test_gcp_quote_has_zero_padding_after_the_signature_data() -> None:
    q = parse_quote(read(GCP))
    assert q.trailing == bytes(3065)
    assert q.body.report_data == read("ccel_nonce.dat")
    assert q.body.td_attribute_flags == ("SEPT_VE_DISABLE",)


@pytest.mark.parametrize("version", [4, 5])
def test_simulated_quotes_round_trip(version: int) -> None:
    q = sim().quote(version=version, trailing=b"\x00" * 7)
    raw = q.to_bytes()
    assert parse_quote(raw) == q
    assert len(parse_quote(raw).trailing) == 7


def test_v5_with_a_tdx10_body() -> None:
    s = sim()
    q = s.quote(version=5, body=s.body())
    assert q.body_type == 2
    raw = q.to_bytes()
    assert struct.unpack_from("<HI", raw, 0x30) == (2, TD_BODY_10_SIZE)
    assert parse_quote(raw) == q


def _expect(raw: bytes, field: str) -> None:
    with pytest.raises(FormatError) as err:
        parse_quote(raw)
    assert err.value.check == "tdx.quote.format"
    assert err.value.field == field, err.value


def _patch(raw: bytes, off: int, value: bytes) -> bytes:
    return raw[:off] + value + raw[off + len(value):]


def test_strict_refusals() -> None:
    v4 = read(SPR_E4)
    v5 = read(V5)
    _expect(v4[:40], "Quote")
    _expect(_patch(v4, 0, b"\x03\x00"), "Version")
    _expect(_patch(v4, 2, b"\x03\x00"), "Attestation Key Type")
    _expect(_patch(v4, 4, b"\x00\x00\x00\x00"), "TEE Type")
    _expect(_patch(v4, 8, b"\x01"), "Quote Header.Reserved")
    _expect(_patch(v5, 0x30, b"\x01\x00"), "Quote Body Type")
    _expect(_patch(v5, 0x32, struct.pack("<I", TD_BODY_10_SIZE)), "Quote Body Size")
    _expect(_patch(v4, 0x278, struct.pack("<I", 100_000)), "Quote Signature Data Len")
    _expect(v4[:0x300], "Quote Signature Data")
    # Certification data type (at 0x27C + 128) must be 6.
    _expect(_patch(v4, 0x27C + 128, b"\x05\x00"), "Certification Data Type")
    # QE report reserved bytes (QE report at 0x27C + 134; reserved1 at +0x14).
    _expect(_patch(v4, 0x27C + 134 + 0x14, b"\x01"), "QE Report.Reserved")


def test_signature_data_sizes_must_agree() -> None:
    q = sim().quote()
    raw = q.to_bytes()
    sig_off = 0x27C
    cert_size_off = sig_off + 130
    (size,) = struct.unpack_from("<I", raw, cert_size_off)
    _expect(_patch(raw, cert_size_off, struct.pack("<I", size - 1)), "Certification Data.Size")
    cert = q.signature_data.certification
    inner_off = sig_off + 134 + 384 + 64 + 2 + len(cert.qe_auth_data) + 2
    _expect(_patch(raw, inner_off, struct.pack("<I", len(cert.pck_cert_chain) + 1)),
            "QE Certification Data.Size")
    _expect(_patch(raw, inner_off - 2, b"\x04\x00"), "QE Certification Data Type")


def test_serializer_refuses_wrong_sizes() -> None:
    s = sim()
    body = replace(s.body(), mrtd=bytes(47))
    with pytest.raises(FormatError):
        body.to_bytes()
    with pytest.raises(FormatError):
        TdReportBody.parse(bytes(600))


def test_td_attribute_decoding() -> None:
    attrs = ((1 << 0) | (1 << 28) | (1 << 30) | (1 << 31) | (1 << 63) | (1 << 5)).to_bytes(
        8, "little")
    body = replace(sim().body(), td_attributes=attrs)
    assert body.td_attribute_flags == ("DEBUG", "BIT5", "SEPT_VE_DISABLE", "PKS", "KL",
                                       "PERFMON")
    assert body.td_attribute("DEBUG") and body.td_attribute("PERFMON")
    assert not body.td_attribute("MIGRATABLE")


def test_simulated_quotes_are_byte_exact_at_spec_offsets() -> None:
    s = sim()
    rd = bytes(range(64))
    v4 = s.quote(version=4, report_data=rd).to_bytes()
    v5 = s.quote(version=5, report_data=rd).to_bytes()
    assert v4[0x30 + 0x208:0x30 + 0x248] == rd and v5[0x36 + 0x208:0x36 + 0x248] == rd
    assert struct.unpack_from("<HHI", v4, 0) == (4, 2, 0x81)
    assert struct.unpack_from("<HHI", v5, 0) == (5, 2, 0x81)
    assert struct.unpack_from("<HI", v5, 0x30) == (3, 648)
    assert v4[0x0C:0x1C] == INTEL_QE_VENDOR_ID
    (sig_len,) = struct.unpack_from("<I", v4, 0x278)
    assert len(v4) == 0x27C + sig_len
    assert v5[0x36 + 0x248:0x36 + 0x258] == s.body().tee_tcb_svn  # TEE_TCB_SVN2
