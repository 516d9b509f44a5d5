"""verifier/checks.py CheckNotRun: made without rendering its message (a waived check raises
one on every verification, issue 15), it reads exactly as the PolicyError of its one failure."""

from __future__ import annotations

import pickle

from transparency_log.common.errors import FetchError, PolicyError, PolicyFailure
from verifier.checks import NOT_RUN, CheckNotRun
from verifier.transcript import Transcript


def test_check_not_run_reads_as_the_policy_error_of_its_failure() -> None:
    fast = CheckNotRun("snp.crl", "no CRL to be had", field="CRL", want="a CRL")
    slow = PolicyError([PolicyFailure("snp.crl", "CRL", NOT_RUN, "a CRL", "no CRL to be had")])
    assert isinstance(fast, PolicyError)
    assert str(fast) == str(slow) and fast.to_dict() == slow.to_dict()
    for name in ("check", "message", "field", "got", "want", "failures", "exit_code", "kind"):
        assert getattr(fast, name) == getattr(slow, name), name
    assert fast.reason == "no CRL to be had" and fast.unwaived is None
    again = pickle.loads(pickle.dumps(CheckNotRun("log.x", "why")))
    assert str(again) == str(CheckNotRun("log.x", "why"))


def test_a_check_not_run_is_waived_only_by_name_and_else_refused_as_itself() -> None:
    def cannot() -> None:
        raise CheckNotRun("x.check", "nothing to check with",
                          unwaived=FetchError("x.fetch", "unreachable"))

    t = Transcript(waive=frozenset({"x.check"}))
    assert t.run("x.check", cannot) is None
    assert [(s.check, s.result) for s in t.steps] == [("x.check", "waived")]
    t = Transcript()
    try:
        t.run("x.check", cannot)
    except FetchError as err:
        assert err.check == "x.fetch"
    else:
        raise AssertionError("not refused")
    assert [(s.check, s.result) for s in t.steps] == [("x.fetch", "fail")]
