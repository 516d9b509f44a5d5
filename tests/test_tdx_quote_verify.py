"""Quote authenticity (verifier/tdx/quote_verify.py): real quotes verify at a pinned time;
for each check, a test in which only that check fails; single-bit flips of signed regions."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from tdx_support import GCP, REAL_QUOTES, SIM_NOW, SPR_E4, V5, read, sim, sim_root, utc

from attest.formats.tdx_quote import parse_quote
from transparency_log.errors import (
    AttestlogError,
    ChainError,
    FormatError,
    SignatureError,
    TrustConfigError,
    VerificationError,
)
from verifier.tdx.quote_verify import verify_quote
from verifier.tdx.roots import INTEL_SGX_ROOT_CA_SHA256, intel_sgx_root_ca, production_roots
from verifier.transcript import Transcript
from verifier.x509chain import load_certificate, pinned_root

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

def _flip_all(raw: bytes, lo: int, hi: int, at: object, stride: int = 1) -> int:
    roots = production_roots()
    count = 0
    for bit in range(lo * 8, hi * 8, stride):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(AttestlogError):
            verify_quote(parse_quote(bytes(flipped)), roots=roots, at=at)  # type: ignore[arg-type]
        count += 1
    return count


def test_every_bit_flip_of_the_quote_signed_span_fails() -> None:
    """All 5056 bits of header + TD Quote Body of the real v4 quote."""
    assert _flip_all(read(SPR_E4), 0, 0x278, PINNED[SPR_E4]) == 0x278 * 8


def test_bit_flips_of_the_v5_signed_span_fail() -> None:
    """v5: the 6-byte body descriptor in full; the 648-byte body every 7th bit (sampled
    deterministically to keep the test short; the v4 test covers every bit)."""
    raw = read(V5)
    _flip_all(raw, 0x30, 0x36, PINNED[V5])
    assert _flip_all(raw, 0x36, 0x36 + 648, PINNED[V5], stride=7) == (648 * 8 + 6) // 7


def test_bit_flips_of_the_signature_key_and_qe_report_fail() -> None:
    """Quote signature, attestation key (128 bytes) and QE report (384 bytes) of the real v4
    quote; every 3rd bit (deterministic sample), plus the QE report signature every 5th."""
    raw = read(SPR_E4)
    sig = 0x27C
    _flip_all(raw, sig, sig + 128, PINNED[SPR_E4], stride=3)
    qe = sig + 134
    _flip_all(raw, qe, qe + 384 + 64, PINNED[SPR_E4], stride=3)
