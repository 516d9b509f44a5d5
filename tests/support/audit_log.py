"""A release log for the `verifier audit` tests (tests/test_verifier_audit*.py): a SQLite log
published as a tile directory, its checkpoint cosigned by the policy's witness quorum, and the
audit command run in process."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from tests.support.log_fixtures import AT_TS, LOG_SIGNER, ORIGIN, WITNESS_SIGNERS
from transparency_log.core.cosignature import cosignature
from transparency_log.core.note import append_signatures, parse_note
from transparency_log.log.lifecycle import Log
from transparency_log.log.publish import publish_tiles
from transparency_log.log.storage.sqlite import SqliteStorage
from verifier.cli import main

__all__ = ["NOW", "ReleaseLog", "audit", "sha"]

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class ReleaseLog:
    """A SQLite release log published as a tile directory, its checkpoint cosigned by the
    first two fixture witnesses (the policy's quorum)."""

    def __init__(self, tmp: Path, name: str = "log") -> None:
        self.storage = SqliteStorage(tmp / f"{name}.db")
        self.log = Log(self.storage, ORIGIN)
        self.dir = tmp / name

    def add(self, *entries: bytes, witnesses: tuple[int, ...] = (0, 1)) -> None:
        self.log.add(list(entries))
        note = self.log.publish(LOG_SIGNER, NOW)
        publish_tiles(self.log, self.dir)
        text, _ = parse_note(note)
        sigs = [cosignature(text, WITNESS_SIGNERS[i], AT_TS - 60) for i in witnesses]
        (self.dir / "checkpoint").write_bytes(append_signatures(note, sigs) if sigs else note)


def audit(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["audit", *args])
    return result.exit_code, result.stdout, result.stderr
