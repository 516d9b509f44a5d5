"""Intel PCS JSON collateral for TDX, parsed strictly: TCB Info v3 and TD QE Identity v2.

Specs: Intel PCS API v4 ("Get TDX TCB Info", "Get TD QE Identity"); Intel TDX DCAP Quote
Verification, "TCB Info V3" and "Enclave Identity V2" JSON schemas. A response is
``{"tcbInfo": {...}, "signature": "<hex r||s>"}`` (``enclaveIdentity`` for the QE
Identity); the signature is over the **exact JSON text** of the member, so
:func:`split_signed_json` (attest/formats/intel_pcs_json.py) returns those bytes as they appear.

A pure parser (DESIGN.md house rule 1): bytes in, frozen dataclasses out, or
:class:`FormatError` naming the field. No cryptography and no clock here: the signature,
the issuer chain and the ``issueDate``/``nextUpdate`` window are checked by
verifier/tdx/collateral.py. Timestamps stay text (``YYYY-MM-DDThh:mm:ssZ``, checked to name a
real date and time; no ``datetime`` in a parser), turned into instants by the verifier.
Decoding is strict (house rule 2): duplicate keys, non-standard constants, unknown members,
wrong JSON types and out-of-range numbers are refused.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from attest.formats.intel_pcs_json import HEX_RE, MAX_COLLATERAL_BYTES, split_signed_json
from transparency_log.common.errors import FormatError
from transparency_log.common.strict_mapping import JSON, StrictMapping

TCB_STATUSES = ("UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
                "ConfigurationAndSWHardeningNeeded", "OutOfDate",
                "OutOfDateConfigurationNeeded", "Revoked")
CHECK_TCB_INFO = "tdx.tcb_info.format"
CHECK_QE_IDENTITY = "tdx.qe.identity.format"
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@lru_cache(maxsize=1024)
def _time_fault(v: str) -> str:
    """"" for a ``YYYY-MM-DDThh:mm:ssZ`` naming a real instant, "form" or "date" otherwise (a
    pure function of the text, and the same dates recur in every TCB level: memoized)."""
    if not _TIME_RE.match(v):
        return "form"
    year, month, day, hour, minute, second = (int(x) for x in re.split(r"[-T:Z]", v)[:6])
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]
            and hour < 24 and minute < 60 and second < 60 and year >= 1):
        return "date"
    return ""


class _Obj(StrictMapping):
    """One JSON object of Intel PCS collateral, read with the project's one strict mapping
    reader (unknown members refused at :meth:`finish`), plus the typed members PCS documents
    use (uint, hex, UTC timestamp, TCB status, advisory IDs)."""

    def __init__(self, value: Any, path: str, check: str) -> None:
        super().__init__(value, path, error=FormatError, check=check, style=JSON)

    def uint(self, key: str, limit: int = 0xFFFF) -> int:
        v = self.get(key, int)
        if not 0 <= v <= limit:
            raise self.fail("out of range", key, got=v,
                              want=f"0..{limit}")
        return v

    def hexbytes(self, key: str, size: int) -> bytes:
        v = self.get(key, str)
        if len(v) != 2 * size or not HEX_RE.match(v):
            raise self.fail("not hex of the right size", key,
                              got=v, want=f"{size} bytes")
        return bytes.fromhex(v)

    def time(self, key: str) -> str:
        """A UTC timestamp ``YYYY-MM-DDThh:mm:ssZ`` naming a real instant, as its text."""
        v = self.get(key, str)
        fault = _time_fault(v)
        if fault == "form":
            raise self.fail("not a UTC timestamp", key, got=v, want="YYYY-MM-DDThh:mm:ssZ")
        if fault:
            raise self.fail("invalid date", key, got=v)
        return v

    def status(self) -> str:
        v = self.get("tcbStatus", str)
        if v not in TCB_STATUSES:
            raise self.fail("unknown TCB status", "tcbStatus",
                              got=v, want=" | ".join(TCB_STATUSES))
        return v

    def advisories(self) -> tuple[str, ...]:
        ids = self.get("advisoryIDs", list, None) or []
        if not all(isinstance(a, str) for a in ids):
            raise FormatError(self.check, "advisory IDs must be strings",
                              field=f"{self.path}.advisoryIDs")
        return tuple(ids)

    def items(self, key: str) -> list[_Obj]:
        return [self.nested(v, f"{self.sub(key)}[{i}]")
                for i, v in enumerate(self.get(key, list))]


# ---------------------------------------------------------------- TCB Info (TDX, v3)

@dataclass(frozen=True)
class TcbLevel:
    """One entry of tcbInfo.tcbLevels (platform) in Intel's order (highest first)."""

    sgx_components: tuple[int, ...]
    pcesvn: int
    tdx_components: tuple[int, ...]
    tcb_date: str  # YYYY-MM-DDThh:mm:ssZ (UTC)
    status: str
    advisory_ids: tuple[str, ...]


@dataclass(frozen=True)
class IsvTcbLevel:
    """A TCB level keyed by one ISVSVN (TDX module identities and QE identity)."""

    isvsvn: int
    tcb_date: str  # YYYY-MM-DDThh:mm:ssZ (UTC)
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
    issue_date: str  # YYYY-MM-DDThh:mm:ssZ (UTC)
    next_update: str
    fmspc: bytes
    pce_id: bytes
    tcb_type: int
    tcb_evaluation_data_number: int
    tdx_module: TdxModuleIdentity
    tdx_module_identities: tuple[TdxModuleIdentity, ...]
    tcb_levels: tuple[TcbLevel, ...]


_COMPONENT_KEYS = frozenset({"svn", "category", "type"})


def _plain_components(raw: list[Any]) -> tuple[int, ...] | None:
    """The 16 SVNs when every component is well formed (what the member-by-member reader
    below accepts), else None: that reader then names the first fault."""
    if len(raw) != 16:
        return None
    svns = []
    for c in raw:
        if type(c) is not dict:
            return None
        svn = c.get("svn")
        if type(svn) is not int or not 0 <= svn <= 0xFF:
            return None
        if len(c) > 1 and (not c.keys() <= _COMPONENT_KEYS
                           or not isinstance(c.get("category", ""), str)
                           or not isinstance(c.get("type", ""), str)):
            return None
        svns.append(svn)
    return tuple(svns)


_LEVEL_KEYS = frozenset({"tcb", "tcbDate", "tcbStatus", "advisoryIDs"})
_PLATFORM_TCB_KEYS = frozenset({"sgxtcbcomponents", "pcesvn", "tdxtcbcomponents"})
_ISV_TCB_KEYS = frozenset({"isvsvn"})


def _plain_level_common(lv: Any, tcb_keys: frozenset[str]
                        ) -> tuple[dict[str, Any], str, str, tuple[str, ...]] | None:
    """(tcb, tcbDate, tcbStatus, advisory IDs) of a TCB level whose every member is well
    formed (what the member-by-member readers accept), else None: they then name the first
    fault. Plain dict reads; the result is the same as theirs."""
    if type(lv) is not dict or not lv.keys() <= _LEVEL_KEYS:
        return None
    tcb, date, status = lv.get("tcb"), lv.get("tcbDate"), lv.get("tcbStatus")
    if (type(tcb) is not dict or tcb.keys() != tcb_keys or type(date) is not str
            or _time_fault(date) or type(status) is not str or status not in TCB_STATUSES):
        return None
    ids = lv.get("advisoryIDs", [])
    if type(ids) is not list or not all(type(a) is str for a in ids):
        return None
    return tcb, date, status, tuple(ids)


def _plain_level(lv: Any) -> TcbLevel | None:
    """A platform TCB level read with plain dict reads, or None (see _plain_level_common)."""
    common = _plain_level_common(lv, _PLATFORM_TCB_KEYS)
    if common is None:
        return None
    tcb, date, status, ids = common
    pcesvn = tcb["pcesvn"]
    if type(pcesvn) is not int or not 0 <= pcesvn <= 0xFFFF:
        return None
    sgx, tdx = tcb["sgxtcbcomponents"], tcb["tdxtcbcomponents"]
    if type(sgx) is not list or type(tdx) is not list:
        return None
    sgx_svns, tdx_svns = _plain_components(sgx), _plain_components(tdx)
    if sgx_svns is None or tdx_svns is None:
        return None
    return TcbLevel(sgx_svns, pcesvn, tdx_svns, date, status, ids)


def _plain_isv_level(lv: Any) -> IsvTcbLevel | None:
    """An ISVSVN-keyed TCB level read with plain dict reads, or None."""
    common = _plain_level_common(lv, _ISV_TCB_KEYS)
    if common is None:
        return None
    tcb, date, status, ids = common
    svn = tcb["isvsvn"]
    if type(svn) is not int or not 0 <= svn <= 0xFFFF:
        return None
    return IsvTcbLevel(svn, date, status, ids)


def _levels(o: _Obj, plain: Any) -> tuple[Any, ...] | None:
    """``o.tcbLevels`` each read by ``plain``; None when one is not plain (or the member is
    not a list): the member-by-member reader then runs and names the fault."""
    raw = o.value.get("tcbLevels")
    if type(raw) is not list:
        return None
    out = tuple(plain(lv) for lv in raw)
    if any(lv is None for lv in out):
        return None
    o.seen.add("tcbLevels")
    return out


def _components(o: _Obj, key: str) -> tuple[int, ...]:
    plain = _plain_components(o.get(key, list))
    if plain is not None:
        return plain
    comps = o.items(key)
    if len(comps) != 16:
        raise FormatError(o.check, "expected 16 components", field=f"{o.path}.{key}",
                          got=len(comps), want=16)
    out = []
    for c in comps:
        out.append(c.uint("svn", 0xFF))
        c.get("category", str, None)
        c.get("type", str, None)
        c.finish()
    return tuple(out)


def _isv_levels(o: _Obj) -> tuple[IsvTcbLevel, ...]:
    plain = _levels(o, _plain_isv_level)
    if plain is not None:
        return plain
    out = []
    for lv in o.items("tcbLevels"):
        tcb = _Obj(lv.get("tcb", dict), f"{lv.path}.tcb", o.check)
        svn = tcb.uint("isvsvn")
        tcb.finish()
        out.append(IsvTcbLevel(svn, lv.time("tcbDate"), lv.status(), lv.advisories()))
        lv.finish()
    return tuple(out)


def _module(o: _Obj, with_id: bool) -> TdxModuleIdentity:
    ident = o.get("id", str) if with_id else ""
    mod = TdxModuleIdentity(ident, o.hexbytes("mrsigner", 48), o.hexbytes("attributes", 8),
                            o.hexbytes("attributesMask", 8),
                            _isv_levels(o) if with_id else ())
    o.finish()
    return mod


def _open(value: Any, member: str, check: str, ident: str, version: int) -> _Obj:
    """The member's object, whose ``id`` and ``version`` must be ``ident`` and ``version``."""
    o = _Obj(value, member, check)
    got = (o.get("id", str), o.get("version", int))
    if got != (ident, version):
        raise FormatError(check, f"not a {ident} v{version}", field=f"{member}.id/version",
                          got=f"{got[0]}/{got[1]}", want=f"{ident}/{version}")
    return o


def parse_tcb_info(value: Any) -> TcbInfo:
    """The ``tcbInfo`` member of a TDX TCB Info v3 response, strictly."""
    check = CHECK_TCB_INFO
    o = _open(value, "tcbInfo", check, "TDX", 3)
    plain = _levels(o, _plain_level)
    levels = list(plain) if plain is not None else []
    for lv in o.items("tcbLevels") if plain is None else ():
        tcb = _Obj(lv.get("tcb", dict), f"{lv.path}.tcb", check)
        levels.append(TcbLevel(_components(tcb, "sgxtcbcomponents"), tcb.uint("pcesvn"),
                               _components(tcb, "tdxtcbcomponents"), lv.time("tcbDate"),
                               lv.status(), lv.advisories()))
        tcb.finish()
        lv.finish()
    idents = o.get("tdxModuleIdentities", list, None)
    info = TcbInfo(
        "TDX", 3, o.time("issueDate"), o.time("nextUpdate"), o.hexbytes("fmspc", 6),
        o.hexbytes("pceId", 2), o.uint("tcbType"), o.uint("tcbEvaluationDataNumber", 1 << 32),
        _module(_Obj(o.get("tdxModule", dict), "tcbInfo.tdxModule", check), False),
        tuple(_module(m, True) for m in o.items("tdxModuleIdentities")) if idents is not None
        else (),
        tuple(levels))
    o.finish()
    if info.tcb_type != 0:
        raise FormatError(check, "unsupported tcbType", field="tcbInfo.tcbType",
                          got=info.tcb_type, want=0)
    return info


# ---------------------------------------------------------------- QE Identity (TD_QE, v2)

@dataclass(frozen=True)
class QeIdentity:
    id: str
    version: int
    issue_date: str  # YYYY-MM-DDThh:mm:ssZ (UTC)
    next_update: str
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
    o = _open(value, "enclaveIdentity", CHECK_QE_IDENTITY, "TD_QE", 2)
    out = QeIdentity("TD_QE", 2, o.time("issueDate"), o.time("nextUpdate"),
                     o.uint("tcbEvaluationDataNumber", 1 << 32), o.hexbytes("miscselect", 4),
                     o.hexbytes("miscselectMask", 4), o.hexbytes("attributes", 16),
                     o.hexbytes("attributesMask", 16), o.hexbytes("mrsigner", 32),
                     o.uint("isvprodid"), _isv_levels(o))
    o.finish()
    return out


# ---------------------------------------------------------------- signed responses

@dataclass(frozen=True)
class SignedTcbInfo:
    """A TCB Info response: the exact signed ``tcbInfo`` text, its parse, the signature."""

    signed: bytes
    info: TcbInfo
    signature: bytes


@dataclass(frozen=True)
class SignedQeIdentity:
    """A TD QE Identity response: the exact signed ``enclaveIdentity`` text, its parse, the
    signature."""

    signed: bytes
    identity: QeIdentity
    signature: bytes


def parse_tcb_info_response(body: bytes) -> SignedTcbInfo:
    """A whole PCS "Get TDX TCB Info" response body, strictly."""
    raw, value, sig = split_signed_json(body, "tcbInfo", check=CHECK_TCB_INFO)
    return SignedTcbInfo(raw, parse_tcb_info(value), sig)


def parse_qe_identity_response(body: bytes) -> SignedQeIdentity:
    """A whole PCS "Get TD QE Identity" response body, strictly."""
    raw, value, sig = split_signed_json(body, "enclaveIdentity", check=CHECK_QE_IDENTITY)
    return SignedQeIdentity(raw, parse_qe_identity(value), sig)


__all__ = [
    "CHECK_QE_IDENTITY",
    "CHECK_TCB_INFO",
    "MAX_COLLATERAL_BYTES",
    "TCB_STATUSES",
    "IsvTcbLevel",
    "QeIdentity",
    "SignedQeIdentity",
    "SignedTcbInfo",
    "TcbInfo",
    "TcbLevel",
    "TdxModuleIdentity",
    "parse_qe_identity",
    "parse_qe_identity_response",
    "parse_tcb_info",
    "parse_tcb_info_response",
    "split_signed_json",
]
