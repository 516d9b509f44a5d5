"""AMD certificate chains and the VCEK/VLEK's KDS extensions.

Chains (AMD KDS spec 57230 "Certificate Chain"; all links RSA-PSS, SHA-384, MGF1-SHA-384,
salt 48): ARK -> ASK -> VCEK, and ARK -> ASVK -> VLEK. The ARK must be one of the pinned
roots; the intermediate is the one the node or KDS supplied (verified under the ARK) or the
embedded one. The leaf's extensions must then agree with the report
(:func:`check_key_extensions`): hwID == CHIP_ID (VCEK), SPLs == REPORTED_TCB, productName
names the product; a VLEK has a csp_id and no hwID.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from attest.certificates import LOADER_ERRORS, load_certificate
from attest.formats.snp_kds_ext import KDS_OIDS, KdsExtensions, parse_kds_extensions
from attest.formats.snp_report import TURIN, AttestationReport, TcbVersion, decode_tcb
from transparency_log.common.errors import ChainError, FormatError, VerificationError
from verifier.snp.roots import AmdProductRoots
from verifier.x509chain import verify_chain

CHAIN_CHECK = "snp.vcek.chain"
EXT_CHECK = "snp.vcek.extensions"
def load_key_certificate(data: bytes, role: str) -> x509.Certificate:
    """Load a VCEK/VLEK (PEM or DER). AMD VCEKs have non-positive serial numbers, which
    ``cryptography`` warns about (and a future release may refuse): a refusal is a FormatError
    naming the certificate, never a crash. Every field the chain check reads (names, validity,
    signature algorithm, extensions, key) is parsed at load (verifier/x509chain.py)."""
    check = f"snp.{role.lower()}.format"
    return load_certificate(data, check=check, field=role)  # every field read at load


def load_amd_certificate(data: bytes, role: str) -> x509.Certificate:
    """Load a supplied ASK, ASVK or ARK (PEM or DER); FormatError ``snp.vcek.format``."""
    return load_certificate(data, check="snp.vcek.format", field=role)


def kds_extensions(cert: x509.Certificate, role: str = "VCEK") -> KdsExtensions:
    """The KDS extensions of ``cert`` (FormatError if one is malformed). Decoded once per
    verification (:func:`verify_key_chain` takes them from its caller) and kept with the
    verified key: not memoized by the certificate, whose hash re-reads its whole DER."""
    values: dict[str, bytes] = {}
    try:
        exts = cert.extensions
    except LOADER_ERRORS as err:
        raise FormatError(f"snp.{role.lower()}.format", f"extensions do not parse: {err}",
                          field=role) from None
    for ext in exts:
        dotted = _KDS_OIDS.get(ext.oid)  # others are not read (parse_kds_extensions)
        if dotted is not None and type(ext.value) is _UNRECOGNIZED:
            values[dotted] = ext.value.value
    return parse_kds_extensions(values)


_UNRECOGNIZED = x509.UnrecognizedExtension  # the KDS OIDs are unknown to cryptography
_KDS_OIDS = {x509.ObjectIdentifier(oid): oid for oid in KDS_OIDS}


@dataclass(frozen=True)
class VerifiedKey:
    """A VCEK or VLEK whose chain verified to a pinned ARK at ``at``."""

    role: str  # "VCEK" | "VLEK"
    certificate: x509.Certificate
    public_key: ec.EllipticCurvePublicKey
    extensions: KdsExtensions
    intermediate: x509.Certificate
    roots: AmdProductRoots
    not_before: datetime
    not_after: datetime


def verify_key_chain(key_cert: x509.Certificate, roots: AmdProductRoots, *, role: str,
                     at: datetime, intermediate: x509.Certificate | None = None,
                     ark: x509.Certificate | None = None,
                     extensions: KdsExtensions | None = None) -> VerifiedKey:
    """Verify ARK -> ASK -> VCEK (``role="VCEK"``) or ARK -> ASVK -> VLEK at time ``at``.

    ``intermediate``/``ark`` are what the node or KDS supplied (optional): a supplied ARK must
    be byte-identical to the pinned one; a supplied intermediate must verify under it.
    ``extensions``: the key certificate's KDS extensions when the caller decoded them already.
    """
    mid_role = "ASK" if role == "VCEK" else "ASVK"
    mid = intermediate or (roots.ask if role == "VCEK" else roots.asvk)
    if mid is None:
        raise ChainError(CHAIN_CHECK, f"no {mid_role} for {roots.product}", field=mid_role)
    chain = [key_cert, mid] + ([ark] if ark is not None else [])
    path, _, _ = verify_chain(chain, [roots.ark], at=at, check=CHAIN_CHECK,
                           roles=[role, mid_role, "ARK"], pinned=roots.intermediate_fingerprints)
    key = key_cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise ChainError(CHAIN_CHECK, f"{role} key is not ECDSA P-384",
                         field=f"{role}.subjectPublicKeyInfo",
                         got=type(key).__name__, want="EC secp384r1")
    nb = max(c.not_valid_before_utc for c in path)
    na = min(c.not_valid_after_utc for c in path)
    ext = extensions if extensions is not None else kds_extensions(key_cert, role)
    return VerifiedKey(role, key_cert, key, ext, path[1], roots, nb, na)


def _fail(message: str, field: str, got: object, want: object) -> VerificationError:
    return VerificationError(EXT_CHECK, message, field=field, got=got, want=want)


def check_key_extensions(vk: VerifiedKey, report: AttestationReport, product: str,
                         tcb: TcbVersion | None = None) -> str:
    """The signing key's KDS extensions must describe this chip and REPORTED_TCB (``tcb``:
    REPORTED_TCB decoded for ``product``, when the caller has it).

    With MASK_CHIP_KEY set the report's CHIP_ID is zero and cannot be compared; that is said
    in the returned description (the signature still binds the report to this VCEK).
    """
    ext, role = vk.extensions, vk.role
    compared = "productName, SPLs == REPORTED_TCB"
    if ext.product != product:
        raise _fail(f"{role} productName does not name the product", f"{role}.productName",
                    ext.product_name, product)
    if role == "VCEK" and report.mask_chip_key and not any(report.chip_id):
        compared += "; hwID not compared (MASK_CHIP_KEY: CHIP_ID is zero)"
    elif role == "VCEK":
        compared += ", hwID == CHIP_ID"
        if ext.hwid is None:
            raise _fail("VCEK has no hwID", "VCEK.hwID", None, "CHIP_ID")
        want_id = report.chip_id[:len(ext.hwid)] if product == TURIN else report.chip_id
        if product == TURIN and len(ext.hwid) != 8:
            raise _fail("Turin VCEK hwID must be 8 bytes", "VCEK.hwID", len(ext.hwid), 8)
        if ext.hwid != want_id:
            raise _fail("VCEK hwID is not the report's CHIP_ID", "CHIP_ID", report.chip_id,
                        ext.hwid)
    else:
        if ext.hwid is not None:
            raise _fail("a VLEK must not carry a hwID", "VLEK.hwID", ext.hwid, "absent")
        if not ext.csp_id:
            raise _fail("VLEK has no csp_id", "VLEK.csp_id", None, "a CSP id")
        compared += f", csp_id {ext.csp_id}"
    if tcb is None:
        tcb = decode_tcb(report.reported_tcb, product)
    spls = ext.spls()
    for name, value in tcb.components().items():
        if spls.get(name) != value:
            raise _fail(f"{role} SPL differs from REPORTED_TCB (fetch the {role} for "
                        "REPORTED_TCB)", f"REPORTED_TCB.{name}", value, spls.get(name))
    return compared
