"""The report signature: ECDSA P-384 with SHA-384 over bytes 0x000..0x29F (SEV-SNP ABI spec
56860, "ATTESTATION_REPORT Structure" and "ECDSA P-384 with SHA-384 Signature": r and s are
72-byte little-endian integers at 0x2A0 and 0x2E8)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attest.formats.snp_report import (
    ECDSA_COMPONENT_SIZE,
    SIGNATURE_ALGO_ECDSA_P384_SHA384,
    SIGNATURE_OFFSET,
    SIGNED_SIZE,
    signed_part,
)
from transparency_log.common.errors import SignatureError

CHECK = "snp.report.signature"
_P384_ORDER = int(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
    "C7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16)
_ECDSA = ec.ECDSA(hashes.SHA384())


def report_signature_der(report: bytes) -> bytes:
    """The report's (r, s) as a DER ECDSA-Sig-Value; SignatureError if out of range."""
    r = int.from_bytes(report[SIGNATURE_OFFSET:SIGNATURE_OFFSET + ECDSA_COMPONENT_SIZE], "little")
    s = int.from_bytes(report[SIGNATURE_OFFSET + ECDSA_COMPONENT_SIZE:
                              SIGNATURE_OFFSET + 2 * ECDSA_COMPONENT_SIZE], "little")
    for name, v in (("SIGNATURE.R", r), ("SIGNATURE.S", s)):
        if not 0 < v < _P384_ORDER:
            raise SignatureError(CHECK, "signature component out of range", field=name,
                                 got=hex(v), want="0 < v < n(P-384)")
    return encode_dss_signature(r, s)


def verify_report_signature(report: bytes, key: ec.EllipticCurvePublicKey,
                            *, signer: str = "VCEK") -> None:
    """Verify the raw report's signature under ``key`` (the VCEK's or VLEK's); SignatureError."""
    signed = signed_part(report)
    algo = int.from_bytes(signed[0x34:0x38], "little")
    if algo != SIGNATURE_ALGO_ECDSA_P384_SHA384:
        raise SignatureError(CHECK, "unsupported signature algorithm", field="SIGNATURE_ALGO",
                             got=algo, want=SIGNATURE_ALGO_ECDSA_P384_SHA384)
    der = report_signature_der(report)
    try:
        key.verify(der, signed, _ECDSA)
    except InvalidSignature:
        raise SignatureError(CHECK, f"report signature does not verify under the {signer}",
                             field="SIGNATURE", got=f"r,s over 0x000..0x{SIGNED_SIZE - 1:X}",
                             want=f"valid under {signer}") from None
