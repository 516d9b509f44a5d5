"""The storage interface of the transparency log (one Protocol; every backend implements it).

A backend keeps four things, and understands none of the Merkle maths (the log does that):

1. **Sequenced entries**: an append-only array of opaque entries (each at most 65535 bytes, the
   C2SP entry-bundle limit), each stored with its RFC 9162 leaf hash ``SHA-256(0x00 || e)``,
   which is also its identity for de-duplication.
2. **Hash tiles**: ``(tile level, tile index) -> bytes``, the concatenated 32-byte hashes of
   one C2SP tlog-tiles hash tile at the widest width integrated so far (1..256 hashes). A
   narrower (older) width of the tile is a prefix of the stored bytes.
3. **The tree state**: the integrated size, its root and its compact range (the right border
   of the tree, one hash per set bit of the size), so integration needs O(log n) memory.
4. **The latest signed checkpoint** (note bytes) and a few **meta** strings (origin, keys).

Contract (RFC 2119 words, in the manner of Tessera's ``AddFn``):

- ``append`` MUST NOT return an index until the entry and its index are durable (committed
  and synced); it MUST be safe to call from several threads at once, and backends SHOULD
  group concurrent calls into one commit. Indexes are dense: ``0, 1, 2, ...`` with no gaps.
  An entry whose leaf hash is already stored (or appears earlier in the same call) MUST get
  the existing index and MUST NOT be stored twice. An entry over 65535 bytes MUST be refused
  with FormatError before anything of the call is stored.
- ``integrate`` MUST write all the given tiles and the new state atomically, and only if the
  stored state's size still equals ``old_size`` (compare-and-swap), else raise
  StorageConflictError and write nothing. Several integrators (several ``tlog serve`` writers
  on one PostgreSQL database) are therefore safe: the loser re-reads and retries.
- ``write_checkpoint`` MUST only move forward: a checkpoint for a smaller size than the
  stored one raises StorageConflictError.
- Reads never see uncommitted data. ``read_entries``/``read_leaf_hashes`` of a range beyond
  ``sequenced_size()`` raise ValueError.
- No method may need memory proportional to the log size.
- ``try_writer_lock`` takes the log's **writer lock** without waiting and holds it until
  ``close`` (or the process dies); it MUST return False while any other process or storage
  object holds it, and MUST NOT write anything to the log. Only the holder publishes
  checkpoints, so a second ``tlog serve`` on the same log cannot publish over the first
  one's (SQLite: ``flock(2)`` on the database file; PostgreSQL: a session advisory lock).
  ``holds_writer_lock`` says whether it is still held (a lost database session loses it).

To add a backend: implement this Protocol and run tests/support/storage_conformance.py against it
with a ``storage_factory`` fixture (see tests/test_storage_sqlite.py: a few lines).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from transparency_log.common.errors import AttestlogError, FormatError
from transparency_log.core import merkle
from transparency_log.core.tiles import check_entry


class StorageConflictError(AttestlogError):
    """Another writer moved the stored state first (compare-and-swap lost); retry."""

    exit_code = 1
    kind = "storage-conflict"


@dataclass(frozen=True)
class TreeState:
    """The integrated tree: its size, root and compact range (highest level first)."""

    size: int
    root: bytes
    border: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if self.size < 0 or len(self.border) != bin(self.size).count("1"):
            raise FormatError("storage.state", "compact range does not match the size",
                              field="border", got=len(self.border),
                              want=bin(max(self.size, 0)).count("1"))

    @classmethod
    def empty(cls) -> TreeState:
        return cls(0, merkle.EMPTY_ROOT, ())

    def compact_range(self) -> merkle.CompactRange:
        return merkle.CompactRange(self.size, self.border)

    def encode_border(self) -> bytes:
        """The compact range as stored: the hashes concatenated."""
        return b"".join(self.border)

    @classmethod
    def decode(cls, size: int, root: bytes, border: bytes) -> TreeState:
        """Rebuild a stored state, checking its shape."""
        if len(border) % merkle.HASH_SIZE or len(root) != merkle.HASH_SIZE:
            raise FormatError("storage.state", "stored tree state is corrupt", field="border",
                              got=len(border), want="a multiple of 32")
        hashes = tuple(border[i:i + 32] for i in range(0, len(border), 32))
        return cls(size, root, hashes)


def validate_entries(entries: Sequence[bytes]) -> None:
    """Refuse a batch if any entry cannot be logged (not bytes, or over 65535 bytes)."""
    for e in entries:
        check_entry(e)


def assign_indexes(batch: Sequence[tuple[Sequence[bytes], Sequence[bytes]]],
                   known: dict[bytes, int], next_index: int
                   ) -> tuple[list[list[int]], list[tuple[int, bytes, bytes]], int]:
    """Sequence a group of appends with de-duplication (the ``append`` contract above).

    ``batch``: each call's (leaf hashes, entries); ``known``: leaf hash -> index of what is
    stored already (updated in place); ``next_index``: the first free index. Returns each
    call's indexes, the new rows ``(index, leaf hash, entry)`` to store, and the next free
    index. An entry already stored, or earlier in the group, gets its first index.
    """
    rows: list[tuple[int, bytes, bytes]] = []
    results: list[list[int]] = []
    for hashes, entries in batch:
        out = []
        for h, e in zip(hashes, entries, strict=True):
            index = known.get(h)
            if index is None:
                index = known[h] = next_index
                rows.append((index, h, e))
                next_index += 1
            out.append(index)
        results.append(out)
    return results, rows, next_index


@runtime_checkable
class LogStorage(Protocol):
    """What the log needs from a durable store. See the module docstring for the contract."""

    # -- sequencing --------------------------------------------------------------------------
    def append(self, entries: Sequence[bytes]) -> list[int]:
        """Durably assign an index to each entry (existing index for a duplicate)."""
        ...

    def sequenced_size(self) -> int:
        """How many entries have been durably sequenced (the next index)."""
        ...

    def find_index(self, leaf_hash: bytes) -> int | None:
        """The index of the entry with this RFC 9162 leaf hash, or None."""
        ...

    def read_entries(self, start: int, end: int) -> list[bytes]:
        """Entries ``[start, end)`` in order."""
        ...

    def read_leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """Leaf hashes of entries ``[start, end)`` in order."""
        ...

    # -- integration -------------------------------------------------------------------------
    def tree_state(self) -> TreeState:
        """The integrated tree state (``TreeState.empty()`` for a new store)."""
        ...

    def read_tile(self, level: int, index: int) -> bytes | None:
        """The stored bytes of hash tile ``(level, index)`` (its widest width), or None."""
        ...

    def integrate(self, old_size: int, state: TreeState,
                  tiles: Mapping[tuple[int, int], bytes]) -> None:
        """Atomically store ``tiles`` (replacing narrower versions) and ``state``, if the
        stored size is still ``old_size``; else StorageConflictError."""
        ...

    # -- publishing --------------------------------------------------------------------------
    def latest_checkpoint(self) -> tuple[int, bytes] | None:
        """``(size, signed note bytes)`` of the latest checkpoint, or None."""
        ...

    def write_checkpoint(self, size: int, note: bytes) -> None:
        """Store a newer signed checkpoint (never one for a smaller size)."""
        ...

    # -- the writer lock ---------------------------------------------------------------------
    def try_writer_lock(self) -> bool:
        """Take the log's writer lock if it is free; returns whether this store holds it."""
        ...

    def holds_writer_lock(self) -> bool:
        """Whether the writer lock taken by :meth:`try_writer_lock` is still held."""
        ...

    # -- configuration -----------------------------------------------------------------------
    def get_meta(self, name: str) -> str | None:
        ...

    def set_meta(self, name: str, value: str) -> None:
        ...

    def close(self) -> None:
        ...
