"""tests/support/system_tools.py: a missing system tool fails the test when its
``ATTESTLOG_REQUIRE_*`` variable is 1 (as .ci/run sets it), and otherwise skips saying what is
missing and how to get it."""

from __future__ import annotations

import pytest

from tests.support.system_tools import missing_system_tool

ENV = "ATTESTLOG_REQUIRE_EXAMPLE_TOOL"


def test_a_required_tool_that_is_missing_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{ENV}=1 but frob is not installed"):
        missing_system_tool("frob is not installed", ENV, "install the frob package")


@pytest.mark.parametrize("value", [None, "0", ""])
def test_a_tool_not_required_skips_with_what_and_how(monkeypatch: pytest.MonkeyPatch,
                                                     value: str | None) -> None:
    if value is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, value)
    with pytest.raises(pytest.skip.Exception) as skipped:
        missing_system_tool("frob is not installed", ENV, "install the frob package")
    reason = str(skipped.value)
    assert "frob is not installed" in reason and "install the frob package" in reason
    assert f"{ENV}=1" in reason and "fails instead" in reason
