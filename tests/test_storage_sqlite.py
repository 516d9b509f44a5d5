"""SQLite storage: the conformance suite, plus what only SQLite promises (WAL, FULL sync)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.storage_conformance import *  # noqa: F403
from transparency_log.common.errors import FormatError
from transparency_log.core import merkle
from transparency_log.log.storage.base import StorageConflictError
from transparency_log.log.storage.sqlite import SqliteStorage


@pytest.fixture
def storage_factory(tmp_path: Path):
    return lambda: SqliteStorage(tmp_path / "log.db")


def test_durability_pragmas(tmp_path: Path) -> None:
    s = SqliteStorage(tmp_path / "log.db")
    try:
        assert s._write.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s._write.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        s.close()


def test_small_max_batch_still_commits_every_caller(tmp_path: Path) -> None:
    s = SqliteStorage(tmp_path / "log.db", max_batch=1)
    try:
        assert s.append([b"a", b"b", b"c"]) == [0, 1, 2]
    finally:
        s.close()


def test_unknown_schema_version_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "log.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(FormatError, match="schema"):
        SqliteStorage(tmp_path / "log.db")


def test_dedup_key_collision_never_returns_another_entrys_index(tmp_path: Path) -> None:
    s = SqliteStorage(tmp_path / "log.db")
    try:
        assert s.append([b"a"]) == [0]
        # simulate a 128-bit prefix collision: b"b"'s dedup key points at entry 0
        key_b = merkle.leaf_hash(b"b")[:16]
        s._write.execute("INSERT INTO dedup (key, idx) VALUES (?, 0)", (key_b,))
        with pytest.raises(StorageConflictError, match="collision"):
            s.append([b"b"])
        with pytest.raises(StorageConflictError):
            s.find_index(merkle.leaf_hash(b"b"))
        assert s.sequenced_size() == 1
    finally:
        s.close()
