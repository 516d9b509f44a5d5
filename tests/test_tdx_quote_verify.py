"""Quote authenticity (verifier/tdx/quote_verify.py): real quotes verify at a pinned time;
for each check, a test in which only that check fails; single-bit flips of signed regions."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attest.certificates import load_certificate
from attest.formats.tdx_quote import parse_quote
from tests.support.bitflip_support import flip_every_bit
from tests.support.tdx_support import (
    GCP,
    REAL_QUOTES,
    SIM_NOW,
    SPR_E4,
    SPR_E4_TIME,
    V5,
    V5_TIMES,
    read,
    real_collateral,
    sim,
    sim_root,
    utc,
)
from transparency_log.common.errors import (
    AttestlogError,
    ChainError,
    FormatError,
    SignatureError,
    TrustConfigError,
    VerificationError,
)
from verifier.tdx.collateral import VerificationTimes
from verifier.tdx.evidence import verify_tdx_evidence
from verifier.tdx.quote_verify import verify_quote
from verifier.tdx.roots import INTEL_SGX_ROOT_CA_SHA256, intel_sgx_root_ca, production_roots
from verifier.transcript import Transcript
from verifier.x509chain import pinned_root

PINNED = {SPR_E4: utc("2023-06-20"), V5: utc("2026-02-03"), GCP: utc("2024-08-01")}
CHECKS = ["tdx.quote.header", "tdx.pck.chain", "tdx.pck.extensions", "tdx.qe.report.signature",
          "tdx.qe.report_data", "tdx.quote.signature"]


def test_embedded_root_is_pinned() -> None:
    root = intel_sgx_root_ca()
    assert root.fingerprint.hex() == INTEL_SGX_ROOT_CA_SHA256
    assert root.certificate.subject.rfc4514_string().endswith("CN=Intel SGX Root CA")
    assert root.certificate == load_certificate(read("trusted_root.pem"), check="t", field="f")
    with pytest.raises(TrustConfigError):
        pinned_root("Intel SGX Root CA", read("trusted_root.pem"), "00" * 32)


@pytest.mark.parametrize("name", REAL_QUOTES)
def test_real_quote_signatures_and_chain_verify(name: str) -> None:
    t = Transcript()
    auth = verify_quote(parse_quote(read(name)), roots=production_roots(), at=PINNED[name],
                        transcript=t)
    assert [s.check for s in t.steps] == CHECKS
    assert auth.root.name == "Intel SGX Root CA"
    assert auth.pck_ca.subject.rfc4514_string().endswith("CN=Intel SGX PCK Platform CA")


def test_real_v5_pck_leaf_is_not_valid_before_2026() -> None:
    with pytest.raises(ChainError) as err:
        verify_quote(parse_quote(read(V5)), roots=production_roots(), at=utc("2025-12-01"))
    assert err.value.field == "PCK.notBefore"


def test_simulated_quote_verifies_only_with_its_root_passed_explicitly() -> None:
    s = sim()
    quote = s.quote()
    verify_quote(quote, roots=[sim_root(s)], at=SIM_NOW)
    with pytest.raises(ChainError):
        verify_quote(quote, roots=production_roots(), at=SIM_NOW)


# ---------------------------------------------------------------- one check fails at a time

def _fails(quote_or_raw: object, check: str, roots: object, kind: type = VerificationError
           ) -> AttestlogError:
    quote = parse_quote(quote_or_raw) if isinstance(quote_or_raw, bytes) else quote_or_raw
    t = Transcript()
    with pytest.raises(kind) as err:
        verify_quote(quote, roots=roots, at=SIM_NOW, transcript=t)  # type: ignore[arg-type]
    assert err.value.check == check, err.value
    passed = [s.check for s in t.steps]
    assert passed == CHECKS[:CHECKS.index(check)], "only the named check fails"
    return err.value


def test_only_header_fails_for_another_qe_vendor() -> None:
    s = sim()
    q = s.quote()
    q = s.sign(replace(q, header=replace(q.header, qe_vendor_id=bytes(16))), s.attestation_key)
    _fails(q, "tdx.quote.header", [sim_root(s)])


def test_only_chain_fails_for_a_look_alike_chain_ending_in_a_self_made_root() -> None:
    """Same names, same structure, a different key: the chain ends in a self-made root."""
    real, fake = sim(), sim(seed=b"attacker")
    q = fake.quote()
    err = _fails(q, "tdx.pck.chain", [sim_root(real)], ChainError)
    assert "self-signed" in err.message
    # And the real Intel root does not accept a chain named like Intel's but made elsewhere.
    intel_named = sim(seed=b"attacker2", root_name="Intel SGX Root CA")
    _fails(intel_named.quote(), "tdx.pck.chain", production_roots(), ChainError)


def test_only_chain_fails_when_the_pck_leaf_expired() -> None:
    s = sim()
    t = Transcript()
    with pytest.raises(ChainError) as err:
        verify_quote(s.quote(), roots=[sim_root(s)], at=utc("2040-01-01"), transcript=t)
    assert err.value.field == "PCK.notAfter" and [x.check for x in t.steps] == CHECKS[:1]


def test_only_extensions_fail_for_a_pck_without_sgx_extension() -> None:
    s = sim(sgx_extension=False)
    _fails(s.quote(), "tdx.pck.extensions", [sim_root(s)], FormatError)


def test_only_qe_report_signature_fails_for_a_changed_qe_report() -> None:
    s = sim()
    q = s.quote()
    cert = q.signature_data.certification
    report = bytearray(cert.qe_report)
    report[0x102] ^= 1  # ISVSVN
    q = replace(q, signature_data=replace(q.signature_data, certification=replace(
        cert, qe_report=bytes(report))))
    _fails(q, "tdx.qe.report.signature", [sim_root(s)], SignatureError)


def test_only_qe_report_data_fails_for_a_quote_resigned_with_a_swapped_key() -> None:
    """An attacker's key signs the quote; the QE report still binds the QE's key."""
    s = sim()
    attacker = ec.generate_private_key(ec.SECP256R1())
    q = s.sign(s.quote(), attacker)
    err = _fails(q, "tdx.qe.report_data", [sim_root(s)])
    assert err.field == "QE Report.REPORTDATA"


def test_only_qe_report_data_fails_for_changed_auth_data() -> None:
    s = sim()
    q = s.quote()
    cert = replace(q.signature_data.certification, qe_auth_data=b"other")
    q = replace(q, signature_data=replace(q.signature_data, certification=cert))
    _fails(q, "tdx.qe.report_data", [sim_root(s)])


def test_only_quote_signature_fails_for_a_changed_body() -> None:
    s = sim()
    q = s.quote()
    q = replace(q, body=replace(q.body, mrtd=bytes(48)))
    _fails(q, "tdx.quote.signature", [sim_root(s)], SignatureError)


# ---------------------------------------------------------------- single-bit flips
#
# Exhaustive: every bit of every signed region of the real v4 (SPR_E4) and v5 quotes is
# flipped alone and the flipped quote goes through verify_tdx_evidence (the public entry
# point: parse, then every authenticity check) with its collateral loaded once. Each region
# names the checks allowed to refuse its flips: malformed at parse, or, having parsed, the one
# check that covers the region (no flip may get past it).

FORMAT = ("FormatError", "tdx.quote.format")
QUOTE_SIGNATURE = ("SignatureError", "tdx.quote.signature")
QE_REPORT_SIGNATURE = ("SignatureError", "tdx.qe.report.signature")
QE_REPORT_DATA = ("VerificationError", "tdx.qe.report_data")
QE_VENDOR_ID = (0x0C, 0x1C)  # Quote Header.QE_VENDOR_ID, checked by tdx.quote.header first
AUTHENTIC = ["tdx.quote.format", *CHECKS]
FLIP_QUOTES = {
    SPR_E4: ("sample_tcbInfo_response", VerificationTimes.uniform(SPR_E4_TIME)),
    V5: ("sample_tcbinfo_response_v5", V5_TIMES),
}
# region -> the refusals allowed for its flips (besides QE_VENDOR_ID's header check)
FLIP_REGIONS = {
    "signed span (header, body)": (FORMAT, QUOTE_SIGNATURE),
    "quote signature": (QUOTE_SIGNATURE,),
    "attestation key": (QE_REPORT_DATA,),
    "QE report": (FORMAT, QE_REPORT_SIGNATURE),
    "QE report signature": (QE_REPORT_SIGNATURE,),
    "QE authentication data": (QE_REPORT_DATA,),
}


def _flip_regions(raw: bytes) -> dict[str, tuple[int, int]]:
    """Byte ranges of the regions in the raw quote (A.3.8-A.3.11), checked against the parse:
    signed span, Quote Signature Data Len (4), signature (64), attestation key (64),
    certification data type and size (6), QE report (384), its signature (64), QE
    authentication data size (2) and data."""
    quote = parse_quote(raw)
    cert = quote.signature_data.certification
    signed = len(quote.signed_bytes)
    sig = signed + 4
    qe = sig + 128 + 6
    auth = qe + 384 + 64 + 2
    regions = {
        "signed span (header, body)": (0, signed),
        "quote signature": (sig, sig + 64),
        "attestation key": (sig + 64, sig + 128),
        "QE report": (qe, qe + 384),
        "QE report signature": (qe + 384, qe + 448),
        "QE authentication data": (auth, auth + len(cert.qe_auth_data)),
    }
    parsed = {
        "signed span (header, body)": quote.signed_bytes,
        "quote signature": quote.signature_data.signature,
        "attestation key": quote.signature_data.attestation_key,
        "QE report": cert.qe_report,
        "QE report signature": cert.qe_report_signature,
        "QE authentication data": cert.qe_auth_data,
    }
    for name, (lo, hi) in regions.items():
        assert raw[lo:hi] == parsed[name], name
    return regions


@pytest.mark.parametrize("region", FLIP_REGIONS)
@pytest.mark.parametrize("name", FLIP_QUOTES)
def test_every_single_bit_flip_of_a_signed_region_fails(name: str, region: str) -> None:
    raw, roots = read(name), production_roots()
    tcb_info, times = FLIP_QUOTES[name]
    collateral = real_collateral(tcb_info)

    def verify(quote: bytes) -> object:
        return verify_tdx_evidence(quote, collateral, roots=roots, times=times)

    # The unflipped quote passes every authenticity check (SPR_E4 then has no matching TCB
    # level in the sample TCB Info; v5 is accepted).
    t = Transcript()
    with contextlib.suppress(VerificationError):
        verify_tdx_evidence(raw, collateral, roots=roots, times=times, transcript=t)
    assert [s.check for s in t.steps][:len(AUTHENTIC)] == AUTHENTIC
    assert t.error is None or t.error.check == "tdx.tcb.level"

    lo, hi = _flip_regions(raw)[region]
    allowed = FLIP_REGIONS[region]
    run = flip_every_bit(raw, lo, hi, verify)
    assert len(run) == (hi - lo) * 8
    assert run.unexpected(lambda r: r.kind in allowed or (
        r.kind == ("VerificationError", "tdx.quote.header")
        and QE_VENDOR_ID[0] <= r.offset < QE_VENDOR_ID[1])) == []
    assert run.kinds()[allowed[-1]] > len(run) // 2


def test_flip_regions_of_the_real_quotes() -> None:
    """The regions above, for the record: v4 signs 0x278 bytes, v5 0x2BE (with the 6-byte
    body descriptor); both carry 32 bytes of QE authentication data."""
    v4, v5 = _flip_regions(read(SPR_E4)), _flip_regions(read(V5))
    assert v4["signed span (header, body)"] == (0, 0x278)
    assert v5["signed span (header, body)"] == (0, 0x2BE)
    assert v4["QE report"] == (0x302, 0x482)
    assert v4["QE authentication data"][1] - v4["QE authentication data"][0] == 32
    assert v5["QE authentication data"][1] - v5["QE authentication data"][0] == 32
