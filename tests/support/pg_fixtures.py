"""pytest fixtures for the PostgreSQL backend (see tests/support/pg_cluster.py for the rules)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support.pg_cluster import DSN_ENV, REQUIRE_ENV, server_bin, start, stop


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A DSN: ``$ATTESTLOG_POSTGRES_DSN``, or a temporary cluster when PostgreSQL is
    installed. Skips only when it is not installed, and fails instead when
    ``ATTESTLOG_REQUIRE_POSTGRES=1`` (CI must not skip it)."""
    dsn = os.environ.get(DSN_ENV)
    if dsn:
        yield dsn
        return
    if server_bin() is None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but PostgreSQL is not installed and {DSN_ENV} "
                        "is not set")
        # Only a developer machine without PostgreSQL gets here; CI sets REQUIRE_ENV, so a
        # missing server fails above instead of skipping.
        pytest.skip(f"PostgreSQL is not installed (CI sets {REQUIRE_ENV}=1 and fails here)")
    parent = tempfile.mkdtemp(prefix="attestlog-pg-")
    os.chmod(parent, 0o755)  # the postgres user must reach the cluster directory
    directory = os.path.join(parent, "cluster")
    try:
        yield start(directory)
    finally:
        stop(directory)
        shutil.rmtree(os.path.dirname(directory), ignore_errors=True)


@pytest.fixture()
def pg_schema(postgres_dsn: str) -> Iterator[Callable[[], str]]:
    """A fresh schema name per test; dropped afterwards."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:16]
    yield lambda: name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
