"""A PEM block that is byte for byte a registered trust certificate's PEM (RFC 7468 §2) is
that certificate without being decoded (issue 15); any other block, one base64 character
off included, is decoded and judged on its own, and the bundle refusals are unchanged."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attest import certificates
from attest.certificates import clear_parse_memos, load_pem_bundle
from tests.support.tdx_support import sim
from transparency_log.common.errors import ChainError, FormatError
from verifier.tdx.collateral import VerificationTimes
from verifier.tdx.evidence import verify_tdx_evidence
from verifier.tdx.roots import intel_sgx_root_ca
from verifier.transcript import FAIL, Transcript
from verifier.x509chain import fingerprint, pinned_root


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def _one_char_off(cert: x509.Certificate) -> bytes:
    """The certificate's PEM with one base64 character changed (the first, from the second
    body line on, whose change still decodes: to another certificate, same signature bytes)."""
    pem = _pem(cert)
    der = cert.public_bytes(Encoding.DER)
    for at in range(pem.index(b"\n") + 66, len(pem)):
        if pem[at:at + 1] in (b"\n", b"-"):
            continue
        changed = pem[:at] + (b"A" if pem[at:at + 1] != b"A" else b"B") + pem[at + 1:]
        try:
            decoded = x509.load_pem_x509_certificate(changed)
            if decoded.public_bytes(Encoding.DER) != der and decoded.signature == cert.signature:
                return changed
        except ValueError:
            continue
    raise AssertionError("no one-character change decodes")


def test_pinned_blocks_are_not_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    root = intel_sgx_root_ca()
    bundle = _pem(root.intermediates[0]) + _pem(root.certificate)
    clear_parse_memos()

    def no_decoding(data: bytes) -> list[x509.Certificate]:
        raise AssertionError("a pinned block was decoded")

    monkeypatch.setattr(certificates.x509, "load_pem_x509_certificates", no_decoding)
    got = load_pem_bundle(bundle, check="t", field="f")
    assert got[0] is root.intermediates[0] and got[1] is root.certificate


def test_a_block_one_base64_character_off_is_decoded_on_its_own() -> None:
    root = intel_sgx_root_ca()
    ca = root.intermediates[0]
    clear_parse_memos()
    got = load_pem_bundle(_one_char_off(ca) + _pem(root.certificate), check="t", field="f")
    assert got[0] is not ca and fingerprint(got[0]) != fingerprint(ca)
    assert got[1] is root.certificate


def test_a_pck_ca_block_one_character_off_is_refused_by_its_chain() -> None:
    """The attack built at run time: the quote's PCK chain carries the pinned PCK CA's PEM
    with one base64 character changed (same subject, key and signature bytes); it is not
    taken for the pinned certificate, and its link to the root is refused."""
    s = sim()
    root = pinned_root("sim", _pem(s.root_cert), fingerprint(s.root_cert).hex(),
                       intermediates=[("sim PCK CA", _pem(s.pck_ca_cert),
                                       fingerprint(s.pck_ca_cert).hex())])
    chain = _pem(s.pck_cert) + _one_char_off(s.pck_ca_cert) + _pem(s.root_cert)
    t = Transcript()
    clear_parse_memos()
    with pytest.raises(ChainError) as err:
        verify_tdx_evidence(s.quote(pck_chain_pem=chain).to_bytes(), s.collateral(),
                            roots=[root], times=VerificationTimes.uniform(s.now),
                            transcript=t)
    assert err.value.check == "tdx.pck.chain"
    assert [x.check for x in t.steps if x.result == FAIL] == ["tdx.pck.chain"]


@pytest.mark.parametrize("tail", [
    b"-----BEGIN CERTIFICATE-----\nMIIB\n",  # a block cut off after a pinned one
    b"-----END CERTIFICATE-----\n",  # a stray END line
    b"garbage between blocks\n",
])
def test_a_bundle_of_pinned_blocks_with_stray_text_is_refused_as_before(tail: bytes) -> None:
    root = intel_sgx_root_ca()
    bundle = _pem(root.intermediates[0]) + tail + _pem(root.certificate)
    clear_parse_memos()
    if tail.startswith(b"garbage"):  # text between whole blocks: decoded as before
        assert len(load_pem_bundle(bundle, check="t", field="f")) == 2
        return
    with pytest.raises(FormatError) as err:
        load_pem_bundle(bundle, check="t", field="f")
    assert err.value.check == "t"
