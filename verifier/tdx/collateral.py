"""Intel PCS collateral for TDX: TCB Info v3, TD QE Identity v2, PCK CRL, Root CA CRL.

Specs: Intel PCS API v4 ("Get TDX TCB Info", "Get TD QE Identity", "Get PCK Cert CRL",
Root CA CRL), Intel TDX DCAP Quote Verification: TCB Info V3 and Enclave Identity V2 JSON
schemas. The signature of TCB Info / QE Identity is ECDSA P-256 over the **exact JSON text**
of the ``tcbInfo`` / ``enclaveIdentity`` member (as the bytes appear in the response), hex
r||s in ``signature``, by the "Intel SGX TCB Signing" key whose chain comes in the
``TCB-Info-Issuer-Chain`` / ``SGX-Enclave-Identity-Issuer-Chain`` response header.

Collateral is current at time t when ``issueDate <= t <= nextUpdate`` (CRLs: thisUpdate,
nextUpdate). Each item is evaluated at its own instant (:class:`VerificationTimes`): real
captured collateral is rarely current all at once. A stale CRL is refused unless the caller
waives it by name, and a waiver is written to the transcript (house rule 5).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cryptography import x509

from attest.collateral.pcs_fetch import TdxCollateral as TdxCollateral  # re-exported
from transparency_log.common.errors import (
    FormatError,
    StaleError,
    TrustConfigError,
    VerificationError,
)
from verifier.tdx.quote_verify import cached_inputs, ecdsa_p256_verify, p256_public_key
from verifier.transcript import Transcript
from verifier.verified_cache import VendorCaches
from verifier.x509chain import (
    PARSE_MEMO_SIZE,
    PinnedRoot,
    load_crl,
    load_pem_bundle,
    verify_chain_cached,
)

TCB_STATUSES = ("UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
                "ConfigurationAndSWHardeningNeeded", "OutOfDate",
                "OutOfDateConfigurationNeeded", "Revoked")
STALE_WAIVABLE = ("pck_crl", "root_crl")
MAX_COLLATERAL_BYTES = 1 << 20
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_HEX_RE = re.compile(r"^[0-9a-fA-F]*$")


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


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


# ---------------------------------------------------------------- strict JSON helpers

def _no_dups(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_dups, parse_constant=_reject_constant)


def split_signed_json(body: bytes, member: str, *, check: str) -> tuple[bytes, Any, bytes]:
    """Split ``{"<member>": {...}, "signature": "<hex>"}`` into (exact member text, member
    value, signature bytes). Only these two keys are allowed, each once."""
    if len(body) > MAX_COLLATERAL_BYTES:
        raise FormatError(check, "collateral too large", field=member, got=len(body),
                          want=f"<= {MAX_COLLATERAL_BYTES}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(check, "collateral is not UTF-8", field=member) from None
    ws = " \t\r\n"
    spans: dict[str, tuple[int, int, Any]] = {}
    try:
        i = len(text) - len(text.lstrip(ws))
        if text[i:i + 1] != "{":
            raise ValueError("not a JSON object")
        i += 1
        while True:
            while text[i] in ws:
                i += 1
            if text[i] == "}" and not spans:
                raise ValueError("empty object")
            key, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
            while text[i] in ws:
                i += 1
            if text[i] != ":":
                raise ValueError("expected ':'")
            i += 1
            while text[i] in ws:
                i += 1
            value, end = _DECODER.raw_decode(text, i)
            if key in spans:
                raise ValueError(f"duplicate key {key!r}")
            spans[key] = (i, end, value)
            i = end
            while text[i] in ws:
                i += 1
            if text[i] == "}":
                i += 1
                break
            if text[i] != ",":
                raise ValueError("expected ',' or '}'")
            i += 1
        if text[i:].strip(ws):
            raise ValueError("trailing data after the JSON object")
    except (ValueError, IndexError, RecursionError) as err:
        raise FormatError(check, f"collateral is not valid JSON: {err}", field=member) from None
    if set(spans) != {member, "signature"}:
        raise FormatError(check, "unexpected top-level keys", field=member,
                          got=",".join(sorted(spans)), want=f"{member},signature")
    start, end, value = spans[member]
    sig_hex = spans["signature"][2]
    if not isinstance(sig_hex, str) or len(sig_hex) != 128 or not _HEX_RE.match(sig_hex):
        raise FormatError(check, "signature is not 64 bytes of hex", field="signature")
    return text[start:end].encode("utf-8"), value, bytes.fromhex(sig_hex)


class _Obj:
    """Typed, fail-closed access to one JSON object of the collateral."""

    def __init__(self, value: Any, path: str, check: str) -> None:
        if not isinstance(value, dict):
            raise FormatError(check, "expected a JSON object", field=path)
        self.d, self.path, self.check = value, path, check
        self.seen: set[str] = set()

    def get(self, key: str, kind: type, *, optional: bool = False) -> Any:
        self.seen.add(key)
        if key not in self.d:
            if optional:
                return None
            raise FormatError(self.check, "missing member", field=f"{self.path}.{key}")
        v = self.d[key]
        if isinstance(v, bool) or not isinstance(v, kind):
            raise FormatError(self.check, "wrong JSON type", field=f"{self.path}.{key}",
                              got=type(v).__name__, want=kind.__name__)
        return v

    def uint(self, key: str, limit: int = 0xFFFF) -> int:
        v = self.get(key, int)
        if not 0 <= v <= limit:
            raise FormatError(self.check, "out of range", field=f"{self.path}.{key}", got=v,
                              want=f"0..{limit}")
        return v

    def hexbytes(self, key: str, size: int) -> bytes:
        v = self.get(key, str)
        if len(v) != 2 * size or not _HEX_RE.match(v):
            raise FormatError(self.check, "not hex of the right size", field=f"{self.path}.{key}",
                              got=v, want=f"{size} bytes")
        return bytes.fromhex(v)

    def time(self, key: str) -> datetime:
        v = self.get(key, str)
        if not _TIME_RE.match(v):
            raise FormatError(self.check, "not a UTC timestamp", field=f"{self.path}.{key}",
                              got=v, want="YYYY-MM-DDThh:mm:ssZ")
        try:
            return datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise FormatError(self.check, "invalid date", field=f"{self.path}.{key}",
                              got=v) from None

    def status(self) -> str:
        v = self.get("tcbStatus", str)
        if v not in TCB_STATUSES:
            raise FormatError(self.check, "unknown TCB status", field=f"{self.path}.tcbStatus",
                              got=v, want=" | ".join(TCB_STATUSES))
        return v

    def advisories(self) -> tuple[str, ...]:
        ids = self.get("advisoryIDs", list, optional=True) or []
        if not all(isinstance(a, str) for a in ids):
            raise FormatError(self.check, "advisory IDs must be strings",
                              field=f"{self.path}.advisoryIDs")
        return tuple(ids)

    def items(self, key: str) -> list[_Obj]:
        return [_Obj(v, f"{self.path}.{key}[{i}]", self.check)
                for i, v in enumerate(self.get(key, list))]

    def done(self) -> None:
        extra = sorted(set(self.d) - self.seen)
        if extra:
            raise FormatError(self.check, "unknown member(s): " + ", ".join(extra),
                              field=f"{self.path}.{extra[0]}")


# ---------------------------------------------------------------- TCB Info (TDX, v3)

@dataclass(frozen=True)
class TcbLevel:
    """One entry of tcbInfo.tcbLevels (platform) in Intel's order (highest first)."""

    sgx_components: tuple[int, ...]
    pcesvn: int
    tdx_components: tuple[int, ...]
    tcb_date: datetime
    status: str
    advisory_ids: tuple[str, ...]


@dataclass(frozen=True)
class IsvTcbLevel:
    """A TCB level keyed by one ISVSVN (TDX module identities and QE identity)."""

    isvsvn: int
    tcb_date: datetime
    status: str
    advisory_ids: tuple[str, ...]


@dataclass(frozen=True)
class TdxModuleIdentity:
    id: str  # "TDX_01" ...; "" for the legacy tdxModule member
    mrsigner: bytes
    attributes: bytes
    attributes_mask: bytes
    tcb_levels: tuple[IsvTcbLevel, ...]


@dataclass(frozen=True)
class TcbInfo:
    id: str
    version: int
    issue_date: datetime
    next_update: datetime
    fmspc: bytes
    pce_id: bytes
    tcb_type: int
    tcb_evaluation_data_number: int
    tdx_module: TdxModuleIdentity
    tdx_module_identities: tuple[TdxModuleIdentity, ...]
    tcb_levels: tuple[TcbLevel, ...]


def _components(o: _Obj, key: str) -> tuple[int, ...]:
    comps = o.items(key)
    if len(comps) != 16:
        raise FormatError(o.check, "expected 16 components", field=f"{o.path}.{key}",
                          got=len(comps), want=16)
    out = []
    for c in comps:
        out.append(c.uint("svn", 0xFF))
        c.get("category", str, optional=True)
        c.get("type", str, optional=True)
        c.done()
    return tuple(out)


def _isv_levels(o: _Obj) -> tuple[IsvTcbLevel, ...]:
    out = []
    for lv in o.items("tcbLevels"):
        tcb = _Obj(lv.get("tcb", dict), f"{lv.path}.tcb", o.check)
        svn = tcb.uint("isvsvn")
        tcb.done()
        out.append(IsvTcbLevel(svn, lv.time("tcbDate"), lv.status(), lv.advisories()))
        lv.done()
    return tuple(out)


def _module(o: _Obj, with_id: bool) -> TdxModuleIdentity:
    ident = o.get("id", str) if with_id else ""
    mod = TdxModuleIdentity(ident, o.hexbytes("mrsigner", 48), o.hexbytes("attributes", 8),
                            o.hexbytes("attributesMask", 8),
                            _isv_levels(o) if with_id else ())
    o.done()
    return mod


def parse_tcb_info(value: Any) -> TcbInfo:
    """The ``tcbInfo`` member of a TDX TCB Info v3 response, strictly."""
    check = "tdx.tcb_info.format"
    o = _Obj(value, "tcbInfo", check)
    ident, version = o.get("id", str), o.get("version", int)
    if ident != "TDX" or version != 3:
        raise FormatError(check, "not a TDX TCB Info v3", field="tcbInfo.id/version",
                          got=f"{ident}/{version}", want="TDX/3")
    levels = []
    for lv in o.items("tcbLevels"):
        tcb = _Obj(lv.get("tcb", dict), f"{lv.path}.tcb", check)
        levels.append(TcbLevel(_components(tcb, "sgxtcbcomponents"), tcb.uint("pcesvn"),
                               _components(tcb, "tdxtcbcomponents"), lv.time("tcbDate"),
                               lv.status(), lv.advisories()))
        tcb.done()
        lv.done()
    idents = o.get("tdxModuleIdentities", list, optional=True)
    info = TcbInfo(
        ident, version, o.time("issueDate"), o.time("nextUpdate"), o.hexbytes("fmspc", 6),
        o.hexbytes("pceId", 2), o.uint("tcbType"), o.uint("tcbEvaluationDataNumber", 1 << 32),
        _module(_Obj(o.get("tdxModule", dict), "tcbInfo.tdxModule", check), False),
        tuple(_module(m, True) for m in o.items("tdxModuleIdentities")) if idents is not None
        else (),
        tuple(levels))
    o.done()
    if info.tcb_type != 0:
        raise FormatError(check, "unsupported tcbType", field="tcbInfo.tcbType",
                          got=info.tcb_type, want=0)
    return info


# ---------------------------------------------------------------- QE Identity (TD_QE, v2)

@dataclass(frozen=True)
class QeIdentity:
    id: str
    version: int
    issue_date: datetime
    next_update: datetime
    tcb_evaluation_data_number: int
    miscselect: bytes
    miscselect_mask: bytes
    attributes: bytes
    attributes_mask: bytes
    mrsigner: bytes
    isvprodid: int
    tcb_levels: tuple[IsvTcbLevel, ...]


def parse_qe_identity(value: Any) -> QeIdentity:
    """The ``enclaveIdentity`` member of a TD QE Identity v2 response, strictly."""
    check = "tdx.qe.identity.format"
    o = _Obj(value, "enclaveIdentity", check)
    ident, version = o.get("id", str), o.get("version", int)
    if ident != "TD_QE" or version != 2:
        raise FormatError(check, "not a TD_QE identity v2", field="enclaveIdentity.id/version",
                          got=f"{ident}/{version}", want="TD_QE/2")
    out = QeIdentity(ident, version, o.time("issueDate"), o.time("nextUpdate"),
                     o.uint("tcbEvaluationDataNumber", 1 << 32), o.hexbytes("miscselect", 4),
                     o.hexbytes("miscselectMask", 4), o.hexbytes("attributes", 16),
                     o.hexbytes("attributesMask", 16), o.hexbytes("mrsigner", 32),
                     o.uint("isvprodid"), _isv_levels(o))
    o.done()
    return out


# ---------------------------------------------------------------- verification

def _issuer_chain(pem: bytes | None, roots: Sequence[PinnedRoot], *, at: datetime, check: str,
                  role: str, cache: VendorCaches | None) -> tuple[list[x509.Certificate], bool]:
    if pem is None:
        raise VerificationError(check, "issuer chain missing", field=f"{role} issuer chain")
    chain = load_pem_bundle(pem, check=check, field=f"{role} issuer chain")
    path, _, hit = verify_chain_cached(chain, roots, at=at, check=check,
                                       roles=(role, "Intel SGX Root CA"), cache=cache)
    return path, hit


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _parsed_tcb_info(body: bytes) -> tuple[bytes, TcbInfo, bytes]:
    """Split and parse a TCB Info response once per exact bytes (the result is immutable)."""
    raw, value, sig = split_signed_json(body, "tcbInfo", check="tdx.tcb_info.format")
    return raw, parse_tcb_info(value), sig


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _parsed_qe_identity(body: bytes) -> tuple[bytes, QeIdentity, bytes]:
    raw, value, sig = split_signed_json(body, "enclaveIdentity", check="tdx.qe.identity.format")
    return raw, parse_qe_identity(value), sig


def _signed_by(cache: VendorCaches | None, signer: x509.Certificate, sig: bytes, raw: bytes, *,
               check: str, field: str, role: str) -> bool:
    """ECDSA P-256 signature ``sig`` over ``raw`` by ``signer``, reused from ``cache`` when
    these exact bytes verified under this exact certificate before. True on a cache hit."""
    memo = (check, raw, sig, signer)
    if cache is not None and cache.signature_known(memo):
        return True
    key = p256_public_key(signer, check=check, role=role)
    ecdsa_p256_verify(key, sig, raw, check=check, field=field)
    if cache is not None:
        cache.signature_verified(memo)
    return False


def _window(check: str, item: str, issued: datetime, next_update: datetime, at: datetime,
            *, waivers: frozenset[str], transcript: Transcript) -> None:
    detail = f"{issued.isoformat()} .. {next_update.isoformat()} at {at.isoformat()}"
    if issued <= at <= next_update:
        transcript.passed(check, detail, at=at.isoformat())
        return
    if at > next_update and item in waivers:
        transcript.waived(check, f"stale, waived by name ({item}): {detail}", at=at.isoformat())
        return
    state = "not yet valid" if at < issued else "expired"
    raise StaleError(check, f"{item} {state}", field=f"{item}.nextUpdate"
                            if at > next_update else f"{item}.issueDate", got=at.isoformat(),
                            want=f"{issued.isoformat()} .. {next_update.isoformat()}")


def verify_tcb_info(body: bytes, issuer_chain: bytes | None, *, roots: Sequence[PinnedRoot],
                    times: VerificationTimes, transcript: Transcript,
                    cache: VendorCaches | None = None) -> TcbInfo:
    """Chain, signature over the exact ``tcbInfo`` text, validity window at ``times.tcb_info``.
    ``cache``: the chain and the signature are reused; the window is checked every time."""
    raw, info, sig = _parsed_tcb_info(bytes(body))
    path, hit = _issuer_chain(issuer_chain, roots, at=times.tcb_signing_chain,
                              check="tdx.tcb_info.chain", role="TCB Signing", cache=cache)
    transcript.passed("tdx.tcb_info.chain", path[0].subject.rfc4514_string(),
                      **cached_inputs(hit, at=times.tcb_signing_chain.isoformat()))
    hit = _signed_by(cache, path[0], sig, raw, check="tdx.tcb_info.signature",
                     field="tcbInfo.signature", role="TCB Signing")
    transcript.passed("tdx.tcb_info.signature",
                      f"FMSPC {info.fmspc.hex()}, tcbEvaluationDataNumber "
                      f"{info.tcb_evaluation_data_number}",
                      **cached_inputs(hit, sha256=_digest(body)))
    _window("tdx.tcb_info.validity", "tcb_info", info.issue_date, info.next_update,
            times.tcb_info, waivers=frozenset(), transcript=transcript)
    return info


def verify_qe_identity(body: bytes, issuer_chain: bytes | None, *,
                       roots: Sequence[PinnedRoot], times: VerificationTimes,
                       transcript: Transcript, cache: VendorCaches | None = None) -> QeIdentity:
    """Chain, signature over the exact ``enclaveIdentity`` text, validity window (``cache``:
    as :func:`verify_tcb_info`)."""
    raw, ident, sig = _parsed_qe_identity(bytes(body))
    path, hit = _issuer_chain(issuer_chain, roots, at=times.tcb_signing_chain,
                              check="tdx.qe.identity.chain", role="TCB Signing", cache=cache)
    transcript.passed("tdx.qe.identity.chain", path[0].subject.rfc4514_string(),
                      **cached_inputs(hit, at=times.tcb_signing_chain.isoformat()))
    hit = _signed_by(cache, path[0], sig, raw, check="tdx.qe.identity.signature",
                     field="enclaveIdentity.signature", role="TCB Signing")
    transcript.passed("tdx.qe.identity.signature",
                      f"tcbEvaluationDataNumber {ident.tcb_evaluation_data_number}",
                      **cached_inputs(hit, sha256=_digest(body)))
    _window("tdx.qe.identity.validity", "qe_identity", ident.issue_date, ident.next_update,
            times.qe_identity, waivers=frozenset(), transcript=transcript)
    return ident


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_crl(data: bytes, issuer: x509.Certificate, *, item: str, at: datetime,
               waivers: frozenset[str], transcript: Transcript,
               cache: VendorCaches | None = None) -> x509.CertificateRevocationList:
    """Signature of ``data`` by ``issuer`` and its thisUpdate/nextUpdate window at ``at``.
    ``cache``: the signature of these exact CRL bytes by this exact issuer is reused (a new
    CRL is new bytes, so it is verified); the window is checked every time."""
    base = f"tdx.{item}"
    crl = load_crl(data, check=f"{base}.format", field=item)
    if crl.issuer != issuer.subject:
        raise VerificationError(f"{base}.signature", "CRL is not issued by the expected CA",
                                field=f"{item}.issuer", got=crl.issuer.rfc4514_string(),
                                want=issuer.subject.rfc4514_string())
    memo = (f"{base}.signature", bytes(data), issuer)
    hit = cache is not None and cache.signature_known(memo)
    if not hit:
        if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            raise VerificationError(f"{base}.signature", "CRL signature does not verify",
                                    field=f"{item}.signature")
        if cache is not None:
            cache.signature_verified(memo)
    transcript.passed(f"{base}.signature", crl.issuer.rfc4514_string(),
                      **cached_inputs(hit, sha256=_digest(data)))
    if crl.next_update_utc is None:
        raise FormatError(f"{base}.format", "CRL has no nextUpdate", field=f"{item}.nextUpdate")
    _window(f"{base}.validity", item, crl.last_update_utc, crl.next_update_utc, _utc(at),
            waivers=waivers, transcript=transcript)
    return crl


def require_not_revoked(crl: x509.CertificateRevocationList, cert: x509.Certificate, *,
                        check: str, role: str) -> None:
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is not None:
        raise VerificationError(check, f"{role} certificate is revoked",
                                field=f"{role}.serialNumber", got=hex(cert.serial_number),
                                want="not in the CRL")
