"""Small on-disk client state (last-seen checkpoints, revocation mirror): atomic writes.

Every file is replaced atomically: write a temporary file in the same directory, ``fsync`` it,
``rename`` it over the target, then ``fsync`` the directory, so that a crash leaves either the
old or the new content, never a torn file (POSIX ``rename(2)``). Writers of one directory are
serialised with an exclusive ``flock(2)`` on a ``lock`` file in it, so a read-compare-write
sequence is a compare-and-swap.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write", "locked", "origin_dir"]


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
