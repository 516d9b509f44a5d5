"""Authenticity of a TDX quote: PCK chain, QE report signature and binding, quote signature.

Intel TDX DCAP Quoting Library API, A.3.8-A.3.11, and Intel's Quote Verification Library
(QVL) order of checks:

1. ``tdx.quote.header``         the QE vendor is Intel.
2. ``tdx.pck.chain``            the PCK chain (certification data type 5) ends in a pinned
                                Intel SGX Root CA, each certificate valid at its time.
3. ``tdx.pck.extensions``       the PCK leaf carries a well-formed SGX extension.
4. ``tdx.qe.report.signature``  the QE report (384 bytes) is signed by the PCK leaf's key.
5. ``tdx.qe.report_data``       QE REPORTDATA = SHA-256(attestation key || QE auth data)
                                || 32 zero bytes: the attestation key belongs to the QE.
6. ``tdx.quote.signature``      header (+ v5 descriptor) + TD Quote Body is signed by the
                                attestation key.

Any failure stops verification (house rule 5) with the check id, field, got and want.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attest.certificates import LOADER_ERRORS, PARSE_MEMO_SIZE, load_pem_bundle, name_text
from attest.formats.sgx_pck_extensions import (
    SGX_EXTENSIONS_OID,
    SgxExtensions,
    parse_sgx_extensions,
)
from attest.formats.tdx_quote import INTEL_QE_VENDOR_ID, EnclaveReportBody, TdxQuote
from transparency_log.common.errors import FormatError, SignatureError, VerificationError
from verifier.transcript import Transcript
from verifier.verified_cache import CACHE_SOURCE, VendorCaches, VerifiedCache
from verifier.x509chain import PinnedRoot, fingerprint, verify_chain

PCK_ROLES = ("PCK", "PCK CA", "Intel SGX Root CA")


def ecdsa_p256_verify(public_key: ec.EllipticCurvePublicKey, signature_rs: bytes, data: bytes,
                      *, check: str, field: str) -> None:
    """Verify a raw r||s ECDSA P-256 / SHA-256 signature; SignatureError on failure."""
    if len(signature_rs) != 64:
        raise SignatureError(check, "signature is not 64 bytes r||s", field=field,
                             got=len(signature_rs), want=64)
    der = encode_dss_signature(int.from_bytes(signature_rs[:32], "big"),
                               int.from_bytes(signature_rs[32:], "big"))
    try:
        public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureError(check, "signature does not verify", field=field,
                             got=signature_rs) from None


def raw_p256_key(xy: bytes, *, check: str, field: str) -> ec.EllipticCurvePublicKey:
    """An uncompressed P-256 point from its raw 64-byte X||Y encoding (decoded once per exact
    bytes: the point check is a pure function of them; a refusal is never memoized)."""
    try:
        return _p256_point(bytes(xy))
    except ValueError:
        raise VerificationError(check, "not a point on P-256", field=field, got=xy) from None


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _p256_point(xy: bytes) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + xy)


def p256_public_key(cert: x509.Certificate, *, check: str, role: str) -> ec.EllipticCurvePublicKey:
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise VerificationError(check, f"{role} key is not ECDSA P-256",
                                field=f"{role}.subjectPublicKeyInfo")
    return key


def sgx_extensions(cert: x509.Certificate) -> SgxExtensions:
    """The SGX extension (OID 1.2.840.113741.1.13.1) of a PCK leaf, strictly decoded (once
    per certificate: certificates compare and hash by their DER)."""
    return _sgx_extensions(cert)


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _sgx_extensions(cert: x509.Certificate) -> SgxExtensions:
    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(SGX_EXTENSIONS_OID))
    except x509.ExtensionNotFound:
        raise FormatError("tdx.pck.extensions", "PCK certificate has no SGX extension",
                          field="SGX Extensions") from None
    except LOADER_ERRORS as err:  # cryptography decodes the extensions lazily
        raise FormatError("tdx.pck.extensions", f"undecodable PCK extensions ({err})",
                          field="PCK.extensions") from None
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):
        raise FormatError("tdx.pck.extensions", "unexpected SGX extension type",
                          field="SGX Extensions")
    return parse_sgx_extensions(value.value)


def subject_text(cert: x509.Certificate, *, check: str, role: str) -> str:
    """The certificate's subject as text; a name cryptography cannot decode is malformed."""
    try:
        return _subject_texts(fingerprint(cert), cert)
    except LOADER_ERRORS as err:
        raise FormatError(check, f"undecodable subject name ({err})",
                          field=f"{role}.subject") from None


def _subject_texts(fp: bytes, cert: x509.Certificate) -> str:
    """``name_text(cert)`` remembered by the certificate's SHA-256 ``fp`` (a lookup by the
    certificate object would re-hash its DER); a name that does not decode is never kept."""
    text = _SUBJECTS.get(fp)
    if text is None:
        text = name_text(cert)
        _SUBJECTS.put(fp, text)
    return text


_SUBJECTS: VerifiedCache[bytes, str] = VerifiedCache(4 * PARSE_MEMO_SIZE)


def load_pck_chain(quote: TdxQuote) -> list[x509.Certificate]:
    """The PEM chain from certification data type 5 (a trailing NUL is tolerated)."""
    pem = quote.signature_data.certification.pck_cert_chain
    if pem.endswith(b"\x00"):
        pem = pem[:-1]
    certs = load_pem_bundle(pem, check="tdx.pck.chain", field="PCK Cert Chain")
    if not certs:
        raise FormatError("tdx.pck.chain", "no certificate in the PCK chain",
                          field="PCK Cert Chain")
    return certs


@dataclass(frozen=True)
class QuoteAuthenticity:
    """What the authenticity checks established (inputs to TCB status and policy)."""

    quote: TdxQuote
    pck_path: tuple[x509.Certificate, ...]  # leaf .. root (root = pinned)
    root: PinnedRoot
    pck_extensions: SgxExtensions
    qe_report: EnclaveReportBody

    @property
    def pck_leaf(self) -> x509.Certificate:
        return self.pck_path[0]

    @property
    def pck_ca(self) -> x509.Certificate:
        return self.pck_path[1]


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def instant_text(at: datetime) -> str:
    """``at.isoformat()``, memoized: a verification writes the same few instants into many
    steps (datetimes are immutable and hash by value)."""
    return at.isoformat()


def cached_inputs(hit: bool, **inputs: str) -> dict[str, str]:
    """A step's transcript inputs, with ``source=cache`` when its verification was reused."""
    return {**inputs, "source": CACHE_SOURCE} if hit else inputs


def verify_quote(quote: TdxQuote, *, roots: Sequence[PinnedRoot], at: datetime,
                 transcript: Transcript | None = None,
                 cache: VendorCaches | None = None) -> QuoteAuthenticity:
    """Run checks 1-6 above on a parsed quote, the PCK chain evaluated at ``at``.

    ``cache``: the verified PCK chain (inside its validity window) and the QE report
    signature (the same bytes under the same PCK leaf) are reused; the quote's own signature
    is always verified."""
    t = transcript if transcript is not None else Transcript()
    cert_data = quote.signature_data.certification

    # (1) header: the QE vendor.
    if quote.header.qe_vendor_id != INTEL_QE_VENDOR_ID:
        raise VerificationError("tdx.quote.header", "QE vendor is not Intel",
                                field="QE_VENDOR_ID", got=quote.header.qe_vendor_id,
                                want=INTEL_QE_VENDOR_ID)
    t.passed("tdx.quote.header", f"version {quote.version}, body type {quote.body_type}, "
             f"{len(quote.trailing)} trailing byte(s)")

    # (2) PCK chain to a pinned root.
    chain = load_pck_chain(quote)
    path, root, hit = verify_chain(chain, roots, at=at, check="tdx.pck.chain",
                                          roles=PCK_ROLES, cache=cache)
    if len(path) != 3:
        raise VerificationError("tdx.pck.chain", "PCK chain must be leaf, PCK CA, root",
                                field="PCK Cert Chain", got=len(path), want=3)
    ca = subject_text(path[1], check="tdx.pck.chain", role="PCK CA")
    t.passed("tdx.pck.chain", f"PCK -> {ca} -> {root.name}",
             **cached_inputs(hit, at=instant_text(at)))

    # (3) SGX extensions of the leaf.
    ext = sgx_extensions(path[0])
    t.passed("tdx.pck.extensions", f"FMSPC {ext.fmspc.hex()}, PCESVN {ext.pcesvn}")

    # (4) QE report signed by the PCK key.
    pck_key = p256_public_key(path[0], check="tdx.qe.report.signature", role="PCK")
    memo = ("tdx.qe.report.signature", cert_data.qe_report, cert_data.qe_report_signature,
            fingerprint(path[0]))
    hit = cache is not None and cache.signature_known(memo)
    if not hit:
        ecdsa_p256_verify(pck_key, cert_data.qe_report_signature, cert_data.qe_report,
                          check="tdx.qe.report.signature", field="QE Report Signature")
        if cache is not None:
            cache.signature_verified(memo)
    t.passed("tdx.qe.report.signature", **cached_inputs(hit))

    # (5) QE report binds the attestation key and QE authentication data.
    qe_report = cert_data.qe_report_body
    want = hashlib.sha256(quote.signature_data.attestation_key
                          + cert_data.qe_auth_data).digest() + bytes(32)
    if qe_report.report_data != want:
        raise VerificationError("tdx.qe.report_data",
                                "QE report does not bind the attestation key",
                                field="QE Report.REPORTDATA", got=qe_report.report_data,
                                want=want)
    t.passed("tdx.qe.report_data")

    # (6) the quote, signed by the attestation key.
    att_key = raw_p256_key(quote.signature_data.attestation_key, check="tdx.quote.signature",
                           field="ECDSA Attestation Key")
    ecdsa_p256_verify(att_key, quote.signature_data.signature, quote.signed_bytes,
                      check="tdx.quote.signature", field="Quote Signature")
    t.passed("tdx.quote.signature")
    return QuoteAuthenticity(quote, tuple(path), root, ext, qe_report)
