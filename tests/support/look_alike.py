"""A look-alike of a real certificate chain for attack tests: the same names, serials,
validity and extensions as the vendor's chain, self-made keys, and a self-made, self-signed
root at its end (what a forger who copies a vendor's chain can make; it must be refused
because only embedded, pinned vendor roots are trusted)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding


@dataclass(frozen=True)
class Forged:
    """A look-alike of a real certificate chain (leaf first): same names, serials, validity
    and extensions; self-made keys; the last one a self-made, self-signed root."""

    certificates: tuple[x509.Certificate, ...]
    keys: tuple[Any, ...]  # the private keys, in the same order

    @property
    def leaf_key(self) -> Any:
        return self.keys[0]

    def der(self, i: int) -> bytes:
        return self.certificates[i].public_bytes(Encoding.DER)

    def pem(self, *, upto: int | None = None) -> bytes:
        return b"".join(c.public_bytes(Encoding.PEM) for c in self.certificates[:upto])



def _same_kind_key(public: Any) -> Any:
    if isinstance(public, ec.EllipticCurvePublicKey):
        return ec.generate_private_key(public.curve)
    if isinstance(public, rsa.RSAPublicKey):
        return rsa.generate_private_key(65537, public.key_size)
    raise AssertionError(f"no look-alike for a {type(public).__name__} key")


def _sign_like(builder: x509.CertificateBuilder, original: x509.Certificate, key: Any,
               ) -> x509.Certificate:
    params = original.signature_algorithm_parameters
    if isinstance(params, padding.PSS):  # RSA-PSS (AMD): same hash, salt of the hash size
        algorithm = original.signature_hash_algorithm
        assert algorithm is not None
        return builder.sign(key, algorithm, rsa_padding=padding.PSS(
            padding.MGF1(algorithm), algorithm.digest_size))
    return builder.sign(key, original.signature_hash_algorithm or hashes.SHA384())


@cache
def forge_look_alike(chain: tuple[x509.Certificate, ...]) -> Forged:
    """A look-alike of ``chain`` (leaf first, ending in the vendor root): each certificate
    re-made with the same subject, issuer, serial (cut to the 159 bits a builder takes),
    validity and extensions (key identifiers re-derived), under a self-made key of the same
    kind, the last one self-signed.
    Made once per chain per session."""
    keys: list[Any] = [None] * len(chain)
    certs: list[x509.Certificate] = [None] * len(chain)  # type: ignore[list-item]
    for i in reversed(range(len(chain))):
        orig = chain[i]
        with warnings.catch_warnings():  # AMD VCEKs have non-positive serials
            warnings.simplefilter("ignore")
            serial = abs(orig.serial_number) % (1 << 159) or 1
        keys[i] = _same_kind_key(orig.public_key())
        signer = keys[i + 1] if i + 1 < len(chain) else keys[i]
        b = (x509.CertificateBuilder().subject_name(orig.subject).issuer_name(orig.issuer)
             .public_key(keys[i].public_key())
             .serial_number(serial)
             .not_valid_before(orig.not_valid_before_utc)
             .not_valid_after(orig.not_valid_after_utc))
        for ext in orig.extensions:
            value: Any = ext.value
            if isinstance(value, x509.SubjectKeyIdentifier):
                value = x509.SubjectKeyIdentifier.from_public_key(keys[i].public_key())
            elif isinstance(value, x509.AuthorityKeyIdentifier):
                value = x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    signer.public_key())
            b = b.add_extension(value, critical=ext.critical)
        certs[i] = _sign_like(b, orig, signer)
    return Forged(tuple(certs), tuple(keys))
