"""Intel's intermediates as trust configuration (issue 15): the PCK Platform CA and the TCB
Signing certificate are embedded next to the pinned Intel SGX Root CA, each pinned by its
SHA-256. Their link to the root is verified once per process; a certificate with any other
bytes is verified as before; their validity and Root CA CRL revocation still run on every
call; a bundle certificate is replaced by the registered trust object only on an exact DER
match."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from attest.certificates import clear_parse_memos, load_pem_bundle
from attest.simulate.tdx import IntelSimulator
from tests.support.tdx_support import (
    V5,
    V5_TIMES,
    read,
    real_collateral,
    sim,
    sim_collateral,
    utc,
)
from transparency_log.common.errors import (
    ChainError,
    StaleError,
    TrustConfigError,
    VerificationError,
)
from verifier.tdx.collateral import VerificationTimes
from verifier.tdx.evidence import verify_tdx_evidence
from verifier.tdx.roots import INTEL_INTERMEDIATES, intel_sgx_root_ca, production_roots
from verifier.transcript import FAIL, Transcript
from verifier.x509chain import (
    PinnedRoot,
    _pinned_link_known,
    fingerprint,
    pinned_root,
    verify_chain,
)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def pinned_sim_root(s: IntelSimulator) -> PinnedRoot:
    """The simulator's root with its PCK CA and TCB signing certificate embedded."""
    return pinned_root("sim", _pem(s.root_cert), fingerprint(s.root_cert).hex(), intermediates=[
        ("sim PCK CA", _pem(s.pck_ca_cert), fingerprint(s.pck_ca_cert).hex()),
        ("sim TCB signing", _pem(s.tcb_signing_cert), fingerprint(s.tcb_signing_cert).hex())])


def _verify(s: IntelSimulator, quote: bytes, root: PinnedRoot, **collateral: bytes
            ) -> Transcript:
    t = Transcript()
    verify_tdx_evidence(quote, sim_collateral(s, **collateral), roots=[root],
                        times=VerificationTimes.uniform(s.now), transcript=t)
    return t


def _refused(s: IntelSimulator, quote: bytes, root: PinnedRoot, check: str,
             error: type[Exception], **collateral: bytes) -> Exception:
    t = Transcript()
    with pytest.raises(error) as err:
        verify_tdx_evidence(quote, sim_collateral(s, **collateral), roots=[root],
                            times=VerificationTimes.uniform(s.now), transcript=t)
    assert err.value.check == check  # type: ignore[attr-defined]
    assert [x.check for x in t.steps if x.result == FAIL] == [check]
    return err.value


def _look_alike(real: x509.Certificate, *, not_after_days: int = 3650) -> x509.Certificate:
    """The pinned certificate's subject, issuer, key and extensions, other bytes (a later
    notAfter, another serial), signed by an attacker's key instead of the root's."""
    attacker = ec.generate_private_key(ec.SECP256R1())
    b = (x509.CertificateBuilder().subject_name(real.subject).issuer_name(real.issuer)
         .public_key(real.public_key()).serial_number(real.serial_number + 1)
         .not_valid_before(real.not_valid_before_utc)
         .not_valid_after(real.not_valid_after_utc + timedelta(days=not_after_days)))
    for ext in real.extensions:
        b = b.add_extension(ext.value, critical=ext.critical)
    return b.sign(attacker, hashes.SHA256())


def test_pinned_intermediates_verify_and_their_link_is_remembered() -> None:
    s = sim()
    root = pinned_sim_root(s)
    _verify(s, s.quote().to_bytes(), root)
    for cert in (s.pck_ca_cert, s.tcb_signing_cert):
        assert _pinned_link_known(fingerprint(cert), root.fingerprint)


def test_a_look_alike_pck_ca_is_verified_and_refused_by_its_signature() -> None:
    """The pinned PCK CA's subject, issuer and public key (so the PCK leaf verifies under
    it), other bytes, not signed by the root: verified like any certificate, refused."""
    s = sim()
    root = pinned_sim_root(s)
    _verify(s, s.quote().to_bytes(), root)  # the genuine link is now remembered
    fake = _look_alike(s.pck_ca_cert)
    chain = _pem(s.pck_cert) + _pem(fake) + _pem(s.root_cert)
    err = _refused(s, s.quote(pck_chain_pem=chain).to_bytes(), root, "tdx.pck.chain",
                   ChainError)
    assert err.field == "PCK CA.signature"  # type: ignore[attr-defined]


def test_a_look_alike_tcb_signing_certificate_is_refused() -> None:
    s = sim()
    root = pinned_sim_root(s)
    _verify(s, s.quote().to_bytes(), root)
    chain = _pem(_look_alike(s.tcb_signing_cert)) + _pem(s.root_cert)
    err = _refused(s, s.quote().to_bytes(), root, "tdx.tcb_info.chain", ChainError,
                   tcb_info_issuer_chain=chain, qe_identity_issuer_chain=chain)
    assert err.field == "TCB Signing.signature"  # type: ignore[attr-defined]


def test_a_pinned_pck_ca_revoked_by_the_root_crl_is_refused() -> None:
    s = sim()
    root = pinned_sim_root(s)
    _verify(s, s.quote().to_bytes(), root)
    _refused(s, s.quote().to_bytes(), root, "tdx.root_crl.revocation", VerificationError,
             root_crl=s.root_crl(revoked=(s.pck_ca_cert.serial_number,)))


def test_a_pinned_tcb_signing_certificate_revoked_by_the_root_crl_is_refused() -> None:
    s = sim()
    root = pinned_sim_root(s)
    _verify(s, s.quote().to_bytes(), root)
    _refused(s, s.quote().to_bytes(), root, "tdx.root_crl.revocation", VerificationError,
             root_crl=s.root_crl(revoked=(s.tcb_signing_cert.serial_number,)))


def test_the_real_pinned_tcb_signing_certificate_past_its_validity_is_refused() -> None:
    """Intel's embedded TCB Signing certificate (2018) expired 2025-05-21: its link to the
    root is remembered after a first verification, and its time is still checked."""
    root = intel_sgx_root_ca()
    quote, col = read(V5), real_collateral("sample_tcbinfo_response_v5")
    verify_tdx_evidence(quote, col, roots=production_roots(), times=V5_TIMES)
    tcb_signing = load_pem_bundle(read("tcb_info_issuer_chain.pem"), check="t", field="f")[0]
    assert _pinned_link_known(fingerprint(tcb_signing), root.fingerprint)
    t = Transcript()
    with pytest.raises(StaleError) as err:
        verify_tdx_evidence(quote, col, roots=production_roots(), transcript=t,
                            times=V5_TIMES.override(tcb_signing_chain=utc("2025-05-22")))
    assert err.value.check == "tdx.tcb_info.chain"
    assert err.value.field == "TCB Signing.notAfter"
    assert [x.check for x in t.steps if x.result == FAIL] == ["tdx.tcb_info.chain"]


def test_a_pinned_pck_ca_past_its_validity_is_refused() -> None:
    """The PCK CRL issuer chain (the pinned PCK CA, the root) judged after the PCK CA's
    notAfter: refused by the PCK CA's time, although its link to the root is remembered."""
    s = sim()
    root = pinned_sim_root(s)
    _verify(s, s.quote().to_bytes(), root)
    late = s.pck_ca_cert.not_valid_after_utc + timedelta(days=1)
    t = Transcript()
    with pytest.raises(StaleError) as err:
        verify_tdx_evidence(s.quote().to_bytes(), sim_collateral(s), roots=[root],
                            times=VerificationTimes.uniform(s.now).override(pck_crl=late),
                            transcript=t)
    assert err.value.check == "tdx.pck_crl.chain"
    assert err.value.field == "PCK CA.notAfter"
    assert [x.check for x in t.steps if x.result == FAIL] == ["tdx.pck_crl.chain"]


def test_the_production_trust_store_embeds_intels_intermediates_under_their_pins() -> None:
    root = intel_sgx_root_ca()
    assert [fingerprint(c).hex() for c in root.intermediates] == [
        pin for _, _, pin in INTEL_INTERMEDIATES]
    for cert in root.intermediates:
        cert.verify_directly_issued_by(root.certificate)
    assert root.intermediate_fingerprints == {fingerprint(c) for c in root.intermediates}


def test_an_embedded_intermediate_that_does_not_match_its_pin_is_refused() -> None:
    s = sim()
    with pytest.raises(TrustConfigError) as err:
        pinned_root("sim", _pem(s.root_cert), fingerprint(s.root_cert).hex(),
                    intermediates=[("sim PCK CA", _pem(s.pck_ca_cert), "00" * 32)])
    assert err.value.check == "trust.root.pin" and err.value.field == "sim PCK CA"


def test_a_bundle_certificate_is_the_trust_object_only_on_an_exact_der_match() -> None:
    """Registered trust certificates are looked up by their signature bytes: a certificate
    with the same signature but another TBS (one serial byte changed) is not substituted,
    and its chain is refused by the signature."""
    root = intel_sgx_root_ca()
    platform_ca = root.intermediates[0]
    clear_parse_memos()
    same = load_pem_bundle(_pem(platform_ca), check="t", field="f")[0]
    assert same is platform_ca
    der = bytearray(platform_ca.public_bytes(Encoding.DER))
    serial = platform_ca.serial_number.to_bytes(20, "big").lstrip(b"\x00")
    at = bytes(der).index(serial) + len(serial) - 1
    der[at] ^= 0x01
    forged = x509.load_der_x509_certificate(bytes(der))
    assert forged.signature == platform_ca.signature
    loaded = load_pem_bundle(forged.public_bytes(Encoding.PEM), check="t", field="f")[0]
    assert loaded is not platform_ca and loaded.serial_number != platform_ca.serial_number
    with pytest.raises(ChainError) as err:
        verify_chain([loaded], production_roots(), at=utc("2024-01-01"), check="t.chain",
                     roles=["PCK CA", "Intel SGX Root CA"])
    assert err.value.check == "t.chain"
