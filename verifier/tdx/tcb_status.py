"""Intel's TCB level matching for TDX, as Intel's Quote Verification Library (QVL) does it.

Inputs: the PCK certificate's SGX extensions (FMSPC, PCE-ID, SGX TCB components, PCESVN),
the TD Quote Body (TEE_TCB_SVN, MRSIGNERSEAM, SEAMATTRIBUTES), the QE report and the
verified TCB Info v3 / QE Identity v2. Steps (QVL TdxVerifier / TcbLevelCheck):

1. ``tdx.tcb.fmspc``   tcbInfo.fmspc and pceId equal the PCK certificate's FMSPC and PCE-ID.
2. ``tdx.tcb.level``   walk tcbInfo.tcbLevels in order; the first level whose 16 SGX
   components and PCESVN are all <= the PCK's, and whose 16 TDX components are <=
   TEE_TCB_SVN (components 0 and 1 skipped when TEE_TCB_SVN[1] > 0: those belong to the
   module identity), is the platform level. None: "no matching TCB level".
3. ``tdx.tcb.module``  if TEE_TCB_SVN[1] > 0 the module identity ``TDX_%02X`` of
   TEE_TCB_SVN[1] must exist, match MRSIGNERSEAM and SEAMATTRIBUTES under its mask; its
   first level with isvsvn <= TEE_TCB_SVN[0] gives the module status. Otherwise the legacy
   ``tdxModule`` member is matched (no status of its own).
4. ``tdx.qe.identity`` the QE report matches the TD_QE identity (MRSIGNER, ISVPRODID,
   MISCSELECT and ATTRIBUTES under their masks); its first level with isvsvn <= the QE's
   ISVSVN gives the QE status.
5. Convergence (QVL ``convergeTcbStatusWithTdxModuleStatus`` and the QE rule): a module or
   QE that is OutOfDate turns UpToDate/SWHardeningNeeded into OutOfDate and the
   Configuration* statuses into OutOfDateConfigurationNeeded; Revoked wins. Advisory IDs
   are the union, in order of appearance.
6. TDX 1.5 bodies (v5 quote, body type 3; QVL TcbLevelCheck / TDRelaunchCheck): steps 2,
   3 and 5 run twice, on TEE_TCB_SVN (the module the TD launched under) and on
   TEE_TCB_SVN2 (the module running now). When the launch status is OutOfDate or
   OutOfDateConfigurationNeeded but the current one is UpToDate, SWHardeningNeeded or a
   Configuration* status, the result is TDRelaunchAdvised (or
   TDRelaunchAdvisedConfigurationNeeded if either needs configuration); otherwise the
   launch status stands. Advisory IDs of both evaluations are reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from attest.formats.intel_pcs import (
    IsvTcbLevel,
    QeIdentity,
    TcbInfo,
    TcbLevel,
    TdxModuleIdentity,
)
from attest.formats.sgx_pck_extensions import SgxExtensions
from attest.formats.tdx_quote import EnclaveReportBody, TdReportBody
from transparency_log.common.errors import VerificationError
from verifier.tdx.collateral import pcs_time
from verifier.transcript import Transcript
from verifier.verified_cache import VerifiedCache

NO_MATCH = "no matching TCB level"
RELAUNCH_STATUSES = ("TDRelaunchAdvised", "TDRelaunchAdvisedConfigurationNeeded")
_CONFIGURATION = ("ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded",
                  "OutOfDateConfigurationNeeded")


@dataclass(frozen=True)
class TcbStatus:
    """The converged status and how it was reached."""

    status: str
    advisory_ids: tuple[str, ...]
    platform_status: str
    platform_tcb_date: str
    module_id: str | None
    module_status: str | None
    qe_status: str
    tcb_evaluation_data_number: int
    launch_status: str = ""  # the converged status of TEE_TCB_SVN
    current_status: str | None = None  # of TEE_TCB_SVN2 (TDX 1.5 bodies only)

    def to_dict(self) -> dict[str, object]:
        return {"status": self.status, "advisory_ids": list(self.advisory_ids),
                "platform_status": self.platform_status,
                "platform_tcb_date": self.platform_tcb_date, "module_id": self.module_id,
                "module_status": self.module_status, "qe_status": self.qe_status,
                "tcb_evaluation_data_number": self.tcb_evaluation_data_number,
                "launch_status": self.launch_status, "current_status": self.current_status}


def _masked(value: bytes, mask: bytes) -> bytes:
    """``value AND mask``, byte for byte (one big-integer AND, not a loop over bytes)."""
    if len(value) != len(mask):
        raise ValueError("value and mask differ in length")
    return (int.from_bytes(value, "big") & int.from_bytes(mask, "big")).to_bytes(len(value),
                                                                               "big")


def match_platform_level(info: TcbInfo, ext: SgxExtensions, svn: bytes) -> TcbLevel:
    """Step 2: the first tcbLevel the platform meets with TEE_TCB_SVN ``svn``, or
    VerificationError(NO_MATCH)."""
    skip = 2 if svn[1] > 0 else 0
    for level in info.tcb_levels:
        sgx_ok = all(p >= t for p, t in zip(ext.tcb_comp_svns, level.sgx_components,
                                             strict=True)) and ext.pcesvn >= level.pcesvn
        tdx_ok = all(svn[i] >= level.tdx_components[i] for i in range(skip, 16))
        if sgx_ok and tdx_ok:
            return level
    raise VerificationError("tdx.tcb.level", NO_MATCH, field="TEE_TCB_SVN/CPUSVN/PCESVN",
                            got=f"sgx {list(ext.tcb_comp_svns)} pcesvn {ext.pcesvn} "
                                f"tee_tcb_svn {svn.hex()}",
                            want=f"one of {len(info.tcb_levels)} levels of FMSPC "
                                 f"{info.fmspc.hex()}")


def _first_isv_level(levels: tuple[IsvTcbLevel, ...], isvsvn: int, *, check: str,
                     field: str) -> IsvTcbLevel:
    for level in levels:
        if isvsvn >= level.isvsvn:
            return level
    raise VerificationError(check, NO_MATCH, field=field, got=isvsvn,
                            want=f">= {min((lv.isvsvn for lv in levels), default='?')}")


def _check_module_identity(mod: TdxModuleIdentity, body: TdReportBody, name: str) -> None:
    if body.mrsignerseam != mod.mrsigner:
        raise VerificationError("tdx.tcb.module", f"MRSIGNERSEAM differs from {name}",
                                field="MRSIGNERSEAM", got=body.mrsignerseam, want=mod.mrsigner)
    if _masked(body.seam_attributes, mod.attributes_mask) != _masked(mod.attributes,
                                                                     mod.attributes_mask):
        raise VerificationError("tdx.tcb.module", f"SEAMATTRIBUTES differ from {name}",
                                field="SEAMATTRIBUTES", got=body.seam_attributes,
                                want=mod.attributes)


def match_module(info: TcbInfo, body: TdReportBody, svn: bytes) -> IsvTcbLevel | None:
    """Step 3: the module identity's level for TEE_TCB_SVN ``svn`` (None for a module
    without identities, svn[1] == 0)."""
    if svn[1] == 0:
        _check_module_identity(info.tdx_module, body, "tcbInfo.tdxModule")
        return None
    module_id = f"TDX_{svn[1]:02X}"
    mod = next((m for m in info.tdx_module_identities if m.id == module_id), None)
    if mod is None:
        raise VerificationError("tdx.tcb.module", "no TDX module identity for TEE_TCB_SVN[1]",
                                field="TEE_TCB_SVN[1]", got=module_id,
                                want=" | ".join(m.id for m in info.tdx_module_identities))
    _check_module_identity(mod, body, module_id)
    return _first_isv_level(mod.tcb_levels, svn[0], check="tdx.tcb.module",
                            field=f"{module_id} TEE_TCB_SVN[0]")


def match_qe_identity(ident: QeIdentity, qe: EnclaveReportBody) -> IsvTcbLevel:
    """Step 4: the QE report against the TD_QE identity; returns the QE's level."""
    check = "tdx.qe.identity"
    if qe.mr_signer != ident.mrsigner:
        raise VerificationError(check, "QE MRSIGNER differs from Intel's QE identity",
                                field="QE Report.MRSIGNER", got=qe.mr_signer,
                                want=ident.mrsigner)
    if qe.isv_prod_id != ident.isvprodid:
        raise VerificationError(check, "QE ISVPRODID differs", field="QE Report.ISVPRODID",
                                got=qe.isv_prod_id, want=ident.isvprodid)
    misc = qe.misc_select.to_bytes(4, "little")
    # The JSON writes MISCSELECT as the big-endian hex of the 32-bit value.
    misc_be = qe.misc_select.to_bytes(4, "big")
    if _masked(misc_be, ident.miscselect_mask) != _masked(ident.miscselect,
                                                          ident.miscselect_mask):
        raise VerificationError(check, "QE MISCSELECT differs under the mask",
                                field="QE Report.MISCSELECT", got=misc, want=ident.miscselect)
    if _masked(qe.attributes, ident.attributes_mask) != _masked(ident.attributes,
                                                                ident.attributes_mask):
        raise VerificationError(check, "QE ATTRIBUTES differ under the mask",
                                field="QE Report.ATTRIBUTES", got=qe.attributes,
                                want=ident.attributes)
    return _first_isv_level(ident.tcb_levels, qe.isv_svn, check=check,
                            field="QE Report.ISVSVN")


def converge(platform: str, other: str) -> str:
    """QVL convergence of the platform status with a module or QE status."""
    if other == "Revoked":
        return "Revoked"
    if other == "OutOfDate":
        if platform in ("UpToDate", "SWHardeningNeeded"):
            return "OutOfDate"
        if platform in ("ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded"):
            return "OutOfDateConfigurationNeeded"
    return platform


def check_for_relaunch(launch: str, current: str) -> str:
    """Step 6 (QVL TDRelaunchCheck)."""
    if launch in ("OutOfDate", "OutOfDateConfigurationNeeded") and current in (
            "UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
            "ConfigurationAndSWHardeningNeeded"):
        if launch in _CONFIGURATION or current in _CONFIGURATION:
            return "TDRelaunchAdvisedConfigurationNeeded"
        return "TDRelaunchAdvised"
    return launch


@dataclass(frozen=True)
class _Evaluation:
    level: TcbLevel
    module: IsvTcbLevel | None
    status: str
    advisories: tuple[str, ...]


def _evaluate(info: TcbInfo, ext: SgxExtensions, body: TdReportBody, svn: bytes,
              qe_level: IsvTcbLevel) -> _Evaluation:
    """Steps 2, 3 and 5 for one TEE_TCB_SVN array."""
    level = match_platform_level(info, ext, svn)
    module = match_module(info, body, svn)
    status = level.status
    advisories = list(level.advisory_ids)
    for other in ([module] if module is not None else []) + [qe_level]:
        status = converge(status, other.status)
        advisories += [a for a in other.advisory_ids if a not in advisories]
    return _Evaluation(level, module, status, tuple(advisories))


def tcb_status(info: TcbInfo, qe_identity: QeIdentity, ext: SgxExtensions, body: TdReportBody,
               qe: EnclaveReportBody, *, transcript: Transcript | None = None) -> TcbStatus:
    """Steps 1-6: the converged TCB status with its advisory IDs.

    The outcome is a pure function of the five (immutable) inputs: a success is remembered
    per exact input objects (by identity, the entry holding them, so an id is never reused
    while it lives: the parse-once memos hand back the same objects for the same bytes) and
    its steps are recorded again, the same ones in the same order. A refusal is recomputed
    every time, its passed steps recorded before it is raised."""
    t = transcript if transcript is not None else Transcript()
    key = (id(info), id(qe_identity), id(ext), id(body), id(qe))
    hit = _OUTCOMES.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], (info, qe_identity, ext, body, qe),
                                                       strict=True)):
        _, result, steps = hit
    else:
        inner = Transcript()
        try:
            result = _tcb_status(info, qe_identity, ext, body, qe, inner)
        finally:
            for step in inner.steps:
                t.passed(step.check, step.detail)
        steps = tuple((step.check, step.detail) for step in inner.steps)
        _OUTCOMES.put(key, ((info, qe_identity, ext, body, qe), result, steps))
        return result
    for check, detail in steps:
        t.passed(check, detail)
    return result


_OUTCOMES: VerifiedCache[tuple[int, ...], tuple[tuple[object, ...], TcbStatus,
                                                tuple[tuple[str, str], ...]]] = VerifiedCache()


def _tcb_status(info: TcbInfo, qe_identity: QeIdentity, ext: SgxExtensions,
                body: TdReportBody, qe: EnclaveReportBody, t: Transcript) -> TcbStatus:
    if info.fmspc != ext.fmspc:
        raise VerificationError("tdx.tcb.fmspc", "TCB Info is for another platform",
                                field="FMSPC", got=info.fmspc, want=ext.fmspc)
    if info.pce_id != ext.pceid:
        raise VerificationError("tdx.tcb.fmspc", "TCB Info is for another PCE",
                                field="PCE-ID", got=info.pce_id, want=ext.pceid)
    t.passed("tdx.tcb.fmspc", ext.fmspc.hex())
    qe_level = match_qe_identity(qe_identity, qe)
    t.passed("tdx.qe.identity", f"ISVSVN {qe.isv_svn}: {qe_level.status}")
    launch = _evaluate(info, ext, body, body.tee_tcb_svn, qe_level)
    t.passed("tdx.tcb.level", f"{launch.level.status} "
             f"(tcbDate {pcs_time(launch.level.tcb_date).date().isoformat()})")
    module_id = f"TDX_{body.tee_tcb_svn[1]:02X}" if launch.module is not None else None
    t.passed("tdx.tcb.module", f"{module_id}: {launch.module.status}" if launch.module
             is not None else "tdxModule identity matches (no module TCB levels)")
    status, advisories, current_status = launch.status, list(launch.advisories), None
    if body.tee_tcb_svn2 is not None:
        current = _evaluate(info, ext, body, body.tee_tcb_svn2, qe_level)
        current_status = current.status
        status = check_for_relaunch(launch.status, current.status)
        advisories += [a for a in current.advisories if a not in advisories]
        t.passed("tdx.tcb.relaunch", f"launch (TEE_TCB_SVN) {launch.status}, current "
                 f"(TEE_TCB_SVN2) {current.status}: {status}")
    result = TcbStatus(status, tuple(advisories), launch.level.status,
                       pcs_time(launch.level.tcb_date).isoformat(), module_id,
                       launch.module.status if launch.module is not None else None,
                       qe_level.status, info.tcb_evaluation_data_number, launch.status,
                       current_status)
    t.passed("tdx.tcb.status", status + (f" {', '.join(advisories)}" if advisories else ""))
    return result
