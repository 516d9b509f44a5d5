"""Parse once (issue 15): a TDX quote is parsed once per exact bytes and its signed span is
the exact slice of those bytes; neither may let a changed quote pass its signature check."""

from __future__ import annotations

from dataclasses import replace

import pytest

from attest.formats.tdx_quote import parse_quote
from tests.support.tdx_support import SIM_NOW, sim, sim_collateral, sim_root
from transparency_log.common.errors import SignatureError, VerificationError
from verifier.tdx.collateral import VerificationTimes
from verifier.tdx.evidence import verify_tdx_evidence
from verifier.tdx.quote_verify import verify_quote
from verifier.transcript import FAIL, Transcript
from verifier.verified_cache import VendorCaches


def test_parsed_quote_is_reused_and_signs_its_exact_bytes() -> None:
    raw = sim().quote(version=5).to_bytes()
    q = parse_quote(raw)
    assert parse_quote(bytearray(raw)) is q  # the same bytes: the same immutable object
    assert q.signed_bytes == raw[:len(q.signed_bytes)]
    assert q.signed_bytes == replace(q).signed_bytes  # serialized == sliced


def test_a_replaced_body_does_not_inherit_the_parsed_signed_span() -> None:
    s = sim()
    q = parse_quote(s.quote().to_bytes())
    verify_quote(q, roots=[sim_root(s)], at=SIM_NOW)  # authentic as parsed
    forged = replace(q, body=replace(q.body, mrtd=bytes(48)))
    assert forged.signed_bytes != q.signed_bytes
    t = Transcript()
    with pytest.raises(SignatureError) as err:
        verify_quote(forged, roots=[sim_root(s)], at=SIM_NOW, transcript=t)
    assert err.value.check == "tdx.quote.signature"
    assert [step.check for step in t.steps][-1] == "tdx.qe.report_data"


def test_a_root_crl_revoking_the_tcb_signer_is_refused_after_a_warm_run() -> None:
    """The revocation step tells TCB signers apart by fingerprint and remembers which one the
    root issued: on a warm cache a new Root CA CRL naming the TCB signing certificate (and
    nothing else) is still refused by tdx.root_crl.revocation."""
    s = sim()
    roots, quote, cache = [sim_root(s)], s.quote().to_bytes(), VendorCaches()
    times = VerificationTimes.uniform(SIM_NOW)
    verify_tdx_evidence(quote, sim_collateral(s), roots=roots, times=times, cache=cache)
    revoked = sim_collateral(s, root_crl=s.root_crl(revoked=(s.tcb_signing_cert.serial_number,)))
    t = Transcript()
    with pytest.raises(VerificationError) as err:
        verify_tdx_evidence(quote, revoked, roots=roots, times=times, transcript=t,
                            cache=cache)
    assert err.value.check == "tdx.root_crl.revocation"
    assert "TCB Signing" in str(err.value)
    assert [step.check for step in t.steps if step.result == FAIL] == ["tdx.root_crl.revocation"]


def test_tcb_outcome_is_replayed_identically_and_never_hides_a_refusal() -> None:
    """tdx.tcb.* outcomes are remembered per exact inputs: a warm run records the same steps
    as the cold one, and a TCB Info with no level the platform meets, met after the warm
    runs on the same quote and cache, is refused by tdx.tcb.level (only that check)."""
    s = sim()
    roots, quote, cache = [sim_root(s)], s.quote().to_bytes(), VendorCaches()
    times = VerificationTimes.uniform(SIM_NOW)
    runs = [Transcript() for _ in range(2)]
    for t in runs:
        verify_tdx_evidence(quote, sim_collateral(s), roots=roots, times=times, transcript=t,
                            cache=cache)
    tcb = [[(st.check, st.result, st.detail) for st in t.steps if st.check.startswith(
        ("tdx.tcb.", "tdx.qe.identity"))] for t in runs]
    assert tcb[0] == tcb[1] and ("tdx.tcb.level", "pass") in [(c, r) for c, r, _ in tcb[0]]
    higher = tuple(v + 1 for v in s.extensions.tcb_comp_svns)
    unmet = sim_collateral(s, tcb_info=s.tcb_info(levels=[s.tcb_level("UpToDate",
                                                                      sgx=higher)]))
    t = Transcript()
    with pytest.raises(VerificationError) as err:
        verify_tdx_evidence(quote, unmet, roots=roots, times=times, transcript=t, cache=cache)
    assert err.value.check == "tdx.tcb.level"
    assert [step.check for step in t.steps if step.result == FAIL] == ["tdx.tcb.level"]


def test_plain_tcb_level_reads_equal_the_member_by_member_reader(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The plain-dict fast path for TCB levels (issue 15) returns exactly what the strict
    member-by-member reader returns, on every real TCB Info and QE Identity."""
    from attest.formats import intel_pcs
    from tests.support.tdx_support import read

    docs = [(intel_pcs.parse_tcb_info_response, read(n)) for n in
            ("sample_tcbInfo_response", "sample_tcbinfo_response_v5")]
    docs.append((intel_pcs.parse_qe_identity_response, read("sample_qeIdentity_response")))
    plain_reads: list[bool] = []
    levels = intel_pcs._levels

    def counted(o, plain):  # type: ignore[no-untyped-def]
        got = levels(o, plain)
        plain_reads.append(got is not None)
        return got

    monkeypatch.setattr(intel_pcs, "_levels", counted)
    fast = [parse(body) for parse, body in docs]
    assert plain_reads and all(plain_reads)  # the fast path did read every level list
    monkeypatch.setattr(intel_pcs, "_levels", lambda o, plain: None)
    assert [parse(body) for parse, body in docs] == fast
