"""A client's last-seen checkpoint per log: it only moves forward (DESIGN.md house rule 8).

The one checkpoint store of attestlog: ``tlog monitor``, :class:`transparency_log.client.log_client.
LogClient`, the verifier's log checks and ``verifier audit`` all keep their view of a log here.

On disk, under the store's directory, one folder per log origin
(:func:`transparency_log.common.state_files.origin_dir`)::

    <sha256(origin)[:32]>/origin            the origin, for people
    <sha256(origin)[:32]>/checkpoint        the last-seen signed checkpoint note, verbatim
    <sha256(origin)[:32]>/lock              flock(2) target serialising writers
    <sha256(origin)[:32]>/evidence/fork-<old size>-<new size>-<sha256(new note)[:16]>/
        last-seen.checkpoint  presented.checkpoint  consistency-proof  README
    <sha256(origin)[:32]>/evidence/rollback-<old size>-<new size>-<sha256(new note)[:16]>/
        last-seen.checkpoint  presented.checkpoint  missing-tile  README

Every file is replaced atomically (temporary file, fsync, rename, fsync of the folder).

:meth:`CheckpointStore.update` is a compare-and-swap under an exclusive lock. With last-seen
``(m, r1)`` and a presented checkpoint ``(n, r2)`` (already verified by the caller: log
signature, witness quorum):

- nothing stored yet: the presented checkpoint is stored (trust on first use);
- ``n == m``: the roots must be equal (no proof needed); nothing is written (equal roots are
  recognised without taking the lock: nothing changes, and files are replaced atomically);
- ``n > m``: a consistency proof ``m -> n`` is fetched through the injected callable
  ``fetch_proof(m, n)`` and verified (RFC 9162 §2.1.4.2); only then is the presented
  checkpoint written. ``m == 0`` needs no proof (every tree extends the empty tree) but must
  carry the empty tree's root;
- ``n < m`` (the smaller-checkpoint rule): an older view is acceptable only if it is a prefix
  of what was already seen: a proof ``n -> m`` is fetched and verified, and nothing is
  written (never move backwards); ``n == 0`` must carry the empty tree's root.

A proof that does not verify, or equal sizes with different roots, is a fork: both checkpoints
and the proof are kept as evidence files and a ConsistencyError ``log.consistency`` is raised
(carrying ``old``, ``new`` and ``proof``; field ``evidence``: the evidence folder), and
last-seen stays as it was. A **rollback** is handled the same way: the log presents a smaller
tree ``n < m`` and no longer serves the tiles of the tree ``m`` it showed before (the proof
fetch raises FileNotFoundError, the tile path), so it cannot show that ``n`` is a prefix of
what was seen: evidence ``rollback-<m>-<n>-<tag>/`` (both checkpoints; ``missing-tile``, the
path the log did not serve; README) and ConsistencyError ``log.consistency``. A tile missing
for a *larger* tree proves nothing either way: FetchError ``log.fetch``.

A malformed proof (wrong number of hashes) is a FormatError: it
proves nothing about the log either way. When a proof is needed but no ``fetch_proof`` was
given (offline) the comparison cannot be made: FetchError ``log.consistency`` (the verifier
turns that into a check that could not run). A fetch failure is the fetcher's FetchError.

:meth:`CheckpointStore.check` makes the same comparison without writing (a monitor verifies
every entry before it moves the store), and :meth:`CheckpointStore.compare_and_swap` then
writes iff last-seen is still what was checked and the new tree is larger.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transparency_log.common.errors import ConsistencyError, FetchError, FormatError, ProofError
from transparency_log.common.state_files import atomic_write, locked, origin_dir
from transparency_log.core.checkpoint import Checkpoint, parse_checkpoint
from transparency_log.core.merkle import EMPTY_ROOT, verify_consistency
from transparency_log.core.note import parse_note

__all__ = [
    "CHECK_CONSISTENCY",
    "CheckpointStore",
    "ConsistencyFetch",
    "ConsistencyResult",
    "StoredCheckpoint",
]

CHECK_CONSISTENCY = "log.consistency"
FIRST, SAME, ADVANCED, OLDER = "first", "same", "advanced", "older"
_MAX_REMEMBERED_ORIGINS = 1024  # checkpoint file paths a store keeps for its unlocked reads

ConsistencyFetch = Callable[[int, int], list[bytes]]
"""``(old_size, new_size) -> proof hashes``: RFC 9162 PROOF(old_size, D[0:new_size]);
FileNotFoundError (the path) when the log does not serve a tile the proof needs."""


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint note exactly as it was presented, and its parsed body."""

    note: bytes
    checkpoint: Checkpoint

    @classmethod
    def from_note(cls, note: bytes) -> StoredCheckpoint:
        text, _ = parse_note(note)
        return cls(bytes(note), parse_checkpoint(text))


@dataclass(frozen=True)
class ConsistencyResult:
    """What :meth:`CheckpointStore.update` did: ``first``, ``same``, ``advanced`` or ``older``.

    ``previous_note`` is the last-seen note before the update (None the first time): a caller
    that only checked (:meth:`CheckpointStore.check`) hands it to
    :meth:`CheckpointStore.compare_and_swap`.
    """

    outcome: str
    last_seen: Checkpoint  # after the update
    previous: Checkpoint | None  # before it
    previous_note: bytes | None = None

    def describe(self) -> str:
        cp = self.last_seen
        if self.outcome == FIRST:
            return f"first checkpoint seen for this log (size {cp.size}), stored"
        if self.outcome == SAME:
            return f"same tree as last seen (size {cp.size})"
        assert self.previous is not None
        if self.outcome == ADVANCED:
            return f"consistent: last seen advanced from size {self.previous.size} to {cp.size}"
        return f"older view, consistent with last seen (size {cp.size}); last seen kept"


def _proof_text(old_size: int, new_size: int, proof: list[bytes]) -> bytes:
    lines = [f"old_size {old_size}", f"new_size {new_size}",
             *(base64.b64encode(h).decode("ascii") for h in proof)]
    return ("\n".join(lines) + "\n").encode()


class CheckpointStore:
    """Last-seen checkpoints per log origin, in ``directory`` (see the module docstring)."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._files: dict[str, Path] = {}  # origin -> its checkpoint file, once its folder is made

    def _dir(self, origin: str) -> Path:
        d = origin_dir(self.directory, origin)
        if len(self._files) < _MAX_REMEMBERED_ORIGINS:
            self._files[origin] = d / "checkpoint"
        return d

    def load(self, origin: str) -> bytes | None:
        """The last-seen note of ``origin``, verbatim, or None (no parsing)."""
        try:
            return (self._dir(origin) / "checkpoint").read_bytes()
        except FileNotFoundError:
            return None

    def last_seen(self, origin: str) -> StoredCheckpoint | None:
        """The last-seen checkpoint of ``origin``, or None; FormatError if the file is corrupt
        or names another origin."""
        path = self._dir(origin) / "checkpoint"
        note = self.load(origin)
        if note is None:
            return None
        try:
            stored = StoredCheckpoint.from_note(note)
        except FormatError as err:
            raise FormatError(CHECK_CONSISTENCY, f"stored checkpoint is corrupt: {err.message}",
                              field=str(path)) from None
        if stored.checkpoint.origin != origin:
            raise FormatError(CHECK_CONSISTENCY, "stored checkpoint is for another origin",
                              field=str(path), got=stored.checkpoint.origin, want=origin)
        return stored

    def evidence(self, origin: str) -> list[Path]:
        """The evidence folders kept for ``origin`` (one per detected fork or rollback)."""
        d = self._dir(origin) / "evidence"
        return sorted(p for p in d.iterdir() if p.is_dir()) if d.exists() else []

    def check(self, note: bytes, checkpoint: Checkpoint,
              fetch_proof: ConsistencyFetch | None = None) -> ConsistencyResult:
        """Compare ``note`` with last-seen (forks are kept as evidence and raised) without
        writing it; ``last_seen`` of the result is what an update would leave."""
        presented = self._presented(note, checkpoint)
        d = self._dir(checkpoint.origin)
        old = self.last_seen(checkpoint.origin)
        if old is None:
            return ConsistencyResult(FIRST, checkpoint, None)
        outcome = self._compare(d, old, presented, fetch_proof)
        kept = checkpoint if outcome == ADVANCED else old.checkpoint
        return ConsistencyResult(outcome, kept, old.checkpoint, old.note)

    def update(self, note: bytes, checkpoint: Checkpoint,
               fetch_proof: ConsistencyFetch | None = None) -> ConsistencyResult:
        """Compare-and-swap ``note`` (a verified checkpoint) against last-seen; see module doc.

        The same tree as last-seen (outcome ``same``: nothing to write) is recognised without
        the lock (:meth:`_same_tree`); every other outcome is decided, and written, under it."""
        presented = self._presented(note, checkpoint)
        same = self._same_tree(presented)
        if same is not None:
            return same
        d = self._dir(checkpoint.origin)
        with locked(d):
            result = self.check(note, checkpoint, fetch_proof)
            if result.outcome in (FIRST, ADVANCED):
                atomic_write(d / "checkpoint", presented.note)
            return result

    def compare_and_swap(self, origin: str, old: bytes | None, new: bytes) -> bool:
        """Store ``new`` iff last-seen is still ``old`` (None: nothing stored) and ``new`` is a
        larger tree; returns whether it did. The caller has verified ``new`` and its
        consistency with ``old`` (e.g. with :meth:`check`)."""
        presented = StoredCheckpoint.from_note(new)
        if presented.checkpoint.origin != origin:
            raise ValueError("checkpoint is for another origin")
        d = self._dir(origin)
        with locked(d):
            if self.load(origin) != old:
                return False
            if old is not None and (StoredCheckpoint.from_note(old).checkpoint.size
                                    >= presented.checkpoint.size):
                return False  # forward only
            atomic_write(d / "checkpoint", presented.note)
            return True

    def _same_tree(self, presented: StoredCheckpoint) -> ConsistencyResult | None:
        """Outcome ``same`` when last-seen is already this tree (equal size and root), read
        without the lock: each file is replaced by a rename, so an unlocked read sees one whole
        note, and ``same`` writes nothing. None for anything else (nothing stored yet, another
        size or root, a corrupt file, another origin): the caller then compares under the
        lock, which keeps forks and rollbacks as evidence and writes a larger tree durably."""
        cp = presented.checkpoint
        path = self._files.get(cp.origin)
        if path is None:
            return None
        try:
            old = StoredCheckpoint.from_note(path.read_bytes())
        except (OSError, FormatError):
            return None
        if (old.checkpoint.origin, old.checkpoint.size, old.checkpoint.root) != (
                cp.origin, cp.size, cp.root):
            return None
        return ConsistencyResult(SAME, old.checkpoint, old.checkpoint, old.note)

    @staticmethod
    def _presented(note: bytes, checkpoint: Checkpoint) -> StoredCheckpoint:
        presented = StoredCheckpoint.from_note(note)
        if presented.checkpoint != checkpoint:
            raise ValueError("checkpoint does not match the note's text")
        return presented

    def _compare(self, d: Path, old: StoredCheckpoint, new: StoredCheckpoint,
                 fetch_proof: ConsistencyFetch | None) -> str:
        m, n = old.checkpoint.size, new.checkpoint.size
        if n == m:
            if new.checkpoint.root != old.checkpoint.root:
                self._fork(d, old, new, [], "same size, different roots")
            return SAME
        small, large = (old, new) if m < n else (new, old)
        if small.checkpoint.size == 0:
            if small.checkpoint.root != EMPTY_ROOT:
                self._fork(d, old, new, [], "a size-0 checkpoint must have the empty root")
            return ADVANCED if m < n else OLDER
        if fetch_proof is None:
            raise FetchError(CHECK_CONSISTENCY, f"a consistency proof {small.checkpoint.size} "
                             f"-> {large.checkpoint.size} is needed and no log is reachable "
                             "(offline)", field="consistency proof", want="fetchable")
        try:
            proof = list(fetch_proof(small.checkpoint.size, large.checkpoint.size))
        except FileNotFoundError as err:
            path = str(err.args[0]) if err.args else "?"
            if m > n:
                self._rollback(d, old, new, path)
            raise FetchError("log.fetch", "a tile the consistency proof needs is not served",
                             field=path) from None
        try:
            verify_consistency(small.checkpoint.size, large.checkpoint.size,
                               small.checkpoint.root, large.checkpoint.root, proof)
        except ProofError as err:
            self._fork(d, old, new, proof, err.message)
        except FormatError as err:
            raise FormatError(CHECK_CONSISTENCY, f"malformed consistency proof: {err.message}",
                              field=err.field, got=err.got, want=err.want) from None
        return ADVANCED if m < n else OLDER

    @staticmethod
    def _keep_views(d: Path, kind: str, old: StoredCheckpoint, new: StoredCheckpoint) -> Path:
        """The evidence folder of a ``kind`` (fork, rollback) with both checkpoints in it."""
        m, n = old.checkpoint.size, new.checkpoint.size
        tag = hashlib.sha256(new.note).hexdigest()[:16]
        ev = d / "evidence" / f"{kind}-{m}-{n}-{tag}"
        atomic_write(ev / "last-seen.checkpoint", old.note)
        atomic_write(ev / "presented.checkpoint", new.note)
        return ev

    def _rollback(self, d: Path, old: StoredCheckpoint, new: StoredCheckpoint,
                  missing: str) -> None:
        """Keep both checkpoints and the tile the log did not serve; raise ConsistencyError."""
        m, n = old.checkpoint.size, new.checkpoint.size
        ev = self._keep_views(d, "rollback", old, new)
        atomic_write(ev / "missing-tile", (missing + "\n").encode())
        atomic_write(ev / "README", (
            f"Log {old.checkpoint.origin!r} went back: it presented presented.checkpoint (size "
            f"{n}) after this client had stored last-seen.checkpoint (size {m}), and it no "
            f"longer serves {missing}, a tile of the larger tree, so it cannot prove that the "
            "smaller tree is a prefix of the larger one.\nBoth checkpoints carry valid log "
            "signatures: together they are evidence that the log rolled back (lost or removed "
            "entries it had published).\n").encode())
        raise ConsistencyError(CHECK_CONSISTENCY, f"log rollback: presented checkpoint (size "
                               f"{n}) is smaller than last seen (size {m}) and the log no "
                               f"longer serves {missing}", old=old.note, new=new.note,
                               field="evidence", got=str(ev))

    def _fork(self, d: Path, old: StoredCheckpoint, new: StoredCheckpoint, proof: list[bytes],
              why: str) -> None:
        """Keep both checkpoints and the proof, then raise ConsistencyError."""
        m, n = old.checkpoint.size, new.checkpoint.size
        ev = self._keep_views(d, "fork", old, new)
        lo, hi = sorted((m, n))
        atomic_write(ev / "consistency-proof", _proof_text(lo, hi, proof))
        atomic_write(ev / "README", (
            f"Log {old.checkpoint.origin!r} presented two views that are not consistent: "
            f"{why}.\nlast-seen.checkpoint (size {m}) was stored by this client; "
            f"presented.checkpoint (size {n}) was presented later; consistency-proof is the "
            "proof the log served (RFC 9162 PROOF, base64 hashes).\nBoth checkpoints carry "
            "valid log signatures: together they are evidence of a fork.\n").encode())
        raise ConsistencyError(CHECK_CONSISTENCY, f"log fork: presented checkpoint is "
                               f"inconsistent with last seen ({why})", old=old.note,
                               new=new.note, proof=proof, field="evidence", got=str(ev))
