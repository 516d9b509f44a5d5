"""PostgreSQL storage: the same conformance suite as SQLite, plus several writers sharing
one database without ever assigning an index twice."""

from __future__ import annotations

import threading

import pytest

from tests.support.pg_fixtures import pg_schema, postgres_dsn  # noqa: F401
from tests.support.storage_conformance import *  # noqa: F403
from transparency_log.common.errors import TrustConfigError
from transparency_log.log.storage.postgres import PostgresStorage


@pytest.fixture
def storage_factory(postgres_dsn, pg_schema):  # noqa: F811
    return lambda: PostgresStorage(postgres_dsn, schema=pg_schema())


def test_several_writers_never_assign_an_index_twice(postgres_dsn, pg_schema) -> None:  # noqa: F811
    """Three independent writers (own connections, as three `tlog serve` processes would
    have), each appending concurrently, with entries they all share."""
    writers = [PostgresStorage(postgres_dsn, schema=pg_schema()) for _ in range(3)]
    results: dict[bytes, set[int]] = {}
    lock = threading.Lock()

    def work(w: int, store: PostgresStorage) -> None:
        for batch in range(20):
            entries = [b"w%d-%d-%d" % (w, batch, i) for i in range(10)]
            entries.append(b"shared-%d" % batch)  # every writer adds these
            for e, index in zip(entries, store.append(entries), strict=True):
                with lock:
                    results.setdefault(e, set()).add(index)

    threads = [threading.Thread(target=work, args=(w, s)) for w, s in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert all(len(ix) == 1 for ix in results.values()), "an entry got two indexes"
        indexes = sorted(next(iter(ix)) for ix in results.values())
        assert indexes == list(range(len(results))), "indexes are not dense and unique"
        assert writers[0].sequenced_size() == len(results) == 3 * 20 * 10 + 20
    finally:
        for s in writers:
            s.close()


def test_bad_schema_name_is_refused(postgres_dsn) -> None:  # noqa: F811
    with pytest.raises(TrustConfigError):
        PostgresStorage(postgres_dsn, schema="x; DROP TABLE y")
