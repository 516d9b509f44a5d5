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


def test_two_routers_sharing_postgres_refuse_a_token_spent_at_the_other(
        postgres_dsn, pg_schema) -> None:  # noqa: F811
    from tests.support import private_servers as ps
    from transparency_log.common.asgi_serving import serve_in_thread

    schema = pg_schema()
    seen = ps.Recorded()
    stores = [PostgresSpentTokens(postgres_dsn, schema=schema) for _ in range(2)]
    try:
        with serve_in_thread(ps.echo_gateway(seen)) as gw, \
                serve_in_thread(ps.issuer_app(ps.issuer_key())) as iss:
            gateway = ps.url(gw) + "/.well-known/ohttp-gateway"
            token = ps.fetch_token(ps.url(iss), ps.challenge_for())
            with serve_in_thread(ps.router_app(gateway, ps.issuer_key(), stores[0])) as a, \
                    serve_in_thread(ps.router_app(gateway, ps.issuer_key(), stores[1])) as b:
                assert ps.post_private(ps.url(a), b"x", token).status_code == 200
                refused = ps.post_private(ps.url(b), b"y", token)
        assert refused.status_code == 401 and refused.text.startswith("router.token.spent:")
        assert seen.bodies == [b"x"]
    finally:
        for s in stores:
            s.close()
