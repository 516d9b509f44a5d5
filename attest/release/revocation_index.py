"""Which releases the valid revocations of a log revoke (docs/formats.md, "Revocation
predicate"; issue 16).

One rule, shared by every reader of the log so that they cannot disagree: the node agent
(:mod:`attest.agent.release_lookup`), `attest revoke`, the client's revocation mirror
(:mod:`verifier.revocations`) and ``verifier audit``. A release whose DSSE payload has
statement digest ``S`` and whose measurements are ``L`` (:meth:`Measurements.listed`) is
revoked when a valid revocation names ``S`` or any member of ``L``. Nothing else about the
entry matters: not its entry digest, not its signature list, not where it was logged (a
measurement revocation also refuses releases logged after it).

Callers add only revocations that opened under their accepted release keys; the first valid
revocation of each target is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from attest.release.statement import Release, Revocation

__all__ = ["RevocationIndex", "RevocationRecord"]


@dataclass(frozen=True)
class RevocationRecord:
    """A valid revocation: what it revokes, where it was logged, its entry, who signed."""

    revocation: Revocation
    index: int
    entry_digest: bytes
    signers: tuple[str, ...]

    @property
    def reason(self) -> str:
        return self.revocation.reason

    def describe(self) -> str:
        """``revoked (statement sha256:…) at log index N: REASON``."""
        return f"revoked ({self.revocation.describe()}) at log index {self.index}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        r = self.revocation
        return {"target": r.target, "value": r.value.hex(), "reason": r.reason,
                "index": self.index, "entry_digest": self.entry_digest.hex(),
                "signers": list(self.signers)}

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> RevocationRecord:
        return cls(Revocation(str(v["target"]), bytes.fromhex(v["value"]), str(v["reason"])),
                   int(v["index"]), bytes.fromhex(v["entry_digest"]), tuple(v["signers"]))


class RevocationIndex:
    """Valid revocations by target: revoked statement digests and revoked measurements."""

    def __init__(self, records: Iterable[RevocationRecord] = ()) -> None:
        self._by_target: dict[tuple[str, bytes], RevocationRecord] = {}
        for record in records:
            self.add(record)

    def add(self, record: RevocationRecord) -> None:
        """Record a revocation that opened under the accepted keys (first one per target)."""
        r = record.revocation
        self._by_target.setdefault((r.target, r.value), record)

    def __iter__(self) -> Iterator[RevocationRecord]:
        return iter(sorted(self._by_target.values(), key=lambda rec: rec.index))

    def __len__(self) -> int:
        return len(self._by_target)

    def match(self, statement_digest: bytes, release: Release, *,
              as_of: int | None = None) -> RevocationRecord | None:
        """The earliest valid revocation of ``release`` (whose DSSE payload hashes to
        ``statement_digest``) logged before tree size ``as_of`` (default: any), or None."""
        hits = [rec for rec in self._by_target.values()
                if rec.revocation.revokes(statement_digest, release)
                and (as_of is None or rec.index < as_of)]
        return min(hits, key=lambda rec: rec.index, default=None)
