"""The client's incremental mirror of the release log: every release and revocation it holds.

Release logs are small, so a client can afford to know every revocation up to a checkpoint
(issue 7, "Revocation freshness"). :meth:`RevocationMirror.sync` takes a *verified*
checkpoint (log signature, witness quorum and consistency with last-seen already checked, e.g.
by :func:`verifier.log_checks.verify_log`) and an injected entry source, fetches the entries
it has not seen, and:

1. recomputes the tree: the stored compact range (the right border of the tree it has
   verified, :class:`transparency_log.core.merkle.CompactRange`) extended with
   ``SHA-256(0x00 || entry)`` of each new entry must give the checkpoint's root; otherwise
   ProofError ``log.entries`` and nothing is saved. Extending the old border proves the new
   tree contains the old one, so the mirror never needs a separate consistency proof;
2. opens each entry with :func:`attest.release.dsse.open_entry` against the policy's accepted
   release keys and threshold: a release is recorded by entry digest and index; a revocation
   is recorded only if accepted keys signed it, in a
   :class:`attest.release.revocation_index.RevocationIndex` (a revocation names a release
   *statement* or a build *measurement*; :meth:`RevocationMirror.revocation_of` applies the
   one rule every reader of the log shares). An entry that does not open (unknown signer,
   bad signature, malformed) is recorded as *rejected* with its check id and never counts,
   so nobody but an accepted release signer can revoke (or un-revoke) a release;
3. saves the new state atomically (``mirror.json`` in the log's folder, see
   :mod:`transparency_log.common.state_files`).

The state is bound to the release keys and threshold it was built with: if the policy's keys
change, the mirror starts over from entry 0.

``EntrySource`` contract: ``source(start, end)`` MUST return the entries ``[start, end)`` in
log order, exactly ``end - start`` of them (else FormatError ``log.entries``), and raise
FetchError when the log is unreachable.

Stapled-only mode (policy ``[log] revocations = "stapled"``) keeps no mirror: the verifier
then bounds how stale a node's view may be with ``max_checkpoint_age`` instead
(docs/policy.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from attest.release.dsse import open_entry
from attest.release.revocation_index import RevocationIndex, RevocationRecord
from attest.release.statement import Release, Revocation
from transparency_log.common.errors import (
    AttestlogError,
    ConsistencyError,
    FormatError,
    ProofError,
    VerificationError,
)
from transparency_log.common.state_files import atomic_write, locked, origin_dir
from transparency_log.core.checkpoint import Checkpoint
from transparency_log.core.merkle import CompactRange, leaf_hash
from verifier.checks import with_check
from verifier.policy import ReleasePolicy

__all__ = [
    "CHECK_ENTRIES",
    "EntrySource",
    "KnownRevocations",
    "RejectedEntry",
    "RevocationMirror",
    "open_revocation",
]

CHECK_ENTRIES = "log.entries"
CHECK_REVOKED = "release.revoked"
STATE_VERSION = 2  # 2: revocations name statements or measurements (issue 16)
DEFAULT_BATCH = 256

EntrySource = Callable[[int, int], Sequence[bytes]]
"""``(start, end) -> entries [start, end)`` of the log, in order."""


@dataclass(frozen=True)
class RejectedEntry:
    """A log entry that did not open under the policy's release keys (never counts)."""

    index: int
    check: str
    message: str


class KnownRevocations(Protocol):
    """What :func:`verifier.log_checks.check_revoked` needs: revocations known up to ``size``."""

    @property
    def size(self) -> int: ...

    def revocation_of(self, statement_digest: bytes, release: Release
                      ) -> RevocationRecord | None: ...


def open_revocation(entry: bytes, index: int, release: ReleasePolicy) -> RevocationRecord:
    """Open a revocation entry: signed by ``release.threshold`` accepted keys, a Revocation.

    Errors carry check ``release.revoked`` (SignatureError / VerificationError / FormatError
    from :func:`attest.release.dsse.open_entry`).
    """
    try:
        verified = open_entry(entry, release.keys, threshold=release.threshold)
    except AttestlogError as err:
        raise with_check(err, CHECK_REVOKED, "revocation entry refused: ") from None
    if not isinstance(verified.statement, Revocation):
        raise VerificationError(CHECK_REVOKED, "entry is not a revocation",
                                field="predicateType", got=verified.statement.predicate_type,
                                want=Revocation.predicate_type)
    return RevocationRecord(verified.statement, index, verified.digest, verified.signers)


def _keys_fingerprint(release: ReleasePolicy) -> str:
    text = ",".join(sorted(release.keyids)) + f";{release.threshold}"
    return hashlib.sha256(text.encode()).hexdigest()


class RevocationMirror:
    """Releases and revocations of one log, as of the last checkpoint synced (``size``)."""

    def __init__(self, directory: Path | str, origin: str, release: ReleasePolicy) -> None:
        self.origin = origin
        self.release = release
        self._dir = origin_dir(Path(directory), origin)
        self._path = self._dir / "mirror.json"
        self._load()

    # -- state -------------------------------------------------------------------------------

    def _reset(self) -> None:
        self.size = 0
        self.root: bytes | None = None
        self._compact: list[bytes] = []
        self.releases: dict[bytes, int] = {}
        self.revocations = RevocationIndex()
        self.rejected: list[RejectedEntry] = []

    def _load(self) -> None:
        self._reset()
        if not self._path.exists():
            return
        try:
            state = json.loads(self._path.read_text("utf-8"))
            if (state["version"] != STATE_VERSION or state["origin"] != self.origin
                    or state["keys"] != _keys_fingerprint(self.release)):
                return  # other keys or format: rebuild from entry 0
            self.size = int(state["size"])
            self.root = bytes.fromhex(state["root"])
            self._compact = [bytes.fromhex(h) for h in state["compact"]]
            CompactRange(self.size, self._compact)  # shape check
            self.releases = {bytes.fromhex(k): int(v) for k, v in state["releases"].items()}
            self.revocations = RevocationIndex(RevocationRecord.from_json(v)
                                               for v in state["revocations"])
            self.rejected = [RejectedEntry(int(r["index"]), r["check"], r["message"])
                             for r in state["rejected"]]
        except (AttestlogError, KeyError, TypeError, ValueError) as err:
            raise FormatError(CHECK_ENTRIES, f"revocation mirror state is corrupt: {err}",
                              field=str(self._path)) from None

    def _save(self) -> None:
        state = {
            "version": STATE_VERSION, "origin": self.origin,
            "keys": _keys_fingerprint(self.release), "size": self.size,
            "root": self.root.hex() if self.root is not None else None,
            "compact": [h.hex() for h in self._compact],
            "releases": {k.hex(): v for k, v in sorted(self.releases.items())},
            "revocations": [v.to_json() for v in self.revocations],
            "rejected": [{"index": r.index, "check": r.check, "message": r.message}
                         for r in self.rejected],
        }
        atomic_write(self._path, json.dumps(state, indent=1, sort_keys=True).encode() + b"\n")

    # -- queries -----------------------------------------------------------------------------

    def revocation_of(self, statement_digest: bytes, release: Release,
                      as_of: int | None = None) -> RevocationRecord | None:
        """The valid revocation of ``release`` (its statement, or a measurement it lists)
        logged before tree size ``as_of`` (default: everything this mirror has verified)."""
        return self.revocations.match(statement_digest, release, as_of=as_of)

    @property
    def known_releases(self) -> Mapping[bytes, int]:
        """Entry digest -> index of every release signed by accepted keys."""
        return dict(self.releases)

    # -- sync --------------------------------------------------------------------------------

    def sync(self, checkpoint: Checkpoint, source: EntrySource, *,
             batch: int = DEFAULT_BATCH) -> int:
        """Bring the mirror up to ``checkpoint`` (already verified); return the new entries.

        An older checkpoint changes nothing (consistency is the checkpoint store's job).
        """
        if checkpoint.origin != self.origin:
            raise VerificationError(CHECK_ENTRIES, "checkpoint is for another log",
                                    field="origin", got=checkpoint.origin, want=self.origin)
        with locked(self._dir):
            self._load()
            if checkpoint.size < self.size:
                return 0
            if checkpoint.size == self.size:
                if self.size and checkpoint.root != self.root:
                    raise ConsistencyError(CHECK_ENTRIES, "checkpoint root differs from the "
                                           "root this mirror verified at the same size",
                                           field="root", got=checkpoint.root, want=self.root)
                return 0
            return self._extend(checkpoint, source, max(1, batch))

    def _extend(self, checkpoint: Checkpoint, source: EntrySource, batch: int) -> int:
        compact = CompactRange(self.size, self._compact)
        releases = dict(self.releases)
        revocations = RevocationIndex(self.revocations)
        rejected = list(self.rejected)
        for start in range(self.size, checkpoint.size, batch):
            end = min(start + batch, checkpoint.size)
            entries = list(source(start, end))
            if len(entries) != end - start:
                raise FormatError(CHECK_ENTRIES, "entry source returned the wrong number of "
                                  "entries", field=f"entries [{start}, {end})",
                                  got=len(entries), want=end - start)
            for index, entry in enumerate(entries, start):
                compact.append(leaf_hash(entry))
                self._classify(index, entry, releases, revocations, rejected)
        root = compact.root()
        if root != checkpoint.root:
            raise ProofError(CHECK_ENTRIES, "log entries do not hash to the checkpoint root",
                             expected_root=checkpoint.root, calculated_root=root)
        added = checkpoint.size - self.size
        self.size, self.root, self._compact = checkpoint.size, root, list(compact.hashes)
        self.releases, self.revocations, self.rejected = releases, revocations, rejected
        self._save()
        return added

    def _classify(self, index: int, entry: bytes, releases: dict[bytes, int],
                  revocations: RevocationIndex,
                  rejected: list[RejectedEntry]) -> None:
        try:
            verified = open_entry(entry, self.release.keys, threshold=self.release.threshold)
        except AttestlogError as err:
            rejected.append(RejectedEntry(index, err.check, err.message))
            return
        st = verified.statement
        if isinstance(st, Release):
            releases.setdefault(verified.digest, index)
        else:
            revocations.add(RevocationRecord(st, index, verified.digest, verified.signers))
