"""One certificate link, verified as ``cryptography``'s ``verify_directly_issued_by`` does but
with the issuer's key read once per certificate object (RFC 5280 §4.1, §6.1.3 (a)(1), (a)(4)).

Used by :mod:`verifier.x509chain` for every link of a path.
"""

from __future__ import annotations

from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import SignatureAlgorithmOID

from attest.certificates import LOADER_ERRORS, certificate_spans, der_of
from transparency_log.common.parse_cache import ObjectMemo

__all__ = ["signed_parts", "verify_issued_by"]



def verify_issued_by(child: x509.Certificate, issuer: x509.Certificate) -> None:
    """What ``child.verify_directly_issued_by(issuer)`` checks, and raises as it does
    (ValueError, InvalidSignature, UnsupportedAlgorithm), without decoding the issuer's key
    again for every link (cryptography's method does; the key is read once per certificate
    object here, and the loader hands out one object per DER, so a certificate's key is
    decoded once per load):

    - the signature algorithm inside the TBSCertificate equals the outer one (RFC 5280
      §4.1.1.2), compared as DER;
    - the child's issuer Name is the issuer's subject Name, compared as DER (what
      cryptography compares; RFC 5280 §4.1.2.4);
    - the algorithm fits the issuer's key: an EC key verifies ECDSA with SHA-256/384/512 only
      (RFC 5758 §3.2; anything else is refused), an RSA key PKCS#1 v1.5 with SHA-256/384/512
      or RSASSA-PSS with the parameters the certificate states (RFC 4055 §3.1); any other
      key or algorithm goes to ``verify_directly_issued_by`` itself;
    - the signature over the TBSCertificate verifies.
    """
    parts, issuer_parts = signed_parts(child), signed_parts(issuer)
    key = issuer_parts.key if issuer_parts is not None else None
    if parts is None or issuer_parts is None or key is None:
        child.verify_directly_issued_by(issuer)
        return
    if parts.inner_alg != parts.outer_alg:
        raise ValueError("inner and outer signature algorithms differ")
    if parts.issuer != issuer_parts.subject:
        raise ValueError("issuer Name is not the issuer certificate's subject Name")
    oid = child.signature_algorithm_oid
    if isinstance(key, ec.EllipticCurvePublicKey):
        ecdsa_hash = _ECDSA_HASHES.get(oid)
        if ecdsa_hash is None:
            raise ValueError(f"signature algorithm {oid.dotted_string} does not fit an EC key")
        key.verify(child.signature, parts.tbs, ec.ECDSA(ecdsa_hash()))
    elif isinstance(key, rsa.RSAPublicKey) and oid in _RSA_PKCS1_HASHES:
        key.verify(child.signature, parts.tbs, padding.PKCS1v15(), _RSA_PKCS1_HASHES[oid]())
    elif isinstance(key, rsa.RSAPublicKey) and oid == SignatureAlgorithmOID.RSASSA_PSS:
        pss = child.signature_algorithm_parameters  # MGF1 and salt length, as stated
        pss_hash = child.signature_hash_algorithm
        if not isinstance(pss, padding.PSS) or pss_hash is None:
            raise ValueError("RSASSA-PSS parameters are not usable")
        key.verify(child.signature, parts.tbs, pss, pss_hash)
    else:
        child.verify_directly_issued_by(issuer)


_ECDSA_HASHES: dict[x509.ObjectIdentifier, type[hashes.HashAlgorithm]] = {
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: hashes.SHA256,
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: hashes.SHA384,
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: hashes.SHA512,
}
_RSA_PKCS1_HASHES: dict[x509.ObjectIdentifier, type[hashes.HashAlgorithm]] = {
    SignatureAlgorithmOID.RSA_WITH_SHA256: hashes.SHA256,
    SignatureAlgorithmOID.RSA_WITH_SHA384: hashes.SHA384,
    SignatureAlgorithmOID.RSA_WITH_SHA512: hashes.SHA512,
}


class _SignedParts(NamedTuple):
    """The parts of a certificate a link reads, as DER (RFC 5280 §4.1), and its key."""

    tbs: bytes        # TBSCertificate, the signed bytes
    inner_alg: bytes  # TBSCertificate.signature
    outer_alg: bytes  # Certificate.signatureAlgorithm
    issuer: bytes     # TBSCertificate.issuer
    subject: bytes    # TBSCertificate.subject
    key: object       # the subject public key, None where cryptography cannot decode it


def _split_certificate(cert: x509.Certificate) -> _SignedParts | None:
    """The parts of ``cert`` a link reads (:func:`attest.certificates.certificate_spans`) and
    its key; None when its DER does not split."""
    spans = certificate_spans(der_of(cert))
    if spans is None:
        return None
    try:
        key: object = cert.public_key()
    except LOADER_ERRORS:
        key = None
    return _SignedParts(spans.tbs, spans.inner_alg, spans.outer_alg, spans.issuer,
                        spans.subject, key)


signed_parts: ObjectMemo[x509.Certificate, _SignedParts | None] = ObjectMemo(
    _split_certificate, 1024)
"""``signed_parts(cert)``: :class:`_SignedParts` of ``cert``, read once per certificate object;
None when the DER does not split as RFC 5280 §4.1 says (then cryptography's own method
decides)."""
