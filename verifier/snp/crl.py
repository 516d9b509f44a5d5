"""Revocation: the AMD CRL of a product (KDS ``/vcek/v1/<product>/crl``, and the VLEK one),
signed by the ARK with RSA-PSS (SHA-384, MGF1-SHA-384, salt 48); lists revoked ASKs/ASVKs.

The CRL must be signed by the pinned ARK, be current at ``at`` (thisUpdate <= at <=
nextUpdate), and must not list the intermediate that issued the report's key.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from attest.certificates import load_crl as load_x509_crl
from transparency_log.common.errors import ChainError, StaleError

CHECK = "snp.crl"
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    """Load a PEM or DER CRL; FormatError ``snp.crl`` if it or one of its lazily decoded
    fields does not parse (:func:`attest.certificates.load_crl`)."""
    return load_x509_crl(data, check=CHECK, field="CRL")


def verify_crl(crl: x509.CertificateRevocationList, ark: x509.Certificate,
               intermediate: x509.Certificate, *, at: datetime, role: str = "ASK") -> None:
    """ChainError unless ``crl`` is the ARK's, current at ``at``, and does not revoke
    ``intermediate`` (the ASK or ASVK)."""
    if crl.issuer != ark.subject:
        raise ChainError(CHECK, "CRL is not issued by the ARK", field="CRL.issuer",
                         got=crl.issuer.rfc4514_string(), want=ark.subject.rfc4514_string())
    key = ark.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if crl.signature_algorithm_oid == x509.SignatureAlgorithmOID.RSASSA_PSS:
                key.verify(crl.signature, crl.tbs_certlist_bytes, _PSS, hashes.SHA384())
            else:
                raise ChainError(CHECK, "CRL is not signed with RSA-PSS",
                                 field="CRL.signatureAlgorithm",
                                 got=crl.signature_algorithm_oid.dotted_string,
                                 want="RSASSA-PSS")
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(crl.signature, crl.tbs_certlist_bytes, ec.ECDSA(hashes.SHA384()))
        else:
            raise ChainError(CHECK, "unsupported ARK key type", field="ARK",
                             got=type(key).__name__)
    except InvalidSignature:
        raise ChainError(CHECK, "CRL signature does not verify under the ARK",
                         field="CRL.signature") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    if at < crl.last_update_utc:
        raise StaleError(CHECK, "CRL is not yet valid", field="CRL.thisUpdate",
                         got=at.isoformat(), want=f">= {crl.last_update_utc.isoformat()}")
    nu = crl.next_update_utc
    if nu is not None and at > nu:
        raise StaleError(CHECK, "CRL is stale", field="CRL.nextUpdate", got=at.isoformat(),
                         want=f"<= {nu.isoformat()}")
    revoked = crl.get_revoked_certificate_by_serial_number(intermediate.serial_number)
    if revoked is not None:
        raise ChainError(CHECK, f"the {role} is revoked by the ARK's CRL",
                         field=f"{role}.serialNumber", got=hex(intermediate.serial_number),
                         want="not revoked")
