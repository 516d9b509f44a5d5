"""The composite warm cache of the TDX collateral steps (verifier/tdx/verified_collateral.py,
issue 15): one entry per exact collateral set, valid inside its windows.

- A hit records the same steps as a cold run at the same (other) instants, ``source=cache``
  aside: the instants' texts are this call's, not the recording's.
- A hit never turns a refusal into an acceptance: each attack is built at run time on a
  cache that holds the entry, and is refused by its own check id (an instant past a window,
  a new CRL that revokes, a stale CRL that was waived once).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.support import tdx_support as tdx
from tests.support.tdx_transcripts import steps
from transparency_log.common.errors import AttestlogError, VerificationError
from verifier.tdx.collateral import VerificationTimes
from verifier.tdx.evidence import verify_tdx_evidence
from verifier.tdx.roots import production_roots
from verifier.transcript import Transcript
from verifier.verified_cache import CACHE_SOURCE, VendorCaches

REVOCATION = {"tdx.root_crl.revocation", "tdx.pck_crl.revocation"}


def _cached(t: Transcript) -> set[str]:
    return {s.check for s in t.steps if s.inputs.get("source") == CACHE_SOURCE}


def _v5(times: VerificationTimes, cache: VendorCaches | None,
        waive: frozenset[str] = frozenset()) -> Transcript:
    t = Transcript(waive=waive)
    verify_tdx_evidence(tdx.read(tdx.V5), tdx.real_collateral("sample_tcbinfo_response_v5"),
                        roots=production_roots(), times=times, transcript=t, cache=cache)
    return t


def test_a_hit_records_the_cold_steps_at_this_calls_instants() -> None:
    cache = VendorCaches()
    _v5(tdx.V5_TIMES, cache)
    assert len(cache.collateral) == 1
    later = tdx.V5_TIMES.override(**{name: getattr(tdx.V5_TIMES, name) + timedelta(hours=h)
                                 for h, name in enumerate(("root_crl", "pck_crl", "tcb_info",
                                                           "qe_identity",
                                                           "tcb_signing_chain"), 1)})
    hit = _v5(later, cache)
    assert REVOCATION <= _cached(hit)  # from the composite entry, not the separate caches
    assert steps(hit) == steps(_v5(later, None))
    assert "tdx.quote.signature" not in _cached(hit)
    assert not any(c.endswith(".validity") for c in _cached(hit))  # re-checked each call


@pytest.mark.parametrize(("item", "check"), [
    ("root_crl", "tdx.root_crl.validity"), ("pck_crl", "tdx.pck_crl.validity"),
    ("tcb_info", "tdx.tcb_info.validity"), ("qe_identity", "tdx.qe.identity.validity"),
    ("tcb_signing_chain", "tdx.tcb_info.chain")])
def test_an_instant_past_its_window_reverifies_and_refuses(item: str, check: str) -> None:
    cache = VendorCaches()
    _v5(tdx.V5_TIMES, cache)
    _v5(tdx.V5_TIMES, cache)
    assert len(cache.collateral) == 1
    late = tdx.V5_TIMES.override(**{item: getattr(tdx.V5_TIMES, item)
                                    + timedelta(days=3 * 365)})
    with pytest.raises(AttestlogError) as e:
        _v5(late, cache)
    assert e.value.check == check


def test_a_new_crl_that_revokes_is_refused_after_the_entry_is_stored() -> None:
    s = tdx.sim()
    roots, quote, cache = [tdx.sim_root(s)], s.quote().to_bytes(), VendorCaches()
    times, good = VerificationTimes.uniform(tdx.SIM_NOW), tdx.sim_collateral(s)
    for _ in range(2):
        verify_tdx_evidence(quote, good, roots=roots, times=times, cache=cache)
    assert len(cache.collateral) == 1
    for role, revoked, check in (
            ("pck_crl", s.pck_crl(revoked=(s.pck_cert.serial_number,)), "tdx.pck_crl.revocation"),
            ("root_crl", s.root_crl(revoked=(s.pck_ca_cert.serial_number,)),
             "tdx.root_crl.revocation")):
        t = Transcript()
        with pytest.raises(VerificationError) as e:
            verify_tdx_evidence(quote, replace(good, **{role: revoked}), roots=roots,
                                times=times, transcript=t, cache=cache)
        assert e.value.check == check
        assert [x.check for x in t.steps if x.result == "fail"] == [check]
    # the good collateral still hits its entry
    t = Transcript()
    verify_tdx_evidence(quote, good, roots=roots, times=times, transcript=t, cache=cache)
    assert REVOCATION <= _cached(t) and t.verdict == "accepted"


def test_a_waived_stale_crl_is_never_stored_and_is_refused_unwaived() -> None:
    s = tdx.sim()
    roots, quote, cache = [tdx.sim_root(s)], s.quote().to_bytes(), VendorCaches()
    col = tdx.sim_collateral(s)
    now = tdx.SIM_NOW
    stale = VerificationTimes.uniform(now).override(pck_crl=now + timedelta(days=60))
    for _ in range(2):
        t = Transcript(waive=frozenset({"tdx.pck_crl.validity"}))
        verify_tdx_evidence(quote, col, roots=roots, times=stale, transcript=t, cache=cache)
        assert {x.check: x.result for x in t.steps}["tdx.pck_crl.validity"] == "waived"
    assert len(cache.collateral) == 0
    with pytest.raises(VerificationError) as e:
        verify_tdx_evidence(quote, col, roots=roots, times=stale, cache=cache)
    assert e.value.check == "tdx.pck_crl.validity"
