"""Tests of record: the real SEV-SNP captures in tests/vectors/snp (see its MANIFEST.md),
verified with their own certificates at the MANIFEST's pinned time, 2026-11-23.

The vectors carry no AMD CRL, so these runs waive ``snp.crl`` by name in the transcript's
``waive`` set, as a policy's ``waive`` list does (the transcript records it as waived);
revocation is tested with simulated CRLs in test_snp_flows.py.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import cryptography
import pytest
from cryptography import x509

from attest.certificates import clear_parse_memos
from attest.collateral.kds_fetch import vcek_url
from attest.formats.snp_report import MILAN, SIGNED_SIZE, decode_tcb, parse_report
from attest.simulate.snp import der
from tests.support.snp_fixtures import AT, REAL, sim, vec
from transparency_log.common.errors import ChainError, FormatError, PolicyError, SignatureError
from verifier.policy_base import FailureCollector
from verifier.snp.chain import load_key_certificate, verify_key_chain
from verifier.snp.policy import SnpPolicy
from verifier.snp.roots import amd_roots
from verifier.snp.signature import verify_report_signature
from verifier.snp.verify import SnpCollateral, SnpVerification, SnpVerifier
from verifier.transcript import Transcript

WAIVE_CRL = frozenset({"snp.crl"})  # the vectors carry no CRL: the check cannot run

MANIFEST = {
    "go-sev-guest/attestation.bin": dict(
        measurement="b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b"
                    "6bdf8a9ece31a5a608eb0cf2e4872b01",
        policy=0x0B0000, tcb=(2, 0, 5, 68), report_data="0102030405" + "00" * 59,
        chip_prefix="3ac3fe21"),
    "virtee-sev/report_milan.bin": dict(
        measurement="7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d"
                    "3e1a0dc39b2c60bd95b9c480cd81841f",
        policy=0x30000, tcb=(3, 0, 8, 115), report_data="d447b55d", chip_prefix="d49554ec"),
    "trustee/test-report.bin": dict(
        measurement="a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c"
                    "23500644e0e692e6be917f9050d3d38c",
        policy=0x3001F, tcb=(3, 0, 8, 115), report_data=None, chip_prefix="c38427a3"),
}


def judge(policy: SnpPolicy, res: SnpVerification, **kw) -> None:
    """The [snp] rules on an authentic result: every failure raised as one PolicyError."""
    collector = FailureCollector()
    policy.check(res, collector, **kw)
    collector.raise_if_any()


def verify_real(name: str, vcek: str | None = None, at: datetime = AT):
    v = SnpVerifier.production()
    col = SnpCollateral.from_files([vec(vcek or REAL[name])])
    return v.verify(vec(name), at=at, collateral=col, transcript=Transcript(waive=WAIVE_CRL))


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_report_verifies_and_yields_the_manifest_values(name: str) -> None:
    want = MANIFEST[name]
    res = verify_real(name)
    r = res.report
    assert res.product == MILAN and res.key.role == "VCEK"
    assert r.measurement.hex() == want["measurement"]
    assert r.policy == want["policy"]
    t = res.reported_tcb
    assert (t.BOOT_LOADER, t.TEE, t.SNP, t.MICROCODE) == want["tcb"]
    assert r.chip_id.hex().startswith(want["chip_prefix"])
    assert r.chip_id == res.key.extensions.hwid
    if want["report_data"]:
        assert r.report_data.hex().startswith(want["report_data"])
    steps = {s.check: s.result for s in res.transcript.steps}
    assert steps == {"snp.report.format": "pass", "snp.report.product": "pass",
                     "snp.vcek.collateral": "pass", "snp.vcek.chain": "pass",
                     "snp.crl": "waived", "snp.report.signature": "pass",
                     "snp.vcek.extensions": "pass"}


def test_debug_guest_refused_by_a_no_debug_policy() -> None:
    res = verify_real("go-sev-guest/attestation.bin")
    m = res.report.measurement
    with pytest.raises(PolicyError) as e:
        judge(SnpPolicy(), res, measurements=[m])
    assert [f.check for f in e.value.failures] == ["snp.policy.debug"]
    assert e.value.failures[0].field == "POLICY.DEBUG"
    judge(SnpPolicy(allow_debug=True), res, measurements=[m])  # the only objection


def test_trustee_report_needs_the_vcek_for_reported_tcb_not_current_tcb() -> None:
    r = parse_report(vec("trustee/test-report.bin"))
    assert r.current_tcb != r.reported_tcb
    reported = decode_tcb(r.reported_tcb, MILAN)
    current = decode_tcb(r.current_tcb, MILAN)
    assert (reported.MICROCODE, current.MICROCODE) == (0x73, 0xCE)
    res = verify_real("trustee/test-report.bin")  # its VCEK is the REPORTED_TCB one
    assert res.key.extensions.ucode_spl == 0x73
    assert "ucodeSPL=115" in vcek_url(MILAN, r.chip_id, res.reported_tcb)
    assert "ucodeSPL=206" in vcek_url(MILAN, r.chip_id, current)  # what must NOT be fetched


def test_manifest_kds_url_for_the_debug_guest() -> None:
    r = parse_report(vec("go-sev-guest/attestation.bin"))
    url = vcek_url(MILAN, r.chip_id, decode_tcb(r.reported_tcb, MILAN))
    assert url.startswith("https://kdsintf.amd.com/vcek/v1/Milan/3ac3fe21")
    assert url.endswith("006b5d?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68")


@pytest.mark.parametrize("tampered", ["trustee/test-vcek-invalid-legacy.der",
                                      "trustee/test-vcek-invalid-new.der"])
def test_tampered_vceks_fail_the_chain(tampered: str) -> None:
    with pytest.raises(ChainError) as e:
        verify_real("trustee/test-report.bin", vcek=tampered)
    assert e.value.check == "snp.vcek.chain" and e.value.field == "VCEK.signature"


def test_report_under_the_wrong_vcek_fails_the_signature() -> None:
    with pytest.raises(SignatureError) as e:
        verify_real("go-sev-guest/attestation.bin", vcek="virtee-sev/vcek_milan.der")
    assert e.value.check == "snp.report.signature"


def test_expired_vcek_fails_at_a_later_time() -> None:
    with pytest.raises(ChainError) as e:
        verify_real("go-sev-guest/attestation.bin", at=datetime(2030, 1, 1, tzinfo=UTC))
    assert e.value.field == "VCEK.notAfter"


def test_look_alike_chain_ending_in_a_self_made_root_fails() -> None:
    """A simulated 'ARK-Milan' issues an ASK and a VCEK that signs a report: the chain is
    internally valid but the root is not AMD's pinned ARK."""
    s = sim(MILAN)
    col = SnpCollateral(vcek=der(s.vcek()), ask=der(s.ask), ark=der(s.ark))
    with pytest.raises(ChainError) as e:
        SnpVerifier.production().verify(s.report(version=3), at=AT, collateral=col,
                                        transcript=Transcript(waive=WAIVE_CRL))
    assert e.value.check == "snp.vcek.chain" and "pinned root" in e.value.message
    col = SnpCollateral(vcek=der(s.vcek()), ask=der(s.ask))  # no ARK given: same refusal
    with pytest.raises(ChainError):
        SnpVerifier.production().verify(s.report(version=3), at=AT, collateral=col,
                                        transcript=Transcript(waive=WAIVE_CRL))


def test_real_turin_vcek_chains_to_the_pinned_turin_ark() -> None:
    cert = load_key_certificate(vec("virtee-sev/vcek_turin.der"), "VCEK")
    vk = verify_key_chain(cert, amd_roots()["Turin"], role="VCEK", at=AT)
    assert len(vk.extensions.hwid or b"") == 8 and vk.extensions.fmc_spl == 0


def test_every_single_bit_flip_in_the_signed_part_fails_the_signature() -> None:
    """All 0x2A0 * 8 = 5376 bits of each of the three real reports (16128 ECDSA verifies)."""
    for name, vcek in REAL.items():
        raw = bytearray(vec(name))
        key = load_key_certificate(vec(vcek), "VCEK").public_key()
        verify_report_signature(bytes(raw), key)
        for bit in range(SIGNED_SIZE * 8):
            raw[bit // 8] ^= 1 << (bit % 8)
            with pytest.raises(SignatureError):
                verify_report_signature(bytes(raw), key)
            raw[bit // 8] ^= 1 << (bit % 8)


def test_bit_flips_through_the_full_pipeline_are_refused() -> None:
    """A deterministic sample of flips through verify(): each is malformed or forged."""
    raw = vec("virtee-sev/report_milan.bin")
    v = SnpVerifier.production()
    col = SnpCollateral.from_files([vec(REAL["virtee-sev/report_milan.bin"])])
    for bit in range(0, SIGNED_SIZE * 8, 97):
        b = bytearray(raw)
        b[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises((SignatureError, FormatError)):
            v.verify(bytes(b), at=AT, collateral=col, transcript=Transcript(waive=WAIVE_CRL))


# --- the cryptography pin ------------------------------------------------------------------

def test_cryptography_is_in_the_pinned_range_and_loads_every_real_vcek() -> None:
    major = int(cryptography.__version__.split(".")[0])
    assert 42 <= major < 51
    for name in ["go-sev-guest/vcek.testcer", "virtee-sev/vcek_milan.der",
                 "virtee-sev/vcek_turin.der", "trustee/test-vcek.der",
                 "trustee/test-vcek-invalid-legacy.der", "trustee/test-vcek-invalid-new.der"]:
        cert = load_key_certificate(vec(name), "VCEK")
        with warnings.catch_warnings():  # cryptography >= 43 warns on reading it
            warnings.simplefilter("ignore")
            assert cert.serial_number <= 0  # the reason for the pin


def test_a_vcek_the_loader_refuses_is_a_format_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(data: bytes) -> x509.Certificate:
        raise ValueError("error parsing asn1 value: serial number must be positive")

    amd_roots()  # the pinned roots load with the real loader
    clear_parse_memos()  # certificates are parsed once per bytes: parse this VCEK again
    monkeypatch.setattr(x509, "load_der_x509_certificate", refuse)
    with pytest.raises(FormatError) as e:
        verify_real("go-sev-guest/attestation.bin")
    assert e.value.check == "snp.vcek.format" or e.value.check == "snp.collateral.format"
    assert "serial number" in e.value.message


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_reports_meet_every_tcb_minimum_at_their_own_values(name: str) -> None:
    # Genuine evidence passes the TCB relations (snp.policy.tcb.order) and a minimum on each
    # TCB field set to its own value; trustee's runs provisional microcode (206 > 115).
    res = verify_real(name)
    r = res.report

    def parts(raw: int) -> dict[str, int]:
        return decode_tcb(raw, MILAN).components()

    exact = SnpPolicy(allow_debug=True, min_tcb=parts(r.reported_tcb),
                      min_current_tcb=parts(r.current_tcb),
                      min_committed_tcb=parts(r.committed_tcb),
                      min_launch_tcb=parts(r.launch_tcb))
    judge(exact, res, measurements=[r.measurement])
    provisional = r.current_tcb != r.committed_tcb
    assert provisional == (name == "trustee/test-report.bin")
    strict = SnpPolicy(allow_debug=True, allow_provisional_firmware=False)
    if provisional:
        with pytest.raises(PolicyError) as e:
            judge(strict, res, measurements=[r.measurement])
        assert [f.check for f in e.value.failures] == ["snp.policy.tcb.provisional"]
    else:
        judge(strict, res, measurements=[r.measurement])
