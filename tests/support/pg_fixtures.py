"""pytest fixtures for the PostgreSQL backend (see tests/support/pg_cluster.py for the rules)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support.pg_cluster import DSN_ENV, REQUIRE_ENV, server_bin, start, stop
from tests.support.system_tools import missing_system_tool


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
        missing_system_tool(f"PostgreSQL is not installed and {DSN_ENV} is not set",
                            REQUIRE_ENV, "install Debian's postgresql package")
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
