"""The spent-token store on PostgreSQL (several routers, one database): the same conformance
suite as SQLite. Skip/require rules: tests/support/pg_fixtures.py."""

from __future__ import annotations

import pytest

from attest.oblivious.spent_tokens_postgres import PostgresSpentTokens
from tests.support.pg_fixtures import pg_schema, postgres_dsn  # noqa: F401
from tests.support.spent_token_conformance import *  # noqa: F403
from transparency_log.common.errors import TrustConfigError


@pytest.fixture
def spent_factory(postgres_dsn, pg_schema):  # noqa: F811
    return lambda: PostgresSpentTokens(postgres_dsn, schema=pg_schema())


def test_bad_schema_name_is_refused(postgres_dsn) -> None:  # noqa: F811
    with pytest.raises(TrustConfigError):
        PostgresSpentTokens(postgres_dsn, schema="x; DROP TABLE y")
