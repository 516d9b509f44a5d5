"""Verify Intel PCS collateral for TDX: TCB Info v3, TD QE Identity v2, PCK CRL, Root CA CRL.

The JSON is parsed by the pure parser attest/formats/intel_pcs.py; here are the chains,
signatures and validity windows. Specs: Intel PCS API v4 ("Get TDX TCB Info", "Get TD QE
Identity", "Get PCK Cert CRL", Root CA CRL), Intel TDX DCAP Quote Verification: TCB Info V3
and Enclave Identity V2 JSON schemas. The signature of TCB Info / QE Identity is ECDSA
P-256 over the **exact JSON text** of the ``tcbInfo`` / ``enclaveIdentity`` member (as the
bytes appear in the response), hex r||s in ``signature``, by the "Intel SGX TCB Signing"
key whose chain comes in the ``TCB-Info-Issuer-Chain`` /
``SGX-Enclave-Identity-Issuer-Chain`` response header.

Collateral is current at time t when ``issueDate <= t <= nextUpdate`` (CRLs: thisUpdate,
nextUpdate). Each item is evaluated at its own instant (:class:`VerificationTimes`): real
captured collateral is rarely current all at once. A CRL past its nextUpdate is refused
(StaleError) unless the transcript's ``waive`` set (the policy's ``waive`` list) names its
``tdx.<crl>.validity`` check: then the step is recorded ``waived`` (house rule 5); its
signature and the revocation lookups still run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from functools import lru_cache

from cryptography import x509

from attest.certificates import LOADER_ERRORS, PARSE_MEMO_SIZE, load_crl, load_pem_bundle
from attest.collateral.pcs_fetch import TdxCollateral as TdxCollateral  # re-exported
from attest.formats.intel_pcs import (
    QeIdentity,
    SignedQeIdentity,
    SignedTcbInfo,
    TcbInfo,
    parse_qe_identity_response,
    parse_tcb_info_response,
)
from transparency_log.common.errors import (
    FormatError,
    StaleError,
    TrustConfigError,
    VerificationError,
)
from verifier.tdx.quote_verify import (
    cached_inputs,
    ecdsa_p256_verify,
    instant_text,
    p256_public_key,
    subject_text,
)
from verifier.transcript import Transcript
from verifier.verified_cache import VendorCaches, VerifiedCache
from verifier.x509chain import PinnedRoot, fingerprint, verify_chain

#: The CRLs whose staleness the policy may waive by name (``tdx.<item>.validity``).
STALE_WAIVABLE = ("pck_crl", "root_crl")


@dataclass(frozen=True)
class VerificationTimes:
    """The instant at which each item is judged (cf. go-tdx-guest ``TimeSet``).

    ``tcb_signing_chain`` is the chain of the TCB Info and QE Identity signer; it is separate
    because Intel re-issues that certificate with the same key, and captured collateral is
    often newer than the captured chain.
    """

    pck_chain: datetime
    tcb_info: datetime
    qe_identity: datetime
    tcb_signing_chain: datetime
    pck_crl: datetime
    root_crl: datetime

    @classmethod
    def uniform(cls, at: datetime) -> VerificationTimes:
        at = _utc(at)
        return cls(at, at, at, at, at, at)

    def override(self, **items: datetime) -> VerificationTimes:
        names = {f.name for f in fields(self)}
        for name in items:
            if name not in names:
                raise TrustConfigError("tdx.times", "unknown collateral item", field=name,
                                       want=" | ".join(sorted(names)))
        return replace(self, **{k: _utc(v) for k, v in items.items()})

    @property
    def is_uniform(self) -> bool:
        return len({getattr(self, f.name) for f in fields(self)}) == 1

    def to_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name).isoformat() for f in fields(self)}


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def pcs_time(text: str) -> datetime:
    """A PCS timestamp (``YYYY-MM-DDThh:mm:ssZ``, already checked by the parser) as an
    instant (memoized: the same few timestamps recur in every verification)."""
    try:  # ASCII digits (what PCS sends); the parser's pattern also lets others through
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


# ---------------------------------------------------------------- verification

def _issuer_chain(pem: bytes | None, roots: Sequence[PinnedRoot], *, at: datetime, check: str,
                  role: str, cache: VendorCaches | None) -> tuple[list[x509.Certificate], bool]:
    if pem is None:
        raise VerificationError(check, "issuer chain missing", field=f"{role} issuer chain")
    chain = load_pem_bundle(pem, check=check, field=f"{role} issuer chain")
    path, _, hit = verify_chain(chain, roots, at=at, check=check,
                                  roles=(role, "Intel SGX Root CA"), cache=cache)
    return path, hit


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _parsed_tcb_info(body: bytes) -> SignedTcbInfo:
    """Parse a TCB Info response once per exact bytes (the result is immutable; lru_cache is
    thread-safe and keyed on the bytes)."""
    return parse_tcb_info_response(body)


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _parsed_qe_identity(body: bytes) -> SignedQeIdentity:
    return parse_qe_identity_response(body)


def _signed_by(cache: VendorCaches | None, signer: x509.Certificate, sig: bytes, raw: bytes, *,
               check: str, field: str, role: str) -> bool:
    """ECDSA P-256 signature ``sig`` over ``raw`` by ``signer``, reused from ``cache`` when
    these exact bytes verified under this exact certificate before. True on a cache hit."""
    memo = (check, raw, sig, fingerprint(signer))
    if cache is not None and cache.signature_known(memo):
        return True
    key = p256_public_key(signer, check=check, role=role)
    ecdsa_p256_verify(key, sig, raw, check=check, field=field)
    if cache is not None:
        cache.signature_verified(memo)
    return False


def _window(check: str, item: str, issued: datetime, next_update: datetime, at: datetime,
            *, transcript: Transcript, waivable: bool = False) -> None:
    """``issued <= at <= next_update`` or StaleError. A ``waivable`` item past its nextUpdate
    is recorded ``waived`` instead when the transcript's ``waive`` set names ``check``."""
    at_text = instant_text(at)
    detail = f"{instant_text(issued)} .. {instant_text(next_update)} at {at_text}"
    if issued <= at <= next_update:
        transcript.passed(check, detail, at=at_text)
        return
    if at > next_update and waivable and check in transcript.waive:
        transcript.waived(check, f"stale, waived by name ({item}): {detail}", at=at_text)
        return
    state = "not yet valid" if at < issued else "expired"
    raise StaleError(check, f"{item} {state}", field=f"{item}.nextUpdate"
                            if at > next_update else f"{item}.issueDate", got=at.isoformat(),
                            want=f"{issued.isoformat()} .. {next_update.isoformat()}")


def _signed_document(body: bytes, issuer_chain: bytes | None, raw: bytes, sig: bytes, *,
                     prefix: str, item: str, member: str, detail: str, issued: str,
                     next_update: str, at: datetime, roots: Sequence[PinnedRoot],
                     times: VerificationTimes, transcript: Transcript,
                     cache: VendorCaches | None) -> None:
    """The three checks of a signed Intel PCS document (TCB Info, QE Identity; Intel PCS API
    v4): ``<prefix>.chain`` the TCB signing chain to the pinned root, ``<prefix>.signature``
    over the exact ``member`` text, ``<prefix>.validity`` the issueDate..nextUpdate window at
    ``at``. ``cache``: the chain and the signature are reused; the window is checked every
    time."""
    path, hit = _issuer_chain(issuer_chain, roots, at=times.tcb_signing_chain,
                              check=f"{prefix}.chain", role="TCB Signing", cache=cache)
    transcript.passed(f"{prefix}.chain",
                      subject_text(path[0], check=f"{prefix}.chain", role="TCB Signing"),
                      **cached_inputs(hit, at=instant_text(times.tcb_signing_chain)))
    hit = _signed_by(cache, path[0], sig, raw, check=f"{prefix}.signature",
                     field=f"{member}.signature", role="TCB Signing")
    transcript.passed(f"{prefix}.signature", detail, **cached_inputs(hit, sha256=sha256_hex(body)))
    _window(f"{prefix}.validity", item, pcs_time(issued), pcs_time(next_update), at,
            transcript=transcript)


def verify_tcb_info(body: bytes, issuer_chain: bytes | None, *, roots: Sequence[PinnedRoot],
                    times: VerificationTimes, transcript: Transcript,
                    cache: VendorCaches | None = None) -> TcbInfo:
    """Chain, signature over the exact ``tcbInfo`` text, validity window at ``times.tcb_info``
    (:func:`_signed_document`)."""
    parsed = _parsed_tcb_info(bytes(body))
    info = parsed.info
    _signed_document(body, issuer_chain, parsed.signed, parsed.signature,
                     prefix="tdx.tcb_info", item="tcb_info", member="tcbInfo",
                     detail=f"FMSPC {info.fmspc.hex()}, tcbEvaluationDataNumber "
                            f"{info.tcb_evaluation_data_number}",
                     issued=info.issue_date, next_update=info.next_update, at=times.tcb_info,
                     roots=roots, times=times, transcript=transcript, cache=cache)
    return info


def verify_qe_identity(body: bytes, issuer_chain: bytes | None, *,
                       roots: Sequence[PinnedRoot], times: VerificationTimes,
                       transcript: Transcript, cache: VendorCaches | None = None) -> QeIdentity:
    """Chain, signature over the exact ``enclaveIdentity`` text, validity window at
    ``times.qe_identity`` (:func:`_signed_document`)."""
    parsed = _parsed_qe_identity(bytes(body))
    ident = parsed.identity
    _signed_document(body, issuer_chain, parsed.signed, parsed.signature,
                     prefix="tdx.qe.identity", item="qe_identity", member="enclaveIdentity",
                     detail=f"tcbEvaluationDataNumber {ident.tcb_evaluation_data_number}",
                     issued=ident.issue_date, next_update=ident.next_update,
                     at=times.qe_identity, roots=roots, times=times, transcript=transcript,
                     cache=cache)
    return ident


def sha256_hex(data: bytes) -> str:
    """The SHA-256 (hex) a transcript step records for its input bytes; once per exact bytes
    (a pure function; the memo holds the bytes, keyed by them)."""
    return _sha256_hex(bytes(data))


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _crl_facts(data: bytes, item: str) -> tuple[x509.CertificateRevocationList, x509.Name,
                                                datetime, datetime | None]:
    """The CRL, its issuer name, thisUpdate and nextUpdate, read once per exact bytes (a
    refusal is never memoized)."""
    crl = load_crl(data, check=f"tdx.{item}.format", field=item)
    try:  # cryptography decodes the names and the times lazily
        return crl, crl.issuer, crl.last_update_utc, crl.next_update_utc
    except LOADER_ERRORS as err:
        raise FormatError(f"tdx.{item}.format", f"undecodable CRL ({err})", field=item) from None


def _crl_issued_by(data: bytes, issuer_name: x509.Name, issuer: x509.Certificate) -> bool:
    """The CRL's issuer name equals ``issuer``'s subject (RFC 5280 §6.3.3 b), remembered per
    exact CRL bytes and issuer certificate (by SHA-256): a pure function of both."""
    key = (data, fingerprint(issuer))
    same = _CRL_ISSUERS.get(key)
    if same is None:
        same = issuer_name == issuer.subject
        _CRL_ISSUERS.put(key, same)
    return same


_CRL_ISSUERS: VerifiedCache[tuple[bytes, bytes], bool] = VerifiedCache(PARSE_MEMO_SIZE)


def verify_crl(data: bytes, issuer: x509.Certificate, *, item: str, at: datetime,
               transcript: Transcript,
               cache: VendorCaches | None = None) -> x509.CertificateRevocationList:
    """Signature of ``data`` by ``issuer`` and its thisUpdate/nextUpdate window at ``at``
    (past nextUpdate: waived iff the transcript's ``waive`` names ``tdx.<item>.validity``).
    ``cache``: the signature of these exact CRL bytes by this exact issuer is reused (a new
    CRL is new bytes, so it is verified); the window is checked every time."""
    base = f"tdx.{item}"
    data = bytes(data)
    crl, issuer_name, this_update, next_update = _crl_facts(data, item)
    if not _crl_issued_by(data, issuer_name, issuer):
        raise VerificationError(f"{base}.signature", "CRL is not issued by the expected CA",
                                field=f"{item}.issuer", got=issuer_name.rfc4514_string(),
                                want=subject_text(issuer, check=f"{base}.signature", role=item))
    # The CRL's issuer is the issuer's subject (compared above): named by its RFC 4514 text.
    issuer_text = subject_text(issuer, check=f"{base}.signature", role=item)
    memo = (f"{base}.signature", data, fingerprint(issuer))
    hit = cache is not None and cache.signature_known(memo)
    if not hit:
        try:
            valid = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
        except LOADER_ERRORS:
            valid = False
        if not valid:
            raise VerificationError(f"{base}.signature", "CRL signature does not verify",
                                    field=f"{item}.signature")
        if cache is not None:
            cache.signature_verified(memo)
    transcript.passed(f"{base}.signature", issuer_text,
                      **cached_inputs(hit, sha256=sha256_hex(data)))
    if next_update is None:
        raise FormatError(f"{base}.format", "CRL has no nextUpdate", field=f"{item}.nextUpdate")
    _window(f"{base}.validity", item, this_update, next_update, _utc(at),
            transcript=transcript, waivable=item in STALE_WAIVABLE)
    return crl


def require_not_revoked(crl: x509.CertificateRevocationList, cert: x509.Certificate, *,
                        check: str, role: str) -> None:
    try:  # the revoked entries are decoded lazily, at the lookup
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    except LOADER_ERRORS as err:
        raise FormatError(check, f"undecodable CRL entry ({err})", field="CRL") from None
    if entry is not None:
        raise VerificationError(check, f"{role} certificate is revoked",
                                field=f"{role}.serialNumber", got=hex(cert.serial_number),
                                want="not in the CRL")
