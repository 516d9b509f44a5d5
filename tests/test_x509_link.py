"""One link of a pinned chain (verifier/x509chain.py ``verify_issued_by`` / ``_check_link``):
what cryptography's ``verify_directly_issued_by`` checks, with the issuer's key read once per
certificate. Every chain is made here at run time: a P-384 / P-256 / RSA root, an
intermediate and a leaf, some of them tampered with (RFC 5280 §4.1, §6.1.3)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from attest.formats.der import encode_tlv, read_tlv
from transparency_log.common.errors import ChainError
from verifier.x509chain import PinnedRoot, fingerprint, verify_chain
from verifier.x509link import verify_issued_by

AT = datetime(2026, 6, 1, tzinfo=UTC)
CHECK = "gpu.chain"
ROLES = ("leaf", "ICA", "root")
ECDSA_SHA256_OID = bytes.fromhex("2a8648ce3d040302")
ECDSA_SHA384_OID = bytes.fromhex("2a8648ce3d040303")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pss(algorithm: hashes.HashAlgorithm) -> padding.PSS:
    return padding.PSS(padding.MGF1(algorithm), algorithm.digest_size)


def _issue(subject: x509.Name, public_key: Any, issuer: x509.Name, signing_key: Any, *,
           ca: bool, algorithm: hashes.HashAlgorithm | None = None,
           rsa_padding: Any = None) -> x509.Certificate:
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(public_key).serial_number(x509.random_serial_number())
         .not_valid_before(AT - timedelta(days=30)).not_valid_after(AT + timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if isinstance(signing_key, ed25519.Ed25519PrivateKey):
        return b.sign(signing_key, None)
    return b.sign(signing_key, algorithm or hashes.SHA384(), rsa_padding=rsa_padding)


class Pki:
    """root -> ICA -> leaf; ``issue_leaf`` makes a leaf under the ICA name with any key."""

    def __init__(self, make_key: Callable[[], Any], *, algorithm: hashes.HashAlgorithm,
                 rsa_padding: Any = None) -> None:
        self.algorithm, self.rsa_padding = algorithm, rsa_padding
        self.root_key, self.ica_key = make_key(), make_key()
        self.root = _issue(_name("root"), self.root_key.public_key(), _name("root"),
                           self.root_key, ca=True, algorithm=algorithm, rsa_padding=rsa_padding)
        self.ica = _issue(_name("ICA"), self.ica_key.public_key(), _name("root"),
                          self.root_key, ca=True, algorithm=algorithm, rsa_padding=rsa_padding)
        self.pinned = PinnedRoot("test root", self.root)

    def issue_leaf(self, signing_key: Any = None, *, algorithm: hashes.HashAlgorithm | None = None,
                   rsa_padding: Any = None, issuer: x509.Name | None = None) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        return _issue(_name("leaf"), key.public_key(), issuer or _name("ICA"),
                      signing_key if signing_key is not None else self.ica_key, ca=False,
                      algorithm=algorithm or self.algorithm,
                      rsa_padding=rsa_padding if signing_key is not None or rsa_padding
                      else self.rsa_padding)

    def verify(self, leaf: x509.Certificate) -> list[x509.Certificate]:
        return verify_chain([leaf, self.ica, self.root], [self.pinned], at=AT, check=CHECK,
                            roles=ROLES).path


@pytest.fixture(scope="module")
def p384() -> Pki:
    return Pki(lambda: ec.generate_private_key(ec.SECP384R1()), algorithm=hashes.SHA384())


@pytest.fixture(scope="module")
def rsa_pss() -> Pki:
    return Pki(lambda: rsa.generate_private_key(65537, 2048), algorithm=hashes.SHA384(),
               rsa_padding=_pss(hashes.SHA384()))


def _refused_link(pki: Pki, leaf: x509.Certificate) -> ChainError:
    with pytest.raises(ChainError) as err:
        pki.verify(leaf)
    assert err.value.check == CHECK
    return err.value


@pytest.mark.parametrize("curve, algorithm", [(ec.SECP384R1(), hashes.SHA384()),
                                              (ec.SECP256R1(), hashes.SHA256()),
                                              (ec.SECP384R1(), hashes.SHA512())])
def test_ecdsa_links_verify(curve: ec.EllipticCurve, algorithm: hashes.HashAlgorithm) -> None:
    pki = Pki(lambda: ec.generate_private_key(curve), algorithm=algorithm)
    leaf = pki.issue_leaf()
    assert pki.verify(leaf) == [leaf, pki.ica, pki.root]
    verify_issued_by(leaf, pki.ica)


def test_rsa_pss_links_verify(rsa_pss: Pki) -> None:
    leaf = rsa_pss.issue_leaf()
    assert isinstance(leaf.signature_algorithm_parameters, padding.PSS)
    assert rsa_pss.verify(leaf)[0] == leaf
    # the PSS parameters are the certificate's own: another salt length verifies too
    other = rsa_pss.issue_leaf(rsa_pss.ica_key, rsa_padding=padding.PSS(
        padding.MGF1(hashes.SHA256()), 20), algorithm=hashes.SHA384())
    verify_issued_by(other, rsa_pss.ica)


def test_rsa_pkcs1_links_verify() -> None:
    pki = Pki(lambda: rsa.generate_private_key(65537, 2048), algorithm=hashes.SHA256())
    assert pki.verify(pki.issue_leaf())[1] == pki.ica


def test_other_key_types_fall_back_and_verify() -> None:
    pki = Pki(ed25519.Ed25519PrivateKey.generate, algorithm=hashes.SHA256())
    pki.verify(pki.issue_leaf())
    with pytest.raises(ChainError, match="leaf certificate signature does not verify"):
        pki.verify(pki.issue_leaf(ed25519.Ed25519PrivateKey.generate()))


def test_signature_by_another_key_is_refused(p384: Pki, rsa_pss: Pki) -> None:
    forged = p384.issue_leaf(ec.generate_private_key(ec.SECP384R1()))
    err = _refused_link(p384, forged)
    assert err.field == "leaf.signature" and "InvalidSignature" in str(err)
    forged_rsa = rsa_pss.issue_leaf(rsa.generate_private_key(65537, 2048),
                                    rsa_padding=_pss(hashes.SHA384()))
    assert _refused_link(rsa_pss, forged_rsa).field == "leaf.signature"


def test_algorithm_that_does_not_fit_the_issuer_key_is_refused(p384: Pki, rsa_pss: Pki) -> None:
    """An RSA-signed child under an EC issuer, and an ECDSA-signed child under an RSA issuer
    (same issuer name): refused at the link, never verified under the wrong kind of key."""
    rsa_signed = p384.issue_leaf(rsa.generate_private_key(65537, 2048))
    err = _refused_link(p384, rsa_signed)
    assert err.field == "leaf.signature" and "ValueError" in str(err)
    ec_signed = rsa_pss.issue_leaf(ec.generate_private_key(ec.SECP384R1()))
    err = _refused_link(rsa_pss, ec_signed)
    assert err.field == "leaf.signature" and "ValueError" in str(err)


def test_ecdsa_with_a_hash_outside_sha2_256_to_512_is_refused(p384: Pki) -> None:
    leaf = p384.issue_leaf(p384.ica_key, algorithm=hashes.SHA224())
    leaf.verify_directly_issued_by(p384.ica)  # cryptography alone would take it
    err = _refused_link(p384, leaf)
    assert err.field == "leaf.signature" and "ValueError" in str(err)


def _resigned_with_inner_algorithm(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey,
                                   inner_oid: bytes) -> x509.Certificate:
    """``cert`` with the TBSCertificate's signature algorithm replaced by ``inner_oid`` and
    the new TBS signed again with SHA-384: the outer algorithm (SHA-384) still verifies."""
    der = cert.public_bytes(Encoding.DER)
    _, body = read_tlv(der, 0, check=CHECK)[:2]
    _, _, tbs_end = read_tlv(body, 0, check=CHECK)
    tbs, rest = body[:tbs_end], body[tbs_end:]
    assert tbs.count(ECDSA_SHA384_OID) == 1
    new_tbs = tbs.replace(ECDSA_SHA384_OID, inner_oid)
    _, _, alg_end = read_tlv(rest, 0, check=CHECK)
    signature = key.sign(new_tbs, ec.ECDSA(hashes.SHA384()))
    new = encode_tlv(0x30, new_tbs + rest[:alg_end] + encode_tlv(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(new)


def test_inner_and_outer_signature_algorithms_must_agree(p384: Pki) -> None:
    leaf = p384.issue_leaf()
    tampered = _resigned_with_inner_algorithm(leaf, p384.ica_key, ECDSA_SHA256_OID)
    assert tampered.signature_algorithm_oid == leaf.signature_algorithm_oid  # outer: SHA-384
    # the signature itself verifies under the outer algorithm; only the inner one differs
    p384.ica_key.public_key().verify(tampered.signature, tampered.tbs_certificate_bytes,
                                     ec.ECDSA(hashes.SHA384()))
    err = _refused_link(p384, tampered)
    assert err.field == "leaf.signature" and "ValueError" in str(err)
    with pytest.raises(ValueError):
        tampered.verify_directly_issued_by(p384.ica)  # what cryptography says as well


def test_issuer_name_must_match(p384: Pki) -> None:
    leaf = p384.issue_leaf(issuer=_name("another ICA"))
    err = _refused_link(p384, leaf)
    assert err.field == "leaf.issuer" and "another ICA" in str(err.got)


def test_issuer_name_is_compared_as_der(p384: Pki) -> None:
    """A Name equal as text but encoded differently (UTF8String instead of PrintableString
    country) is not the issuer's Name: refused like cryptography refuses it."""
    country = x509.NameAttribute(NameOID.COUNTRY_NAME, "US")
    utf8 = x509.NameAttribute(NameOID.COUNTRY_NAME, "US", _type=x509.name._ASN1Type.UTF8String)
    issuer_name = x509.Name([country, *_name("ICA2")])
    look_alike = x509.Name([utf8, *_name("ICA2")])
    assert issuer_name == look_alike and issuer_name.public_bytes() != look_alike.public_bytes()
    ica = _issue(issuer_name, p384.ica_key.public_key(), _name("root"), p384.root_key, ca=True)
    leaf = p384.issue_leaf(issuer=look_alike)
    with pytest.raises(ValueError):
        leaf.verify_directly_issued_by(ica)
    with pytest.raises(ChainError) as err:
        verify_chain([leaf, ica, p384.root], [p384.pinned], at=AT, check=CHECK, roles=ROLES)
    assert err.value.check == CHECK and err.value.field == "leaf.signature"


def test_link_outcomes_are_per_certificate(p384: Pki) -> None:
    """The per-certificate memo (parts and key) never lends one certificate's result to
    another: a good leaf, then a forged one with the same names, then the good one again."""
    good = p384.issue_leaf()
    forged = p384.issue_leaf(ec.generate_private_key(ec.SECP384R1()))
    p384.verify(good)
    _refused_link(p384, forged)
    assert p384.verify(good)[0] == good
    assert fingerprint(good) != fingerprint(forged)
