"""The router's spent-token store: each token is accepted once, across restarts and, on
PostgreSQL (:mod:`attest.oblivious.spent_tokens_postgres`), across routers.

What is stored is :func:`spend_key` of a token, SHA-256 of its AuthenticatorInput
(token_type ‖ nonce ‖ challenge_digest ‖ token_key_id, RFC 9578 §6.3), and the token key id
(so the rows of a retired issuer key can be deleted with it). Not the authenticator: an
RSASSA-PSS signature is randomized by its salt, so whoever holds one token could ask for a
second signature over the same nonce; keyed on the signed input, both are one token.
Nothing else is stored: no time, no address, no node.

``spend`` is atomic: of concurrent calls with one key (in one process or, on PostgreSQL,
in several) exactly one returns True. It returns only after the row is durable (SQLite WAL
with ``synchronous=FULL``; PostgreSQL ``synchronous_commit = on``), so a router that
restarts refuses what it accepted before. Both backends pass one conformance suite
(tests/support/spent_token_conformance.py).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from typing import Protocol

from attest.formats.privacy_pass import Token
from transparency_log.common.errors import InputFileError

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS spent (
    key BLOB PRIMARY KEY, token_key_id BLOB NOT NULL) WITHOUT ROWID;
"""


def spend_key(token: Token) -> bytes:
    """SHA-256 of the token's AuthenticatorInput: one key per issued nonce (module doc)."""
    return hashlib.sha256(token.authenticator_input).digest()


class SpentTokenStore(Protocol):
    def spend(self, key: bytes, token_key_id: bytes) -> bool:
        """True if ``key`` was not spent and now is (durably); False if it was spent."""
        ...

    def forget_key(self, token_key_id: bytes) -> int:
        """Delete the rows of a retired issuer key; returns how many."""
        ...

    def close(self) -> None: ...


class SqliteSpentTokens:
    """One SQLite file (WAL, ``synchronous=FULL``): the store of a single router."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=30000")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise InputFileError("router.spent_tokens", "unknown spent-token schema",
                                     field="user_version", got=version, want=SCHEMA_VERSION)
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as err:
            raise InputFileError("router.spent_tokens", f"cannot open the spent-token "
                                 f"database: {err}", field="path", got=self.path) from None

    def spend(self, key: bytes, token_key_id: bytes) -> bool:
        with self._lock:
            cur = self._db.execute("INSERT OR IGNORE INTO spent (key, token_key_id) "
                                   "VALUES (?, ?)", (key, token_key_id))
            return cur.rowcount == 1

    def forget_key(self, token_key_id: bytes) -> int:
        with self._lock:
            return self._db.execute("DELETE FROM spent WHERE token_key_id = ?",
                                    (token_key_id,)).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
