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
"""

from __future__ import annotations

from dataclasses import dataclass

from attest.formats.sgx_pck_extensions import SgxExtensions
from attest.formats.tdx_quote import EnclaveReportBody, TdReportBody
from transparency_log.errors import VerificationError
from verifier.tdx.collateral import IsvTcbLevel, QeIdentity, TcbInfo, TcbLevel, TdxModuleIdentity
from verifier.transcript import Transcript

NO_MATCH = "no matching TCB level"


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

    def to_dict(self) -> dict[str, object]:
        return {"status": self.status, "advisory_ids": list(self.advisory_ids),
                "platform_status": self.platform_status,
                "platform_tcb_date": self.platform_tcb_date, "module_id": self.module_id,
                "module_status": self.module_status, "qe_status": self.qe_status,
                "tcb_evaluation_data_number": self.tcb_evaluation_data_number}


def _masked(value: bytes, mask: bytes) -> bytes:
    return bytes(a & b for a, b in zip(value, mask, strict=True))


def match_platform_level(info: TcbInfo, ext: SgxExtensions, body: TdReportBody) -> TcbLevel:
    """Step 2: the first tcbLevel the platform meets, or VerificationError(NO_MATCH)."""
    svn = body.tee_tcb_svn
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


def match_module(info: TcbInfo, body: TdReportBody) -> IsvTcbLevel | None:
    """Step 3: the module identity's level (None for a pre-TDX-1.5 module, svn[1] == 0)."""
    svn = body.tee_tcb_svn
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


def tcb_status(info: TcbInfo, qe_identity: QeIdentity, ext: SgxExtensions, body: TdReportBody,
               qe: EnclaveReportBody, *, transcript: Transcript | None = None) -> TcbStatus:
    """Steps 1-5: the converged TCB status with its advisory IDs."""
    t = transcript if transcript is not None else Transcript()
    if info.fmspc != ext.fmspc:
        raise VerificationError("tdx.tcb.fmspc", "TCB Info is for another platform",
                                field="FMSPC", got=info.fmspc, want=ext.fmspc)
    if info.pce_id != ext.pceid:
        raise VerificationError("tdx.tcb.fmspc", "TCB Info is for another PCE",
                                field="PCE-ID", got=info.pce_id, want=ext.pceid)
    t.passed("tdx.tcb.fmspc", ext.fmspc.hex())
    level = match_platform_level(info, ext, body)
    t.passed("tdx.tcb.level", f"{level.status} (tcbDate {level.tcb_date.date().isoformat()})")
    module = match_module(info, body)
    module_id = f"TDX_{body.tee_tcb_svn[1]:02X}" if module is not None else None
    t.passed("tdx.tcb.module", f"{module_id}: {module.status}" if module is not None
             else "legacy tdxModule identity matches")
    qe_level = match_qe_identity(qe_identity, qe)
    t.passed("tdx.qe.identity", f"ISVSVN {qe.isv_svn}: {qe_level.status}")
    status = level.status
    advisories = list(level.advisory_ids)
    for other in ([module] if module is not None else []) + [qe_level]:
        status = converge(status, other.status)
        advisories += [a for a in other.advisory_ids if a not in advisories]
    result = TcbStatus(status, tuple(advisories), level.status,
                       level.tcb_date.isoformat(), module_id,
                       module.status if module is not None else None, qe_level.status,
                       info.tcb_evaluation_data_number)
    t.passed("tdx.tcb.status", status + (f" {', '.join(advisories)}" if advisories else ""))
    return result
