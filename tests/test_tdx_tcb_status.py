"""TCB level matching and convergence (verifier/tdx/tcb_status.py) and, on simulated evidence,
one test per collateral check in which only that check fails."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from attest.simulate.tdx import SIM_TEE_TCB_SVN, IntelSimulator
from tests.support.tdx_support import SIM_NOW, sim, sim_collateral, sim_root, verify_judged
from transparency_log.common.errors import AttestlogError, VerificationError
from verifier.tdx.collateral import VerificationTimes
from verifier.tdx.evidence import TdxResult
from verifier.tdx.policy import TdxPolicy
from verifier.tdx.tcb_status import converge
from verifier.transcript import Transcript

ALL = TdxPolicy(accepted_tcb_statuses=("UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
                                       "ConfigurationAndSWHardeningNeeded", "OutOfDate",
                                       "OutOfDateConfigurationNeeded", "Revoked",
                                       "TDRelaunchAdvised",
                                       "TDRelaunchAdvisedConfigurationNeeded"))


@pytest.fixture(scope="module")
def s() -> IntelSimulator:
    return sim()


def run(s: IntelSimulator, *, quote: bytes | None = None, policy: TdxPolicy = ALL,
        transcript: Transcript | None = None, **collateral: Any) -> TdxResult:
    return verify_judged(quote or s.quote().to_bytes(), sim_collateral(s, **collateral),
                         roots=[sim_root(s)], times=VerificationTimes.uniform(SIM_NOW),
                         policy=policy, transcript=transcript)


def fails_only(s: IntelSimulator, check: str, kind: type = VerificationError,
               **kwargs: Any) -> AttestlogError:
    t = Transcript()
    with pytest.raises(kind) as err:
        run(s, transcript=t, **kwargs)
    assert err.value.check == check, err.value
    assert [x.result for x in t.steps[:-1]] == ["pass"] * (len(t.steps) - 1)
    return err.value


def test_simulated_v4_and_v5_are_up_to_date(s: IntelSimulator) -> None:
    for version in (4, 5):
        result = run(s, quote=s.quote(version=version).to_bytes(), policy=TdxPolicy())
        assert result.tcb.status == "UpToDate" and result.tcb.module_id == "TDX_01"
        assert result.transcript.verdict == "accepted"


# ---------------------------------------------------------------- statuses and convergence

def test_first_matching_level_wins_with_its_advisories(s: IntelSimulator) -> None:
    higher = tuple(v + 1 for v in s.extensions.tcb_comp_svns)
    levels = [s.tcb_level("UpToDate", sgx=higher),
              s.tcb_level("OutOfDate", advisories=("INTEL-SA-00001", "INTEL-SA-00002")),
              s.tcb_level("Revoked", sgx=(0,) * 16)]
    result = run(s, tcb_info=s.tcb_info(levels=levels))
    assert result.tcb.status == "OutOfDate"
    assert result.tcb.advisory_ids == ("INTEL-SA-00001", "INTEL-SA-00002")


def test_tdx_components_count_in_matching(s: IntelSimulator) -> None:
    tdx_high = bytes(SIM_TEE_TCB_SVN[:2]) + bytes([SIM_TEE_TCB_SVN[2] + 1]) + bytes(13)
    levels = [s.tcb_level("UpToDate", tdx=tuple(tdx_high)),
              s.tcb_level("SWHardeningNeeded", advisories=("INTEL-SA-00615",))]
    result = run(s, tcb_info=s.tcb_info(levels=levels))
    assert result.tcb.status == "SWHardeningNeeded"


def test_tdx_components_0_and_1_are_skipped_when_a_module_identity_applies(
        s: IntelSimulator) -> None:
    tdx = (SIM_TEE_TCB_SVN[0] + 9, SIM_TEE_TCB_SVN[1] + 9, *SIM_TEE_TCB_SVN[2:])
    result = run(s, tcb_info=s.tcb_info(levels=[s.tcb_level("UpToDate", tdx=tdx)]))
    assert result.tcb.status == "UpToDate"


def test_pcesvn_counts_in_matching(s: IntelSimulator) -> None:
    with pytest.raises(VerificationError, match="no matching TCB level"):
        run(s, tcb_info=s.tcb_info(levels=[s.tcb_level("UpToDate",
                                                       pcesvn=s.extensions.pcesvn + 1)]))


@pytest.mark.parametrize(("platform", "module", "want"), [
    ("UpToDate", "OutOfDate", "OutOfDate"),
    ("SWHardeningNeeded", "OutOfDate", "OutOfDate"),
    ("ConfigurationNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"),
    ("ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"),
    ("UpToDate", "Revoked", "Revoked"),
    ("ConfigurationNeeded", "UpToDate", "ConfigurationNeeded"),
    ("OutOfDate", "UpToDate", "OutOfDate"),
])
def test_module_status_converges_with_the_platform(s: IntelSimulator, platform: str,
                                                   module: str, want: str) -> None:
    assert converge(platform, module) == want
    module_levels = [{"tcb": {"isvsvn": 0}, "tcbDate": "2025-01-01T00:00:00Z",
                      "tcbStatus": module, "advisoryIDs": ["INTEL-SA-01036"]}]
    result = run(s, tcb_info=s.tcb_info(levels=[s.tcb_level(platform)],
                                        module_levels=module_levels))
    assert (result.tcb.platform_status, result.tcb.module_status) == (platform, module)
    assert result.tcb.status == want
    assert "INTEL-SA-01036" in result.tcb.advisory_ids


def test_qe_out_of_date_converges(s: IntelSimulator) -> None:
    levels = [{"tcb": {"isvsvn": 9}, "tcbDate": "2025-01-01T00:00:00Z", "tcbStatus": "UpToDate"},
              {"tcb": {"isvsvn": 2}, "tcbDate": "2024-01-01T00:00:00Z", "tcbStatus": "OutOfDate",
               "advisoryIDs": ["INTEL-SA-00999"]}]
    result = run(s, qe_identity=s.qe_identity(levels=levels))
    assert (result.tcb.qe_status, result.tcb.status) == ("OutOfDate", "OutOfDate")
    assert result.tcb.advisory_ids == ("INTEL-SA-00999",)


def test_legacy_module_without_identity(s: IntelSimulator) -> None:
    body = s.body(tee_tcb_svn=bytes([3, 0, 3] + [0] * 13))
    quote = s.quote(body=body).to_bytes()
    levels = [s.tcb_level("UpToDate", tdx=(3, 0, 3) + (0,) * 13)]
    result = run(s, quote=quote, tcb_info=s.tcb_info(levels=levels))
    assert result.tcb.module_id is None and result.tcb.status == "UpToDate"


# ---------------------------------------------------------------- one check fails at a time

def test_only_root_crl_signature_fails(s: IntelSimulator) -> None:
    other = sim(seed=b"other")
    fails_only(s, "tdx.root_crl.signature", root_crl=other.root_crl())


def test_only_root_crl_validity_fails(s: IntelSimulator) -> None:
    old = SIM_NOW - timedelta(days=90)
    fails_only(s, "tdx.root_crl.validity", root_crl=s.root_crl(this_update=old))


def test_only_root_crl_revocation_fails_for_a_revoked_pck_ca(s: IntelSimulator) -> None:
    fails_only(s, "tdx.root_crl.revocation",
               root_crl=s.root_crl(revoked=(s.pck_ca_cert.serial_number,)))


def test_only_root_crl_revocation_fails_for_a_revoked_tcb_signer(s: IntelSimulator) -> None:
    fails_only(s, "tdx.root_crl.revocation",
               root_crl=s.root_crl(revoked=(s.tcb_signing_cert.serial_number,)))


def test_only_pck_crl_chain_fails(s: IntelSimulator) -> None:
    fails_only(s, "tdx.pck_crl.chain", pck_crl_issuer_chain=sim(seed=b"x").pck_crl_chain_pem)


def test_only_pck_crl_signature_fails(s: IntelSimulator) -> None:
    fails_only(s, "tdx.pck_crl.signature", pck_crl=sim(seed=b"x").pck_crl())


def test_only_pck_crl_validity_fails(s: IntelSimulator) -> None:
    fails_only(s, "tdx.pck_crl.validity",
               pck_crl=s.pck_crl(this_update=SIM_NOW + timedelta(days=1)))


def test_only_pck_crl_revocation_fails(s: IntelSimulator) -> None:
    fails_only(s, "tdx.pck_crl.revocation",
               pck_crl=s.pck_crl(revoked=(7, s.pck_cert.serial_number)))


def test_only_tcb_info_chain_fails(s: IntelSimulator) -> None:
    fails_only(s, "tdx.tcb_info.chain",
               tcb_info_issuer_chain=sim(seed=b"x").tcb_signing_chain_pem)


def test_only_tcb_info_signature_fails(s: IntelSimulator) -> None:
    body = s.tcb_info().replace(b'"tcbEvaluationDataNumber":17', b'"tcbEvaluationDataNumber":18')
    fails_only(s, "tdx.tcb_info.signature", tcb_info=body)


def test_only_tcb_info_validity_fails(s: IntelSimulator) -> None:
    fails_only(s, "tdx.tcb_info.validity",
               tcb_info=s.tcb_info(issue=SIM_NOW - timedelta(days=60)))


def test_only_qe_identity_chain_fails(s: IntelSimulator) -> None:
    fails_only(s, "tdx.qe.identity.chain",
               qe_identity_issuer_chain=sim(seed=b"x").tcb_signing_chain_pem)


def test_only_qe_identity_signature_fails(s: IntelSimulator) -> None:
    body = s.qe_identity().replace(b'"isvprodid":2', b'"isvprodid":3')
    fails_only(s, "tdx.qe.identity.signature", qe_identity=body)


def test_only_qe_identity_validity_fails(s: IntelSimulator) -> None:
    fails_only(s, "tdx.qe.identity.validity",
               qe_identity=s.qe_identity(issue=SIM_NOW + timedelta(hours=1)))


def test_only_tcb_fmspc_fails(s: IntelSimulator) -> None:
    fails_only(s, "tdx.tcb.fmspc", tcb_info=s.tcb_info(fmspc=bytes.fromhex("00a06f000001")))


def test_only_tcb_level_fails(s: IntelSimulator) -> None:
    higher = tuple(v + 1 for v in s.extensions.tcb_comp_svns)
    err = fails_only(s, "tdx.tcb.level",
                     tcb_info=s.tcb_info(levels=[s.tcb_level("UpToDate", sgx=higher)]))
    assert err.message == "no matching TCB level"


def test_only_tcb_module_fails_for_an_unknown_module(s: IntelSimulator) -> None:
    quote = s.quote(body=s.body(tee_tcb_svn=bytes([6, 2, 3] + [0] * 13))).to_bytes()
    fails_only(s, "tdx.tcb.module", quote=quote)


def test_only_tcb_module_fails_for_another_module_signer(s: IntelSimulator) -> None:
    quote = s.quote(body=s.body(mrsignerseam=b"\x01" * 48)).to_bytes()
    fails_only(s, "tdx.tcb.module", quote=quote)


def test_only_tcb_module_fails_for_an_older_module(s: IntelSimulator) -> None:
    module_levels = [{"tcb": {"isvsvn": 9}, "tcbDate": "2025-01-01T00:00:00Z",
                      "tcbStatus": "UpToDate"}]
    fails_only(s, "tdx.tcb.module", tcb_info=s.tcb_info(module_levels=module_levels))


def test_only_qe_identity_fails_for_another_qe_signer(s: IntelSimulator) -> None:
    quote = s.quote(qe_overrides={"mr_signer": bytes(32)}).to_bytes()
    fails_only(s, "tdx.qe.identity", quote=quote)


def test_only_qe_identity_fails_for_another_qe_product(s: IntelSimulator) -> None:
    quote = s.quote(qe_overrides={"isv_prod_id": 1}).to_bytes()
    fails_only(s, "tdx.qe.identity", quote=quote)


def test_only_qe_identity_fails_for_masked_attributes(s: IntelSimulator) -> None:
    quote = s.quote(qe_overrides={"attributes": b"\x13" + bytes(15)}).to_bytes()
    fails_only(s, "tdx.qe.identity", quote=quote)
    # A bit outside the mask (byte 0 bit 2 is masked out: FB) is ignored.
    ok = s.quote(qe_overrides={"attributes": b"\x15" + bytes(15)}).to_bytes()
    assert run(s, quote=ok).tcb.status == "UpToDate"


def test_only_policy_fails_for_an_unaccepted_status(s: IntelSimulator) -> None:
    from transparency_log.common.errors import PolicyError

    t = Transcript()
    with pytest.raises(PolicyError) as err:
        run(s, policy=TdxPolicy(), transcript=t,
            tcb_info=s.tcb_info(levels=[s.tcb_level("OutOfDate", advisories=("INTEL-SA-1",))]))
    assert [f.check for f in err.value.failures] == ["tdx.policy.tcb_status"]
    assert "INTEL-SA-1" in err.value.failures[0].message
    assert t.steps[-1].check == "tdx.policy.tcb_status" and t.steps[-1].result == "fail"
    assert t.steps[-2].check == "tdx.tcb.status" and t.steps[-2].result == "pass"


def test_debug_quote_verifies_but_policy_refuses(s: IntelSimulator) -> None:
    from transparency_log.common.errors import PolicyError

    debug = s.body(td_attributes=((1 << 28) | 1).to_bytes(8, "little"))
    with pytest.raises(PolicyError) as err:
        run(s, quote=s.quote(body=debug).to_bytes(), policy=TdxPolicy())
    assert [f.field for f in err.value.failures] == ["TDATTRIBUTES.DEBUG"]


def test_v5_quote_descriptor_bit_in_the_signed_span(s: IntelSimulator) -> None:
    raw = bytearray(s.quote(version=5).to_bytes())
    raw[0x36 + 0x88] ^= 0x80  # MRTD
    with pytest.raises(VerificationError) as err:
        run(s, quote=bytes(raw))
    assert err.value.check == "tdx.quote.signature"



# ---------------------------------------------------------------- TDX 1.5: relaunch advice

MODULE_LEVELS = [{"tcb": {"isvsvn": 6}, "tcbDate": "2025-01-01T00:00:00Z", "tcbStatus": "UpToDate"},
                 {"tcb": {"isvsvn": 2}, "tcbDate": "2024-01-01T00:00:00Z",
                  "tcbStatus": "OutOfDate", "advisoryIDs": ["INTEL-SA-01036"]}]


@pytest.mark.parametrize(("platform", "launch_svn", "current_svn", "want"), [
    ("UpToDate", 4, 6, "TDRelaunchAdvised"),
    ("ConfigurationNeeded", 4, 6, "TDRelaunchAdvisedConfigurationNeeded"),
    ("UpToDate", 4, 4, "OutOfDate"),
    ("UpToDate", 6, 6, "UpToDate"),
])
def test_tdx15_relaunch_advice(s: IntelSimulator, platform: str, launch_svn: int,
                               current_svn: int, want: str) -> None:
    body = s.body(tee_tcb_svn=bytes([launch_svn, 1, 3] + [0] * 13),
                  tee_tcb_svn2=bytes([current_svn, 1, 3] + [0] * 13), mrservicetd=bytes(48))
    quote = s.quote(version=5, body=body).to_bytes()
    t = Transcript()
    result = run(s, quote=quote, transcript=t,
                 tcb_info=s.tcb_info(levels=[s.tcb_level(platform)],
                                     module_levels=MODULE_LEVELS))
    assert result.tcb.status == want
    assert result.tcb.current_status is not None
    assert "tdx.tcb.relaunch" in [x.check for x in t.steps]
    if launch_svn == 4:
        assert result.tcb.advisory_ids == ("INTEL-SA-01036",)


def test_relaunch_statuses_are_accepted_only_when_named(s: IntelSimulator) -> None:
    from transparency_log.common.errors import PolicyError

    body = s.body(tee_tcb_svn=bytes([4, 1, 3] + [0] * 13),
                  tee_tcb_svn2=bytes([6, 1, 3] + [0] * 13), mrservicetd=bytes(48))
    quote = s.quote(version=5, body=body).to_bytes()
    tcb_info = s.tcb_info(module_levels=MODULE_LEVELS)
    with pytest.raises(PolicyError):
        run(s, quote=quote, tcb_info=tcb_info, policy=TdxPolicy())
    run(s, quote=quote, tcb_info=tcb_info,
        policy=TdxPolicy(accepted_tcb_statuses=("UpToDate", "TDRelaunchAdvised")))
