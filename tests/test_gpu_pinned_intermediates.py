"""NVIDIA's fleet-wide intermediates as trust configuration (issue 15): the GH100 Identity and
the GH100 Provisioner ICA 1 are embedded next to the pinned NVIDIA Device Identity CA, each
pinned by its SHA-256. Their links (Provisioner ICA 1 <- GH100 Identity <- root) are verified
once per process; a certificate with any other bytes and every per-device certificate are
verified on every call; their validity is checked on every call."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from attest.certificates import clear_parse_memos
from attest.formats.spdm_measurements import parse_report_text
from attest.simulate.gpu import DEVICE_ROLES, SimulatedGpu, dice_tcbinfo, make_chain
from tests.support.vectors import vector_path
from transparency_log.common.errors import ChainError, StaleError, TrustConfigError
from verifier.gpu.evidence import GpuTrust, verify_gpu_evidence
from verifier.gpu.report_verify import load_device_chain, verify_gpu_report
from verifier.gpu.roots import GH100_INTERMEDIATES, device_identity_root, rim_root
from verifier.transcript import FAIL, Transcript
from verifier.x509chain import PinnedRoot, _pinned_link_known, fingerprint, pinned_root

NONCE = bytes.fromhex("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb")
AT = datetime(2026, 11, 23, tzinfo=UTC)
PROVISIONER, IDENTITY = 2, 3  # their places in the device chain (leaf first)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def _report() -> bytes:
    return parse_report_text(vector_path("nvidia", "nvtrust", "hopperAttestationReport.txt")
                             .read_bytes())


def _chain_pem() -> bytes:
    return vector_path("nvidia", "nvtrust", "hopperCertChain.txt").read_bytes()


def _real_chain() -> list[x509.Certificate]:
    return load_device_chain(_chain_pem())


def _refused(chain: Sequence[x509.Certificate], error: type[Exception], *,
             at: datetime = AT, report: bytes | None = None, nonce: bytes = NONCE,
             trust: GpuTrust | None = None) -> Exception:
    """The report (the real one by default) with ``chain`` through verify_gpu_evidence under
    ``trust`` (the production trust store by default): refused by ``gpu.chain`` alone."""
    t = Transcript()
    with pytest.raises(error) as err:
        verify_gpu_evidence(report or _report(), b"".join(_pem(c) for c in chain),
                            nonce=nonce, trust=trust or GpuTrust.production(), at=at,
                            transcript=t)
    assert err.value.check == "gpu.chain"  # type: ignore[attr-defined]
    assert [x.check for x in t.steps if x.result == FAIL] == ["gpu.chain"]
    return err.value


def _look_alike(real: x509.Certificate, *, serial_delta: int = 1) -> x509.Certificate:
    """The pinned certificate's subject, issuer, key, validity and extensions, other bytes
    (another serial), signed by an attacker's P-384 key instead of its issuer's."""
    attacker = ec.generate_private_key(ec.SECP384R1())
    b = (x509.CertificateBuilder().subject_name(real.subject).issuer_name(real.issuer)
         .public_key(real.public_key()).serial_number(real.serial_number + serial_delta)
         .not_valid_before(real.not_valid_before_utc)
         .not_valid_after(real.not_valid_after_utc))
    for ext in real.extensions:
        b = b.add_extension(ext.value, critical=ext.critical)
    return b.sign(attacker, hashes.SHA384())


def _verify_real() -> None:
    verify_gpu_report(_report(), _real_chain(), nonce=NONCE, roots=[device_identity_root()],
                      at=AT)


def test_the_production_trust_store_embeds_the_gh100_intermediates_under_their_pins() -> None:
    root = device_identity_root()
    assert [fingerprint(c).hex() for c in root.intermediates] == [
        pin for _, _, pin in GH100_INTERMEDIATES]
    identity, provisioner = root.intermediates
    identity.verify_directly_issued_by(root.certificate)
    provisioner.verify_directly_issued_by(identity)
    chain = x509.load_pem_x509_certificates(_chain_pem())  # NVIDIA's sample, as shipped
    assert [identity, provisioner] == [chain[IDENTITY], chain[PROVISIONER]]
    assert rim_root().intermediates == ()


@pytest.mark.parametrize("which", [0, 1])
def test_an_embedded_gpu_intermediate_that_does_not_match_its_pin_is_refused(which: int
                                                                           ) -> None:
    """Each intermediate under the other one's pin (the pins swapped): refused at load."""
    root, (name, _, _) = device_identity_root(), GH100_INTERMEDIATES[which]
    other_pin = GH100_INTERMEDIATES[1 - which][2]
    with pytest.raises(TrustConfigError) as err:
        pinned_root("NVIDIA Device Identity CA", _pem(root.certificate),
                    root.fingerprint.hex(),
                    intermediates=[(name, _pem(root.intermediates[which]), other_pin)])
    assert err.value.check == "trust.root.pin" and err.value.field == name


def test_the_real_chain_remembers_both_pinned_links_and_no_per_device_link() -> None:
    _verify_real()
    root = device_identity_root()
    fps = [fingerprint(c) for c in _real_chain()]
    assert _pinned_link_known(fps[IDENTITY], root.fingerprint)
    assert _pinned_link_known(fps[PROVISIONER], fps[IDENTITY])
    assert not _pinned_link_known(fps[1], fps[PROVISIONER])  # GSP BROM: per device
    assert not _pinned_link_known(fps[0], fps[1])            # GSP FMC leaf: per device


def test_a_bundle_certificate_is_the_pinned_object_only_for_the_pinned_intermediates() -> None:
    root = device_identity_root()
    clear_parse_memos()
    chain = _real_chain()
    assert chain[IDENTITY] is root.intermediates[0]
    assert chain[PROVISIONER] is root.intermediates[1]
    trusted = {id(root.certificate), *(id(c) for c in root.intermediates)}
    assert id(chain[0]) not in trusted and id(chain[1]) not in trusted


@pytest.mark.parametrize(("place", "role"), [(PROVISIONER, "Provisioner ICA"),
                                             (IDENTITY, "GH100 Identity")])
def test_a_look_alike_of_a_pinned_intermediate_is_verified_and_refused(place: int,
                                                                       role: str) -> None:
    """Same subject, issuer and key as the pinned certificate (so the certificate below it
    still verifies under it), other bytes, signed by an attacker: verified like any
    certificate after the genuine link was remembered, and refused by its signature."""
    _verify_real()
    chain = _real_chain()
    chain[place] = _look_alike(chain[place])
    err = _refused(chain, ChainError)
    assert err.field == f"{role}.signature"  # type: ignore[attr-defined]


def test_a_per_device_certificate_is_never_taken_for_a_pinned_one() -> None:
    """The GSP BROM re-made with the same signature bytes and one serial byte changed: not
    the certificate the genuine chain verified, so its signature is checked and refused."""
    _verify_real()
    chain = _real_chain()
    brom = chain[1]
    der = bytearray(brom.public_bytes(Encoding.DER))
    serial = brom.serial_number.to_bytes(20, "big").lstrip(b"\x00")
    der[bytes(der).index(serial) + len(serial) - 1] ^= 0x01
    forged = x509.load_der_x509_certificate(bytes(der))
    assert forged.signature == brom.signature and forged != brom
    chain[1] = forged
    err = _refused(chain, ChainError)
    assert err.field == "GSP BROM.signature"  # type: ignore[attr-defined]


def test_the_real_pinned_provisioner_ica_outside_its_validity_is_refused() -> None:
    """NVIDIA's certificates never expire (notAfter 9999-12-31): judged before the pinned
    Provisioner ICA's notBefore (2022-03-01), when every other certificate of the chain is
    valid, the chain is refused by that certificate's time although its links are known."""
    _verify_real()
    err = _refused(_real_chain(), StaleError, at=datetime(2022, 2, 1, tzinfo=UTC))
    assert err.field == "Provisioner ICA.notBefore"  # type: ignore[attr-defined]


def _short_lived(place: int, not_after: datetime) -> tuple[SimulatedGpu, PinnedRoot]:
    """A simulated GPU whose chain's certificate at ``place`` expires at ``not_after``, and a
    root that embeds its two intermediates under their pins."""
    gpu = SimulatedGpu(seed=b"pinned-gpu-intermediates")
    pki = make_chain(gpu.seed, DEVICE_ROLES, leaf_extensions=[(dice_tcbinfo(gpu.fwid), False)])
    issuer_key = pki.keys[place + 1]
    cert = pki.certificates[place]
    b = (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.issuer)
         .public_key(cert.public_key()).serial_number(cert.serial_number)
         .not_valid_before(cert.not_valid_before_utc).not_valid_after(not_after))
    for ext in cert.extensions:
        b = b.add_extension(ext.value, critical=ext.critical)
    pki.certificates[place] = b.sign(issuer_key, hashes.SHA384())
    gpu.pki = pki
    c = pki.certificates
    root = pinned_root("sim", _pem(c[4]), fingerprint(c[4]).hex(), intermediates=[
        ("sim GH100 Identity", _pem(c[IDENTITY]), fingerprint(c[IDENTITY]).hex()),
        ("sim Provisioner ICA", _pem(c[PROVISIONER]), fingerprint(c[PROVISIONER]).hex())])
    return gpu, root


@pytest.mark.parametrize(("place", "role"), [(PROVISIONER, "Provisioner ICA"),
                                             (IDENTITY, "GH100 Identity")])
def test_a_pinned_intermediate_past_its_validity_is_refused(place: int, role: str) -> None:
    end = datetime(2030, 1, 1, tzinfo=UTC)
    gpu, root = _short_lived(place, end)
    nonce = bytes(32)
    report, chain = gpu.report(nonce), load_device_chain(gpu.chain_pem())
    verify_gpu_report(report, chain, nonce=nonce, roots=[root], at=end - timedelta(days=1))
    assert _pinned_link_known(fingerprint(chain[place]), fingerprint(chain[place + 1]))
    err = _refused(chain, StaleError, at=end + timedelta(days=1), report=report, nonce=nonce,
                   trust=GpuTrust((root,), (rim_root(),)))
    assert err.field == f"{role}.notAfter"  # type: ignore[attr-defined]
