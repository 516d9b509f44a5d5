"""Collateral (TCB Info, QE Identity, PCK CRL, Root CA CRL) and the whole TDX pipeline on the
real vectors: per-item verification times, named waivers of stale CRLs, expired collateral
refused, "no matching TCB level" for SPR_E4."""

from __future__ import annotations

from dataclasses import replace

import pytest

from attest.formats.intel_pcs import parse_qe_identity, parse_tcb_info, split_signed_json
from tests.support.tdx_support import (
    SPR_E4,
    SPR_E4_TIME,
    V5,
    V5_TIMES,
    read,
    real_collateral,
    utc,
)
from transparency_log.common.errors import FormatError, VerificationError
from verifier.tdx.collateral import VerificationTimes
from verifier.tdx.evidence import verify_tdx_evidence
from verifier.tdx.roots import production_roots
from verifier.transcript import WAIVED, Transcript

V5_TCB = "sample_tcbinfo_response_v5"
V4_TCB = "sample_tcbInfo_response"


def _steps(t: Transcript) -> dict[str, tuple[str, str]]:
    return {s.check: (s.result, s.inputs.get("at", "")) for s in t.steps}


def test_v5_quote_with_its_collateral_is_up_to_date_with_per_item_times() -> None:
    """Test of record: no instant has all of this collateral current; each item is judged at
    its own time and the transcript records which."""
    result = verify_tdx_evidence(read(V5), real_collateral(V5_TCB), roots=production_roots(),
                                 times=V5_TIMES)
    assert result.tcb.status == "UpToDate"
    assert (result.tcb.platform_status, result.tcb.module_id, result.tcb.module_status,
            result.tcb.qe_status) == ("UpToDate", "TDX_01", "UpToDate", "UpToDate")
    assert result.tcb.advisory_ids == ()
    # TDX 1.5 body: TEE_TCB_SVN (launch) and TEE_TCB_SVN2 (current) are both UpToDate.
    assert (result.tcb.launch_status, result.tcb.current_status) == ("UpToDate", "UpToDate")
    steps = _steps(result.transcript)
    assert steps["tdx.tcb.relaunch"][0] == "pass"
    assert steps["tdx.tcb_info.validity"] == ("pass", "2026-02-03T00:00:00+00:00")
    assert steps["tdx.tcb_info.chain"] == ("pass", "2025-05-01T00:00:00+00:00")
    assert steps["tdx.qe.identity.validity"] == ("pass", "2023-07-01T00:00:00+00:00")
    assert steps["tdx.pck_crl.validity"] == ("pass", "2023-07-01T00:00:00+00:00")
    assert steps["tdx.root_crl.validity"] == ("pass", "2024-01-01T00:00:00+00:00")
    assert result.transcript.verdict == "accepted"
    assert not V5_TIMES.is_uniform


def test_v5_quote_with_stale_crls_waived_by_name() -> None:
    """The other route: CRLs judged at the quote's time, stale, and waived by name in the
    policy's waive list (the transcript's); the transcript says 'waived', never 'pass'."""
    times = V5_TIMES.override(pck_crl=utc("2026-02-03"), root_crl=utc("2026-02-03"))
    waive = frozenset({"tdx.pck_crl.validity", "tdx.root_crl.validity"})
    result = verify_tdx_evidence(read(V5), real_collateral(V5_TCB), roots=production_roots(),
                                 times=times, transcript=Transcript(waive=waive))
    assert result.tcb.status == "UpToDate"
    steps = {s.check: s for s in result.transcript.steps}
    for item in ("pck_crl", "root_crl"):
        step = steps[f"tdx.{item}.validity"]
        assert step.result == WAIVED and f"waived by name ({item})" in step.detail
    assert result.transcript.verdict == "accepted"


def test_stale_crl_is_refused_without_a_waiver() -> None:
    times = V5_TIMES.override(root_crl=utc("2026-02-03"))
    t = Transcript()
    with pytest.raises(VerificationError) as err:
        verify_tdx_evidence(read(V5), real_collateral(V5_TCB), roots=production_roots(),
                            times=times, transcript=t)
    assert err.value.check == "tdx.root_crl.validity"
    assert t.verdict == "refused"
    # A waiver of the *other* CRL does not help.
    with pytest.raises(VerificationError):
        verify_tdx_evidence(read(V5), real_collateral(V5_TCB), roots=production_roots(),
                            times=times,
                            transcript=Transcript(waive=frozenset({"tdx.pck_crl.validity"})))


@pytest.mark.parametrize(("item", "when", "check"), [
    ("tcb_info", "2026-04-01", "tdx.tcb_info.validity"),
    ("tcb_info", "2026-01-01", "tdx.tcb_info.validity"),
    ("qe_identity", "2023-08-01", "tdx.qe.identity.validity"),
    ("pck_crl", "2023-08-01", "tdx.pck_crl.validity"),
    ("tcb_signing_chain", "2026-02-03", "tdx.tcb_info.chain"),
])
def test_expired_collateral_is_refused_unless_pinned_inside_its_window(
        item: str, when: str, check: str) -> None:
    times = V5_TIMES.override(**{item: utc(when)})
    with pytest.raises(VerificationError) as err:
        verify_tdx_evidence(read(V5), real_collateral(V5_TCB), roots=production_roots(),
                            times=times)
    assert err.value.check == check


def test_uniform_current_time_refuses_the_real_collateral() -> None:
    with pytest.raises(VerificationError):
        verify_tdx_evidence(read(V5), real_collateral(V5_TCB), roots=production_roots(),
                            times=VerificationTimes.uniform(utc("2026-11-23")))


def test_spr_e4_with_the_sample_tcb_info_has_no_matching_tcb_level() -> None:
    """Test of record: every item is current on 2023-06-20; the PCK's SGX components
    (3, 3) are below every level's (5, 5)."""
    t = Transcript()
    with pytest.raises(VerificationError) as err:
        verify_tdx_evidence(read(SPR_E4), real_collateral(V4_TCB), roots=production_roots(),
                            times=VerificationTimes.uniform(SPR_E4_TIME), transcript=t)
    assert err.value.check == "tdx.tcb.level"
    assert err.value.message == "no matching TCB level"
    steps = _steps(t)
    for check in ("tdx.quote.signature", "tdx.pck_crl.revocation", "tdx.root_crl.revocation",
                  "tdx.tcb_info.signature", "tdx.tcb_info.validity",
                  "tdx.qe.identity.signature", "tdx.qe.identity.validity", "tdx.tcb.fmspc"):
        assert steps[check][0] == "pass", check
    assert steps["tdx.tcb.level"][0] == "fail"


def test_tcb_info_for_another_fmspc_is_refused() -> None:
    with pytest.raises(VerificationError) as err:
        verify_tdx_evidence(read(SPR_E4), real_collateral(V5_TCB), roots=production_roots(),
                            times=V5_TIMES.override(pck_chain=SPR_E4_TIME))
    assert err.value.check == "tdx.tcb.fmspc"


def test_real_collateral_signatures_are_over_the_exact_text() -> None:
    for name, member in ((V5_TCB, "tcbInfo"), (V4_TCB, "tcbInfo"),
                         ("sample_qeIdentity_response", "enclaveIdentity")):
        body = read(name)
        raw, value, sig = split_signed_json(body, member, check="t")
        assert raw in body and len(sig) == 64
        (parse_tcb_info if member == "tcbInfo" else parse_qe_identity)(value)


def test_a_re_serialized_tcb_info_no_longer_verifies() -> None:
    """Same JSON value, different text (spaces): the signature is over the exact text."""
    import json

    doc = json.loads(read(V5_TCB))
    respaced = json.dumps(doc, indent=1).encode()
    coll = replace(real_collateral(V5_TCB), tcb_info=respaced)
    with pytest.raises(VerificationError) as err:
        verify_tdx_evidence(read(V5), coll, roots=production_roots(), times=V5_TIMES)
    assert err.value.check == "tdx.tcb_info.signature"


def test_tcb_info_signed_chain_must_reach_the_root() -> None:
    coll = replace(real_collateral(V5_TCB), tcb_info_issuer_chain=read("pck_crl_issuer_chain.pem"))
    with pytest.raises(VerificationError) as err:
        verify_tdx_evidence(read(V5), coll, roots=production_roots(), times=V5_TIMES)
    # The PCK Platform CA is a valid chain but not the TCB signer: the signature fails.
    assert err.value.check == "tdx.tcb_info.signature"


def test_pck_crl_issuer_must_be_the_pck_ca() -> None:
    coll = replace(real_collateral(V5_TCB), pck_crl_issuer_chain=read("tcb_info_issuer_chain.pem"))
    with pytest.raises(VerificationError) as err:
        verify_tdx_evidence(read(V5), coll, roots=production_roots(), times=V5_TIMES)
    assert err.value.check == "tdx.pck_crl.chain"


def test_missing_collateral_is_a_failure_not_a_skip() -> None:
    for item, check in (("root_crl", "tdx.root_crl"), ("pck_crl", "tdx.pck_crl"),
                        ("tcb_info", "tdx.tcb_info"), ("qe_identity", "tdx.qe.identity")):
        coll = replace(real_collateral(V5_TCB), **{item: None})
        with pytest.raises(VerificationError) as err:
            verify_tdx_evidence(read(V5), coll, roots=production_roots(), times=V5_TIMES)
        assert err.value.check == check


@pytest.mark.parametrize("body", [
    b'{"tcbInfo":{},"tcbInfo":{},"signature":"' + b"00" * 64 + b'"}',
    b'{"tcbInfo":{},"signature":"' + b"00" * 64 + b'","extra":1}',
    b'{"tcbInfo":{},"signature":"' + b"00" * 63 + b'"}',
    b'{"tcbInfo":{},"signature":"' + b"00" * 64 + b'"} x',
    b'[1]',
    b'\xff',
])
def test_signed_json_is_strict(body: bytes) -> None:
    with pytest.raises(FormatError):
        split_signed_json(body, "tcbInfo", check="tdx.tcb_info.format")


def test_tcb_info_schema_is_strict() -> None:
    import json

    value = json.loads(read(V5_TCB))["tcbInfo"]
    for mutate in (lambda v: v.update(version=2), lambda v: v.update(unknown=1),
                   lambda v: v.update(issueDate="2026-02-01"),
                   lambda v: v["tcbLevels"][0].update(tcbStatus="Fine"),
                   lambda v: v["tcbLevels"][0]["tcb"]["sgxtcbcomponents"].pop(),
                   lambda v: v.update(fmspc="zz" * 6)):
        broken = json.loads(json.dumps(value))
        mutate(broken)
        with pytest.raises(FormatError):
            parse_tcb_info(broken)


def test_times_override_refuses_unknown_items() -> None:
    from transparency_log.common.errors import TrustConfigError

    with pytest.raises(TrustConfigError):
        V5_TIMES.override(pck_certificate=utc("2026-01-01"))


def test_spr_e4_qe_matches_intels_qe_identity() -> None:
    """MANIFEST: the SPR_E4 QE (ISVSVN 4) matches the TD_QE identity, QE TCB UpToDate."""
    import json

    from attest.formats.tdx_quote import parse_quote
    from verifier.tdx.tcb_status import match_qe_identity

    ident = parse_qe_identity(json.loads(read("sample_qeIdentity_response"))["enclaveIdentity"])
    qe = parse_quote(read(SPR_E4)).signature_data.certification.qe_report_body
    assert qe.isv_svn == 4
    assert match_qe_identity(ident, qe).status == "UpToDate"
