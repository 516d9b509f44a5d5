"""The router's spent-token store on SQLite: the conformance suite, and what it refuses."""

from __future__ import annotations

import pytest

from attest.oblivious.spent_tokens import SqliteSpentTokens
from tests.support.spent_token_conformance import *  # noqa: F403
from transparency_log.common.errors import InputFileError


@pytest.fixture
def spent_factory(tmp_path):
    return lambda: SqliteSpentTokens(tmp_path / "spent.sqlite")


def test_not_a_database_is_a_one_line_error(tmp_path) -> None:
    bad = tmp_path / "spent.sqlite"
    bad.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(InputFileError) as err:
        SqliteSpentTokens(bad)
    assert err.value.check == "router.spent_tokens"
