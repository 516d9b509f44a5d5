"""Small on-disk client state (last-seen checkpoints, revocation mirror): atomic writes.

Every file is replaced atomically: write a temporary file in the same directory, ``fsync`` it,
``rename`` it over the target, then ``fsync`` the directory, so that a crash leaves either the
old or the new content, never a torn file (POSIX ``rename(2)``). Writers of one directory are
serialised with an exclusive ``flock(2)`` on a ``lock`` file in it, so a read-compare-write
sequence is a compare-and-swap.

A long-running service holds its state for its whole life with :func:`try_hold`: a
non-blocking exclusive ``flock(2)`` on the state itself (a database file, a folder), taken
before anything is written, so a second process on the same state refuses to start instead of
writing over the first one's. The kernel drops the lock when the process dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["HeldLock", "atomic_write", "locked", "origin_dir", "try_hold"]


def origin_dir(root: Path, origin: str) -> Path:
    """The per-log directory under ``root``: named by SHA-256 of the origin (any text is safe),
    with the origin itself written to ``origin`` inside for people reading the tree."""
    d = root / hashlib.sha256(origin.encode("utf-8")).hexdigest()[:32]
    if not (d / "origin").exists():
        d.mkdir(parents=True, exist_ok=True)
        atomic_write(d / "origin", origin.encode("utf-8") + b"\n")
    return d


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temp file + fsync + rename + fsync of the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` (its ``lock`` file) for the block."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class HeldLock:
    """An exclusive ``flock(2)`` held until :meth:`release` (or the process ends)."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def try_hold(path: Path | str) -> HeldLock | None:
    """Take an exclusive, non-blocking lock on an existing file or folder for as long as the
    returned :class:`HeldLock` lives; None when another holder has it. The path is opened
    read-only: nothing is written. (SQLite's own locks are POSIX ``fcntl`` locks, which
    ``flock`` locks do not interfere with on Linux.)"""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return HeldLock(fd, Path(path))
