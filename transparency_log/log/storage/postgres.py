"""PostgreSQL storage: the sequencer for several ``tlog serve`` writers sharing one database.

Implemented on its own (Tessera's rule: backends share the contract, not code) against the
contract in :mod:`transparency_log.log.storage.base`, and run through the same conformance suite
as SQLite (tests/support/storage_conformance.py).

Index assignment across writers: every sequencing transaction first locks the single row of
``seq`` (``SELECT ... FOR UPDATE``), reads the next index, looks up duplicates by leaf hash,
inserts the new entries with consecutive indexes and advances ``seq``, then commits. The row
lock serialises sequencers in *all* processes, so no index is ever assigned twice and a
duplicate cannot slip in between the lookup and the insert; an aborted transaction rolls the
counter back with its entries, so indexes stay dense. ``entries.leaf_hash`` is UNIQUE and
``entries.idx`` the primary key as a second line of defence.

Durability: an append returns only after ``COMMIT`` succeeded with PostgreSQL's default
``synchronous_commit = on`` (the commit record is flushed to the WAL on disk). The backend
sets it explicitly on every connection.

Group commit: callers in one process hand their batches to one sequencer thread, which takes
everything queued (up to ``max_batch`` entries) into one transaction, so concurrent HTTP adds
cost one WAL flush per batch, not one per entry.

Integration is compare-and-swap on the ``tree_state`` row (locked ``FOR UPDATE``); the
checkpoint only moves forward (``ON CONFLICT ... WHERE`` the stored size is not larger).

Several logs can share a database: each lives in its own schema (``schema=``, default
``tlog``), created on first use under an advisory lock.

The writer lock (only its holder publishes checkpoints) is a session-level advisory lock
(``pg_try_advisory_lock``) on a connection of its own, keyed by the schema: PostgreSQL drops
it when that session ends, so a crashed publisher's lock is freed for the next one.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import psycopg

from transparency_log.common.errors import TrustConfigError
from transparency_log.core import merkle
from transparency_log.log.storage.base import (
    StorageConflictError,
    TreeState,
    assign_indexes,
    validate_entries,
)

SCHEMA_VERSION = "1"
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

_DDL = """
CREATE TABLE IF NOT EXISTS {s}.entries (
    idx BIGINT PRIMARY KEY, leaf_hash BYTEA NOT NULL UNIQUE, data BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.seq (
    id INT PRIMARY KEY CHECK (id = 0), next BIGINT NOT NULL);
INSERT INTO {s}.seq (id, next) VALUES (0, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS {s}.tiles (
    level INT NOT NULL, idx BIGINT NOT NULL, hashes BYTEA NOT NULL, PRIMARY KEY (level, idx));
CREATE TABLE IF NOT EXISTS {s}.tree_state (
    id INT PRIMARY KEY CHECK (id = 0), size BIGINT NOT NULL, root BYTEA NOT NULL,
    border BYTEA NOT NULL);
INSERT INTO {s}.tree_state (id, size, root, border) VALUES (0, 0, %(empty)s, '')
    ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS {s}.checkpoint (
    id INT PRIMARY KEY CHECK (id = 0), size BIGINT NOT NULL, note BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO {s}.meta (name, value) VALUES ('schema_version', %(version)s)
    ON CONFLICT DO NOTHING;
"""


@dataclass
class _Job:
    entries: list[bytes]
    hashes: list[bytes]
    done: threading.Event = field(default_factory=threading.Event)
    indexes: list[int] | None = None
    error: BaseException | None = None


class PostgresStorage:
    """:class:`~transparency_log.log.storage.base.LogStorage` on PostgreSQL (see module doc)."""

    def __init__(self, dsn: str, *, schema: str = "tlog", max_batch: int = 10_000,
                 connect_timeout: int = 10) -> None:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise TrustConfigError("storage.postgres", "bad schema name", field="schema",
                                   got=schema, want="[a-z_][a-z0-9_]*")
        self.dsn = dsn
        self.schema = schema
        self.max_batch = max_batch
        self.connect_timeout = connect_timeout
        self._read = self._connect()
        self._read_lock = threading.Lock()
        self._admin = self._connect()
        self._admin_lock = threading.Lock()
        self._create_schema()
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._sequencer = threading.Thread(target=self._sequence_loop, daemon=True,
                                           name=f"pg-sequencer-{schema}")
        self._sequencer.start()
        self._closed = False
        self._lock_conn: psycopg.Connection | None = None

    # -- plumbing ----------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=self.connect_timeout)
        conn.execute("SET synchronous_commit = on")
        return conn

    def _t(self, table: str) -> str:
        return f"{self.schema}.{table}"

    def _create_schema(self) -> None:
        with self._admin_lock, self._admin.transaction():
            self._admin.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                                ("attestlog:" + self.schema,))
            self._admin.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            for stmt in _DDL.format(s=self.schema).split(";"):
                if stmt.strip():
                    self._admin.execute(stmt, {"empty": merkle.EMPTY_ROOT,  # type: ignore[arg-type]
                                               "version": SCHEMA_VERSION}
                                        if "%(" in stmt else None)
            row = self._admin.execute(f"SELECT value FROM {self._t('meta')} "  # noqa: S608
                                      "WHERE name = 'schema_version'").fetchone()
            if row is None or row[0] != SCHEMA_VERSION:
                raise TrustConfigError("storage.postgres", "unknown database schema",
                                       field="schema_version", got=row and row[0],
                                       want=SCHEMA_VERSION)

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple]:
        with self._read_lock:
            return self._read.execute(sql, args).fetchall()  # type: ignore[arg-type]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        self._sequencer.join(30)
        with self._admin_lock, self._read_lock:
            self._admin.close()
            self._read.close()
        if self._lock_conn is not None:
            # Release the lock before the session ends: a closed connection's backend exits
            # asynchronously, so a writer started right after could still find it held.
            with contextlib.suppress(psycopg.Error):
                self._lock_conn.execute("SELECT pg_advisory_unlock_all()")
            self._lock_conn.close()  # ends the session: the advisory lock is released

    # -- the writer lock: a session advisory lock --------------------------------------------
    def try_writer_lock(self) -> bool:
        if self.holds_writer_lock():
            return True
        if self._lock_conn is not None:
            self._lock_conn.close()
        conn = self._connect()
        row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))",
                           ("attestlog-writer:" + self.schema,)).fetchone()
        if not (row and row[0]):
            conn.close()
            self._lock_conn = None
            return False
        self._lock_conn = conn
        return True

    def holds_writer_lock(self) -> bool:
        conn = self._lock_conn
        if conn is None or conn.closed:
            return False
        try:
            row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                               "AND pid = pg_backend_pid() AND granted").fetchone()
        except psycopg.Error:
            return False
        return bool(row and row[0])

    # -- sequencing --------------------------------------------------------------------------
    def append(self, entries: Sequence[bytes]) -> list[int]:
        entries = list(entries)
        validate_entries(entries)
        if not entries:
            return []
        if self._closed:
            raise RuntimeError("storage is closed")
        job = _Job(entries, [merkle.leaf_hash(e) for e in entries])
        self._jobs.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.indexes is not None
        return job.indexes

    def _sequence_loop(self) -> None:
        conn: psycopg.Connection | None = None
        while True:
            job = self._jobs.get()
            if job is None:
                break
            batch, total = [job], len(job.entries)
            stop = False
            while total < self.max_batch:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
                total += len(more.entries)
            try:
                if conn is None or conn.closed:
                    conn = self._connect()
                self._sequence(conn, batch)
            except BaseException as err:
                for j in batch:
                    j.indexes, j.error = None, err
                if conn is not None and conn.broken:
                    conn = None
            for j in batch:
                j.done.set()
            if stop:
                break
        if conn is not None:
            conn.close()

    def _sequence(self, conn: psycopg.Connection, batch: list[_Job]) -> None:
        with conn.transaction():
            next_index = conn.execute(f"SELECT next FROM {self._t('seq')} "  # noqa: S608
                                      "WHERE id = 0 FOR UPDATE").fetchone()[0]  # type: ignore[index]
            wanted = list({h: None for j in batch for h in j.hashes})
            known: dict[bytes, int] = dict(conn.execute(  # type: ignore[arg-type]
                f"SELECT leaf_hash, idx FROM {self._t('entries')} "  # noqa: S608
                "WHERE leaf_hash = ANY(%s)", (wanted,)).fetchall())
            results, rows, next_index = assign_indexes(
                [(j.hashes, j.entries) for j in batch], known, next_index)
            if rows:
                with conn.cursor() as cur, cur.copy(
                        f"COPY {self._t('entries')} (idx, leaf_hash, data) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                conn.execute(f"UPDATE {self._t('seq')} SET next = %s WHERE id = 0",  # noqa: S608
                             (next_index,))
        for j, out in zip(batch, results, strict=True):
            j.indexes = out

    def sequenced_size(self) -> int:
        return self._query(f"SELECT next FROM {self._t('seq')} WHERE id = 0")[0][0]  # noqa: S608

    def find_index(self, leaf_hash: bytes) -> int | None:
        rows = self._query(f"SELECT idx FROM {self._t('entries')} "  # noqa: S608
                           "WHERE leaf_hash = %s", (leaf_hash,))
        return rows[0][0] if rows else None

    def _range(self, column: str, start: int, end: int) -> list[bytes]:
        if not 0 <= start <= end:
            raise ValueError(f"bad entry range [{start}, {end})")
        if start == end:
            return []
        rows = self._query(f"SELECT {column} FROM {self._t('entries')} "  # noqa: S608
                           "WHERE idx >= %s AND idx < %s ORDER BY idx", (start, end))
        if len(rows) != end - start:
            raise ValueError(f"entries [{start}, {end}) are not all sequenced")
        return [bytes(r[0]) for r in rows]

    def read_entries(self, start: int, end: int) -> list[bytes]:
        return self._range("data", start, end)

    def read_leaf_hashes(self, start: int, end: int) -> list[bytes]:
        return self._range("leaf_hash", start, end)

    # -- integration -------------------------------------------------------------------------
    def tree_state(self) -> TreeState:
        size, root, border = self._query(
            f"SELECT size, root, border FROM {self._t('tree_state')} WHERE id = 0")[0]  # noqa: S608
        return TreeState.decode(size, bytes(root), bytes(border))

    def read_tile(self, level: int, index: int) -> bytes | None:
        rows = self._query(f"SELECT hashes FROM {self._t('tiles')} "  # noqa: S608
                           "WHERE level = %s AND idx = %s", (level, index))
        return bytes(rows[0][0]) if rows else None

    def integrate(self, old_size: int, state: TreeState,
                  tiles: Mapping[tuple[int, int], bytes]) -> None:
        with self._admin_lock, self._admin.transaction():
            stored = self._admin.execute(f"SELECT size FROM {self._t('tree_state')} "  # noqa: S608
                                         "WHERE id = 0 FOR UPDATE").fetchone()[0]  # type: ignore[index]
            if stored != old_size:
                raise StorageConflictError("storage.integrate", "tree state moved",
                                           field="size", got=stored, want=old_size)
            with self._admin.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {self._t('tiles')} (level, idx, hashes) "  # noqa: S608
                    "VALUES (%s, %s, %s) ON CONFLICT (level, idx) "
                    "DO UPDATE SET hashes = excluded.hashes",
                    [(level, index, data) for (level, index), data in tiles.items()])
            self._admin.execute(f"UPDATE {self._t('tree_state')} SET size = %s, "  # noqa: S608
                                "root = %s, border = %s WHERE id = 0",
                                (state.size, state.root, state.encode_border()))

    # -- publishing --------------------------------------------------------------------------
    def latest_checkpoint(self) -> tuple[int, bytes] | None:
        rows = self._query(f"SELECT size, note FROM {self._t('checkpoint')} "  # noqa: S608
                           "WHERE id = 0")
        return (rows[0][0], bytes(rows[0][1])) if rows else None

    def write_checkpoint(self, size: int, note: bytes) -> None:
        with self._admin_lock:
            cur = self._admin.execute(
                f"INSERT INTO {self._t('checkpoint')} AS c (id, size, note) "  # noqa: S608
                "VALUES (0, %s, %s) ON CONFLICT (id) DO UPDATE SET size = excluded.size, "
                "note = excluded.note WHERE c.size <= excluded.size", (size, note))
            if cur.rowcount != 1:
                stored = self._admin.execute(f"SELECT size FROM {self._t('checkpoint')} "  # noqa: S608
                                             "WHERE id = 0").fetchone()
                raise StorageConflictError("storage.checkpoint", "checkpoint would go back",
                                           field="size", got=size,
                                           want=f">= {stored[0] if stored else 0}")

    # -- configuration -----------------------------------------------------------------------
    def get_meta(self, name: str) -> str | None:
        rows = self._query(f"SELECT value FROM {self._t('meta')} WHERE name = %s",  # noqa: S608
                           (name,))
        return rows[0][0] if rows else None

    def set_meta(self, name: str, value: str) -> None:
        with self._admin_lock:
            self._admin.execute(f"INSERT INTO {self._t('meta')} (name, value) "  # noqa: S608
                                "VALUES (%s, %s) ON CONFLICT (name) DO UPDATE "
                                "SET value = excluded.value", (name, value))
