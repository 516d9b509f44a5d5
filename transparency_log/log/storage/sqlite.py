"""SQLite storage, the embedded default: one file, WAL journal, ``synchronous=FULL``.

An append is acknowledged only after its transaction has committed, and with WAL +
``synchronous=FULL`` a commit is fsynced before it returns (https://sqlite.org/pragma.html
#pragma_synchronous), so an acknowledged entry survives a crash or power loss.

Group commit: callers from any thread queue their batches; whichever caller finds no commit
in progress becomes the *leader*, takes what is queued (up to ``max_batch`` entries), commits
them in one transaction (one fsync) while the others wait; each caller returns once the
transaction holding its entries is durable. Throughput therefore grows with the number of
concurrent callers and with batch size, and no background thread is needed.

Memory is bounded: entries, tiles and the compact range live in the file; nothing is cached
per entry. Schema (``PRAGMA user_version = 1``)::

    entries(idx INTEGER PRIMARY KEY, leaf_hash BLOB, data BLOB)
    dedup(key BLOB PRIMARY KEY, idx) WITHOUT ROWID            -- key: leaf_hash[:16]
    tiles(level, idx, hashes BLOB, PRIMARY KEY(level, idx))   -- widest width so far
    tree_state(id = 0, size, root BLOB, border BLOB)          -- compact range, concatenated
    checkpoint(id = 0, size, note BLOB)
    meta(name TEXT PRIMARY KEY, value TEXT)
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from transparency_log.common.errors import FormatError, InputFileError
from transparency_log.common.state_files import HeldLock, try_hold
from transparency_log.core import merkle
from transparency_log.log.storage.base import (
    StorageConflictError,
    TreeState,
    assign_indexes,
    validate_entries,
)

SCHEMA_VERSION = 1
_LOOKUP_CHUNK = 500  # host parameters per IN (...) query (SQLite's default limit is 32766)
DEDUP_KEY_SIZE = 16
"""The de-duplication index is keyed by the first 16 bytes of the leaf hash: half the index
of full hashes, so a batch dirties fewer random index pages (the cost that grows with the
log). A key hit is confirmed against the full stored leaf hash, so a prefix collision can
never return another entry's index."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS dedup (
    key BLOB PRIMARY KEY, idx INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tiles (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hashes BLOB NOT NULL,
    PRIMARY KEY (level, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tree_state (
    id INTEGER PRIMARY KEY CHECK (id = 0), size INTEGER NOT NULL, root BLOB NOT NULL,
    border BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 0), size INTEGER NOT NULL, note BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class _Pending:
    """One caller's batch waiting for a group commit."""

    entries: list[bytes]
    hashes: list[bytes]
    indexes: list[int] | None = None
    error: BaseException | None = None
    done: bool = field(default=False)


def _connect(path: str, opened: list[sqlite3.Connection]) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    opened.append(conn)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already done so: after SQLITE_FULL
    or an I/O error it may have (https://sqlite.org/lang_transaction.html, "Response To
    Errors Within A Transaction"), and a second ROLLBACK would hide the real error."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _in_chunks(conn: sqlite3.Connection, sql: str, values: Sequence[object]) -> list[tuple]:
    """Run ``sql`` (with one ``{}`` for the IN list) over ``values`` in bounded chunks."""
    out: list[tuple] = []
    for i in range(0, len(values), _LOOKUP_CHUNK):
        chunk = values[i:i + _LOOKUP_CHUNK]
        out += conn.execute(sql.format(",".join("?" * len(chunk))), chunk).fetchall()
    return out


def _lookup(conn: sqlite3.Connection, hashes: Sequence[bytes]) -> dict[bytes, int]:
    """``{leaf hash: index}`` for those of ``hashes`` already stored."""
    by_key = {h[:DEDUP_KEY_SIZE]: h for h in hashes}
    hits = _in_chunks(conn, "SELECT key, idx FROM dedup WHERE key IN ({})", list(by_key))
    if not hits:
        return {}
    stored = dict(_in_chunks(conn, "SELECT idx, leaf_hash FROM entries WHERE idx IN ({})",
                             [idx for _, idx in hits]))
    found: dict[bytes, int] = {}
    for key, idx in hits:
        h = by_key[key]
        if stored.get(idx) != h:
            raise StorageConflictError("storage.dedup", "leaf hash prefix collision",
                                       field="leaf hash", got=h, want=stored.get(idx))
        found[h] = idx
    return found


class SqliteStorage:
    """:class:`~transparency_log.log.storage.base.LogStorage` on one SQLite file."""

    def __init__(self, path: str | os.PathLike[str], *, max_batch: int = 100_000) -> None:
        self.path = os.fspath(path)
        self.max_batch = max_batch
        opened: list[sqlite3.Connection] = []
        try:
            self._write = _connect(self.path, opened)
            self._read = _connect(self.path, opened)
            version = self._read.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as err:
            for conn in opened:
                conn.close()
            if getattr(err, "sqlite_errorname", "") != "SQLITE_NOTADB":
                raise  # disk full, I/O error: the caller's one-line report
            raise InputFileError("storage.sqlite", "not a SQLite database", field="db",
                              got=self.path) from None
        self._write_lock = threading.Lock()  # one transaction at a time on _write
        self._read_lock = threading.Lock()
        self._queue_lock = threading.Condition()
        self._queue: list[_Pending] = []
        self._leader = False
        self._writer_lock: HeldLock | None = None
        if version != SCHEMA_VERSION:  # a database at the current schema is opened read-only
            self._create_schema()  # until written to: reads go on when the disk is full

    def _create_schema(self) -> None:
        with self._write_lock:
            self._write.execute("BEGIN IMMEDIATE")
            try:
                version = self._write.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, SCHEMA_VERSION):
                    raise FormatError("storage.sqlite", "unknown database schema",
                                      field="user_version", got=version, want=SCHEMA_VERSION)
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        self._write.execute(stmt)
                self._write.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._write.execute("COMMIT")
            except BaseException:
                _rollback(self._write)
                raise

    # -- plumbing ----------------------------------------------------------------------------
    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple]:
        with self._read_lock:
            return self._read.execute(sql, args).fetchall()

    def _transaction(self, work) -> None:  # type: ignore[no-untyped-def]
        with self._write_lock:
            self._write.execute("BEGIN IMMEDIATE")
            try:
                work(self._write)
            except BaseException:
                _rollback(self._write)
                raise
            self._write.execute("COMMIT")

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            self._write.close()
            self._read.close()
        if self._writer_lock is not None:
            self._writer_lock.release()

    # -- the writer lock: flock(2) on the database file --------------------------------------
    def try_writer_lock(self) -> bool:
        if self._writer_lock is None:
            self._writer_lock = try_hold(self.path)
        return self._writer_lock is not None

    def holds_writer_lock(self) -> bool:
        return self._writer_lock is not None and self._writer_lock.held

    # -- sequencing --------------------------------------------------------------------------
    def append(self, entries: Sequence[bytes]) -> list[int]:
        entries = list(entries)
        validate_entries(entries)
        if not entries:
            return []
        sha = merkle.leaf_hash
        mine = _Pending(entries, [sha(e) for e in entries])
        with self._queue_lock:
            self._queue.append(mine)
        while True:
            with self._queue_lock:
                while not mine.done and self._leader:
                    self._queue_lock.wait()
                if mine.done:
                    break
                self._leader = True
                batch, total = [], 0
                while self._queue and (not batch or total + len(self._queue[0].entries)
                                       <= self.max_batch):
                    total += len(self._queue[0].entries)
                    batch.append(self._queue.pop(0))
            try:
                self._commit_group(batch)
            finally:
                with self._queue_lock:
                    self._leader = False
                    self._queue_lock.notify_all()
        return self._result(mine)

    @staticmethod
    def _result(p: _Pending) -> list[int]:
        if p.error is not None:
            raise p.error
        assert p.indexes is not None
        return p.indexes

    def _commit_group(self, batch: list[_Pending]) -> None:
        """Sequence every queued batch in one durable transaction."""
        try:
            self._transaction(lambda conn: self._sequence(conn, batch))
        except BaseException as err:  # every waiter learns of the failure
            for p in batch:
                p.indexes, p.error = None, err
        for p in batch:
            p.done = True

    def _sequence(self, conn: sqlite3.Connection, batch: list[_Pending]) -> None:
        next_index = conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM entries").fetchone()[0]
        known = _lookup(conn, list({h: None for p in batch for h in p.hashes}))
        results, rows, _ = assign_indexes([(p.hashes, p.entries) for p in batch], known,
                                          next_index)
        for p, out in zip(batch, results, strict=True):
            p.indexes = out
        conn.executemany("INSERT INTO entries (idx, leaf_hash, data) VALUES (?, ?, ?)", rows)
        conn.executemany("INSERT INTO dedup (key, idx) VALUES (?, ?)",
                         [(h[:DEDUP_KEY_SIZE], index) for index, h, _ in rows])

    def sequenced_size(self) -> int:
        return self._query("SELECT COALESCE(MAX(idx) + 1, 0) FROM entries")[0][0]

    def find_index(self, leaf_hash: bytes) -> int | None:
        with self._read_lock:
            return _lookup(self._read, [leaf_hash]).get(leaf_hash)

    def _range(self, column: str, start: int, end: int) -> list[bytes]:
        if not 0 <= start <= end:
            raise ValueError(f"bad entry range [{start}, {end})")
        rows = self._query(
            f"SELECT {column} FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx",  # noqa: S608
            (start, end))
        if len(rows) != end - start:
            raise ValueError(f"entries [{start}, {end}) are not all sequenced")
        return [r[0] for r in rows]

    def read_entries(self, start: int, end: int) -> list[bytes]:
        return self._range("data", start, end)

    def read_leaf_hashes(self, start: int, end: int) -> list[bytes]:
        return self._range("leaf_hash", start, end)

    # -- integration -------------------------------------------------------------------------
    def tree_state(self) -> TreeState:
        rows = self._query("SELECT size, root, border FROM tree_state WHERE id = 0")
        if not rows:
            return TreeState.empty()
        return TreeState.decode(*rows[0])

    def read_tile(self, level: int, index: int) -> bytes | None:
        rows = self._query("SELECT hashes FROM tiles WHERE level = ? AND idx = ?",
                           (level, index))
        return rows[0][0] if rows else None

    def integrate(self, old_size: int, state: TreeState,
                  tiles: Mapping[tuple[int, int], bytes]) -> None:
        def work(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT size FROM tree_state WHERE id = 0").fetchone()
            stored = row[0] if row else 0
            if stored != old_size:
                raise StorageConflictError("storage.integrate", "tree state moved",
                                           field="size", got=stored, want=old_size)
            conn.executemany(
                "INSERT OR REPLACE INTO tiles (level, idx, hashes) VALUES (?, ?, ?)",
                [(level, index, data) for (level, index), data in tiles.items()])
            conn.execute("INSERT OR REPLACE INTO tree_state (id, size, root, border) "
                         "VALUES (0, ?, ?, ?)", (state.size, state.root, state.encode_border()))
        self._transaction(work)

    # -- publishing --------------------------------------------------------------------------
    def latest_checkpoint(self) -> tuple[int, bytes] | None:
        rows = self._query("SELECT size, note FROM checkpoint WHERE id = 0")
        return (rows[0][0], rows[0][1]) if rows else None

    def write_checkpoint(self, size: int, note: bytes) -> None:
        def work(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT size FROM checkpoint WHERE id = 0").fetchone()
            if row and row[0] > size:
                raise StorageConflictError("storage.checkpoint", "checkpoint would go back",
                                           field="size", got=size, want=f">= {row[0]}")
            conn.execute("INSERT OR REPLACE INTO checkpoint (id, size, note) VALUES (0, ?, ?)",
                         (size, note))
        self._transaction(work)

    # -- configuration -----------------------------------------------------------------------
    def get_meta(self, name: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    def set_meta(self, name: str, value: str) -> None:
        self._transaction(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value)))
