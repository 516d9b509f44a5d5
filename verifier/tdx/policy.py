"""The ``[tdx]`` table of the policy file (docs/policy.md) and its checks.

:meth:`TdxPolicy.check` judges an authentic result of verifier/tdx/evidence.py (the TCB
status, the TD attributes, the measurements, the replayed events) and adds every failure to
a collector (house rule 5); it never verifies anything itself.
Allow-lists for MRTD and RTMR0-2 normally come from the transparency log (the release's
expected measurements) and are passed by the caller; the table can also name them.
An empty allow-list means "not constrained by this policy"; the defaults are strict where
the hardware offers a safe setting: TCB status UpToDate only, DEBUG off, SEPT_VE_DISABLE on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from attest.formats.ccel import ALG_SHA384
from attest.formats.intel_pcs import TCB_STATUSES
from attest.formats.tdx_quote import TdReportBody
from transparency_log.common.errors import PolicyError, TrustConfigError
from verifier.policy_base import FailureCollector, StrictTable, parse_hex
from verifier.tdx.rtmr import RtmrReplay
from verifier.tdx.tcb_status import RELAUNCH_STATUSES, TcbStatus
from verifier.transcript import Transcript


def _hex_list(table: StrictTable, key: str, size: int) -> tuple[bytes, ...]:
    values = table.get_list(key, str, [])
    return tuple(parse_hex(v, size, field=f"tdx.{key}[{i}]") for i, v in enumerate(values))


class TdxFacts(Protocol):
    """What the ``[tdx]`` rules judge; :class:`verifier.tdx.evidence.TdxResult` has it."""

    @property
    def body(self) -> TdReportBody: ...

    @property
    def tcb(self) -> TcbStatus: ...

    @property
    def rtmr_replay(self) -> RtmrReplay | None: ...


@dataclass(frozen=True)
class TdxPolicy:
    accepted_tcb_statuses: tuple[str, ...] = ("UpToDate",)
    mrseam: tuple[bytes, ...] = ()
    allow_debug: bool = False
    require_sept_ve_disable: bool = True
    xfam: tuple[bytes, ...] = ()
    mrtd: tuple[bytes, ...] = ()
    rtmr0: tuple[bytes, ...] = ()
    rtmr1: tuple[bytes, ...] = ()
    rtmr2: tuple[bytes, ...] = ()
    mrconfigid: bytes | None = None
    mrowner: bytes | None = None
    mrownerconfig: bytes | None = None
    report_data: bytes | None = None
    min_tee_tcb_svn: bytes | None = None
    required_event_digests: tuple[bytes, ...] = ()

    @classmethod
    def from_table(cls, table: StrictTable) -> TdxPolicy:
        """Read the ``[tdx]`` table; unknown keys and bad values are TrustConfigError."""
        statuses = tuple(table.get_list("accepted_tcb_statuses", str, ["UpToDate"]))
        for s in statuses:
            if s not in TCB_STATUSES + RELAUNCH_STATUSES:
                raise TrustConfigError("policy.schema", "unknown TCB status",
                                       field="tdx.accepted_tcb_statuses", got=s,
                                       want=" | ".join(TCB_STATUSES + RELAUNCH_STATUSES))
        table.removed("unsafe_accept_stale_crls", 'waive = ["tdx.pck_crl.validity", '
                      '"tdx.root_crl.validity"] at the top of the policy (or --waive CHECK)')
        policy = cls(
            accepted_tcb_statuses=statuses,
            mrseam=_hex_list(table, "mrseam", 48),
            allow_debug=table.get("allow_debug", bool, False),
            require_sept_ve_disable=table.get("require_sept_ve_disable", bool, True),
            xfam=_hex_list(table, "xfam", 8),
            mrtd=_hex_list(table, "mrtd", 48),
            rtmr0=_hex_list(table, "rtmr0", 48),
            rtmr1=_hex_list(table, "rtmr1", 48),
            rtmr2=_hex_list(table, "rtmr2", 48),
            mrconfigid=table.get_hex("mrconfigid", 48, None),
            mrowner=table.get_hex("mrowner", 48, None),
            mrownerconfig=table.get_hex("mrownerconfig", 48, None),
            report_data=table.get_hex("report_data", 64, None),
            min_tee_tcb_svn=table.get_hex("min_tee_tcb_svn", 16, None),
            required_event_digests=_hex_list(table, "required_event_digests", 48),
        )
        table.finish()
        return policy

    def with_measurements(self, *, mrtd: Sequence[bytes] = (), rtmr0: Sequence[bytes] = (),
                          rtmr1: Sequence[bytes] = (), rtmr2: Sequence[bytes] = (),
                          report_data: bytes | None = None) -> TdxPolicy:
        """Add caller-supplied allow-lists (from the log) and the expected REPORTDATA."""
        return replace(self, mrtd=self.mrtd + tuple(mrtd), rtmr0=self.rtmr0 + tuple(rtmr0),
                       rtmr1=self.rtmr1 + tuple(rtmr1), rtmr2=self.rtmr2 + tuple(rtmr2),
                       report_data=report_data if report_data is not None
                       else self.report_data)

    def check(self, result: TdxFacts, f: FailureCollector) -> None:
        """Check every rule against an authentic ``result``; add each failure to ``f``
        (``tdx.policy.*``). ``result.rtmr_replay`` is the verified CCEL replay (needed when
        ``required_event_digests`` is set)."""
        body, tcb, replay = result.body, result.tcb, result.rtmr_replay
        if tcb.status not in self.accepted_tcb_statuses:
            f.fail("tdx.policy.tcb_status", "tcbStatus", tcb.status,
                   " | ".join(self.accepted_tcb_statuses),
                   "advisories: " + ", ".join(tcb.advisory_ids) if tcb.advisory_ids else "")
        if self.mrseam:
            f.require(body.mrseam in self.mrseam, "tdx.policy.mrseam", "MRSEAM", body.mrseam,
                      _one_of(self.mrseam))
        if not self.allow_debug:
            f.require(not body.td_attribute("DEBUG"), "tdx.policy.td_attributes",
                      "TDATTRIBUTES.DEBUG", True, False, "debug TDs are refused")
        if self.require_sept_ve_disable:
            f.require(body.td_attribute("SEPT_VE_DISABLE"), "tdx.policy.td_attributes",
                      "TDATTRIBUTES.SEPT_VE_DISABLE", False, True)
        for name, allowed in (("XFAM", self.xfam), ("MRTD", self.mrtd),
                              ("RTMR0", self.rtmr0), ("RTMR1", self.rtmr1),
                              ("RTMR2", self.rtmr2)):
            got = getattr(body, name.lower())
            if allowed:
                f.require(got in allowed, f"tdx.policy.{name.lower()}", name, got,
                          _one_of(allowed))
        for name, want in (("MRCONFIGID", self.mrconfigid), ("MROWNER", self.mrowner),
                           ("MROWNERCONFIG", self.mrownerconfig),
                           ("REPORTDATA", self.report_data)):
            got = getattr(body, name.lower().replace("reportdata", "report_data"))
            if want is not None:
                f.require(got == want, f"tdx.policy.{name.lower()}", name, got, want)
        if self.min_tee_tcb_svn is not None:
            low = [i for i in range(16) if body.tee_tcb_svn[i] < self.min_tee_tcb_svn[i]]
            f.require(not low, "tdx.policy.tee_tcb_svn", "TEE_TCB_SVN", body.tee_tcb_svn,
                      f">= {self.min_tee_tcb_svn.hex()} per component",
                      f"component(s) {low} too low" if low else "")
        if self.required_event_digests:
            if replay is None:
                f.fail("tdx.policy.events", "event log", "(not provided)",
                       "a CCEL log whose replay matches RTMR0-2")
            else:
                seen = {e.digest(ALG_SHA384) for rtmr in replay.events_per_rtmr for e in rtmr}
                for digest in self.required_event_digests:
                    f.require(digest in seen, "tdx.policy.events", "event digest", "(absent)",
                              digest, "required event not in the replayed log")

    def apply(self, result: TdxFacts, transcript: Transcript) -> None:
        """For a caller judging one quote alone (``verifier tdx``): :meth:`check`, then one
        step (``tdx.policy`` when accepted, else the first failure's check id, detail every
        failure) and one PolicyError with every failure. The pipeline uses :meth:`check`."""
        f = FailureCollector()
        self.check(result, f)
        if f.failures:
            err = PolicyError(f.failures)
            transcript.failed(err.check, str(err))
            raise err
        transcript.passed("tdx.policy",
                          f"accepted statuses {', '.join(self.accepted_tcb_statuses)}")


def _one_of(values: Sequence[bytes]) -> str:
    return "one of " + ", ".join(v.hex() for v in values)
