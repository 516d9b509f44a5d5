"""The [tdx] policy table (verifier/tdx/policy.py): fail-closed parsing, all failures collected."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

import pytest

from attest.formats.tdx_quote import TdReportBody, parse_quote
from tests.support.tdx_support import GCP, read, sim
from transparency_log.common.errors import PolicyError, TrustConfigError
from verifier.policy_base import FailureCollector, StrictTable
from verifier.tdx.policy import TdxPolicy
from verifier.tdx.rtmr import RtmrReplay
from verifier.tdx.tcb_status import TcbStatus


@dataclass(frozen=True)
class Facts:
    """What TdxPolicy.check judges (verifier.tdx.policy.TdxFacts; a TdxResult has these)."""

    body: TdReportBody
    tcb: TcbStatus
    rtmr_replay: RtmrReplay | None = None


def judge(policy: TdxPolicy, body: TdReportBody, tcb: TcbStatus) -> None:
    collector = FailureCollector()
    policy.check(Facts(body, tcb), collector)
    collector.raise_if_any()


UP = TcbStatus("UpToDate", (), "UpToDate", "2025-01-01", "TDX_01", "UpToDate", "UpToDate", 17)


def _policy(text: str) -> TdxPolicy:
    return TdxPolicy.from_table(StrictTable(tomllib.loads(text).get("tdx", {}), "tdx"))


def test_defaults_are_strict() -> None:
    p = _policy("")
    assert p == TdxPolicy()
    assert p.accepted_tcb_statuses == ("UpToDate",)
    assert not p.allow_debug and p.require_sept_ve_disable


def test_full_table() -> None:
    body = parse_quote(read(GCP)).body
    p = _policy(f"""
[tdx]
accepted_tcb_statuses = ["UpToDate", "SWHardeningNeeded"]
mrseam = ["{body.mrseam.hex()}"]
allow_debug = false
require_sept_ve_disable = true
xfam = ["{body.xfam.hex()}"]
mrtd = ["{body.mrtd.hex()}"]
rtmr0 = ["{body.rtmr0.hex()}"]
rtmr1 = ["{body.rtmr1.hex()}"]
rtmr2 = ["{body.rtmr2.hex()}"]
mrconfigid = "{body.mrconfigid.hex()}"
mrowner = "{body.mrowner.hex()}"
mrownerconfig = "{body.mrownerconfig.hex()}"
report_data = "{body.report_data.hex()}"
min_tee_tcb_svn = "{body.tee_tcb_svn.hex()}"
""")
    judge(p, body, UP)


@pytest.mark.parametrize("text", [
    "[tdx]\nmrtd_allow = []",
    "[tdx]\naccepted_tcb_statuses = [\"Fine\"]",
    "[tdx]\nmrseam = [\"abcd\"]",
    "[tdx]\nallow_debug = 1",
    "[tdx]\nunsafe_accept_stale_crls = [\"root_crl\"]",  # removed: the top-level waive list
    "[tdx]\nreport_data = \"zz\"",
])
def test_bad_tables_are_trust_config_errors(text: str) -> None:
    with pytest.raises(TrustConfigError):
        _policy(text)


def test_every_failure_is_collected() -> None:
    s = sim()
    body = s.body(td_attributes=(1).to_bytes(8, "little"))  # DEBUG on, SEPT_VE_DISABLE off
    p = TdxPolicy(mrseam=(bytes(48),), xfam=(bytes(8),), mrconfigid=b"\x01" * 48,
                  mrowner=b"\x01" * 48, mrownerconfig=b"\x01" * 48,
                  min_tee_tcb_svn=bytes([7, 1]) + bytes(14)).with_measurements(
        mrtd=[bytes(48)], rtmr0=[bytes(48)], rtmr1=[bytes(48)], rtmr2=[bytes(48)],
        report_data=b"\x02" * 64)
    out_of_date = TcbStatus("OutOfDate", ("INTEL-SA-00837",), "OutOfDate", "2023-01-01", None,
                            None, "UpToDate", 15)
    with pytest.raises(PolicyError) as err:
        judge(p, body, out_of_date)
    fields = [f.field for f in err.value.failures]
    assert fields == ["tcbStatus", "MRSEAM", "TDATTRIBUTES.DEBUG",
                      "TDATTRIBUTES.SEPT_VE_DISABLE", "XFAM", "MRTD", "RTMR0", "RTMR1", "RTMR2",
                      "MRCONFIGID", "MROWNER", "MROWNERCONFIG", "REPORTDATA", "TEE_TCB_SVN"]
    assert err.value.failures[-1].message == "component(s) [0] too low"
    assert err.value.exit_code == 5


def test_one_failure_per_rule() -> None:
    s = sim()
    body = s.body()
    judge(TdxPolicy(), body, UP)
    with pytest.raises(PolicyError) as err:
        judge(TdxPolicy().with_measurements(mrtd=[bytes(48)]), body, UP)
    assert [f.check for f in err.value.failures] == ["tdx.policy.mrtd"]
    # Allow-lists accept any listed value.
    judge(TdxPolicy().with_measurements(mrtd=[bytes(48), body.mrtd]), body, UP)
