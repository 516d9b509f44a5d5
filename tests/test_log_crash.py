"""A log killed (SIGKILL) while appending and integrating keeps every acknowledged entry."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from transparency_log.core import merkle
from transparency_log.log.lifecycle import Log
from transparency_log.log.storage.sqlite import SqliteStorage

CHILD = """
import sys
from transparency_log.log.lifecycle import Log
from transparency_log.log.storage.sqlite import SqliteStorage
log = Log(SqliteStorage(sys.argv[1]), "crash.example/log", chunk=37)
i = 0
while True:
    batch = [f"entry {j}".encode() for j in range(i, i + 50)]
    indexes = log.add(batch)
    print("ack", indexes[0], indexes[-1], flush=True)
    log.integrate()
    i += 50
"""


def test_kill_during_appends_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE,
                             text=True)
    acked = -1
    try:
        assert child.stdout is not None
        for line in child.stdout:
            acked = int(line.split()[2])
            if acked >= 2000:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert acked >= 2000
    storage = SqliteStorage(db)
    try:
        size = storage.sequenced_size()
        assert size > acked
        stored = storage.read_entries(0, size)
        assert stored == [f"entry {j}".encode() for j in range(size)]
        log = Log(storage, "crash.example/log")
        assert log.integrate().root == merkle.MemoryTree(stored).root()
    finally:
        storage.close()
