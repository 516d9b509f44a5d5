"""The spent-token store on PostgreSQL, shared by several ``attest router`` processes.

Same contract as :mod:`attest.oblivious.spent_tokens` (and the same conformance suite):
``spend`` is one ``INSERT ... ON CONFLICT DO NOTHING`` on the primary key, committed with
``synchronous_commit = on`` before it returns, so of two routers presenting one token at
the same moment exactly one inserts the row. The table lives in its own schema
(``schema=``, default ``spent_tokens``), created on first use under an advisory lock.
"""

from __future__ import annotations

import re
import threading

import psycopg

from transparency_log.common.errors import TrustConfigError

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresSpentTokens:
    def __init__(self, dsn: str, *, schema: str = "spent_tokens",
                 connect_timeout: int = 10) -> None:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise TrustConfigError("router.spent_tokens", "bad schema name", field="schema",
                                   got=schema, want="[a-z_][a-z0-9_]*")
        self.schema = schema
        self._lock = threading.Lock()
        self._db = psycopg.connect(dsn, autocommit=True, connect_timeout=connect_timeout)
        self._db.execute("SET synchronous_commit = on")
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                             ("attestlog-spent:" + schema,))
            self._db.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            self._db.execute(f"CREATE TABLE IF NOT EXISTS {schema}.spent ("
                             "key BYTEA PRIMARY KEY, token_key_id BYTEA NOT NULL)")

    def spend(self, key: bytes, token_key_id: bytes) -> bool:
        with self._lock:
            sql = (f"INSERT INTO {self.schema}.spent (key, token_key_id) "  # noqa: S608
                   "VALUES (%s, %s) ON CONFLICT DO NOTHING")
            cur = self._db.execute(sql, (key, token_key_id))
            return cur.rowcount == 1

    def forget_key(self, token_key_id: bytes) -> int:
        with self._lock:
            sql = f"DELETE FROM {self.schema}.spent WHERE token_key_id = %s"  # noqa: S608
            return self._db.execute(sql, (token_key_id,)).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
